"""The few blocks every UNet variant is built from, in 2-D and 3-D.

Each block reads one `UNetConfig` and nothing else, so a variant never needs a block of its own, and a
3-D network is the same blocks with ``spatial_dims=3`` (the layer table below picks the 3-D ops).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from unet_bench.models.config import UNetConfig

# The torch layer for each op, per number of spatial dimensions.
LAYERS: dict[int, dict[str, type[nn.Module]]] = {
    2: {"conv": nn.Conv2d, "upconv": nn.ConvTranspose2d, "pool": nn.MaxPool2d, "batch": nn.BatchNorm2d,
        "instance": nn.InstanceNorm2d},
    3: {"conv": nn.Conv3d, "upconv": nn.ConvTranspose3d, "pool": nn.MaxPool3d, "batch": nn.BatchNorm3d,
        "instance": nn.InstanceNorm3d},
}


def layer(cfg: UNetConfig, op: str) -> type[nn.Module]:
    """The torch class of ``op`` (conv, upconv, pool, batch, instance) for the config's dimensions."""
    return LAYERS[cfg.spatial_dims][op]


def make_norm(cfg: UNetConfig, channels: int) -> nn.Module:
    """The config's normalisation for a feature map of ``channels`` channels."""
    if cfg.norm == "batch":
        return layer(cfg, "batch")(channels)
    if cfg.norm == "instance":
        return layer(cfg, "instance")(channels, affine=True)
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


def pointwise(cfg: UNetConfig, in_channels: int, out_channels: int) -> nn.Module:
    """A 1x1 (1x1x1) conv with a bias: the head, the interpolating up-samplings, projections and gates."""
    return layer(cfg, "conv")(in_channels, out_channels, kernel_size=1)


class DoubleConv(nn.Sequential):
    """(3x3 conv → [norm] → activation) x 2: the unit of every level, in both paths.

    The first conv goes to ``mid_channels`` (default ``out_channels``; the 3-D U-Net's encoder doubles in
    the second conv, so its first conv stays at half).
    """

    def __init__(self, cfg: UNetConfig, in_channels: int, out_channels: int, mid_channels: int | None = None) -> None:
        mid_channels = mid_channels or out_channels
        layers: list[nn.Module] = []
        for channels_in, channels_out in ((in_channels, mid_channels), (mid_channels, out_channels)):
            layers.append(
                layer(cfg, "conv")(channels_in, channels_out, 3, padding=0 if cfg.padding == "valid" else 1,
                                   bias=cfg.bias)
            )
            if cfg.norm != "none":
                layers.append(make_norm(cfg, channels_out))
            layers.append(make_activation(cfg))
        super().__init__(*layers)


class Residual(nn.Module):
    """``body(x) + shortcut(crop(x))``: the shortcut is x centre-cropped to the body's output (valid convs
    shrink it), through a 1x1 conv where the channels change (MONAI's residual unit adds after the
    body's last activation in the same way)."""

    def __init__(self, cfg: UNetConfig, body: nn.Module, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = body
        self.shortcut = pointwise(cfg, in_channels, out_channels) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return y + self.shortcut(center_crop(x, y.shape[2:]))


def conv_unit(cfg: UNetConfig, in_channels: int, out_channels: int, mid_channels: int | None = None) -> nn.Module:
    """A level's double conv, wrapped in a residual shortcut where the config asks for one."""
    body = DoubleConv(cfg, in_channels, out_channels, mid_channels)
    return Residual(cfg, body, in_channels, out_channels) if cfg.residual else body


def make_downsample(cfg: UNetConfig, channels: int) -> nn.Module:
    """x1/2 down-sampling: 2x2 max-pool (paper), or a 3x3 conv with stride 2 and padding 1 followed, like
    every conv, by [norm →] activation."""
    if cfg.downsample == "maxpool":
        return layer(cfg, "pool")(2)
    strided = layer(cfg, "conv")(channels, channels, 3, stride=2, padding=1, bias=cfg.bias)
    norm = [make_norm(cfg, channels)] if cfg.norm != "none" else []
    return nn.Sequential(strided, *norm, make_activation(cfg))


class Down(nn.Sequential):
    """Down-sample (2x2 max-pool or strided conv), then a double conv to ``out_channels``."""

    def __init__(self, cfg: UNetConfig, in_channels: int, out_channels: int, mid_channels: int | None = None) -> None:
        super().__init__(make_downsample(cfg, in_channels), conv_unit(cfg, in_channels, out_channels, mid_channels))


def make_upsample(cfg: UNetConfig, channels: int, out_channels: int | None = None) -> nn.Module:
    """x2 up-sampling from C to ``out_channels`` (default C/2): the paper's 2x2 "up-conv", or an alternative.

    ``bilinear`` interpolates linearly along every axis (trilinear in 3-D).
    """
    out = out_channels or channels // 2
    if cfg.upsample == "transposed":
        return layer(cfg, "upconv")(channels, out, kernel_size=2, stride=2)
    if cfg.upsample == "pixelshuffle":  # 2-D only (the config refuses it in 3-D)
        return nn.Sequential(nn.Conv2d(channels, 4 * out, kernel_size=1), nn.PixelShuffle(2))
    linear = "trilinear" if cfg.spatial_dims == 3 else "bilinear"
    interpolate = (
        nn.Upsample(scale_factor=2, mode=linear, align_corners=False)
        if cfg.upsample == "bilinear"
        else nn.Upsample(scale_factor=2, mode="nearest")
    )
    return nn.Sequential(interpolate, pointwise(cfg, channels, out))


def center_crop(x: torch.Tensor, size: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """The central window of a feature map with the given spatial ``size`` (the paper's "copy and crop")."""
    window = [slice(None)] * (x.dim() - len(size))
    for have, want in zip(x.shape[x.dim() - len(size):], size, strict=True):
        start = (have - want) // 2
        window.append(slice(start, start + want))
    return x[tuple(window)]


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018): ``x · sigmoid(psi(relu(W_x x + W_g g)))``.

    ``x`` is the (cropped) encoder map, ``g`` the up-sampled decoder map at the same resolution; the
    intermediate width is half the encoder map's channels. One coefficient per pixel scales every channel.
    """

    def __init__(self, cfg: UNetConfig, skip_channels: int, gate_channels: int) -> None:
        super().__init__()
        inner = max(skip_channels // 2, 1)
        self.w_x = pointwise(cfg, skip_channels, inner)
        self.w_g = pointwise(cfg, gate_channels, inner)
        self.psi = pointwise(cfg, inner, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.psi(torch.relu(self.w_x(x) + self.w_g(g))))


class Up(nn.Module):
    """Up-sample C → C_up, merge the skip (``out_channels`` channels), double conv to ``out_channels``.

    Paper: C_up = C/2 = out_channels. ``before-pool`` (3-D U-Net): C_up = C, kept, unless the skip is
    added (then the maps must match, so C_up = out_channels).
    """

    def __init__(self, cfg: UNetConfig, channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        out = out_channels or channels // 2
        keep = cfg.channel_doubling == "before-pool" and cfg.skip != "add"
        up_channels = channels if keep else out
        self.skip = cfg.skip
        self.up = make_upsample(cfg, channels, up_channels)
        self.gate = AttentionGate(cfg, out, up_channels) if cfg.attention else None
        merged = up_channels + out if cfg.skip == "concat" else up_channels
        self.conv = conv_unit(cfg, merged, out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.up(x)
        if self.skip == "none":
            return self.conv(up)
        skip = center_crop(skip, up.shape[2:])
        if self.gate is not None:
            skip = self.gate(skip, up)
        return self.conv(torch.cat([skip, up], dim=1) if self.skip == "concat" else skip + up)
