"""Overlap-tile inference: segment an image of any size with a network that takes fixed tiles.

The paper's strategy (Fig. 2): mirror the image at its borders, cut input tiles whose valid outputs lie
edge to edge, and stitch the outputs. A valid-conv UNet's output pixel never sees the tile's edge, so the
stitched map is exactly what one pass over the whole mirrored image would give — provided tiles start
on the pooling grid (multiples of 2^depth), which is why the stride is rounded down to one.

A padded UNet's outputs near a tile edge do see the zero padding. Its equivalent is to keep only each
tile's centre: ``halo`` output pixels per side are computed as context and thrown away (with a halo at
least the receptive radius, tiled equals one pass again). ``halo=0`` is naive tiling, artifacts included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from unet_bench.errors import BenchError
from unet_bench.models.config import UNetConfig
from unet_bench.models.geometry import check_input_size, output_size


@dataclass(frozen=True)
class TileGrid:
    """How one dimension is cut: tiles of ``tile_in`` input px every ``stride`` px, ``kept`` px kept each."""

    tile_in: int
    halo: int  # output px dropped at each side of a tile
    kept: int  # output px kept per tile: tile output − 2·halo
    stride: int  # kept, rounded down to the pooling grid
    margin: int  # mirrored px before the image's first pixel: (tile_in − tile output) / 2 + halo

    def count(self, length: int) -> int:
        """Tiles needed to cover ``length`` px."""
        return 1 if length <= self.kept else math.ceil((length - self.kept) / self.stride) + 1

    def padded_length(self, length: int) -> int:
        """Length of the mirrored image the tiles are cut from (a valid input size itself)."""
        return (self.count(length) - 1) * self.stride + self.tile_in


def tile_grid(cfg: UNetConfig, tile_in: int, halo: int = 0) -> TileGrid:
    """The grid for tiles of ``tile_in`` px; refuses invalid tiles and halos that keep nothing."""
    check_input_size(cfg, tile_in, tile_in)
    out = output_size(cfg, tile_in)
    kept = out - 2 * halo
    if halo < 0 or kept < 1:
        raise BenchError(
            f"halo {halo} is not valid for a {tile_in} px tile (output {out} px); use 0 to {(out - 1) // 2}"
        )
    period = 2**cfg.depth
    stride = kept - kept % period if kept >= period else kept
    return TileGrid(tile_in, halo, kept, stride, (tile_in - out) // 2 + halo)


def mirror_pad(image: np.ndarray, grid: TileGrid) -> np.ndarray:
    """``image`` (C, H, W) mirrored at its borders to the size the tiles are cut from."""
    _, height, width = image.shape
    pads = [(grid.margin, grid.padded_length(n) - n - grid.margin) for n in (height, width)]
    return np.pad(image, [(0, 0), *pads], mode="reflect")


@torch.no_grad()
def predict_tiled(
    model: torch.nn.Module, image: np.ndarray, *, tile_in: int, halo: int = 0, batch: int = 4
) -> torch.Tensor:
    """Class scores (K, H, W), on the CPU, for a (H, W) or (C, H, W) image of any size, tile by tile.

    ``model`` must be a `UNet` (its ``cfg`` gives the geometry) and is run as it is: call ``eval()`` first.
    Tiles are batched ``batch`` at a time on the model's device.
    """
    image = image[None] if image.ndim == 2 else image
    _, height, width = image.shape
    grid = tile_grid(model.cfg, tile_in, halo)
    padded = torch.from_numpy(np.ascontiguousarray(mirror_pad(image, grid), dtype=np.float32))
    device = next(model.parameters()).device
    starts = [(y, x) for y in range(0, grid.count(height) * grid.stride, grid.stride)
              for x in range(0, grid.count(width) * grid.stride, grid.stride)]
    scores = torch.empty(model.cfg.num_classes, height, width)
    keep = slice(halo, halo + grid.kept)
    for i in range(0, len(starts), batch):
        chunk = starts[i : i + batch]
        tiles = torch.stack([padded[:, y : y + tile_in, x : x + tile_in] for y, x in chunk]).to(device)
        out = model(tiles)[:, :, keep, keep].float().cpu()
        for (y, x), tile in zip(chunk, out, strict=True):
            h, w = min(grid.kept, height - y), min(grid.kept, width - x)
            scores[:, y : y + h, x : x + w] = tile[:, :h, :w]
    return scores
