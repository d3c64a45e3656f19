"""Named variants: the paper's config with exactly one factor changed, and `create_model`.

A variant is data (a config), not a class: registering one is a line in `_VARIANTS` below, and a test
holds every entry to "differs from `paper` in exactly one field", so each name is a one-factor ablation.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unet_bench.errors import BenchError, choices
from unet_bench.models.config import UNetConfig
from unet_bench.models.external import ExternalConfig, get_adapter, is_external

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

    @property
    def change(self) -> str:
        """The factor changed from the paper, as ``field=value`` ('-' for the paper itself)."""
        if isinstance(self.config, ExternalConfig):
            return "n/a (another library's network)"
        return ", ".join(f"{k}={v}" for k, (_, v) in PAPER.diff(self.config).items()) or "-"


_VARIANTS: dict[str, Variant] = {}


def register_variant(name: str, description: str, **change: Any) -> Variant:
    """Register ``name`` as the paper config with ``change`` applied."""
    if name in _VARIANTS:
        raise BenchError(f"variant {name!r} is already registered")
    variant = Variant(name, PAPER.replace(**change), description)
    _VARIANTS[name] = variant
    return variant


register_variant("paper", "Ronneberger et al. 2015, exactly: valid 3x3 convs, 2x2 up-conv, crop+concat")
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


def list_models(pattern: str | None = None) -> list[str]:
    """Registered variant names, in registration order, optionally filtered by a glob (``"*norm*"``)."""
    return [name for name in _VARIANTS if pattern is None or fnmatch.fnmatch(name, pattern)]


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
