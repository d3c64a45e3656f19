"""A seeded synthetic volume task: the cell task's 3-D twin, for measuring 3-D networks' quality offline.

Each volume holds random ellipsoidal cells of varying brightness on a darker, unevenly lit background; a
share of them is placed to touch an earlier one, and where two cells meet the mask keeps a one-voxel
background border that the image shows only as a faint dark membrane. Everything is blurred and noisy.
The same seed gives the same volumes on any machine; volume i depends on (seed, i) only.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from unet_bench.errors import BenchError
from unet_bench.quality.data import SegmentationSet, Split, standardize
from unet_bench.quality.labels import separation_borders

DEFAULT_VOLUME_SIZE = 48  # voxels per side: the 3-D U-Net (base_width 2) trains on 92^3 tiles giving 4^3
MIN_VOLUME_SIZE = 8


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3-D rotation (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def _cells(rng: np.random.Generator, size: int, radius: tuple[float, float], touch: float) -> np.ndarray:
    """Instance labels of random ellipsoids; where they overlap, a voxel goes to the one it is deepest in."""
    grid = np.stack(np.mgrid[:size, :size, :size].astype(np.float64), axis=-1)
    labels = np.zeros((size,) * 3, dtype=np.int32)
    depth = np.full((size,) * 3, np.inf)  # normalised radius² of the ellipsoid owning each voxel
    placed: list[tuple[np.ndarray, float]] = []
    volume = 4 / 3 * np.pi * np.mean(radius) ** 3
    count = max(2, int(rng.uniform(0.25, 0.4) * size**3 / volume))
    for k in range(1, count + 1):
        axes = rng.uniform(*radius, size=3)
        if placed and (k == 2 or rng.random() < touch):  # the second cell always touches the first
            centre, r = placed[int(rng.integers(len(placed)))]
            direction = rng.normal(size=3)
            centre = centre + 0.85 * (r + axes.mean()) * direction / np.linalg.norm(direction)
        else:
            centre = rng.uniform(0, size, size=3)
        placed.append((centre, float(axes.mean())))
        rotation = _random_rotation(rng)
        lo = np.clip(np.floor(centre - axes.max()).astype(int), 0, size)  # the cell's bounding box
        hi = np.clip(np.ceil(centre + axes.max()).astype(int) + 1, 0, size)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        r2 = ((((grid[box] - centre) @ rotation) / axes) ** 2).sum(-1)
        mine = (r2 < 1) & (r2 < depth[box])
        labels[box][mine], depth[box][mine] = k, r2[mine]
    ids = np.unique(labels[labels > 0])  # renumber 1..n (a cell can be hidden entirely by later ones)
    lut = np.zeros(count + 1, dtype=np.int32)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[labels]


def _render(rng: np.random.Generator, labels: np.ndarray, border: np.ndarray, noise: float) -> np.ndarray:
    """A grey volume of the cells: per-cell brightness and texture, faint dark membranes, blur, noise."""
    size = labels.shape[0]
    ramp = np.mgrid[:size, :size, :size] / size - 0.5
    image = 0.25 + np.tensordot(rng.uniform(-0.15, 0.15, size=3), ramp, axes=1)  # uneven illumination
    levels = rng.uniform(0.45, 1.0, size=labels.max() + 1)
    texture = ndimage.gaussian_filter(rng.normal(0, 1, labels.shape), 1.5)
    image = np.where(labels > 0, levels[labels] * (1 + 0.25 * texture), image)
    image = np.where(border, image * rng.uniform(0.55, 0.75), image)
    image = ndimage.gaussian_filter(image, rng.uniform(0.6, 1.0))
    return image + rng.normal(0, noise, labels.shape)


def synthetic_volumes(
    n: int, size: int = DEFAULT_VOLUME_SIZE, *, seed: int = 0, radius: tuple[float, float] = (4.0, 8.0),
    touch: float = 0.5, noise: float = 0.08,
) -> SegmentationSet:
    """``n`` volumes of ``size``³ voxels, deterministic in ``seed``.

    Args:
        radius: range of the ellipsoids' semi-axes in voxels.
        touch: share of cells placed to touch an earlier one (each volume has at least one touching pair).
        noise: std of the additive Gaussian noise, against cell intensities of 0.45-1 and a background ~0.25.
    """
    if n < 1 or size < MIN_VOLUME_SIZE:
        raise BenchError(f"a synthetic set of {n} volumes of {size} voxels is not valid; "
                         f"need n >= 1, size >= {MIN_VOLUME_SIZE}")
    images, masks, instances = [], [], []
    for child in np.random.SeedSequence(seed).spawn(n):
        rng = np.random.default_rng(child)
        labels = _cells(rng, size, radius, touch)
        border = separation_borders(labels)
        mask = (labels > 0) & ~border
        images.append(standardize(_render(rng, labels, border, noise)))
        masks.append(mask.astype(np.int64))
        instances.append(np.where(mask, labels, 0).astype(np.int32))
    return SegmentationSet(tuple(images), tuple(masks), tuple(instances))


def volume_task(seed: int = 0, *, n_train: int = 8, n_val: int = 4, size: int = DEFAULT_VOLUME_SIZE) -> Split:
    """Train and validation volumes drawn from disjoint seed streams of ``seed``."""
    train_seed, val_seed = np.random.SeedSequence(seed).generate_state(2)
    return Split(synthetic_volumes(n_train, size, seed=int(train_seed)),
                 synthetic_volumes(n_val, size, seed=int(val_seed)))
