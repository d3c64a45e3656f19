"""Whether a difference between two measured settings is larger than the noise.

Noise rule for latency (and any metric with a measured spread): the change is *within noise* when the
two interquartile intervals overlap (each from the lowest p25 to the highest p75 over the repeats) or
when a two-sided Mann-Whitney U test on the repeat medians gives p >= `ALPHA` (run only where both sides
have `MIN_REPEATS_FOR_TEST` repeats and p < `ALPHA` is reachable at all).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import mannwhitneyu

ALPHA = 0.05
MIN_REPEATS_FOR_TEST = 3
NOISE_MARK = "~"
NOISE_RULE = (
    f"{NOISE_MARK} = within noise: the IQR intervals (lowest p25 to highest p75 over repeats) overlap, or a "
    f"two-sided Mann-Whitney U test on the repeat medians gives p >= {ALPHA} (run when both sides have "
    f">= {MIN_REPEATS_FOR_TEST} repeats and p < {ALPHA} is reachable)"
)


def within_noise(ref_interval: tuple[float, float], ref_samples: list[float],
                 interval: tuple[float, float], samples: list[float]) -> tuple[bool, float]:
    """Whether a change is within noise, and the Mann-Whitney p-value (NaN when not run): see NOISE_RULE."""
    overlap = ref_interval[0] <= interval[1] and interval[0] <= ref_interval[1]
    p = np.nan
    n1, n2 = len(ref_samples), len(samples)
    if min(n1, n2) >= MIN_REPEATS_FOR_TEST and 2 / math.comb(n1 + n2, n1) < ALPHA:
        p = float(mannwhitneyu(ref_samples, samples, alternative="two-sided").pvalue)
    return bool(overlap or (not math.isnan(p) and p >= ALPHA)), p
