"""Other libraries' UNets, built by their own code and measured like a variant.

``create_model("monai:BasicUNet", features=(...))`` builds MONAI's network with those keyword arguments
(and defaults for the ones it requires); ``smp:Unet`` takes any encoder name and never downloads weights;
``nnunet:PlainConvUNet`` is nnU-Net's plain UNet from ``dynamic_network_architectures``. The config of
such a network is an `ExternalConfig`: its name, the keyword arguments, where it came from (library,
version) and the library's own size rule. Our config's design factors (padding, upsample, skip, ...) do not
describe another library's network, so they are recorded as ``n/a``, not guessed.

Valid input sizes follow each library's rule, a period: MONAI's UNet and DynUNet and nnU-Net need a multiple of
the product of their strides; MONAI's BasicUNet pads odd edges in its decoder and smp's Unet resizes to each
skip, so any size works for them (an smp model that sets ``requires_divisible_input_shape`` needs a multiple of
its encoder's output stride). The smallest valid size is the first multiple whose forward runs
and returns the input's size (a norm needs more than one pixel at the bottleneck), found on the ``meta``
device at no compute cost.

Torch (and each library) is imported inside the functions that build or run a network: naming, listing and
checking a network needs neither, so the command line answers without them.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import importlib
import importlib.metadata
import inspect
import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unet_bench.errors import BenchError, choices
from unet_bench.models.config import UNetConfig
from unet_bench.models.geometry import Trace, check_input_size

if TYPE_CHECKING:
    from torch import nn

INSTALL = 'pip install -e ".[external]"'
NOT_APPLICABLE = "n/a"
# Our config's design factors: none of them describes another library's network (the channels do, and the
# networks here are 2-D).
APPLICABLE = ("in_channels", "num_classes", "spatial_dims")
UNET_FACTORS = tuple(f.name for f in dataclasses.fields(UNetConfig) if f.name not in APPLICABLE)
MAX_PROBES = 4096  # the largest multiple of the period tried for the smallest valid size


@dataclass(frozen=True)
class Adapter:
    """How to build one library's network: where it lives, its required defaults and its size rule."""

    name: str  # "monai:BasicUNet"
    package: str  # the distribution pip installs
    module: str  # where the class lives
    cls: str
    channel_args: tuple[str, str]  # the keyword names of input channels and classes
    defaults: Callable[[], dict[str, Any]]  # required arguments, so the bare name builds a 2-D network
    period: Callable[[dict[str, Any], nn.Module], int]  # valid input sizes are multiples of this
    rule: str  # the size rule in words
    description: str


def _stride_product(args: dict[str, Any], model: nn.Module) -> int:
    return math.prod(s if isinstance(s, int) else s[0] for s in args["strides"])


def _smp_period(args: dict[str, Any], model: nn.Module) -> int:
    """smp's own rule: a model that sets ``requires_divisible_input_shape`` needs multiples of the encoder's
    output stride (its forward refuses others); smp 0.6's Unet does not set it and takes any size."""
    return int(model.encoder.output_stride) if getattr(model, "requires_divisible_input_shape", True) else 1


def _nnunet_defaults() -> dict[str, Any]:
    from torch import nn

    return dict(input_channels=1, n_stages=6, features_per_stage=(32, 64, 128, 256, 512, 512), conv_op=nn.Conv2d,
                kernel_sizes=3, strides=(1, 2, 2, 2, 2, 2), n_conv_per_stage=2, num_classes=2,
                n_conv_per_stage_decoder=2, conv_bias=True, norm_op=nn.InstanceNorm2d,
                norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True})


ADAPTERS: dict[str, Adapter] = {a.name: a for a in (
    Adapter("monai:BasicUNet", "monai", "monai.networks.nets", "BasicUNet", ("in_channels", "out_channels"),
            lambda: dict(spatial_dims=2, in_channels=1, out_channels=2), lambda args, model: 1,
            "any size: its decoder pads odd edges", "MONAI's BasicUNet: 4 poolings, instance norm, LeakyReLU"),
    Adapter("monai:UNet", "monai", "monai.networks.nets", "UNet", ("in_channels", "out_channels"),
            lambda: dict(spatial_dims=2, in_channels=1, out_channels=2, channels=(16, 32, 64, 128, 256),
                         strides=(2, 2, 2, 2), num_res_units=2), _stride_product,
            "a multiple of the product of strides", "MONAI's UNet: strided-conv down-sampling, residual units"),
    Adapter("monai:DynUNet", "monai", "monai.networks.nets", "DynUNet", ("in_channels", "out_channels"),
            lambda: dict(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=(3, 3, 3, 3, 3),
                         strides=(1, 2, 2, 2, 2), upsample_kernel_size=(2, 2, 2, 2)), _stride_product,
            "a multiple of the product of strides", "MONAI's DynUNet: the nnU-Net layout, configurable per level"),
    Adapter("smp:Unet", "segmentation-models-pytorch", "segmentation_models_pytorch", "Unet",
            ("in_channels", "classes"), lambda: dict(encoder_name="resnet34", encoder_weights=None, in_channels=1,
                                                     classes=2),
            _smp_period, "any size where the model says so (its Unet resizes in the decoder), else a multiple "
            "of the encoder's output stride",
            "segmentation_models_pytorch's Unet: any encoder, no pretrained weights"),
    Adapter("nnunet:PlainConvUNet", "dynamic-network-architectures",
            "dynamic_network_architectures.architectures.unet", "PlainConvUNet", ("input_channels", "num_classes"),
            _nnunet_defaults, _stride_product, "a multiple of the product of strides",
            "nnU-Net's plain UNet (dynamic_network_architectures), its 2-D default layout"),
)}


def is_external(name: str) -> bool:
    """Names with a library prefix (``monai:``) are other libraries' networks."""
    return ":" in name


def list_external() -> list[str]:
    return list(ADAPTERS)


def get_adapter(name: str) -> Adapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise BenchError(f"unknown external network {name!r}; valid ones are {choices(ADAPTERS)}") from None


def library_version(adapter: Adapter) -> str | None:
    """The installed version of the adapter's library, or None where it is not installed."""
    try:
        return importlib.metadata.version(adapter.package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _torchvision_without_kernels() -> None:
    """Let ``import torchvision`` succeed where its compiled kernels cannot load.

    PyPI's torchvision is built against a CUDA torch; beside a CPU-only torch its kernel library does not
    load, and importing it fails while registering a fake ``nms`` ('operator torchvision::nms does not
    exist'). smp (through timm) needs only torchvision's Python models, so the two operators it registers
    fakes for are declared and the import is tried again. A working torchvision is left untouched.
    """
    import torch

    try:
        import torchvision  # noqa: F401
    except RuntimeError as error:
        if "torchvision::nms does not exist" not in str(error):
            raise
        for module in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[module]
        library = torch.library.Library("torchvision", "FRAGMENT")  # noqa: TOR901
        for op in ("nms", "qnms"):
            library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _torchvision_without_kernels.library = library  # type: ignore[attr-defined]  # keep it registered
        import torchvision  # noqa: F401, F811
    except ImportError:
        pass  # smp reports the missing package itself


@contextlib.contextmanager
def unchanged_environment() -> Iterator[None]:
    """Undo what an import writes into ``os.environ``.

    MONAI sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` when it is imported (for its determinism helpers); every
    network is measured under the environment of a plain process, so that no library's import changes the
    conditions of the others' timings.
    """
    before = dict(os.environ)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k not in before]:
            del os.environ[key]
        os.environ.update({k: v for k, v in before.items() if os.environ.get(k) != v})


def network_class(adapter: Adapter) -> type:
    """The library's class, or a one-line error saying which extra to install."""
    if library_version(adapter) is None:
        raise BenchError(f"{adapter.name} needs the {adapter.package} package, which is not installed: "
                         f"{INSTALL} (or pip install {adapter.package})")
    with unchanged_environment():
        if adapter.package == "segmentation-models-pytorch":
            _torchvision_without_kernels()
        return getattr(importlib.import_module(adapter.module), adapter.cls)


class _Mapping(tuple):
    """A dict argument (``norm_op_kwargs``), frozen as sorted pairs so that a config stays hashable."""


def frozen(value: Any) -> Any:
    """A hashable copy of a keyword argument (lists from TOML or JSON become tuples)."""
    if isinstance(value, dict):
        return _Mapping(sorted((k, frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    return value


def _thawed(value: Any) -> Any:
    if isinstance(value, _Mapping):
        return {k: _thawed(v) for k, v in value}
    if isinstance(value, tuple):
        return tuple(_thawed(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    """A JSON-able copy of a keyword argument (classes by name)."""
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class ExternalConfig:
    """Another library's network: its name and the keyword arguments given on top of the defaults."""

    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def adapter(self) -> Adapter:
        return get_adapter(self.name)

    def arguments(self) -> dict[str, Any]:
        """Every keyword argument the library's constructor gets: defaults, then the given ones."""
        return {**self.adapter.defaults(), **{k: _thawed(v) for k, v in self.kwargs}}

    spatial_dims = 2  # cases give these networks 2-D images (spatial_dims=2 is their argument too)

    @property
    def in_channels(self) -> int:
        return int(self.arguments()[self.adapter.channel_args[0]])

    @property
    def num_classes(self) -> int:
        return int(self.arguments()[self.adapter.channel_args[1]])

    def value(self, key: str) -> Any:
        """A keyword argument's value (frozen), as `getattr` gives a field of our config."""
        return frozen(self.arguments().get(key))

    def replace(self, **overrides: Any) -> ExternalConfig:
        """A copy with more keyword arguments; names the constructor does not take are refused."""
        parameters = inspect.signature(network_class(self.adapter)).parameters.values()
        valid = [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        for key, value in overrides.items():
            if key not in valid:
                raise BenchError(f"{self.name} takes no argument {key!r}; valid arguments are {choices(valid)}")
            if key == "encoder_weights" and value is not None:
                raise BenchError(f"{self.name}: encoder_weights={value!r} would download weights; "
                                 "only encoder_weights = None (random initialisation) is measured here")
            if key in self.adapter.channel_args and (isinstance(value, bool) or not isinstance(value, int)
                                                     or value < 1):
                # a library builds a 0-channel conv without complaint and fails only in the forward
                raise BenchError(f"{self.name}: {key}={value!r} is not valid; it must be a whole number >= 1")
            if key == "spatial_dims" and value != 2:
                raise BenchError(f"{self.name}: spatial_dims={value!r} is not valid; cases are 2-D images "
                                 "(spatial_dims = 2)")
        merged = {**dict(self.kwargs), **{k: frozen(v) for k, v in overrides.items()}}
        return ExternalConfig(self.name, tuple(sorted(merged.items())))

    def to_dict(self) -> dict[str, Any]:
        """What a record stores: the network, its provenance and arguments; our design factors as n/a."""
        adapter = self.adapter
        return {
            "network": self.name, "library": adapter.package, "library_version": library_version(adapter),
            "class": f"{adapter.module}.{adapter.cls}", "in_channels": self.in_channels,
            "num_classes": self.num_classes, "spatial_dims": self.spatial_dims, "size_rule": adapter.rule,
            **dict.fromkeys(UNET_FACTORS, NOT_APPLICABLE),
            "kwargs": {k: _plain(v) for k, v in self.arguments().items()},
        }

    def build(self) -> nn.Module:
        """The library's network; it carries this config as ``.cfg``, as our UNet does."""
        cls = network_class(self.adapter)
        try:
            model = cls(**self.arguments())
        except Exception as error:  # the library's own refusal, whatever its type, as one line
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise BenchError(f"{self.name} refused its arguments: {first}") from None
        model.cfg = self
        return model

    # --- geometry (used through unet_bench.models.geometry) -------------------------------------------------

    def progression(self) -> tuple[int, int]:
        """``(first, period)``: valid sizes are first, first + period, ... (output = input)."""
        return _progression(self)

    def trace(self, size: int) -> Any:
        """The geometry's `Trace` of one dimension (output = input), or None for an invalid size."""
        first, period = self.progression()
        if size < first or size % period:
            return None
        return Trace((), size, (), (size,))

    def largest_feature_map(self, size: int | tuple[int, int]) -> int:
        """Values in the largest map any module returns (one image), from a forward on the meta device;
        ``size`` is the side of a square input or (height, width)."""
        shape = (size, size) if isinstance(size, int) else tuple(size)
        check_input_size(self, *shape)
        return _largest_map(self, shape)


def _meta_model(cfg: ExternalConfig) -> nn.Module:
    import torch

    with torch.device("meta"):
        return cfg.build().to("meta").eval()  # a library may create a tensor on the CPU explicitly


def _runs(model: nn.Module, channels: int, size: int) -> bool:
    """Whether an inference forward and a training forward both take ``size`` (batch norm in training needs
    more than one value per channel at the bottleneck, which inference does not show)."""
    return _refusal(model, channels, size) is None


def _refusal(model: nn.Module, channels: int, size: int) -> str | None:
    """Why ``model`` does not take a ``size`` input (the library's error, first line), or None."""
    import torch

    try:
        with torch.no_grad():
            for training in (False, True):
                model.train(training)
                out = model(torch.zeros(1, channels, size, size, device="meta"))
                if tuple(out.shape[-2:]) != (size, size):
                    return f"its output is {tuple(out.shape[-2:])}, not {(size, size)}"
    except (RuntimeError, ValueError, IndexError, ZeroDivisionError) as error:
        text = str(error).strip()
        return text.splitlines()[0] if text else type(error).__name__
    finally:
        model.eval()
    return None


@functools.lru_cache(maxsize=256)
def _progression(cfg: ExternalConfig) -> tuple[int, int]:
    """The first multiple of the period that runs: doubling, then bisecting (a multiple that runs has no
    failing multiple above it: what fails is a map shrunk to one pixel)."""
    model = _meta_model(cfg)
    period = cfg.adapter.period(cfg.arguments(), model)
    low, high = 0, 1  # multiples of the period: low fails (or is 0), high is tried
    while not _runs(model, cfg.in_channels, high * period):
        low, high = high, 2 * high
        if high > MAX_PROBES * period:
            why = _refusal(model, cfg.in_channels, MAX_PROBES * period)
            raise BenchError(f"{cfg.name} takes no input size up to {MAX_PROBES * period} px with these arguments "
                             f"(at {MAX_PROBES * period} px the library says: {why}); check the --set values")
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if _runs(model, cfg.in_channels, middle * period) else (middle, high)
    return high * period, period


@functools.lru_cache(maxsize=256)
def _largest_map(cfg: ExternalConfig, shape: tuple[int, ...]) -> int:
    import torch

    model = _meta_model(cfg)
    largest = [cfg.in_channels * math.prod(shape)]
    hooks = [m.register_forward_hook(lambda m, i, o: largest.append(o.numel()) if torch.is_tensor(o) else None)
             for m in model.modules()]
    with torch.no_grad():
        model(torch.zeros(1, cfg.in_channels, *shape, device="meta"))
    for hook in hooks:
        hook.remove()
    return max(largest)


def parse_value(text: str) -> Any:
    """A command-line ``--set`` value for a library's argument: a Python literal, else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
