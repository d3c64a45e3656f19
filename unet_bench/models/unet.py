"""`UNet(cfg)`: the network of Ronneberger et al. (2015) and every variant, from the blocks in `blocks.py`.

Paper configuration (`UNetConfig()`), 572x572x1 → 388x388x2::

    stem 64 ─────────────────────────────── crop+concat ──► up4 64 ─► head 1x1 → 2
      down1 128 ───────────────────── crop+concat ──► up3 128
        down2 256 ─────────── crop+concat ──► up2 256
          down3 512 ── crop+concat ──► up1 512
            down4 1024 (bottleneck, dropout)
"""

from __future__ import annotations

import torch
from torch import nn

from unet_bench.models.blocks import DoubleConv, Down, Up
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
        self.stem = DoubleConv(cfg, cfg.in_channels, widths[0])
        self.downs = nn.ModuleList(Down(cfg, widths[i], widths[i + 1]) for i in range(cfg.depth))
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.ups = nn.ModuleList(Up(cfg, widths[i]) for i in reversed(range(1, cfg.depth + 1)))
        self.head = nn.Conv2d(widths[0], cfg.num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(self.cfg, x.shape[-2], x.shape[-1])
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = self.dropout(skips.pop())
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)
