"""The UNet family: one config, a few blocks, a registry of one-factor variants, and its geometry."""

from unet_bench.models.config import UNetConfig
from unet_bench.models.registry import Variant, create_model, get_config, get_variant, list_models
from unet_bench.models.unet import UNet

__all__ = ["UNet", "UNetConfig", "Variant", "create_model", "get_config", "get_variant", "list_models"]
