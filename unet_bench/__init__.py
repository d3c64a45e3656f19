"""unet-bench: the original UNet built exactly, its variants from the same blocks, measured side by side."""

from unet_bench.errors import BenchError, InvalidInputSizeError
from unet_bench.models import UNet, UNetConfig, create_model, get_config, get_variant, list_models

__version__ = "0.1.0"

__all__ = [
    "BenchError",
    "InvalidInputSizeError",
    "UNet",
    "UNetConfig",
    "__version__",
    "create_model",
    "get_config",
    "get_variant",
    "list_models",
]
