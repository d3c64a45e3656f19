"""Instance metrics: did the network find the *objects*, and keep touching ones apart?

Pixel Dice barely moves when two touching cells come out as one blob (a few border pixels), yet the
blob is a whole object wrong. These metrics see it. Predicted objects are the 4-connected components of
the predicted foreground of at least ``min_size`` px (the quality runs drop smaller specks, as Cellpose
does: `settings.MIN_OBJECT_PX`); true objects are the instance labels.

- Object F1 at IoU ≥ 0.5 (the 2018 Data Science Bowl's hit rule): a true and a predicted object match
  when their IoU is at least 0.5 (which makes the matching one-to-one); F1 = 2TP / (2TP + FP + FN),
  pooled over the images.
- mAP over IoU 0.5 … 0.95 (the DSB's score): per image, the mean over thresholds t of
  TP(t) / (TP(t) + FP(t) + FN(t)); then the mean over images.
- Adapted Rand error (the ISBI 2012 challenge's): 1 − the F-score of the Rand precision and recall of
  pixel pairs, over the true objects' pixels. Merging two objects lowers the precision, splitting one
  lowers the recall; 0 is perfect.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage

IOU_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.96, 0.05), 2))


def objects(pred: np.ndarray, min_size: int = 1) -> np.ndarray:
    """Instance labels 1..n of a predicted 0/1 class map: its 4-connected foreground components of at least
    ``min_size`` px; smaller ones become background."""
    labels = ndimage.label(np.asarray(pred) > 0)[0]
    if min_size <= 1:
        return labels
    keep = np.bincount(labels.ravel()) >= min_size
    keep[0] = False
    return np.where(keep[labels], np.cumsum(keep)[labels], 0)


def _overlaps(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Pixel counts of every (true label, predicted label) pair, label 0 included, as a dense table."""
    true, pred = np.asarray(true, np.int64).ravel(), np.asarray(pred, np.int64).ravel()
    n_pred = int(pred.max()) + 1
    table = np.bincount(true * n_pred + pred, minlength=(int(true.max()) + 1) * n_pred)
    return table.reshape(-1, n_pred)


def iou_matrix(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every true object (rows, labels 1..) with every predicted object (columns, labels 1..)."""
    table = _overlaps(true, pred)
    inter = table[1:, 1:].astype(np.float64)
    union = table[1:, :].sum(1)[:, None] + table[:, 1:].sum(0)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def matches(ious: np.ndarray, threshold: float) -> int:
    """True positives at ``threshold``: pairs with IoU ≥ it, one-to-one, best IoU first."""
    pairs = np.argwhere(ious >= threshold)
    pairs = pairs[np.argsort(-ious[pairs[:, 0], pairs[:, 1]], kind="stable")]
    used_true, used_pred, hits = set(), set(), 0
    for i, j in pairs:
        if i not in used_true and j not in used_pred:
            used_true.add(i)
            used_pred.add(j)
            hits += 1
    return hits


def adapted_rand_error(true: np.ndarray, pred: np.ndarray) -> float:
    """ISBI 2012's adapted Rand error over the pixels of true objects (true label 0 is ignored;
    predicted background counts as one more predicted segment, so missing objects read as merged)."""
    table = _overlaps(true, pred)[1:].astype(np.float64)
    if not table.sum():
        return 0.0
    both = (table**2).sum()
    precision = both / (table.sum(0) ** 2).sum()
    recall = both / (table.sum(1) ** 2).sum()
    return float(1 - 2 * precision * recall / (precision + recall))


def instance_scores(preds: Iterable[np.ndarray], instances: Iterable[np.ndarray], min_size: int = 1,
                    ) -> dict[str, float]:
    """``object_f1``, ``map`` and ``rand_error`` of predicted class maps against true instance labels, the
    predicted objects smaller than ``min_size`` px dropped."""
    tp = fp = fn = 0
    precisions, rand_errors, weights = [], [], []
    for pred, true in zip(preds, instances, strict=True):
        found = objects(pred, min_size)
        ious = iou_matrix(true, found)
        n_true, n_pred = ious.shape
        hits = matches(ious, 0.5)
        tp, fp, fn = tp + hits, fp + n_pred - hits, fn + n_true - hits
        if n_true or n_pred:
            per_t = [(h := matches(ious, t)) / (n_true + n_pred - h) for t in IOU_THRESHOLDS]
            precisions.append(float(np.mean(per_t)))
        rand_errors.append(adapted_rand_error(true, found))
        weights.append(int((np.asarray(true) > 0).sum()))
    return {
        "object_f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
        "map": float(np.mean(precisions)) if precisions else 1.0,
        # weighted by object pixels, so an image with more of them counts for more, as in pooled Dice
        "rand_error": float(np.average(rand_errors, weights=weights)) if sum(weights) else 0.0,
    }
