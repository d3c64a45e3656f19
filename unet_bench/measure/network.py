"""A case's network: the case checked, the network built at a valid size, and the shape of its input.

Every mode builds its network and its input here (`build_model`, `network_input_shape`), so that each
counts, times and profiles the same network at the same shape, 2-D or 3-D, one size or one per axis.
"""

from __future__ import annotations

import torch
from torch import nn

from unet_bench.errors import BenchError, choices
from unet_bench.measure.runtimes import require
from unet_bench.models.geometry import check_input_size, input_shape, spatial_shape
from unet_bench.models.registry import build_network, get_config
from unet_bench.record import DEVICES, DTYPES, MODES, RUNTIME_DTYPES, RUNTIMES, Case


def check_case(case: Case) -> None:
    """Refuse a case that cannot be measured here, with the valid choices."""
    for name, value, allowed in (("mode", case.mode, MODES), ("device", case.device, DEVICES),
                                 ("dtype", case.dtype, DTYPES)):
        if value not in allowed:
            raise BenchError(f"{name}={value!r} is not valid; choose one of {choices(allowed)}")
    if case.device == "cuda" and not torch.cuda.is_available():
        raise BenchError(
            f"device 'cuda' is not available here (torch {torch.__version__}, "
            f"{'built without CUDA' if torch.version.cuda is None else 'no GPU visible'}); use device 'cpu'"
        )
    if case.batch < 1:
        raise BenchError(f"batch={case.batch} is not valid; it must be a positive integer")
    if case.threads is not None and case.threads < 1:
        raise BenchError(f"threads={case.threads} is not valid; it must be a positive integer")
    _check_runtime(case)


def _check_runtime(case: Case) -> None:
    """Refuse a case its runtime cannot take, naming what it can."""
    if case.runtime not in RUNTIMES:
        raise BenchError(f"runtime={case.runtime!r} is not valid; choose one of {choices(RUNTIMES)}")
    if case.runtime == "torch":
        if case.dtype == "int8":
            raise BenchError("dtype 'int8' runs on a deployment runtime; add runtime 'onnxruntime' or 'openvino'")
        return
    if case.mode not in ("infer", "quality"):
        raise BenchError(f"runtime {case.runtime!r} runs inference (modes 'infer' and 'quality': a network "
                         f"trained in torch, scored there); mode {case.mode!r} runs under torch only")
    if case.mode == "quality" and case.device != "cpu":
        raise BenchError(f"mode 'quality' on runtime {case.runtime!r} scores on device 'cpu' only")
    if case.dtype not in RUNTIME_DTYPES:
        raise BenchError(f"runtime {case.runtime!r} runs dtype {choices(RUNTIME_DTYPES)}, not {case.dtype!r}")
    for flag, on in (("channels_last", case.channels_last), ("compile", case.compile)):
        if on:
            raise BenchError(f"{flag} is a torch option; runtime {case.runtime!r} chooses its own layout and "
                             "kernels: drop it")
    require(case.runtime)


def build_model(case: Case) -> nn.Module:
    """The case's variant with its overrides, after checking the case and its input size."""
    check_case(case)
    cfg = get_config(case.variant, **case.overrides_dict())
    check_input_size(cfg, *spatial_shape(cfg, case.size))
    return build_network(cfg)


def in_channels_of(model: nn.Module) -> int:
    """Input channels of a network: its config's, else those of its first convolution."""
    cfg = getattr(model, "cfg", None)
    if cfg is not None and hasattr(cfg, "in_channels"):
        return cfg.in_channels
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return module.in_channels
    raise BenchError(f"cannot tell the input channels of {type(model).__name__}; pass in_channels")


def spatial_dims_of(model: nn.Module) -> int:
    """Spatial axes a network takes: its config's, else its first convolution's (2 for images, 3 for volumes)."""
    dims = getattr(getattr(model, "cfg", None), "spatial_dims", None)
    if dims is not None:
        return dims
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return len(module.kernel_size)
    return 2


def network_input_shape(model: nn.Module, size: int | tuple[int, ...], batch: int = 1) -> tuple[int, ...]:
    """``(batch, C, *sides)`` of ``model``'s input at ``size``, its channels and axes read from the network."""
    return input_shape(size, in_channels_of(model), spatial_dims_of(model), batch)
