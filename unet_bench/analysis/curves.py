"""The learning-curve figure: validation Dice and object F1 against training steps, per variant.

A quality number means little without knowing whether training had finished: a curve still climbing at its
last point says the comparison is one of training speed, not of what the networks can learn. Each variant
is drawn as the mean over its seeds with a band of ± one standard deviation, from the per-seed curves the
quality records carry (``extra.curve_dice_per_seed``, ``extra.curve_object_f1_per_seed`` at
``curve_steps``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from unet_bench.analysis.results import listed, variant_labels

PANELS = (("extra_curve_dice_per_seed", "validation Dice"), ("extra_curve_object_f1_per_seed", "validation object F1"))


def curve_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per series (its label as in the comparison table) that carries a learning curve."""
    if "curve_steps" not in frame or PANELS[0][0] not in frame:
        return frame.iloc[0:0]
    labels, _ = variant_labels(frame)
    several = frame["source"].nunique() > 1 if "source" in frame else False
    series = labels + (" · " + frame["source"].map(lambda s: Path(s).name) if several else "")
    rows = frame.assign(series=series)
    has = rows["curve_steps"].map(lambda s: len(listed(s) or ()) > 1) & rows[PANELS[0][0]].map(
        lambda c: listed(c) is not None)
    return rows[has].drop_duplicates("series")


def learning_curves(records: pd.DataFrame, colors: dict[str, Any]) -> tuple[Figure, str] | None:
    """Dice and object F1 against steps: mean over seeds, band ± 1 std; None where no record has a curve."""
    rows = curve_rows(records)
    if rows.empty:
        return None
    figure = Figure(figsize=(11.0, 4.4 + 0.2 * len(rows)), layout="constrained")
    axes = figure.subplots(1, len(PANELS), squeeze=False).ravel()
    for ax, (column, label) in zip(axes, PANELS, strict=True):
        for _, row in rows.iterrows():
            steps, curves = np.asarray(listed(row["curve_steps"])), np.asarray(listed(row[column]), dtype=float)
            mean = curves.mean(0)
            spread = curves.std(0, ddof=1) if len(curves) > 1 else np.zeros_like(mean)
            color = colors.get(row["series"])
            ax.plot(steps, mean, marker="o", ms=3, color=color, label=row["series"])
            ax.fill_between(steps, mean - spread, mean + spread, color=color, alpha=0.18, lw=0)
        ax.set_xlabel("training steps")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    # below the panels: long labels (another library's arguments) would hide the curves inside them
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize="small")
    seeds = sorted({len(listed(c)) for c in rows[PANELS[0][0]]})
    return figure, ("Learning curves on the validation split: mean over "
                    f"{'/'.join(map(str, seeds))} training seeds, band ± one standard deviation. A curve still "
                    "rising at its last point had not finished learning.")
