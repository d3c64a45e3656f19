"""A `Comparison` as people read it: one table per mode in text, Markdown or LaTeX (booktabs), or one
tidy CSV with the raw numbers."""

from __future__ import annotations

from typing import Any

import pandas as pd

from unet_bench.analysis.compare import COUNT_METRICS, Comparison, key_one, missing
from unet_bench.analysis.formats import FORMATS
from unet_bench.analysis.results import FACTORS, METRICS
from unet_bench.analysis.stats import NOISE_MARK, NOISE_RULE
from unet_bench.errors import BenchError, choices

_TEXT_COLUMNS = ("variant", "results", "device", "dtype", "channels_last", "compile", "tf32", "cudnn.benchmark")
_HEADINGS = {"input_size": "size (px)", "channels_last": "channels_last", "cudnn_benchmark": "cudnn.benchmark"}


def render(comparison: Comparison, fmt: str = "text") -> str:
    """The comparison as text, Markdown, CSV or LaTeX (booktabs), one table per mode for the readable ones."""
    if fmt not in FORMATS:
        raise BenchError(f"unknown format {fmt!r}; valid formats are {choices(FORMATS)}")
    if fmt == "csv":
        return _tidy(comparison).to_csv(index=False)
    parts = []
    for _, title, frame in sections(comparison):
        if fmt == "text":
            parts.append(f"{title}\n{frame.to_string(index=False)}")
        elif fmt == "md":
            parts.append(f"### {title}\n\n{frame.to_markdown(index=False, disable_numparse=True)}")
        else:
            parts.append(f"% {title}\n{_latex(frame)}")
    notes = caption(comparison)
    if fmt == "latex":
        notes = [f"% {line}" for line in notes]
    elif fmt == "md":
        notes = [f"- {line}" for line in notes]
    return "\n\n".join(parts) + "\n\n" + "\n".join(notes) + "\n"


def caption(comparison: Comparison) -> list[str]:
    """The lines under the tables: what Δ is against, the noise rule, shared overrides, failed cases."""
    if comparison.by_source:
        lines = [f"Δ = relative change against the same variant and setting in {comparison.baseline}"]
    else:
        lines = [f"Δ = relative change against {comparison.baseline} in the same results and setting"]
    if any(METRICS[m].spread for m in comparison.metrics):
        lines.append(NOISE_RULE)
    if comparison.common_overrides:
        lines.append(f"every network: {comparison.common_overrides}")
    lines += [f"not measured: {line}" for line in comparison.failed]
    return lines


def sections(comparison: Comparison) -> list[tuple[str, str, pd.DataFrame]]:
    """(mode, title, display frame) per mode: only the metrics measured in that mode (counts only in the
    counts table when there is one), only the factors that vary shown as columns, the constant ones in
    the title."""
    table = comparison.table
    has_counts = (table["mode"] == "counts").any()
    out = []
    for mode, rows in table.groupby("mode", sort=False, dropna=False):
        metrics = [m for m in comparison.metrics if rows[m].notna().any()
                   and not (has_counts and mode != "counts" and m in COUNT_METRICS)]
        if not metrics:
            continue
        varying = [f for f in FACTORS if f != "mode" and rows[f].map(key_one).nunique(dropna=False) > 1]
        constant = [f"{f}={_show(rows[f].iloc[0])}" for f in FACTORS
                    if f not in varying and f != "mode" and key_one(rows[f].iloc[0]) is not None]
        title = f"mode: {mode}" + (f" ({', '.join(constant)})" if constant else "")
        display = pd.DataFrame({"variant": rows["variant"]})
        if table["source"].nunique() > 1:
            display["results"] = rows["source"]
        for factor in varying:
            if factor == "input_size":
                sizes = zip(rows["input_size"], rows["output_size"], strict=True)
                display[_HEADINGS[factor]] = [_size(i, o) for i, o in sizes]
            else:
                display[_HEADINGS.get(factor, factor)] = rows[factor].map(_show)
        if (rows["repeats"] > 1).any():
            display["repeats"] = rows["repeats"].astype(int).astype(str)
        for metric in metrics:
            info = METRICS[metric]
            display[info.heading] = rows[metric].map(lambda v, s=info.scale: _number(v * s))
            display[f"Δ {info.label}"] = [_delta(r, metric) for _, r in rows.iterrows()]
        out.append((str(mode), title, display.reset_index(drop=True)))
    return out


def _show(value: Any) -> str:
    """A factor value as text: whole numbers without '.0' (a column holding None turns ints into floats)."""
    value = key_one(value)
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _size(inp: float, out: float) -> str:
    if missing(inp):
        return "-"
    return f"{int(inp)}" if missing(out) else f"{int(inp)}→{int(out)}"


def _number(value: float) -> str:
    if missing(value):
        return "-"
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def _delta(row: pd.Series, metric: str) -> str:
    if row["is_reference"]:
        return "ref"
    rel = row[f"{metric}_rel"]
    if missing(rel):
        return "-"
    text = f"{rel * 100:+.1f}%"
    noise = row.get(f"{metric}_within_noise")
    return f"{text} {NOISE_MARK}" if noise is True else text


def _tidy(comparison: Comparison) -> pd.DataFrame:
    """The machine-readable table: raw values in the columns' own units, integers kept exact."""
    table = comparison.table.copy()
    for column in ("params", "params_trainable", "macs", "flops", "other_flops", "train_flops",
                   "peak_mem_bytes", "saved_activation_bytes", "param_bytes", "grad_bytes", "optimizer_bytes",
                   "predicted_peak_bytes", "output_size"):
        for name in (column, f"{column}_ref", f"{column}_low", f"{column}_high"):
            if name in table:
                table[name] = table[name].round().astype("Int64")
    table.insert(0, "baseline", comparison.baseline)
    return table


def _latex(display: pd.DataFrame) -> str:
    """A booktabs tabular; text cells escaped, Δ as a math symbol so pdflatex needs no Unicode set-up."""
    styler = display.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    align = "".join("l" if c in _TEXT_COLUMNS else "r" for c in display.columns)
    text = styler.to_latex(hrules=True, column_format=align)
    return text.replace("Δ", r"$\Delta$").replace("→", r"$\to$")
