"""The report's runtime section: where results hold more than one runtime, each variant under each runtime
beside itself under torch eager (`compare` by runtime), what the exported graphs hold, and one figure.

The table is the comparison's (latency per output pixel with its verdict against torch, the error against
eager torch, export time and model size); a second one summarises each exported graph by the op types a
U-Net's design changes (transposed convolutions or resizes, concatenations or additions, normalisations).
The figure draws latency per output pixel per variant, one bar per runtime, with the 95 % interval over
repeats as whiskers; a bar whose output differs from eager torch's is hatched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from unet_bench.analysis.axes import BASELINE_COLOR, STYLE, errors, plain_numbers, title
from unet_bench.analysis.compare import Comparison, compare
from unet_bench.analysis.pairing import QUANTIZED_FROM
from unet_bench.analysis.plots import FORMATS, FigureFile, describe
from unet_bench.analysis.results import FACTORS, METRICS, ok, variant_labels
from unet_bench.analysis.runtime_losses import LOSS_LINE, quality_losses
from unet_bench.analysis.tables import caption, sections

LATENCY = "latency_ms_per_output_mpix"
# Op types of an exported graph worth a column: what the variants change, by name or by family.
OP_GROUPS = {"Conv": ("Conv",), "ConvTranspose": ("ConvTranspose",), "Resize": ("Resize",), "Concat": ("Concat",),
             "Add": ("Add",), "norm": ("BatchNormalization", "InstanceNormalization", "GroupNormalization",
                                       "LayerNormalization"),
             "(De)QuantizeLinear": ("QuantizeLinear", "DequantizeLinear")}
_CENSUS = "op_census_"


@dataclass
class RuntimeSection:
    """What the report shows of runtimes: the comparison's tables and caption, the op census, the figure."""

    comparison: Comparison | None  # None where only quality was scored on a runtime
    tables: list[tuple[str, pd.DataFrame]]  # (title, display table): the comparison's, then the op census
    lines: list[str]  # under the tables: what Δ is against, verdict rule, marked rows, unsupported cases
    figure: FigureFile | None


def runtime_section(frame: pd.DataFrame, figures_dir: Path) -> RuntimeSection | None:
    """The section, or None where the successful records ran on one runtime only and none scored quality
    on a runtime."""
    runtimes = list(dict.fromkeys(ok(frame)["runtime"]))
    losses = quality_losses(frame)
    if len(runtimes) < 2 and losses is None:
        return None
    tables, lines, figure, comparison = [], [], None, None
    if len(runtimes) >= 2:
        comparison = compare(frame, "torch" if "torch" in runtimes else runtimes[0], by="runtime")
        tables = [(f"Runtimes, {heading}", table) for _, heading, table in sections(comparison)]
        lines, figure = caption(comparison), runtime_bars(comparison, figures_dir)
    census = op_census(frame)
    if census is not None:
        tables.append(("Exported graphs: nodes per op type", census))
    if losses is not None:
        tables.append(("What the runtime's precision loses in quality", losses))
        lines.append(LOSS_LINE)
    return RuntimeSection(comparison, tables, lines, figure)


def op_census(frame: pd.DataFrame) -> pd.DataFrame | None:
    """One row per exported variant, runtime and precision (its first repeat): the exporter's opset, the
    provider, and node counts per op group, the rest as ``other``."""
    done = ok(frame)
    done = done.assign(label=variant_labels(done)[0])  # labelled as in the comparison's tables
    columns = [c for c in done.columns if c.startswith(_CENSUS)]
    rows = done[done[columns].notna().any(axis=1)] if columns else done.iloc[0:0]
    if rows.empty:
        return None
    rows = rows.drop_duplicates(["label", "runtime", "dtype"])
    counts = rows[columns].fillna(0).rename(columns=lambda c: c.removeprefix(_CENSUS)).astype(int)
    table = pd.DataFrame({"variant": rows["label"], "runtime": rows["runtime"], "dtype": rows["dtype"],
                          "opset": rows["opset"].map(lambda v: "-" if pd.isna(v) else str(int(v))),
                          "provider": rows["provider"].fillna("-")})
    grouped = set()
    for name, ops in OP_GROUPS.items():
        present = [op for op in ops if op in counts]
        grouped.update(present)
        if present:
            table[name] = counts[present].sum(axis=1)
    table["other"] = counts[[c for c in counts if c not in grouped]].sum(axis=1)
    table["nodes"] = counts.sum(axis=1)
    return table.reset_index(drop=True).astype(str)


def runtime_bars(comparison: Comparison, figures_dir: Path) -> FigureFile | None:
    """Latency per output pixel per variant, one bar per runtime (and quantized precision), in the setting
    with the most bars."""
    if LATENCY not in comparison.table:  # nothing timed (quality scored on runtimes only)
        return None
    rows = comparison.table.dropna(subset=[LATENCY])
    if rows.empty:
        return None
    rows = rows.assign(like=rows["dtype"].replace(QUANTIZED_FROM),
                       bar=[r if d not in QUANTIZED_FROM else f"{r} {d}" for r, d in zip(rows["runtime"], rows["dtype"],
                                                                                      strict=True)])
    setting = [f if f != "dtype" else "like" for f in FACTORS if f not in ("runtime", "input_size")]  # by point
    rows = max((g for _, g in rows.groupby([*setting, "point", "source"], dropna=False, sort=False)), key=len)
    variants, series = list(dict.fromkeys(rows["variant"])), list(dict.fromkeys(rows["bar"]))
    info, width = METRICS[LATENCY], 0.8 / len(series)
    palette = iter(matplotlib.colormaps["tab10"].colors)
    colors = {s: BASELINE_COLOR if s == comparison.baseline else next(palette) for s in series}
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(max(4.5, 1.2 * len(variants) * len(series) ** 0.5 + 2), 3.4), layout="constrained")
        ax = figure.subplots()
        for k, label in enumerate(series):
            bars = rows[rows["bar"] == label].set_index("variant").reindex(variants)
            positions = np.arange(len(variants)) + (k - (len(series) - 1) / 2) * width
            drawn = ax.bar(positions, bars[LATENCY] * info.scale, width * 0.92, color=colors[label], label=label,
                           yerr=errors(bars.reset_index(), LATENCY), error_kw={"ecolor": "#555555", "lw": 0.8})
            for bar, mismatch in zip(drawn, bars["output_mismatch"].eq(True), strict=True):
                if mismatch:
                    bar.set(hatch="////", edgecolor="white", alpha=0.6)
        ax.set_xticks(np.arange(len(variants)), variants)
        ax.set_ylabel(info.heading)
        ax.grid(axis="x", visible=False)
        handles = ax.get_legend_handles_labels()[0]
        if rows["output_mismatch"].any():
            handles.append(Patch(facecolor="#bbbbbb", hatch="////", edgecolor="white",
                                 label="output differs from eager torch"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        title(ax, "Latency per output pixel by runtime", describe(rows.assign(size=rows["input_size"])))
        plain_numbers(ax)
        name = "runtimes"
        paths = tuple(figures_dir / f"{name}.{fmt}" for fmt in FORMATS)
        figures_dir.mkdir(parents=True, exist_ok=True)
        for path, fmt in zip(paths, FORMATS, strict=True):
            figure.savefig(path, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    text = ("Latency per output megapixel of each variant under each runtime, at one setting. Whiskers: 95 % "
            "interval of the mean over repeats (one repeat: the p25-p75 of its timed blocks). Hatched: the "
            "runtime's output differs from eager torch's beyond tolerance, so its speed is no speed-up.")
    return FigureFile(name, "Latency per output pixel by runtime", text, paths)
