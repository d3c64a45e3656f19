"""Named networks and variants: a variant is a base network's config with exactly one factor changed.

A variant is data (a config), not a class: registering one is a line below, and a test holds every entry
to "differs from its base in exactly one field", so each name is a one-factor ablation. The bases are
`paper` (Ronneberger et al. 2015) and `3d` (Çiçek et al. 2016), each a published network whose config is
written out in full.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unet_bench.errors import BenchError, choices
from unet_bench.models.config import UNetConfig
from unet_bench.models.external import ExternalConfig, get_adapter, is_external, list_external

if TYPE_CHECKING:
    from torch import nn

    from unet_bench.models.unet import UNet

PAPER = UNetConfig()


@dataclass(frozen=True)
class Variant:
    """A registered variant: its name, config and the design question it answers."""

    name: str
    config: UNetConfig | ExternalConfig
    description: str
    base: str = "paper"  # the network it changes one factor of (its own name for a base network)

    @property
    def change(self) -> str:
        """The factor changed from its base, as ``field=value`` ('-' for a base network itself)."""
        if isinstance(self.config, ExternalConfig):
            return "n/a (another library's network)"
        base = _VARIANTS[self.base].config if self.base != self.name else self.config
        return ", ".join(f"{k}={v}" for k, (_, v) in base.diff(self.config).items()) or "-"


_VARIANTS: dict[str, Variant] = {}


def register_variant(name: str, description: str, base: str = "paper", **change: Any) -> Variant:
    """Register ``name`` as the ``base`` network's config with ``change`` applied."""
    if name in _VARIANTS:
        raise BenchError(f"variant {name!r} is already registered")
    variant = Variant(name, _VARIANTS[base].config.replace(**change), description, base)
    _VARIANTS[name] = variant
    return variant


def register_network(name: str, description: str, config: UNetConfig) -> Variant:
    """Register a published network as a base that variants can change one factor of."""
    if name in _VARIANTS:
        raise BenchError(f"variant {name!r} is already registered")
    _VARIANTS[name] = Variant(name, config, description, base=name)
    return _VARIANTS[name]


register_network("paper", "Ronneberger et al. 2015, exactly: valid 3x3 convs, 2x2 up-conv, crop+concat", PAPER)
register_variant("padded", "3x3 convs zero-padded by 1: output size = input size", padding="same")
register_variant("bilinear", "x2 bilinear up-sampling + 1x1 conv instead of the 2x2 up-conv", upsample="bilinear")
register_variant("nearest", "x2 nearest up-sampling + 1x1 conv instead of the 2x2 up-conv", upsample="nearest")
register_variant(
    "pixelshuffle", "1x1 conv to 4·C/2 + PixelShuffle(2) instead of the 2x2 up-conv", upsample="pixelshuffle"
)
register_variant("additive", "skips added (crop + add) instead of concatenated", skip="add")
register_variant("no-skip", "no skip connections: a plain encoder-decoder", skip="none")
register_variant("batchnorm", "BatchNorm after every 3x3 conv", norm="batch")
register_variant("instancenorm", "InstanceNorm (affine) after every 3x3 conv", norm="instance")
register_variant("groupnorm", "GroupNorm (32 groups) after every 3x3 conv", norm="group")
register_variant("leaky-relu", "LeakyReLU (slope 0.01) instead of ReLU", activation="leaky_relu")
register_variant("depth-3", "three poolings instead of four (bottleneck at 512 channels)", depth=3)
register_variant("depth-5", "five poolings instead of four (bottleneck at 2048 channels)", depth=5)
register_variant("width-32", "half width: 32 channels at the first level instead of 64", base_width=32)
register_variant("residual", "a residual shortcut around each double conv (cropped; 1x1 conv where channels change)",
                 residual=True)
register_variant("strided", "3x3 stride-2 conv (padding 1) + ReLU for down-sampling instead of the 2x2 max-pool",
                 downsample="strided")
register_variant("attention", "additive attention gates on the skips (Oktay et al. 2018)", attention=True)
# Çiçek et al. 2016, 3-D U-Net. Its 19,069,955 parameters are this network's count less the batch norms'
# scale and shift (2 x 2,336 channels = 4,672) and the three up-convs' biases (512 + 256 + 128 = 896):
# PyTorch counts both as parameters, so `parameter_count` gives 19,075,523 (running statistics are buffers,
# in neither count).
register_network(
    "3d", "Çiçek et al. 2016 (3-D U-Net): 3x3x3 valid convs, batch norm, channels doubled before each pooling",
    UNetConfig(spatial_dims=3, in_channels=3, num_classes=3, depth=3, base_width=32, norm="batch",
               channel_doubling="before-pool"),
)
# The 3-D twins of the design choices above, each one factor away from `3d`.
register_variant("3d-residual", "3d with a residual shortcut around each double conv", base="3d", residual=True)
register_variant("3d-strided", "3d with 3x3x3 stride-2 convs for down-sampling instead of max-pools", base="3d",
                 downsample="strided")
register_variant("3d-attention", "3d with additive attention gates on the skips", base="3d", attention=True)


def list_models(pattern: str | None = None) -> list[str]:
    """Registered variant names, in registration order, optionally filtered by a glob (``"*norm*"``)."""
    return [name for name in _VARIANTS if pattern is None or fnmatch.fnmatch(name, pattern)]


def select_models(patterns: list[str] | tuple[str, ...]) -> list[str]:
    """Names matched by ``patterns`` (names or globs) in order, each once; a pattern starting with ``!``
    removes what it matches (``["*", "!3d*"]``: every network but the 3-D ones). A pattern matching
    nothing is refused with the list of valid names."""
    names: list[str] = []
    for pattern in patterns:
        name = pattern.removeprefix("!")
        matched = [name] if name in list_external() else list_models(name)
        if not matched:
            raise BenchError(f"{pattern!r} names no registered variant; valid variants are "
                             f"{choices(list_models())} (globs such as '*norm*' and exclusions such as '!3d*' "
                             f"work too) or another library's network: {choices(list_external())}")
        names = [n for n in names if n not in matched] if pattern.startswith("!") else \
            names + [n for n in matched if n not in names]
    return names


def get_variant(name: str) -> Variant:
    """The registered variant ``name`` (or another library's network, ``monai:BasicUNet``); unknown names are
    refused with the list of valid ones."""
    if is_external(name):
        return Variant(name, ExternalConfig(name), get_adapter(name).description)
    try:
        return _VARIANTS[name]
    except KeyError:
        raise BenchError(f"unknown variant {name!r}; valid variants are {choices(_VARIANTS)}") from None


def get_config(name: str, **overrides: Any) -> UNetConfig | ExternalConfig:
    """The config of variant ``name`` with ``overrides`` applied on top (keyword arguments of another
    library's network)."""
    return get_variant(name).config.replace(**overrides)


def build_network(cfg: UNetConfig | ExternalConfig) -> nn.Module:
    """Our `UNet` for one of our configs, the library's network for an `ExternalConfig`."""
    if isinstance(cfg, ExternalConfig):
        return cfg.build()
    from unet_bench.models.unet import UNet  # torch is imported when a network is built, not to list names

    return UNet(cfg)


def create_model(name: str = "paper", **overrides: Any) -> UNet | nn.Module:
    """Build variant ``name``, with any config fields overridden (``create_model("padded", depth=3)``), or
    another library's network with keyword arguments (``create_model("smp:Unet", encoder_name="resnet18")``)."""
    return build_network(get_config(name, **overrides))
