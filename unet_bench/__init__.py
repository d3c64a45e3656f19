"""unet-bench: the original UNet built exactly, its variants from the same blocks, measured side by side.

The names below are loaded on first use, so that the command line (and anything importing a light part
of the package, such as `unet_bench.record`) starts without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "BenchError": "unet_bench.errors",
    "InvalidInputSizeError": "unet_bench.errors",
    "UNet": "unet_bench.models",
    "UNetConfig": "unet_bench.models",
    "create_model": "unet_bench.models",
    "get_config": "unet_bench.models",
    "get_variant": "unet_bench.models",
    "list_models": "unet_bench.models",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'unet_bench' has no attribute {name!r}")
