"""A `Comparison` as people read it: one table per mode in text, Markdown or LaTeX (booktabs), or one
tidy CSV with the raw numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from unet_bench.analysis import stats
from unet_bench.analysis.compare import COUNT_METRICS, Comparison
from unet_bench.analysis.formats import FORMATS
from unet_bench.analysis.pairing import key_one, missing
from unet_bench.analysis.results import FACTORS, METRICS, PER_PIXEL
from unet_bench.analysis.runtimes import EXPORT_METRICS, MISMATCH_MARK, mark, mismatch_lines
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
    """The lines under the tables: what Δ is against, per image or per pixel, the verdict rule and its
    levels, the runs' noise, config changes, notes, shared overrides, failed cases."""
    if comparison.by_source:
        lines = [f"Δ = relative change against the same variant at the same grid point in {comparison.baseline}"]
    elif comparison.by == "runtime":
        under = "torch eager" if comparison.baseline == "torch" else comparison.baseline
        lines = [f"Δ = relative change against the same variant at the same grid point and setting under {under}"]
    else:
        lines = [f"Δ = relative change against {comparison.baseline} at the same grid point of the same results"]
    shown = [METRICS[m].label for m in PER_PIXEL.values() if m in comparison.metrics]
    if comparison.per_pixel:
        lines.append(f"per output pixel ({', '.join(shown) or 'no per-image figure shown'}): rows and their "
                     "references differ in output size, so per-image figures would not compare like with like; "
                     "--per-image shows them per image")
    elif comparison.outputs_differ:
        lines.append("per image: rows and their references differ in output size (the default shows latency, "
                     "MACs and throughput per output pixel)")
    judged = {m: f for m, f in comparison.families.items() if f.rows}
    if any(METRICS[m].verdict != "exact" for m in comparison.metrics):
        lines.append(stats.METHOD)
    for metric, family in judged.items():
        paired = f"; samples: {', '.join(f'{n} {m}' for m, n in family.methods.items())}" if family.methods else ""
        lines.append(f"{METRICS[metric].label}: {family.real} of {family.rows} changes real; intervals at the "
                     f"{_percent(family.level)} level (95 % adjusted for {family.rows} rows){paired}")
    for source, (detectable, repeats) in comparison.noise.items():
        lines.append(noise_line(source, detectable, repeats))
    for source, found in comparison.paired_noise.items():
        lines.append(paired_noise_line(source, *found))
    for source, (detectable, seeds) in comparison.seed_noise.items():
        lines.append(seed_noise_line(source, detectable, seeds, comparison.instance_noise.get(source)))
    changes = comparison.table.loc[comparison.table["config_change"] != "", "config_change"]
    for change, count in changes.value_counts(sort=False).items():
        lines.append(f"config differs from the paired row in {comparison.baseline}: {change} ({count} "
                     f"row{'s' if count > 1 else ''})")
    lines += mismatch_lines(comparison.table) + comparison.notes + comparison.machine
    if comparison.common_overrides:
        lines.append(f"every network: {comparison.common_overrides}")
    lines += [f"not measured: {line}" for line in comparison.failed]
    return lines


def noise_line(source: str, detectable: float | None, repeats: int) -> str:
    """'results/a: changes under 3.1 % cannot be told from this run's noise (3 repeats per case)'."""
    if detectable is None:
        return (f"{source}: {repeats} repeat{'s' if repeats != 1 else ''} per case, too few to tell any change "
                f"from noise (verdicts need {stats.MIN_REPEATS})")
    return (f"{source}: latency changes under {detectable * 100:.1f} % cannot be told from this run's noise "
            f"({repeats} repeats per case)")


def paired_noise_line(source: str, detectable: float | None, repeats: int, rows: int) -> str:
    """'results/a: paired rows (16): latency changes under 1.2 % can be told (3 processes per row)'."""
    if detectable is None:
        return f"{source}: {rows} rows paired in process, {repeats} process{'es' if repeats != 1 else ''} " \
               f"each, too few for a verdict (verdicts need {stats.MIN_REPEATS})"
    return (f"{source}: rows paired in process ({rows}): latency changes under {detectable * 100:.1f} % cannot be "
            f"told from their noise ({repeats} processes per row)")


def seed_noise_line(source: str, detectable: float | None, seeds: int,
                    instances: dict[str, float | None] | None = None) -> str:
    """'results/q: Dice differences under 0.021 cannot be told from the seeds' spread (3 seeds per case)',
    with the same for the instance metrics in ``instances`` ({metric: difference})."""
    if detectable is None:
        return f"{source}: {seeds} seed{'s' if seeds != 1 else ''} per case, too few to tell any Dice difference " \
               f"from the seeds' spread (verdicts need {stats.MIN_REPEATS})"
    others = "".join(f", {METRICS[m].label} under {d:.3f}" for m, d in (instances or {}).items() if d is not None)
    return (f"{source}: Dice differences under {detectable:.3f}{others} cannot be told from the seeds' spread "
            f"({seeds} seeds per case)")


def _percent(level: float) -> str:
    text = f"{level * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text} %"


def sections(comparison: Comparison, split: int | None = None) -> list[tuple[str, str, pd.DataFrame]]:
    """(mode, title, display frame) per mode: only the metrics measured in that mode (counts only in the
    counts table when there is one), only the factors that vary shown as columns, the constant ones in
    the title. ``split``: a mode with more metrics than this gets one table per kind of metric (counts,
    memory, time, quality), each repeating the columns that name the row, so that none is too wide."""
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
        names = _names(rows, varying, table["source"].nunique() > 1)
        groups = {"": metrics}
        if split is not None and len(metrics) > split:
            groups = {}
            for metric in metrics:
                groups.setdefault(_kind(metric), []).append(metric)
        for kind, members in groups.items():
            display = names.copy()
            for metric in members:
                info = METRICS[metric]
                display[info.heading] = [mark(_number(r[metric] * info.scale), r, metric) for _, r in rows.iterrows()]
                if rows[f"{metric}_ref"].notna().any():  # no Δ where no reference has the figure (torch: no export)
                    display[f"Δ {info.label}"] = [_delta(r, metric) for _, r in rows.iterrows()]
            out.append((str(mode), f"{title} · {kind}" if kind else title, display))
    return out


def _names(rows: pd.DataFrame, varying: list[str], sources: bool) -> pd.DataFrame:
    """The columns that say what a row is: variant, results, config change, the varying factors, the size
    request where rows of one size came from different requests, repeats."""
    display = pd.DataFrame({"variant": rows["variant"].to_numpy()})
    if sources:
        display["results"] = rows["source"].map(short_names(rows["source"])).to_numpy()
    if (rows["config_change"] != "").any():
        display["config change"] = rows["config_change"].to_numpy()
    for factor in varying:
        if factor == "input_size":
            sizes = zip(rows["input_size"], rows["output_size"], strict=True)
            display[_HEADINGS[factor]] = [_size(i, o) for i, o in sizes]
        else:
            display[_HEADINGS.get(factor, factor)] = rows[factor].map(_show).to_numpy()
    same = ["source", "variant", "input_size", *varying]
    if rows.astype({c: str for c in same}).duplicated(subset=same).any():  # one size, several requests
        display["size request"] = rows["point"].str.replace(":", " ").to_numpy()
    if (rows["repeats"] > 1).any():
        display["repeats"] = rows["repeats"].astype(int).astype(str).to_numpy()
    return display


def short_names(sources: pd.Series) -> dict[str, str]:
    """Each results directory by its last part where those are unique (the caption names it in full)."""
    names = {s: Path(s).name or s for s in dict.fromkeys(sources)}
    return names if len(set(names.values())) == len(names) else {s: s for s in names}


QUALITY_METRICS = ("dice_mean", "iou_mean", "object_f1_mean", "map_mean", "rand_error_mean", "dice_threshold",
                   "dice_all_foreground", "object_f1_threshold", "curve_object_f1_gain", "object_f1_per_gflop")


def _kind(metric: str) -> str:
    if metric in COUNT_METRICS:
        return "counts"
    if metric.endswith("_bytes") or metric.startswith("peak_mem"):
        return "memory"
    if metric in EXPORT_METRICS:
        return "export"
    return "quality" if metric in (*QUALITY_METRICS, "train_time_s") else "time"


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
    """'+4.3% [+2.1, +6.5]' (real), '+0.4% [-1.2, +2.0] ~' (within noise), '+3.0% no verdict (1 repeat)',
    '+4.0%' (exact)."""
    if row["is_reference"]:
        return "ref"
    rel = row[f"{metric}_rel"]
    if missing(rel):
        return "-"
    text = f"{rel * 100:+.1f}%"
    status = row.get(f"{metric}_verdict")
    if status in (stats.REAL, stats.NOISE):
        interval = f"{text} [{_signed(row[f'{metric}_rel_low'])}, {_signed(row[f'{metric}_rel_high'])}]"
        return f"{interval} {stats.NOISE_MARK}" if status == stats.NOISE else interval
    if status == stats.NONE:
        return f"{text} no verdict ({row[f'{metric}_why']})"
    return text


def _signed(rel: float) -> str:
    return f"{rel * 100:+.1f}" if abs(rel) < 1 else f"{rel * 100:+.0f}"


def _tidy(comparison: Comparison) -> pd.DataFrame:
    """The machine-readable table: raw values in the columns' own units, integers kept exact."""
    table = comparison.table.copy()
    for column in ("params", "params_trainable", "macs", "flops", "other_flops", "train_flops",
                   "peak_mem_bytes", "saved_activation_bytes", "param_bytes", "grad_bytes", "optimizer_bytes",
                   "predicted_peak_bytes", "model_bytes", "output_size"):
        for name in (column, f"{column}_ref", f"{column}_low", f"{column}_high"):
            if name in table and not table[name].abs().max() >= 2**63:  # a count beyond int64 stays a float
                table[name] = table[name].round().astype("Int64")
    table.insert(0, "baseline", comparison.baseline)
    return table


def _latex(display: pd.DataFrame) -> str:
    """A booktabs tabular; text cells escaped, Δ as a math symbol so pdflatex needs no Unicode set-up."""
    styler = display.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    align = "".join("l" if c in _TEXT_COLUMNS else "r" for c in display.columns)
    text = styler.to_latex(hrules=True, column_format=align)
    return text.replace("Δ", r"$\Delta$").replace("→", r"$\to$").replace(MISMATCH_MARK, r"$^\dagger$")
