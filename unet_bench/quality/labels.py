"""Reading an annotation mask as objects: instance labels, or a binary mask's connected components.

Real annotations come two ways. An instance-labelled mask gives every object its own integer, and two
touching objects share an edge with different labels: reading it as ``mask > 0`` would merge them, and the
weight map would lose exactly the border it exists for. A binary mask (two values) has only object and
background, and the annotators' background lines between touching cells are what separates them: its
objects are its 4-connected components. Either way the class map the network learns has a thin background
border where two objects meet (`separation_borders`), as in the paper's EM masks, so that a prediction can
keep them apart.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def separation_borders(labels: np.ndarray) -> np.ndarray:
    """Object pixels with a 4-neighbour (6-neighbour in 3-D) in a *different* object: where objects meet."""
    border = np.zeros(labels.shape, dtype=bool)
    for axis in range(labels.ndim):
        a = labels.take(range(labels.shape[axis] - 1), axis=axis)
        b = labels.take(range(1, labels.shape[axis]), axis=axis)
        meet = (a > 0) & (b > 0) & (a != b)
        lo = [slice(None)] * labels.ndim
        hi = [slice(None)] * labels.ndim
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        border[tuple(lo)] |= meet
        border[tuple(hi)] |= meet
    return border


def is_instance_mask(mask: np.ndarray) -> bool:
    """More than two distinct values: every object its own label (two values are object/background)."""
    return len(np.unique(mask)) > 2


def objects_and_classes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(instances int32, class map int64) of an annotation mask of any dimension.

    Instance masks keep their labels (renumbered 1..n); binary masks are split into connected components
    (4-connected in 2-D, 6-connected in 3-D). The class map is 1 on objects except where two objects meet,
    and the instances are cut the same way, so objects, weight map and instance metrics agree.
    """
    mask = np.asarray(mask)
    if is_instance_mask(mask):
        values, inverse = np.unique(mask, return_inverse=True)
        labels = inverse.reshape(mask.shape) + (0 if values[0] == 0 else 1)  # value 0 stays background
    else:
        labels = ndimage.label(mask > 0)[0]
    classes = (labels > 0) & ~separation_borders(labels)
    return np.where(classes, labels, 0).astype(np.int32), classes.astype(np.int64)
