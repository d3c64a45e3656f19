"""The UNet family: one config, a few blocks, a registry of one-factor variants, and its geometry.

`UNet` is loaded on first use: naming, listing and checking variants needs no torch.
"""

from typing import Any

from unet_bench.models.config import UNetConfig
from unet_bench.models.registry import Variant, create_model, get_config, get_variant, list_models

__all__ = ["UNet", "UNetConfig", "Variant", "create_model", "get_config", "get_variant", "list_models"]


def __getattr__(name: str) -> Any:
    if name == "UNet":
        from unet_bench.models.unet import UNet

        return UNet
    raise AttributeError(f"module 'unet_bench.models' has no attribute {name!r}")
