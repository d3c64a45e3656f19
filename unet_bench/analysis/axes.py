"""How every figure looks: one style, titles with the setting underneath, error bars, point labels that
avoid each other, and numbers written out in full (1,770 rather than 1.77e+03, no offset on an axis)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, LogFormatter, ScalarFormatter
from matplotlib.transforms import offset_copy

from unet_bench.analysis.results import METRICS

STYLE: dict[str, Any] = {
    "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.labelsize": 9,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "grid.linewidth": 0.6, "axes.axisbelow": True, "legend.fontsize": 8, "legend.frameon": False,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "savefig.dpi": 150, "savefig.bbox": "tight",
    "errorbar.capsize": 2.5, "lines.markersize": 5, "svg.hashsalt": "unet-bench",
}
BASELINE_COLOR = "#222222"
SUBTITLE = {"fontsize": 7.5, "color": "#555555", "fontweight": "normal"}


def number(value: float, digits: int = 6) -> str:
    """``value`` to ``digits`` significant digits, written out with thousands separators, no exponent."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else ""
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class _LogNumbers(LogFormatter):
    """matplotlib's choice of which log ticks to label, written as `number` (1,000 rather than 10³)."""

    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        return number(x)


def plain_numbers(ax: Axes) -> None:
    """Numeric tick labels in full on both axes, whatever their scale; labels set by name are kept."""
    for axis in (ax.xaxis, ax.yaxis):
        if not isinstance(axis.get_major_formatter(), (ScalarFormatter, LogFormatter)):
            continue
        if axis.get_scale() == "log":
            axis.set_major_formatter(_LogNumbers(labelOnlyBase=False))
            axis.set_minor_formatter(_LogNumbers(labelOnlyBase=False, minor_thresholds=(1, 0.4)))
        else:
            axis.set_major_formatter(FuncFormatter(lambda x, _: number(x)))


def errors(rows: pd.DataFrame, metric: str) -> np.ndarray | None:
    """Asymmetric error bars (2 × n) in display units, or None when there is no spread to show."""
    info = METRICS[metric]
    def finite(spread: pd.Series) -> pd.Series:  # an interval too wide to compute draws no bar
        return spread.clip(lower=0).replace(np.inf, np.nan).fillna(0) * info.scale

    low, high = finite(rows[metric] - rows[f"{metric}_low"]), finite(rows[f"{metric}_high"] - rows[metric])
    if not (low.any() or high.any()):
        return None
    return np.vstack([low.to_numpy(), high.to_numpy()])


def title(ax: Axes, text: str, subtitle: str) -> None:
    """A bold title with the setting (one or two lines) in small grey type between it and the axes."""
    ax.set_title(text, loc="left", pad=6 + 9 * (subtitle.count("\n") + 1))
    below = offset_copy(ax.transAxes, fig=ax.figure, y=4, units="points")
    ax.text(0, 1, subtitle, transform=below, va="bottom", ha="left", **SUBTITLE)


def log_if_wide(ax: Axes, values: pd.Series, axis: str) -> None:
    values = values[values > 0]
    if len(values) and values.max() / values.min() > 30:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def annotate(ax: Axes, xs: np.ndarray, ys: np.ndarray, names: list[str], bold: set[int]) -> None:
    """Name each point: right of it, else left, else moved up or down (with a leader line) to the nearest
    place where it covers no other label and no other point."""
    ax.autoscale_view()
    points = ax.transData.transform(np.column_stack([xs, ys])) * 72 / ax.figure.dpi  # in points
    markers = [(x - 4.5, y - 3.5, 9.0, 7.0) for x, y in points]  # a label covers no other point either
    frame = ax.bbox.extents * 72 / ax.figure.dpi  # and stays inside the axes
    placed: list[tuple[float, float, float, float]] = []
    for i in np.argsort(points[:, 1], kind="stable"):
        width, height = 4.4 * len(names[i]) + 2, 9.0
        others = placed + markers[:i] + markers[i + 1:]
        spots = [(dx, dy, (points[i, 0] + dx, points[i, 1] + dy, width, height)) for dx, dy in _label_spots(width)]
        dx, dy, box = next((spot for spot in spots if _inside(spot[2], frame)
                            and not any(_overlap_boxes(spot[2], other) for other in others)), spots[0])
        placed.append(box)
        ax.annotate(names[i], (xs[i], ys[i]), xytext=(dx + (width if dx < 0 else 0), dy), textcoords="offset points",
                    ha="right" if dx < 0 else "left", fontsize=7, fontweight="bold" if i in bold else "normal",
                    zorder=4, arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "#999999"} if abs(dy) > 10 else None)


def _label_spots(width: float) -> list[tuple[float, float]]:
    """Label offsets (points) from a marker, nearest first: right, left, then further up and down."""
    spots = []
    for step in range(60):
        for dy in ((3.0,) if step == 0 else (3.0 + 5 * step, 3.0 - 5 * step)):
            spots += [(4.0, dy), (-4.0 - width, dy)]
    return spots


def _inside(box: tuple[float, ...], frame: np.ndarray) -> bool:
    return frame[0] <= box[0] and box[0] + box[2] <= frame[2] and frame[1] <= box[1] and box[1] + box[3] <= frame[3]


def _overlap_boxes(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
