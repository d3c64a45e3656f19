"""`UNet(cfg)`: the network of Ronneberger et al. (2015) and every variant, from the blocks in `blocks.py`.

Paper configuration (`UNetConfig()`), 572x572x1 → 388x388x2::

    stem 64 ─────────────────────────────── crop+concat ──► up4 64 ─► head 1x1 → 2
      down1 128 ───────────────────── crop+concat ──► up3 128
        down2 256 ─────────── crop+concat ──► up2 256
          down3 512 ── crop+concat ──► up1 512
            down4 1024 (bottleneck, dropout)

The 3-D U-Net (Çiçek et al. 2016, registered as ``3d``: ``spatial_dims=3``, ``channel_doubling="before-pool"``,
batch norm, depth 3), 132x132x116x3 → 44x44x28x3::

    stem 32→64 ─────────────────────────── crop+concat (64+128) ──► up 64 ─► head 1x1x1 → 3
      down1 64→128 ─────────── crop+concat (128+256) ──► up 128
        down2 128→256 ── crop+concat (256+512) ──► up 256
          down3 256→512 (bottleneck)
"""

from __future__ import annotations

import torch
from torch import nn

from unet_bench.models.blocks import Down, Up, conv_unit, pointwise
from unet_bench.models.config import UNetConfig
from unet_bench.models.geometry import check_input_size


class UNet(nn.Module):
    """A UNet built from one config; `forward` refuses input sizes the config cannot take.

    Modules are registered in the order the paper's figure draws them (encoder, bottleneck, then each
    decoder level's up-conv before its convs, then the head), so copying weights layer by layer from a
    flat implementation is a zip over `modules()`.
    """

    def __init__(self, cfg: UNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or UNetConfig()
        widths = cfg.widths()
        # before-pool: a level's first conv stays at half its output width (3-D U-Net: 32 then 64)
        mids = [w // 2 for w in widths] if cfg.channel_doubling == "before-pool" else [None] * len(widths)
        self.stem = conv_unit(cfg, cfg.in_channels, widths[0], mids[0])
        self.downs = nn.ModuleList(Down(cfg, widths[i], widths[i + 1], mids[i + 1]) for i in range(cfg.depth))
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.ups = nn.ModuleList(Up(cfg, widths[i], widths[i - 1]) for i in reversed(range(1, cfg.depth + 1)))
        self.head = pointwise(cfg, widths[0], cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(self.cfg, *x.shape[2:])
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = self.dropout(skips.pop())
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)
