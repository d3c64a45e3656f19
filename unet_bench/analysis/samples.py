"""The per-repeat samples behind a timing verdict: which repeats pair with which, and the control's times.

`compare` aggregates the repeats of a case into one row; for its timings it also keeps, per row, the
values by repeat (rounds pair by repeat index), the paired ratios its processes measured against their
in-process reference, the control workload's time of each repeat, and the round of each repeat of an
`unet-bench ab` run. `judge_timing` then picks the strongest pairing two rows share (`stats`): in
process, then by round (``ab`` rounds across two environments), then, across two runs, the
control-aware rule; None where nothing pairs (the caller falls back to Welch). The same samples say how
much noise each run had: the smallest change its rows could show as real (`noise`, `paired_noise`,
`seed_noise`), which the caption states under the table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from unet_bench.analysis import stats
from unet_bench.analysis.pairing import missing

TIMED = ("latency_ms_median", "latency_ms_per_output_mpix")  # the timings verdicts are taken on


def _by_repeat(group: pd.DataFrame, column: str, positive: bool = True) -> dict[int, float]:
    """A column's values by repeat index; ``positive``: only values above zero (a time, not a round)."""
    if column not in group:
        return {}
    repeats = group["repeat"] if "repeat" in group else pd.Series(range(len(group)), index=group.index)
    return {int(r) if not missing(r) else k: float(v) for k, (r, v) in enumerate(zip(repeats, group[column],
                                                                                    strict=True))
            if not missing(v) and (float(v) > 0 or not positive)}


def _single(group: pd.DataFrame, column: str) -> Any:
    """The one value a column holds over the group, or None (absent, or several)."""
    if column not in group:
        return None
    values = {v for v in group[column] if not missing(v)}
    return values.pop() if len(values) == 1 else None


def _reference_runtime(group: pd.DataFrame) -> str | None:
    """The runtime the in-process pairs were timed against: torch eager where a record leaves it unset (it
    was written before records named it, or the pair is with the baseline variant under torch)."""
    if "paired_reference_runtime" not in group:
        return "torch"
    values = {"torch" if missing(v) else v for v in group["paired_reference_runtime"]}
    return values.pop() if len(values) == 1 else None


def row_samples(group: pd.DataFrame, metrics: list[str]) -> dict[str, Any]:
    """The private columns (``_``-prefixed) of one aggregated row that `judge_timing` reads."""
    out: dict[str, Any] = {"_control": _by_repeat(group, "control_ms_median"),
                           "_control_kind": _single(group, "extra_control_method"),
                           "_paired": _by_repeat(group, "paired_ratio"),
                           "_paired_ref": _single(group, "paired_reference"),
                           "_paired_ref_runtime": _reference_runtime(group),
                           "_ab_run": _single(group, "extra_ab_run"),
                           "_ab": _by_repeat(group, "extra_ab_round", positive=False)}
    latency = group["latency_ms_median"] if "latency_ms_median" in group else None
    for metric in metrics:
        if metric in TIMED and metric in group:
            out[f"_by_repeat_{metric}"] = _by_repeat(group, metric)
            scale = (group[metric] / latency).dropna() if latency is not None else pd.Series(dtype=float)
            out[f"_scale_{metric}"] = float(scale.median()) if len(scale) else math.nan
    return out


def judge_timing(new: pd.Series, ref: pd.Series, metric: str, by_source: bool) -> stats.Effect | stats.Verdict | None:
    """The paired or control-aware effect of row ``new`` against row ``ref`` for a timing, or None."""
    if metric not in TIMED or f"_by_repeat_{metric}" not in new or f"_by_repeat_{metric}" not in ref:
        return None
    values, base = new[f"_by_repeat_{metric}"], ref[f"_by_repeat_{metric}"]
    if not by_source:
        # In process only where the case was timed against this very row: the same registered variant under
        # the same runtime (an exported case is timed against its own variant under torch, not the baseline).
        if new["_paired"] and new["_paired_ref"] == ref["name"] and new["_paired_ref_runtime"] == ref["runtime"]:
            shift = math.log(new[f"_scale_{metric}"] / ref[f"_scale_{metric}"]) \
                if new[f"_scale_{metric}"] > 0 and ref[f"_scale_{metric}"] > 0 else 0.0
            return stats.paired([math.log(r) + shift for r in new["_paired"].values()], "in process")
        return _by_round(values, base, "by round")
    if new["_ab_run"] is not None and new["_ab_run"] == ref["_ab_run"]:
        # Each process's own control cancels the share of the machine that process got (a neighbour that
        # loads one round's old process and not its new one), which pairing by round cannot.
        over_control = new["_control_kind"] is not None and new["_control_kind"] == ref["_control_kind"]
        rounds_new, rounds_ref = (_rounds(row, samples, over_control) for row, samples in ((new, values), (ref, base)))
        return _by_round(rounds_new, rounds_ref, "alternated, by round" + ", over the control" * over_control)
    if new["_control_kind"] is None or new["_control_kind"] != ref["_control_kind"]:
        return None
    mine = [r for r in values if r in new["_control"]]
    theirs = [r for r in base if r in ref["_control"]]
    return stats.across_runs([base[r] for r in theirs], [values[r] for r in mine],
                             [ref["_control"][r] for r in theirs], [new["_control"][r] for r in mine])


def _rounds(row: pd.Series, values: dict[int, float], over_control: bool) -> dict[int, float]:
    """An ab row's values keyed by its round, each divided by its process's control time if asked."""
    return {row["_ab"][r]: v / row["_control"][r] if over_control else v for r, v in values.items()
            if r in row["_ab"] and (not over_control or r in row["_control"])}


def _by_round(new: dict[int, float], ref: dict[int, float], method: str) -> stats.Effect | stats.Verdict | None:
    common = [r for r in new if r in ref]
    if len(common) < stats.MIN_REPEATS:
        return None
    return stats.paired([math.log(new[r] / ref[r]) for r in common], method)


def paired_noise(rows: pd.DataFrame) -> dict[str, tuple[float | None, int, int]]:
    """Per source and mode ('results/a, infer'): the smallest latency change its in-process paired rows
    could call real, the typical processes per row, and how many rows were paired. Per mode, as the rows'
    noise is shared (`stats.moderate`): a training step and a forward are not equally noisy."""
    if "_paired" not in rows:
        return {}
    out = {}
    keys = ["source", "mode"] if "mode" in rows else ["source"]
    for key, group in rows.groupby(keys, sort=False):
        logs = [np.log(list(p.values())) for p in group["_paired"] if isinstance(p, dict) and p]
        if logs:
            label = ", ".join(str(k) for k in key) if isinstance(key, tuple) else str(key)
            out[label] = (stats.minimal_detectable_paired(logs), int(np.median([len(g) for g in logs])), len(logs))
    return out


def noise(rows: pd.DataFrame) -> dict[str, tuple[float | None, int]]:
    """Per source: the smallest latency change this run could call real, and the typical repeats."""
    column = "_samples_latency_ms_median"
    if column not in rows:
        return {}
    out = {}
    for source, group in rows.groupby("source", sort=False):
        samples = [s for s in group[column] if len(s)]
        if samples:
            out[source] = (stats.minimal_detectable(samples), int(np.median([len(s) for s in samples])))
    return out


INSTANCE_NOISE = ("object_f1_mean", "rand_error_mean")  # beside Dice, the differences said for these too


def instance_noise(rows: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """Per source, per instance metric of `INSTANCE_NOISE` measured: as `seed_noise` says for Dice."""
    out: dict[str, dict[str, float | None]] = {}
    for metric in INSTANCE_NOISE:
        for source, (detectable, _) in seed_noise(rows, metric).items():
            out.setdefault(source, {})[metric] = detectable
    return out


def seed_noise(rows: pd.DataFrame, metric: str = "dice_mean") -> dict[str, tuple[float | None, int]]:
    """Per source: the smallest difference of ``metric`` the seeds' spread lets a comparison call real,
    and the typical number of seeds."""
    column = f"_samples_{metric}"
    if column not in rows:
        return {}
    out = {}
    for source, group in rows.groupby("source", sort=False):
        samples = [s for s in group[column] if isinstance(s, list) and len(s)]
        if samples:
            out[source] = (stats.minimal_detectable(samples, log=False), int(np.median([len(s) for s in samples])))
    return out
