"""A case's network: the case checked, the network built at a valid size, and the shape of its input.

Every mode builds its network and its input here (`build_model`, `network_input_shape`), so that each
counts, times and profiles the same network at the same shape, 2-D or 3-D, one size or one per axis.
"""

from __future__ import annotations

import torch
from torch import nn

from unet_bench.errors import BenchError, choices
from unet_bench.models.geometry import check_input_size, input_shape, spatial_shape
from unet_bench.models.registry import build_network, get_config
from unet_bench.record import DEVICES, DTYPES, MODES, Case


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
