"""What a network must beat: the all-foreground prediction and a tuned smoothing-plus-threshold rule.

A Dice without these says little: the all-foreground Dice is what a network that learned nothing scores,
and the tuned threshold is what intensity alone buys. The threshold rule smooths each (standardised)
image with a Gaussian and calls every pixel on one side of one global threshold an object; the smoothing
width, the threshold and its side are all chosen on the *training* split only, by the pooled Dice there,
and then applied unchanged to the validation split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from unet_bench.quality.data import SegmentationSet
from unet_bench.quality.metrics import dice

SIGMAS = (0.0, 1.0, 2.0, 4.0)  # Gaussian smoothing widths tried, px (0 = none)
QUANTILES = np.linspace(0.01, 0.99, 99)  # candidate thresholds: these quantiles of the smoothed pixels


@dataclass(frozen=True)
class ThresholdRule:
    """Smooth with ``sigma`` px, then object = pixel ``> threshold`` (``brighter``) or ``< threshold``."""

    sigma: float
    threshold: float
    brighter: bool
    train_dice: float  # pooled Dice of the rule on the split it was chosen on

    def predict(self, image: np.ndarray) -> np.ndarray:
        """The 0/1 class map of one image."""
        smooth = ndimage.gaussian_filter(image, self.sigma) if self.sigma > 0 else image
        above = smooth > self.threshold
        return (above if self.brighter else ~above).astype(np.int64)


def all_foreground_dice(masks: tuple[np.ndarray, ...] | list[np.ndarray]) -> float:
    """Dice of calling every pixel an object: 2f / (1 + f) for a foreground share f."""
    return dice([np.ones_like(m) for m in masks], masks)


def _best_threshold(values: np.ndarray, truth: np.ndarray) -> tuple[float, float, bool]:
    """(Dice, threshold, brighter) of the best candidate threshold over pooled pixel values."""
    order = np.argsort(values, kind="stable")
    values, truth = values[order], truth[order]
    positives = int(truth.sum())
    candidates = np.quantile(values, QUANTILES)
    # pixels at or below each candidate, and the object pixels among them
    below = np.searchsorted(values, candidates, side="right")
    fg_below = np.concatenate(([0], np.cumsum(truth)))[below]
    best = (-1.0, 0.0, True)
    for brighter in (True, False):
        predicted = len(values) - below if brighter else below
        hits = positives - fg_below if brighter else fg_below
        scores = 2 * hits / np.maximum(predicted + positives, 1)
        k = int(np.argmax(scores))
        if scores[k] > best[0]:
            best = (float(scores[k]), float(candidates[k]), brighter)
    return best


def tune_threshold(train: SegmentationSet) -> ThresholdRule:
    """The smoothing width, global threshold and side with the best pooled Dice on ``train``."""
    truth = np.concatenate([(m > 0).ravel() for m in train.masks])
    best: ThresholdRule | None = None
    for sigma in SIGMAS:
        smooth = [ndimage.gaussian_filter(img, sigma) if sigma > 0 else img for img in train.images]
        score, threshold, brighter = _best_threshold(np.concatenate([s.ravel() for s in smooth]), truth)
        if best is None or score > best.train_dice:
            best = ThresholdRule(sigma, threshold, brighter, score)
    assert best is not None
    return best
