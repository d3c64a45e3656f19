"""Overlap-tile inference: segment an image of any size with a network that takes fixed tiles.

The paper's strategy (Fig. 2): mirror the image at its borders, cut input tiles whose valid outputs lie
edge to edge, and stitch the outputs. A valid-conv UNet's output pixel never sees the tile's edge, so the
stitched map is exactly what one pass over the whole mirrored image would give — provided tiles start
on the pooling grid (multiples of 2^depth, the period of valid sizes; another library's network has its
own period), which is why the stride is rounded down to one.

A padded UNet's outputs near a tile edge do see the zero padding. Its equivalent is to keep only each
tile's centre: ``halo`` output pixels per side are computed as context and thrown away (with a halo at
least the receptive radius, tiled equals one pass again). ``halo=0`` is naive tiling, artifacts included.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from unet_bench.errors import BenchError
from unet_bench.models.config import UNetConfig
from unet_bench.models.external import ExternalConfig
from unet_bench.models.geometry import check_input_size, output_size, progression, spatial_shape


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


def tile_grid(cfg: UNetConfig | ExternalConfig, tile_in: int, halo: int = 0) -> TileGrid:
    """The grid for tiles of ``tile_in`` px; refuses invalid tiles and halos that keep nothing."""
    check_input_size(cfg, *spatial_shape(cfg, tile_in))
    out = output_size(cfg, tile_in)
    kept = out - 2 * halo
    if halo < 0 or kept < 1:
        raise BenchError(
            f"halo {halo} is not valid for a {tile_in} px tile (output {out} px); use 0 to {(out - 1) // 2}"
        )
    period = progression(cfg)[1]
    stride = kept - kept % period if kept >= period else kept
    return TileGrid(tile_in, halo, kept, stride, (tile_in - out) // 2 + halo)


def mirror_pad(image: np.ndarray, grid: TileGrid) -> np.ndarray:
    """``image`` (C, H, W) or (C, D, H, W) mirrored at its borders to the size the tiles are cut from."""
    pads = [(grid.margin, grid.padded_length(n) - n - grid.margin) for n in image.shape[1:]]
    return np.pad(image, [(0, 0), *pads], mode="reflect")


@torch.no_grad()
def predict_tiled(
    model: torch.nn.Module, image: np.ndarray, *, tile_in: int, halo: int = 0, batch: int = 4
) -> torch.Tensor:
    """Class scores (K, H, W), on the CPU, for a (H, W) or (C, H, W) image of any size, tile by tile
    ((K, D, H, W) for a (D, H, W) or (C, D, H, W) volume and a 3-D network: the tiles are cubes).

    ``model`` must carry its config as ``cfg`` (our `UNet`, or another library's network built by
    `registry.build_network`) and is run as it is: call ``eval()`` first.
    Tiles are batched ``batch`` at a time on the model's device.
    """
    image = image[None] if image.ndim == model.cfg.spatial_dims else image
    sides = image.shape[1:]
    grid = tile_grid(model.cfg, tile_in, halo)
    padded = torch.from_numpy(np.ascontiguousarray(mirror_pad(image, grid), dtype=np.float32))
    device = next(model.parameters()).device
    starts = list(itertools.product(*(range(0, grid.count(n) * grid.stride, grid.stride) for n in sides)))
    scores = torch.empty(model.cfg.num_classes, *sides)
    keep = (slice(None), slice(None), *[slice(halo, halo + grid.kept)] * len(sides))
    for i in range(0, len(starts), batch):
        chunk = starts[i : i + batch]
        tiles = torch.stack([padded[(slice(None), *(slice(s, s + tile_in) for s in start))] for start in chunk])
        out = model(tiles.to(device))[keep].float().cpu()
        for start, tile in zip(chunk, out, strict=True):
            extent = [min(grid.kept, n - s) for n, s in zip(sides, start, strict=True)]
            target = (slice(None), *(slice(s, s + e) for s, e in zip(start, extent, strict=True)))
            scores[target] = tile[(slice(None), *(slice(0, e) for e in extent))]
    return scores
