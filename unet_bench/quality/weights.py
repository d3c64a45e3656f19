"""The paper's pixel weight map (Ronneberger et al. 2015, eq. 2).

    w(x) = w_c(x) + w0 · exp(−(d1(x) + d2(x))² / (2σ²))

w_c balances the class frequencies; d1 and d2 are the distances to the border of the nearest and the
second-nearest object. The second term makes the network pay for the thin background borders between
touching objects, which are few pixels but decide whether two cells come out as one.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

W0 = 10.0  # the paper's w0
SIGMA = 5.0  # the paper's σ ≈ 5 px


def class_balance(mask: np.ndarray, num_classes: int = 2) -> np.ndarray:
    """w_c: each pixel weighted by ``n / (K · n_c)`` for its class c, so the map averages 1 and every
    present class carries the same total weight."""
    counts = np.bincount(mask.ravel(), minlength=num_classes).astype(np.float64)
    per_class = np.divide(mask.size, len(counts) * counts, out=np.zeros_like(counts), where=counts > 0)
    return per_class[mask].astype(np.float32)


def border_term(instances: np.ndarray, w0: float = W0, sigma: float = SIGMA) -> np.ndarray:
    """w0 · exp(−(d1 + d2)² / 2σ²) on background pixels, 0 on objects and where there are < 2 objects.

    Only background pixels get it (the paper's Fig. 3d): inside an object d1 = 0 and the term would just
    re-weight the object's own edge. Distances come from one Euclidean distance transform per object, and
    only the two smallest are kept, so memory stays at two maps however many objects there are.
    """
    ids = np.unique(instances[instances > 0])
    if len(ids) < 2:
        return np.zeros(instances.shape, dtype=np.float32)
    d1 = np.full(instances.shape, np.inf)
    d2 = np.full(instances.shape, np.inf)
    for k in ids:
        d = ndimage.distance_transform_edt(instances != k)
        d2 = np.minimum(d2, np.maximum(d1, d))
        d1 = np.minimum(d1, d)
    term = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    return np.where(instances == 0, term, 0.0).astype(np.float32)


def weight_map(
    mask: np.ndarray, instances: np.ndarray, num_classes: int = 2, w0: float = W0, sigma: float = SIGMA
) -> np.ndarray:
    """The full w(x) for one image: class balance plus the border term."""
    return class_balance(mask, num_classes) + border_term(instances, w0, sigma)
