"""Figures a researcher can drop into a paper or a slide, drawn from the comparison table.

Every figure uses one style (`axes.STYLE`), one colour per variant across all figures (the baseline in
black), axes labelled with units and numbers in full, and error bars from the measured spread: for
timings and memory the 95 % interval of the mean over repeats (a case measured once: the p25-p75 of its
timed blocks), mean ± std over seeds for quality. Counts (parameters, MACs) are exact and carry no bar.
Where the compared outputs differ in size, latency, MACs and throughput are per output pixel (as in
`compare`; ``per_image`` keeps them per image) and the caption says so.

A figure is drawn only when its data is there (`make_figures` skips the rest): cost bars per variant,
Pareto fronts (latency vs MACs, memory vs latency, Dice vs latency and MACs), scaling with input size
and with batch, throughput by dtype / memory format / compile. Each shows one *setting* (mode, device,
dtype, batch, size), the one where the most variants were measured, and names it in its subtitle. Sizes
are the baseline's (see `compare`: a valid-conv variant may run at the nearest valid size).

Drawn with `matplotlib.figure.Figure` directly (the Agg canvas, no pyplot state), so it runs headless and
never changes the caller's backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from unet_bench.analysis.axes import (
    BASELINE_COLOR,
    STYLE,
    annotate,
    errors,
    log_if_wide,
    number,
    plain_numbers,
    title,
)
from unet_bench.analysis.compare import available_metrics, compare
from unet_bench.analysis.curves import learning_curves
from unet_bench.analysis.results import FACTORS, METRICS, PER_PIXEL, ok, variant_labels
from unet_bench.errors import BenchError, choices

FORMATS = ("png", "svg")
_SETTING = [f for f in FACTORS if f != "input_size"]


@dataclass(frozen=True)
class FigureFile:
    """A written figure: its name, a one-line title and caption, and the files (one per format)."""

    name: str
    title: str
    caption: str
    paths: tuple[Path, ...]


def make_figures(frame: pd.DataFrame, out_dir: str | Path, baseline: str | None = None,
                 formats: tuple[str, ...] = FORMATS, names: Sequence[str] | None = None,
                 per_image: bool = False) -> list[FigureFile]:
    """Draw every figure the data allows (or those of `PLOTS` in ``names``) into ``out_dir``, as
    ``<name>.png`` and ``<name>.svg``."""
    every = {**PLOTS, **RECORD_PLOTS}
    unknown = set(names or ()) - set(every)
    if unknown:
        raise BenchError(f"unknown figure {sorted(unknown)[0]!r}; valid figures are {choices(every)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = plot_table(frame, baseline, per_image)
    colors = variant_colors(table)
    written = []
    with matplotlib.rc_context(STYLE):
        for name, (title, build) in every.items():
            if names is not None and name not in names:
                continue
            made = build(table, colors) if name in PLOTS else build(ok(frame), colors)
            if made is None:
                continue
            figure, caption = made
            for ax in figure.axes:
                plain_numbers(ax)
            paths = tuple(out / f"{name}.{fmt}" for fmt in formats)
            for path, fmt in zip(paths, formats, strict=True):
                figure.savefig(path, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
            written.append(FigureFile(name, title, caption, paths))
    return written


def plot_table(frame: pd.DataFrame, baseline: str | None = None, per_image: bool = False) -> pd.DataFrame:
    """The comparison table with every measured metric, a ``series`` label per line/bar (variant, plus
    the results directory when there are several) and ``size``, the input size aligned to the baseline's;
    ``attrs["per_pixel"]``: whether figures show per-output-pixel figures."""
    labels, _ = variant_labels(frame)
    if baseline is None:
        baseline = "paper" if "paper" in set(labels) else labels.iloc[0]
    comparison = compare(frame, baseline, available_metrics(ok(frame)))
    table = comparison.table
    table.attrs["per_pixel"] = comparison.outputs_differ and not per_image
    several = table["source"].nunique() > 1
    table["series"] = table["variant"] + (" · " + table["source"].map(lambda s: Path(s).name) if several else "")
    table["size"] = table["ref_input_size"].fillna(table["input_size"])
    table.attrs["baseline"] = baseline
    return table


def variant_colors(table: pd.DataFrame) -> dict[str, Any]:
    """One colour per series, the same in every figure; the baseline's series in black."""
    palette = matplotlib.colormaps["tab10" if table["series"].nunique() <= 11 else "tab20"].colors
    colors, others = {}, iter(palette * 4)
    for series, variant in dict.fromkeys(zip(table["series"], table["variant"], strict=True)):
        colors[series] = BASELINE_COLOR if variant == table.attrs["baseline"] else next(others)
    return colors


# --- choosing what to show ------------------------------------------------------------------------------


def _pick(table: pd.DataFrame, metrics: list[str], vary: str | None = None) -> pd.DataFrame | None:
    """The rows of the setting where ``metrics`` were measured for the most series (one row per series,
    or per series and ``vary`` value when ``vary`` is the factor a figure sweeps)."""
    if any(m not in table for m in metrics):
        return None
    rows = table.dropna(subset=metrics)
    if rows.empty:
        return None
    keys = [k for k in [*_SETTING, "size", "point"] if k != vary and not (vary == "size" and k == "point")]
    best = None
    for _, group in rows.groupby(keys, dropna=False, sort=False):
        score = (group[vary].nunique() if vary else 0, group["series"].nunique())
        if best is None or score > best[0]:
            best = (score, group)
    group = best[1]
    return group.drop_duplicates(["series", vary] if vary else ["series"])


def _pair(table: pd.DataFrame, x: str, y: str) -> tuple[pd.DataFrame, str] | None:
    """One row per series with both ``x`` and ``y``: from one setting if both were measured together,
    else each from its own setting, joined by series (quality from training, latency from inference)."""
    joint = _pick(table, [x, y])
    if joint is not None and len(joint) >= 2:
        return joint, describe(joint)
    xs, ys = _pick(table, [x]), _pick(table, [y])
    if xs is None or ys is None:
        return None
    cols = lambda m: [m, f"{m}_low", f"{m}_high"]  # noqa: E731
    data = xs[["series", *cols(x)]].merge(ys[["series", *cols(y)]], on="series")
    if len(data) < 2:
        return None
    return data, f"{METRICS[x].label}: {describe(xs)}\n{METRICS[y].label}: {describe(ys)}"


def describe(rows: pd.DataFrame, skip: tuple[str, ...] = ()) -> str:
    """The setting of ``rows`` in words: 'infer · cpu · fp32 · batch 1 · 572 px'."""
    row = rows.iloc[0]
    parts = [str(row["mode"]), str(row["device"])] + ([str(row["dtype"])] if "dtype" not in skip else [])
    if "batch" not in skip and not pd.isna(row["batch"]):
        parts.append(f"batch {int(row['batch'])}")
    if "size" not in skip and not pd.isna(row["size"]):
        nearest = (rows["input_size"] != rows["size"]).any()
        parts.append(f"{int(row['size'])} px" + (" (others at their paired size)" if nearest else ""))
    parts += [name for name in ("channels_last", "compile") if row[name] is True and name not in skip]
    if row["tf32"] is False and "tf32" not in skip:
        parts.append("IEEE fp32")
    return " · ".join(parts)


def _shown(table: pd.DataFrame, metric: str) -> str:
    """``metric``, or its per-output-pixel counterpart where the figures show those."""
    per_pixel = PER_PIXEL.get(metric)
    return per_pixel if table.attrs["per_pixel"] and per_pixel in table else metric


def _spread_note(table: pd.DataFrame, metrics: Sequence[str]) -> str:
    """What the error bars are, and whether figures are per output pixel."""
    text = (" Error bars: 95 % interval of the mean over repeats (a case measured once: the p25-p75 of its "
            "timed blocks); counts are exact.")
    if any(m in PER_PIXEL.values() for m in metrics):
        text += " Per output pixel, as the compared networks return outputs of different sizes."
    return text


# --- the figures -----------------------------------------------------------------------------------------

COST_METRICS = ("params", "macs", "peak_mem_bytes", "latency_ms_median")


def cost_bars(table: pd.DataFrame, colors: dict[str, Any]) -> tuple[Figure, str] | None:
    """Parameters, MACs, peak memory and latency per variant, one panel each."""
    metrics = [_shown(table, m) for m in COST_METRICS]
    panels = [(m, rows) for m in metrics if (rows := _pick(table, [m])) is not None]
    if not panels:
        return None
    order = list(dict.fromkeys(table["series"]))
    cols = 2 if len(panels) > 1 else 1
    nrows = -(-len(panels) // cols)
    figure = Figure(figsize=(5.2 * cols, (0.24 * len(order) + 1.3) * nrows), layout="constrained")
    axes = figure.subplots(nrows, cols, squeeze=False).ravel()
    for ax, (metric, rows) in zip(axes, panels, strict=False):  # spare axes hidden below
        rows = rows.set_index("series").reindex([s for s in order if s in set(rows["series"])])
        info = METRICS[metric]
        values = rows[metric] * info.scale
        positions = np.arange(len(rows))[::-1]
        bars = errors(rows.reset_index(), metric)
        ax.barh(positions, values, color=[colors[s] for s in rows.index], height=0.7,
                xerr=bars, error_kw={"ecolor": "#555555", "lw": 0.8})
        ax.set_yticks(positions, rows.index)
        ax.set_xlabel(info.heading)
        ax.grid(axis="y", visible=False)
        ends = values + (0 if bars is None else bars[1])
        for pos, value, end in zip(positions, values, ends, strict=True):
            ax.text(end, pos, f"  {number(value, 3)}", va="center", ha="left", fontsize=7, color="#333333")
        if 0 < ends.max() < np.inf:  # room for the labels right of the bars
            ax.set_xlim(0, ends.max() * 1.2)
        title(ax, info.label, describe(rows.reset_index()))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return figure, "Cost per variant." + _spread_note(table, metrics)


def _front(x: np.ndarray, y: np.ndarray, maximize_y: bool) -> np.ndarray:
    """Indices of the non-dominated points (lower x is better; lower y, or higher with ``maximize_y``)."""
    sign = -1 if maximize_y else 1
    order = np.lexsort((sign * y, x))
    front, best = [], np.inf
    for i in order:
        if sign * y[i] < best:
            front.append(i)
            best = sign * y[i]
    return np.array(front, dtype=int)


def _pareto_axes(ax: Axes, data: pd.DataFrame, x: str, y: str, colors: dict[str, Any], subtitle: str,
                 maximize_y: bool = False) -> None:
    xs = data[x].to_numpy(float) * METRICS[x].scale
    ys = data[y].to_numpy(float) * METRICS[y].scale
    front = _front(xs, ys, maximize_y)
    ordered = front[np.argsort(xs[front])]
    ax.step(xs[ordered], ys[ordered], where="post", color="#999999", lw=1.2, ls="--", zorder=1,
            label="Pareto front")
    xerr, yerr = errors(data, x), errors(data, y)
    names = list(data["series"])
    for i, series in enumerate(names):
        on_front = i in front
        ax.errorbar(xs[i], ys[i], xerr=None if xerr is None else xerr[:, [i]],
                    yerr=None if yerr is None else yerr[:, [i]], fmt="o", color=colors[series],
                    ms=7 if on_front else 5, mec="black" if on_front else colors[series], mew=1.0,
                    alpha=1 if on_front else 0.6, elinewidth=0.8, zorder=3)
    log_if_wide(ax, pd.Series(xs), "x")
    log_if_wide(ax, pd.Series(ys), "y")
    annotate(ax, xs, ys, names, bold=set(front))
    ax.set_xlabel(METRICS[x].heading + " (lower is better)")
    ax.set_ylabel(METRICS[y].heading + (" (higher is better)" if maximize_y else " (lower is better)"))
    ax.legend(loc="best")
    title(ax, f"{METRICS[y].label} vs {METRICS[x].label}", subtitle)


def _pareto(x_metric: str, y_metric: str, maximize_y: bool = False) -> Callable:
    def build(table: pd.DataFrame, colors: dict[str, Any]) -> tuple[Figure, str] | None:
        x, y = _shown(table, x_metric), _shown(table, y_metric)
        pair = _pair(table, x, y)
        if pair is None:
            return None
        figure = Figure(figsize=(6.4, 4.6), layout="constrained")
        _pareto_axes(figure.subplots(), pair[0], x, y, colors, pair[1], maximize_y)
        label = METRICS[y].label
        return figure, (f"{label[0].upper()}{label[1:]} against {METRICS[x].label}; ringed points form the "
                        "Pareto front (no other variant is better in both)." + _spread_note(table, [x, y]))
    return build


def quality_pareto(table: pd.DataFrame, colors: dict[str, Any]) -> tuple[Figure, str] | None:
    """Dice against latency and against MACs, where quality was measured."""
    xs = [_shown(table, m) for m in ("latency_ms_median", "macs")]
    pairs = [(x, p) for x in xs if (p := _pair(table, x, "dice_mean")) is not None]
    if not pairs:
        return None
    figure = Figure(figsize=(6.0 * len(pairs), 4.6), layout="constrained")
    for ax, (x, (data, subtitle)) in zip(figure.subplots(1, len(pairs), squeeze=False).ravel(), pairs, strict=True):
        _pareto_axes(ax, data, x, "dice_mean", colors, subtitle, maximize_y=True)
    return figure, ("Segmentation quality against cost: Dice mean ± std over training seeds; ringed points "
                    "form the Pareto front (higher Dice, lower cost)." + _spread_note(table, xs))


def _scaling(axis: str) -> Callable:
    name = {"size": "input size (px)", "batch": "batch size (images)"}[axis]

    def build(table: pd.DataFrame, colors: dict[str, Any]) -> tuple[Figure, str] | None:
        panels = []
        for metric in ("latency_ms_median", "peak_mem_bytes"):
            rows = _pick(table, [metric], vary=axis)
            if rows is not None and (rows.groupby("series")[axis].nunique() >= 2).any():
                panels.append((metric, rows))
        if not panels:
            return None
        figure = Figure(figsize=(5.0 * len(panels), 4.0), layout="constrained")
        for ax, (metric, rows) in zip(figure.subplots(1, len(panels), squeeze=False).ravel(), panels, strict=True):
            ticks = set()
            for series, line in rows.groupby("series", sort=False):
                if line[axis].nunique() < 2:
                    continue
                line = line.sort_values(axis)
                x = line["input_size"] if axis == "size" else line["batch"]
                ticks |= set(x.astype(int))
                ax.errorbar(x, line[metric] * METRICS[metric].scale, yerr=errors(line, metric), fmt="-o",
                            color=colors[series], label=series, elinewidth=0.8, ms=4)
            if axis == "batch" and max(ticks) / min(ticks) > 8:
                ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(ticks), [number(t) for t in sorted(ticks)])
            ax.minorticks_off()
            ax.set_xlabel(name)
            ax.set_ylabel(METRICS[metric].heading)
            ax.legend(loc="upper left")
            title(ax, f"{METRICS[metric].label} vs {name.split(' (')[0]}", describe(rows, skip=(axis,)))
        return figure, (f"Scaling with {name.split(' (')[0]}: each variant at its own valid sizes, per image "
                        "(the x axis carries the size)." + _spread_note(table, []))
    return build


OPTIONS = ("dtype", "channels_last", "compile", "tf32")


def throughput(table: pd.DataFrame, colors: dict[str, Any]) -> tuple[Figure, str] | None:
    """Images/s (or output Mpx/s) per variant for each execution option combination (dtype, memory
    format, compile)."""
    metric = _shown(table, "images_per_s")
    if metric not in table or table[metric].isna().all():
        return None
    rows = table.dropna(subset=[metric])
    keys = [k for k in [*_SETTING, "size", "point"] if k not in OPTIONS]
    best = None
    for _, group in rows.groupby(keys, dropna=False, sort=False):
        combos = group[list(OPTIONS)].astype(str).drop_duplicates()
        if len(combos) >= 2 and (best is None or len(combos) > best[0]):
            best = (len(combos), group)
    if best is None:
        return None
    group = best[1].copy()
    varying = [o for o in OPTIONS if group[o].astype(str).nunique() > 1]
    group["option"] = group.apply(lambda r: _option_label(r, varying), axis=1)
    group = group[group.groupby("series")["option"].transform("nunique") >= 2]
    options = list(dict.fromkeys(group["option"]))
    if len(options) < 2:  # no variant measured under two options that read differently
        return None
    series = list(dict.fromkeys(group["series"]))
    figure = Figure(figsize=(max(5.0, 0.9 * len(series) * len(options) / 2 + 2), 4.0), layout="constrained")
    ax = figure.subplots()
    width = min(0.8 / len(options), 0.3)
    palette = matplotlib.colormaps["Set2"].colors
    for k, option in enumerate(options):
        part = group[group["option"] == option].set_index("series").reindex(series)
        ax.bar(np.arange(len(series)) + (k - (len(options) - 1) / 2) * width, part[metric] * METRICS[metric].scale,
               width * 0.95, yerr=errors(part, metric), label=option, color=palette[k % len(palette)],
               error_kw={"lw": 0.8})
    ax.set_xticks(np.arange(len(series)), series, rotation=30 if len(series) > 4 else 0, ha="right"
                  if len(series) > 4 else "center")
    ax.set_ylabel(METRICS[metric].heading + " (higher is better)")
    ax.grid(axis="x", visible=False)
    ax.legend(title=" · ".join(varying), loc="upper right")
    title(ax, "Throughput by execution option", describe(group, skip=tuple(varying)))
    return figure, ("Throughput per variant for each execution option measured (dtype, memory format, "
                    "torch.compile, TF32)." + _spread_note(table, [metric]))


def _option_label(row: pd.Series, varying: list[str]) -> str:
    parts = []
    for option in varying:
        value = row[option]
        if option == "dtype":
            parts.append(str(value))
        elif option == "tf32":
            parts.append("TF32" if value else "IEEE")
        else:
            parts.append(option if value else f"no {option}" if option == "compile" else "contiguous")
    return " · ".join(parts)


PLOTS: dict[str, tuple[str, Callable]] = {
    "cost": ("Cost per variant", cost_bars),
    "pareto_latency_macs": ("Latency vs MACs", _pareto("macs", "latency_ms_median")),
    "pareto_memory_latency": ("Peak memory vs latency", _pareto("latency_ms_median", "peak_mem_bytes")),
    "quality_pareto": ("Dice vs latency and MACs", quality_pareto),
    "scaling_size": ("Scaling with input size", _scaling("size")),
    "scaling_batch": ("Scaling with batch size", _scaling("batch")),
    "throughput": ("Throughput by dtype, memory format and compile", throughput),
}
# Figures drawn from the records themselves rather than the comparison table: (records, colors)
RECORD_PLOTS: dict[str, tuple[str, Callable]] = {"learning_curves": ("Learning curves", learning_curves)}
