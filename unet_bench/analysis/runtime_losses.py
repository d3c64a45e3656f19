"""What a runtime's precision loses in quality: a quality record scored on a runtime holds, per seed, eager
torch fp32's scores and the runtime's change for the same trained weights on the same validation images.

Each change is a paired difference (another seed would move both sides alike), so its interval is a
one-sample t interval over the seeds' changes, at 95 % per row; the change is real when the interval
excludes zero. Absolute, not relative: a Dice of 0.74 losing 0.014 is the figure a reader compares.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sstats

from unet_bench.analysis.pairing import missing
from unet_bench.analysis.results import ok, variant_labels

SCORES = {"dice": "Dice", "object_f1": "object F1", "rand_error": "Rand error"}
LEVEL = 0.95


def per_seed(value: Any) -> list[float]:
    """A per-seed list as the results frame holds it (a list, or its JSON text), [] where absent."""
    if isinstance(value, str):
        value = json.loads(value)
    return [] if value is None or (not isinstance(value, list) and missing(value)) else [float(v) for v in value]


def change_interval(changes: list[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(mean change, low, high): the one-sample t interval of paired changes; NaN bounds under 2 seeds."""
    mean = float(np.mean(changes))
    if len(changes) < 2:
        return mean, math.nan, math.nan
    half = float(sstats.t.ppf((1 + level) / 2, len(changes) - 1)) * float(np.std(changes, ddof=1)) / math.sqrt(
        len(changes))
    return mean, mean - half, mean + half


def quality_losses(frame: pd.DataFrame) -> pd.DataFrame | None:
    """One row per quality record scored on a runtime: seeds, then per score torch fp32's mean and the
    runtime's change with its interval and verdict; None where there is none."""
    done = ok(frame)
    column = "extra_dice_change_per_seed"
    if column not in done or done[column].map(lambda v: not per_seed(v)).all():
        return None
    done = done.assign(label=variant_labels(done)[0])
    out = []
    for _, row in done[done[column].map(lambda v: bool(per_seed(v)))].iterrows():
        entry: dict[str, Any] = {"variant": row["label"], "runtime": row["runtime"], "dtype": row["dtype"]}
        for score, name in SCORES.items():
            base, changes = (per_seed(row.get(f"extra_{score}_{part}_per_seed")) for part in ("torch_fp32", "change"))
            if not changes:
                continue
            entry["seeds"] = len(changes)
            mean, low, high = change_interval(changes)
            entry[f"{name} (torch fp32)"] = f"{np.mean(base):.3f}"
            if math.isnan(low):
                entry[f"Δ {name}"] = f"{mean:+.3f} (one seed: no interval)"
            else:
                real = "real" if low > 0 or high < 0 else "~"
                entry[f"Δ {name}"] = f"{mean:+.3f} [{low:+.3f}, {high:+.3f}] {real}"
        out.append(entry)
    return pd.DataFrame(out)


LOSS_LINE = (f"Δ = the runtime's score minus eager torch fp32's for the same trained weights on the same validation "
             f"images, mean over seeds with a {LEVEL:.0%} one-sample t interval of the per-seed changes (paired); "
             "real when it excludes 0, ~ = within noise")
