"""Dice and IoU of one class, pooled over every pixel of a set of images.

Pooling (sum the overlaps, then divide once) rather than averaging per image keeps an image with few
object pixels from swinging the score; it is what "Dice on the validation split" means here.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def _counts(preds: Iterable[np.ndarray], targets: Iterable[np.ndarray], cls: int) -> tuple[int, int, int]:
    """Pixels in both, in the prediction only, in the target only."""
    both = pred_only = target_only = 0
    for pred, target in zip(preds, targets, strict=True):
        p, t = np.asarray(pred) == cls, np.asarray(target) == cls
        both += int((p & t).sum())
        pred_only += int((p & ~t).sum())
        target_only += int((~p & t).sum())
    return both, pred_only, target_only


def dice(preds: Iterable[np.ndarray], targets: Iterable[np.ndarray], cls: int = 1) -> float:
    """2|P∩T| / (|P| + |T|) for class ``cls``; 1.0 when neither has the class (nothing to miss)."""
    both, pred_only, target_only = _counts(preds, targets, cls)
    total = 2 * both + pred_only + target_only
    return 2 * both / total if total else 1.0


def iou(preds: Iterable[np.ndarray], targets: Iterable[np.ndarray], cls: int = 1) -> float:
    """|P∩T| / |P∪T| for class ``cls``; 1.0 when neither has the class."""
    both, pred_only, target_only = _counts(preds, targets, cls)
    union = both + pred_only + target_only
    return both / union if union else 1.0
