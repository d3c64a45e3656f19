"""The paper's elastic deformation: a coarse grid of random displacements, smoothly interpolated.

The paper trains on few images and calls elastic warps the key to learning invariances from them: on a
coarse 3 x 3 grid, displacement vectors drawn from a Gaussian of 10 px std, interpolated bicubically to a
per-pixel field. The std is a setting (``elastic_sigma``): the paper's 10 px suit its 512 px EM images,
and smaller cells may want a gentler warp. One field moves the image and everything annotated on it, so
image, mask and weight map stay aligned; the image is resampled smoothly (cubic), labels by the nearest
pixel (order 0), so a warped label map holds only labels it had. Samples that fall outside the array
are mirrored back in.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from unet_bench.record import DEFAULT_ELASTIC_SIGMA_PX

GRID = 3  # control points per axis, spanning the warped array (the paper's 3 x 3)
# px kept around the sampled region when a window is cut out to warp: a cubic spline's prefilter reaches
# further, but its influence falls by ~0.27 per px, so at 8 px the cut changes values by < 1e-4
MARGIN = 8


def displacements(rng: np.random.Generator, shape: tuple[int, ...], grid: int = GRID,
                  sigma: float = DEFAULT_ELASTIC_SIGMA_PX) -> np.ndarray:
    """A smooth random field (len(shape), *shape) of px offsets: Gaussian vectors on a ``grid``-point
    lattice per axis, interpolated cubically between them."""
    coarse = rng.normal(0.0, sigma, size=(len(shape),) + (grid,) * len(shape))
    # every pixel's place on the lattice: 0 at the first pixel, grid − 1 at the last
    at = np.meshgrid(*[np.linspace(0, grid - 1, n) for n in shape], indexing="ij")
    return np.stack([ndimage.map_coordinates(c, at, order=3, mode="nearest") for c in coarse])


def sample_points(shape: tuple[int, ...], offset: tuple[int, ...], field: np.ndarray) -> np.ndarray:
    """The source coordinates of a ``shape`` window at ``offset`` in a larger array, moved by ``field``
    (one value per window pixel and axis)."""
    grid = np.meshgrid(*[np.arange(o, o + n, dtype=np.float64) for o, n in zip(offset, shape, strict=True)],
                       indexing="ij")
    return np.stack(grid) + field


def warp(array: np.ndarray, points: np.ndarray, order: int) -> np.ndarray:
    """``array`` sampled at ``points`` (from `sample_points`): ``order`` 3 for images, 0 for labels (no
    value a label map does not have), 1 for a weight map.

    Only the region the points reach (and `MARGIN`) is resampled, so a tile of a large image costs what
    the tile does; where the points leave the array the region runs to its edge, which mirrors them back.
    """
    lo = [max(0, int(np.floor(p.min())) - MARGIN) for p in points]
    hi = [min(n, int(np.ceil(p.max())) + MARGIN + 1) for p, n in zip(points, array.shape, strict=True)]
    region = array[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    shift = np.asarray(lo, dtype=np.float64).reshape((-1,) + (1,) * (points.ndim - 1))
    return ndimage.map_coordinates(region, points - shift, order=order, mode="mirror").astype(array.dtype)
