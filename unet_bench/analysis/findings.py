"""The report's summary: what each variant really changes, in sentences.

For each variant: its real effects on latency (per output pixel where the table is), memory, parameters
and quality against the reference, largest first, each with its interval. Changes within noise, and
changes without a verdict (too few repeats), are not stated as effects; counts are exact and stated
when they differ. The first lines say how much noise the run had: below that, nothing can be claimed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from unet_bench.analysis import stats
from unet_bench.analysis.compare import COUNT_METRICS, Comparison
from unet_bench.analysis.results import METRICS
from unet_bench.analysis.tables import noise_line, seed_noise_line

# What the summary speaks of, in this order of kinds: latency, memory, parameters, quality.
SUMMARY_METRICS = ("latency_ms_per_output_mpix", "latency_ms_median", "peak_mem_bytes", "saved_activation_bytes",
                   "params", "macs_per_output_pixel", "macs", "dice_mean", "iou_mean", "object_f1_mean", "map_mean",
                   "rand_error_mean")
PER_VARIANT = 4  # effects per variant, largest first


def summarize(comparison: Comparison) -> list[str]:
    """The run's noise, then one sentence per variant (or per variant and results directory)."""
    lines = [noise_line(source, *noise) for source, noise in comparison.noise.items()]
    lines += [seed_noise_line(source, *noise) for source, noise in comparison.seed_noise.items()]
    lines += _baselines(comparison.table)
    table = comparison.table[~comparison.table["is_reference"] & comparison.table["ref_variant"].notna()]
    metrics = [m for m in SUMMARY_METRICS if m in comparison.metrics]
    whom = ["variant", "source"] if comparison.by_source else ["variant"]
    for (name, *source), rows in table.groupby(whom, sort=False):
        effects = sorted((e for m in metrics for e in _effects(rows, m)), key=lambda e: -e[0])
        who = f"**{name}**" + (f" ({source[0]})" if source else "")
        against = f"against {rows['ref_variant'].iloc[0]}" + (f" in {comparison.baseline}" if source else "")
        unjudged = [METRICS[m].label for m in metrics if _unjudged(rows, m)]
        said = "; ".join(text for _, text in effects[:PER_VARIANT])
        if unjudged:
            said += ("; " if said else "") + f"no verdict on {', '.join(unjudged)} ({_why(rows, metrics)})"
        lines.append(f"{who} {against}: {said or 'no change beyond the noise of these runs'}.")
    for metric, family in comparison.families.items():
        if family.rows:
            lines.append(f"{family.real} of {family.rows} {METRICS[metric].label} changes are real; the rest are "
                         "within noise and not stated above.")
    unjudged = [m for m in comparison.metrics if _unjudged(table, m)]
    if unjudged:
        count = sum(_unjudged(table, m) for m in unjudged)
        lines.append(f"{count} changes have no verdict ({_why(table, unjudged)}); verdicts need "
                     f"{stats.MIN_REPEATS} repeats a side.")
    return lines or ["No differences against the baseline were measured."]


def _baselines(table: pd.DataFrame) -> list[str]:
    """Per results directory: the networks' Dice against the two baselines on the same data."""
    if "dice_threshold" not in table or "dice_mean" not in table:
        return []
    lines = []
    for source, rows in table[table["dice_threshold"].notna()].groupby("source", sort=False):
        shown = {"tuned threshold": rows["dice_threshold"], "all foreground": rows.get("dice_all_foreground")}
        said = [f"{name} {'/'.join(f'{v:.3f}' for v in dict.fromkeys(values.dropna()))}"
                for name, values in shown.items() if values is not None and values.notna().any()]
        dice = rows["dice_mean"]
        lines.append(f"{source}: the networks score Dice {dice.min():.3f} to {dice.max():.3f}; the baselines on the "
                     f"same validation data: {', '.join(said)}")
    return lines


def _unjudged(rows: pd.DataFrame, metric: str) -> int:
    """How many of ``rows`` have no verdict on ``metric``."""
    column = f"{metric}_verdict"
    return int((rows[column] == stats.NONE).sum()) if column in rows else 0


def _why(rows: pd.DataFrame, metrics: list[str]) -> str:
    """Why there is no verdict, e.g. '1 repeat' (the first reason found)."""
    return next(w for m in metrics if f"{m}_why" in rows for w in rows[f"{m}_why"] if isinstance(w, str) and w)


def _effects(rows: pd.DataFrame, metric: str) -> list[tuple[float, str]]:
    """(size, text) of the stated effects of ``metric``: counts once (they do not depend on the setting),
    measured ones per mode, the largest real row with how many of the mode's rows are real."""
    info = METRICS[metric]
    rows = rows.dropna(subset=[f"{metric}_rel"])
    if rows.empty:
        return []
    if metric in COUNT_METRICS:
        row = rows.iloc[0]
        rel = row[f"{metric}_rel"]
        return [] if rel == 0 else [(_size(rel), f"{info.label} {rel * 100:+.1f} % (exact)")]
    out = []
    for mode, group in rows.groupby("mode", sort=False):
        status = group.get(f"{metric}_verdict", pd.Series(stats.EXACT, index=group.index))
        real = group[status.isin([stats.REAL, stats.EXACT]) & (group[f"{metric}_rel"] != 0)]
        if real.empty:
            continue
        row = real.loc[real[f"{metric}_rel"].map(_size).idxmax()]
        rel = row[f"{metric}_rel"]
        text = f"{info.label} {rel * 100:+.1f} %"
        if status[row.name] == stats.REAL:
            text += f" [{row[f'{metric}_rel_low'] * 100:+.1f}, {row[f'{metric}_rel_high'] * 100:+.1f}]"
        text += f" ({mode}{_where(row)}"
        text += f"; real in {len(real)} of {len(group)} settings)" if len(group) > 1 else ")"
        out.append((_size(rel), text))
    return out


def _where(row: pd.Series) -> str:
    size = row["input_size"]
    if size is None or (isinstance(size, float) and math.isnan(size)):
        return ""
    out = row["output_size"]
    return f", {int(size)} px" if out is None or np.isnan(out) else f", {int(size)}→{int(out)} px"


def _size(rel: float) -> float:
    """How large a relative change is, symmetric in halving and doubling."""
    return abs(math.log1p(rel)) if rel > -1 else math.inf
