"""A seeded synthetic cell-segmentation task, so that quality is measured without downloading anything.

It is hard in the ways microscopy is hard, so that intensity alone does not solve it: uneven illumination
that varies more across an image than a cell stands out from its surroundings (a dim cell in a dark corner
is darker than the background of a bright one, so cell and background intensities overlap), textured
background and grainy cells, blur and signal-dependent noise, and many touching cells. Between touching
cells the mask has a thin background border (the "separation border" the paper's weight map targets)
which the image shows only as a faint dimming. Smoothing plus the best global threshold, tuned on the
training split, scores about 0.60 Dice on the default validation split; the paper network at base_width 8
learns local contrast and shape and gets well above it. The same seed gives the same data on any machine.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from unet_bench.errors import BenchError
from unet_bench.quality.data import SegmentationSet, Split, standardize
from unet_bench.quality.labels import separation_borders


def touching_pairs(instances: np.ndarray, gap: int = 2) -> int:
    """Number of object pairs whose nearest pixels are at most ``gap`` px apart (touching, border between)."""
    pairs = set()
    ids = np.unique(instances[instances > 0])
    for k in ids:
        near = ndimage.binary_dilation(instances == k, iterations=gap)
        pairs.update((min(k, j), max(k, j)) for j in np.unique(instances[near]) if j not in (0, k))
    return len(pairs)


def _cells(rng: np.random.Generator, size: int, radius: tuple[float, float], touch: float) -> np.ndarray:
    """Instance labels of random ellipses; a share ``touch`` of them is placed to overlap an earlier one.

    Where ellipses overlap, each pixel goes to the ellipse it is relatively deepest inside, so touching
    cells meet along a curve, as in a tissue.
    """
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    labels = np.zeros((size, size), dtype=np.int32)
    depth = np.full((size, size), np.inf)  # normalised radius² of the ellipse owning each pixel
    placed: list[tuple[float, float, float]] = []
    area = np.pi * np.mean(radius) ** 2
    count = max(2, int(rng.integers(6, 10) * size * size / (16 * area)))
    for k in range(1, count + 1):
        a, b = rng.uniform(*radius, size=2)
        theta = rng.uniform(0, np.pi)
        if placed and (k == 2 or rng.random() < touch):  # the second cell always touches the first
            cy, cx, r = placed[int(rng.integers(len(placed)))]
            angle = rng.uniform(0, 2 * np.pi)
            dist = 0.85 * (r + (a + b) / 2)
            cy, cx = cy + dist * np.sin(angle), cx + dist * np.cos(angle)
        else:
            cy, cx = rng.uniform(0, size, size=2)
        placed.append((cy, cx, (a + b) / 2))
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(theta) + dy * np.sin(theta)) / a
        v = (-dx * np.sin(theta) + dy * np.cos(theta)) / b
        r2 = u * u + v * v
        mine = (r2 < 1) & (r2 < depth)
        labels[mine], depth[mine] = k, r2[mine]
    # renumber 1..n (an ellipse can be hidden entirely by later ones)
    ids = np.unique(labels[labels > 0])
    lut = np.zeros(count + 1, dtype=np.int32)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[labels]


def _smooth_field(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """A smooth random field of zero mean and unit std whose features are about ``scale`` px wide."""
    field = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), scale, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-12)


def _render(rng: np.random.Generator, labels: np.ndarray, border: np.ndarray, noise: float) -> np.ndarray:
    """A grey image of the cells, hard in the ways microscopy is hard.

    Uneven illumination multiplies everything by a smooth field (a tilt plus blotches) that varies more
    across the image than a cell differs from its own surroundings, so a dim cell in a dark corner is
    darker than the background in a bright one. The background carries textured clutter; cells carry a
    grainy texture of their own; the membrane between touching cells is only a slight dimming; then blur,
    and noise that grows with the signal.
    """
    size = labels.shape[0]
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    gy, gx = rng.uniform(-2.5, 2.5, size=2)  # up to e^±1.25 from the centre
    illumination = np.exp(gy * yy + gx * xx + 0.5 * _smooth_field(rng, size, size / 6))
    clutter = 0.06 * _smooth_field(rng, size, 3.0)
    image = 0.35 + clutter  # background
    contrast = rng.uniform(0.6, 1.2, size=labels.max() + 1)  # each cell's step above its surroundings
    grain = _smooth_field(rng, size, 1.2)
    cells = labels > 0
    image = np.where(cells, image + contrast[labels] * (1 + 0.35 * grain), image)
    image = np.where(border, image - rng.uniform(0.04, 0.1), image)  # the faint membrane between cells
    image = ndimage.gaussian_filter(image * illumination, rng.uniform(1.0, 1.8))
    return image + rng.normal(0, 1, labels.shape) * noise * np.sqrt(np.maximum(image, 0.05) / 0.35)


def synthetic_set(
    n: int, size: int = 128, *, seed: int = 0, radius: tuple[float, float] = (7.0, 15.0),
    touch: float = 0.5, noise: float = 0.08,
) -> SegmentationSet:
    """``n`` images of ``size`` x ``size`` px, deterministic in ``seed``.

    Args:
        radius: range of the ellipses' semi-axes in px.
        touch: share of cells placed to touch an earlier one (each image has at least one touching pair).
        noise: std of the additive Gaussian noise, against cell intensities of 0.45-1 and a background ~0.25.
    """
    if n < 1 or size < 16:
        raise BenchError(f"a synthetic set of {n} images of {size} px is not valid; need n >= 1, size >= 16")
    images, masks, instances = [], [], []
    for child in np.random.SeedSequence(seed).spawn(n):  # image i depends on (seed, i) only
        rng = np.random.default_rng(child)
        labels = _cells(rng, size, radius, touch)
        border = separation_borders(labels)
        mask = (labels > 0) & ~border
        images.append(standardize(_render(rng, labels, border, noise)))
        masks.append(mask.astype(np.int64))
        instances.append(np.where(mask, labels, 0).astype(np.int32))
    return SegmentationSet(tuple(images), tuple(masks), tuple(instances))


def synthetic_task(seed: int = 0, *, n_train: int = 16, n_val: int = 8, size: int = 128) -> Split:
    """Train and validation sets drawn from disjoint seed streams of ``seed``."""
    train_seed, val_seed = np.random.SeedSequence(seed).generate_state(2)
    return Split(
        synthetic_set(n_train, size, seed=int(train_seed)),
        synthetic_set(n_val, size, seed=int(val_seed)),
    )
