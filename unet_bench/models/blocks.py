"""The few blocks every UNet variant is built from.

Each block reads one `UNetConfig` and nothing else, so a variant never needs a block of its own.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from unet_bench.models.config import UNetConfig


def make_norm(cfg: UNetConfig, channels: int) -> nn.Module:
    """The config's normalisation for a feature map of ``channels`` channels."""
    if cfg.norm == "batch":
        return nn.BatchNorm2d(channels)
    if cfg.norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if cfg.norm == "group":
        return nn.GroupNorm(math.gcd(cfg.norm_groups, channels), channels)
    return nn.Identity()


def make_activation(cfg: UNetConfig) -> nn.Module:
    """The config's non-linearity (in-place where that is safe, as in the paper's Caffe model)."""
    if cfg.activation == "leaky_relu":
        return nn.LeakyReLU(0.01, inplace=True)
    if cfg.activation == "gelu":
        return nn.GELU()
    return nn.ReLU(inplace=True)


class DoubleConv(nn.Sequential):
    """(3x3 conv → [norm] → activation) x 2: the unit of every level, in both paths."""

    def __init__(self, cfg: UNetConfig, in_channels: int, out_channels: int) -> None:
        layers: list[nn.Module] = []
        for channels_in in (in_channels, out_channels):
            layers.append(
                nn.Conv2d(channels_in, out_channels, 3, padding=0 if cfg.padding == "valid" else 1, bias=cfg.bias)
            )
            if cfg.norm != "none":
                layers.append(make_norm(cfg, out_channels))
            layers.append(make_activation(cfg))
        super().__init__(*layers)


class Down(nn.Sequential):
    """2x2 max-pool, then a double conv that doubles the channels."""

    def __init__(self, cfg: UNetConfig, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(cfg, in_channels, out_channels))


def make_upsample(cfg: UNetConfig, channels: int) -> nn.Module:
    """x2 up-sampling from C to C/2 channels (the paper's 2x2 "up-conv", or an alternative)."""
    half = channels // 2
    if cfg.upsample == "transposed":
        return nn.ConvTranspose2d(channels, half, kernel_size=2, stride=2)
    if cfg.upsample == "pixelshuffle":
        return nn.Sequential(nn.Conv2d(channels, 4 * half, kernel_size=1), nn.PixelShuffle(2))
    interpolate = (
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        if cfg.upsample == "bilinear"
        else nn.Upsample(scale_factor=2, mode="nearest")
    )
    return nn.Sequential(interpolate, nn.Conv2d(channels, half, kernel_size=1))


def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The central ``height`` x ``width`` window of a feature map (the paper's "copy and crop")."""
    top = (x.shape[-2] - height) // 2
    left = (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


def merge_skip(mode: str, skip: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Join an encoder map to the up-sampled decoder map: crop + concat (encoder first), crop + add, or not."""
    if mode == "none":
        return up
    skip = center_crop(skip, up.shape[-2], up.shape[-1])
    return torch.cat([skip, up], dim=1) if mode == "concat" else skip + up


class Up(nn.Module):
    """Up-sample C → C/2, merge the skip, double conv to C/2."""

    def __init__(self, cfg: UNetConfig, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.skip = cfg.skip
        self.up = make_upsample(cfg, channels)
        self.conv = DoubleConv(cfg, channels if cfg.skip == "concat" else half, half)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(merge_skip(self.skip, skip, self.up(x)))
