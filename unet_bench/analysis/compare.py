"""The ablation table: each variant against a baseline, with every change stated as an effect and a verdict.

`compare` aggregates the repeats of each case and puts every row beside its reference (`pairing`): the
baseline variant (default ``paper``) at the same grid point of the same results directory, or, when the
baseline names a results directory, the same variant at the same grid point there (before/after a change,
CPU vs GPU); by runtime (``by="runtime"``), the same variant at the same grid point and setting under the
baseline runtime (default torch eager), where an exported network's speed is judged against itself. Values
are the geometric mean over repeats for timings and memory (so that Δ is exactly the ratio the interval is
about), the mean over seeds for quality, the value itself for exact counts.

**Like for like.** When a row and its reference differ in output size (a padded network returns its whole
input, a valid one a smaller map), the default figures are per output pixel — latency per output megapixel,
MACs per output pixel, throughput in output megapixels per second — and the caption says so; ``per_image``
keeps the per-image figures.

**Verdicts** (`stats`): each change carries a confidence interval over independent repeats and is called
real only when the interval excludes zero; fewer than 3 repeats on either side give no verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sstats

from unet_bench.analysis import stats
from unet_bench.analysis.conditions import control_change_notes, control_drift_notes, load_warnings
from unet_bench.analysis.formats import BY
from unet_bench.analysis.pairing import config_change, grid_points, key, key_one, legacy_sources, missing, pair
from unet_bench.analysis.results import FACTORS, METRICS, PER_PIXEL, listed, ok, variant_labels
from unet_bench.analysis.runtimes import RUNTIME_METRICS, export_facts, mismatched
from unet_bench.analysis.samples import (
    TIMED,
    instance_noise,
    judge_timing,
    noise,
    paired_noise,
    row_samples,
    seed_noise,
)
from unet_bench.errors import BenchError, choices
from unet_bench.record import MODES

DEFAULT_METRICS = ("params", "macs", "peak_mem_bytes", "latency_ms_median", "dice_mean", "dice_threshold",
                   "dice_all_foreground", "object_f1_mean", "object_f1_threshold", "map_mean", "rand_error_mean",
                   "curve_object_f1_gain", "object_f1_per_gflop",
                   "energy_j_per_image", "energy_j_per_output_mpix", "energy_j_per_train_step")
MESSAGE_CHARS = 200  # of a failed case's message quoted in an error line
COUNT_METRICS = ("params", "params_trainable", "macs", "flops", "other_flops", "train_flops", "macs_per_output_pixel")


@dataclass(frozen=True)
class Family:
    """The rows of one metric judged together: how many had an interval, how many are real, at what level."""

    rows: int
    real: int
    level: float
    methods: dict[str, int] = field(default_factory=dict)  # how the rows' samples were paired: rows each


@dataclass
class Comparison:
    """An aggregated table plus what a reader needs to interpret it.

    ``table`` has one row per source, variant label, setting and grid point: the factor columns,
    ``output_size``, ``repeats``, ``point`` (the grid point), ``ref_input_size`` / ``ref_output_size`` /
    ``ref_variant`` (the reference's), ``config_change`` (fields that differ from the reference, comparing
    results directories) and per metric ``<m>`` (see the module docstring), ``<m>_low``/``<m>_high`` (its
    spread: a 95 % interval over repeats, else the timed blocks' p25-p75, mean ± std over seeds, or the
    range), ``<m>_ref``, ``<m>_rel`` (relative change, 0.1 = +10 %) and, for measured (not counted)
    metrics, ``<m>_verdict`` (`stats.REAL` ...), ``<m>_rel_low``/``<m>_rel_high`` (the interval of the
    change), ``<m>_level``, ``<m>_p`` and ``<m>_why`` (why there is no verdict); ``output_mismatch``,
    ``worst_rel_error`` and ``error_tolerance`` (`runtimes.export_facts`).
    """

    table: pd.DataFrame
    baseline: str
    by: str  # the column the baseline is a value of: variant, runtime or source (a results directory)
    metrics: list[str]
    common_overrides: str = ""
    failed: list[str] = field(default_factory=list)
    per_pixel: bool = False  # the default figures were turned per output pixel (outputs differ in size)
    outputs_differ: bool = False
    notes: list[str] = field(default_factory=list)  # worth a line on stderr: legacy pairing, load differences
    families: dict[str, Family] = field(default_factory=dict)  # per judged metric
    noise: dict[str, tuple[float | None, int]] = field(default_factory=dict)  # source: (detectable change, repeats)
    seed_noise: dict[str, tuple[float | None, int]] = field(default_factory=dict)  # source: (Dice difference, seeds)
    # "source, mode": (detectable change of its in-process paired rows, processes per row, paired rows)
    paired_noise: dict[str, tuple[float | None, int, int]] = field(default_factory=dict)
    machine: list[str] = field(default_factory=list)  # what the control workload said: caption lines
    # source: {metric: smallest difference the seeds can tell} for the instance metrics (`INSTANCE_NOISE`)
    instance_noise: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def by_source(self) -> bool:
        """Whether the baseline is a results directory (before/after), not a variant or runtime."""
        return self.by == "source"


def available_metrics(frame: pd.DataFrame) -> list[str]:
    """Metrics with at least one measured value in ``frame``."""
    return [m for m in METRICS if m in frame and frame[m].notna().any()]


def choose_metrics(frame: pd.DataFrame, metrics: Sequence[str] | None,
                   defaults: Sequence[str] = DEFAULT_METRICS) -> list[str]:
    """The requested metrics (or the defaults that were measured); unknown ones are refused."""
    present = available_metrics(frame)
    if metrics is None:
        return [m for m in defaults if m in present] or present
    for metric in metrics:
        if metric in METRICS and metric not in present:
            raise BenchError(f"metric {metric!r} was not measured in these results; measured: {choices(present)}")
        if metric not in present:
            raise BenchError(f"unknown metric {metric!r}; metrics measured in these results: {choices(present)}")
    return list(metrics)


def compare(frame: pd.DataFrame, baseline: str | None = None, metrics: Sequence[str] | None = None,
            per_image: bool = False, defaults: Sequence[str] | None = None, by: str = "variant") -> Comparison:
    """Compare every variant with ``baseline`` (a variant label or a source), or with ``by="runtime"`` every
    runtime with the baseline runtime (default ``torch``); see the module docstring.

    ``baseline=None`` means ``paper`` for one source (else its first variant, e.g. ``3d`` for a suite of
    volumes) and the first source for several. ``metrics``: shown as named; else ``defaults`` (by default
    `DEFAULT_METRICS`, or `runtimes.RUNTIME_METRICS` by runtime), turned per output pixel where the compared
    outputs differ (unless ``per_image``).
    """
    if by not in BY:
        raise BenchError(f"unknown comparison by {by!r}; valid are {choices(BY)}")
    sources = list(dict.fromkeys(frame["source"]))
    if ok(frame).empty:
        raise BenchError(f"no successful measurement in {', '.join(sources)}: {why_failed(frame)}")
    defaults = defaults or (RUNTIME_METRICS if by == "runtime" else DEFAULT_METRICS)
    chosen = choose_metrics(ok(frame), metrics, defaults)  # a failed record may carry a count, not a measurement
    labels, common = variant_labels(frame)
    frame = frame.assign(name=frame["variant"], variant=labels)
    notes = []
    if baseline is None and by == "runtime":
        baseline = "torch"
    elif baseline is None:
        baseline = sources[0] if len(sources) > 1 else "paper" if "paper" in set(labels) else labels.iloc[0]
        if baseline not in ("paper", sources[0]):
            notes.append(f"no paper rows: the baseline is {baseline}, the first variant; choose with --baseline")
    column = "source" if by == "variant" and baseline in sources else by
    done = ok(frame)
    if column == "runtime" and baseline not in set(frame["runtime"]):
        raise BenchError(f"unknown baseline runtime {baseline!r}; valid baselines by runtime are the runtimes of "
                         f"these results: {choices(dict.fromkeys(frame['runtime']))}")
    if column == "variant" and baseline not in set(labels):
        raise BenchError(f"unknown baseline {baseline!r}; valid baselines are the variants "
                         f"{choices(dict.fromkeys(labels))} or the results {choices(sources)}")
    by_source = column == "source"
    if baseline not in set(done[column]):
        others = dict.fromkeys(done[column])
        raise BenchError(f"no successful measurement of the baseline {baseline!r}: "
                         f"{why_failed(frame[frame[column] == baseline])}; choose another with --baseline: "
                         f"{choices(others)}")
    legacy = legacy_sources(done)
    notes += [f"{s}: written before records carried their size rule; its rows are paired by equal input size "
              "only" for s in legacy]
    done = done.assign(point=grid_points(done, set(sources) if by_source and legacy else set(legacy)))
    present = available_metrics(done)
    wanted = [*chosen, *(PER_PIXEL[m] for m in chosen if m in PER_PIXEL)]
    wanted += [METRICS[m].timing for m in wanted if METRICS[m].timing]
    rows = _aggregate(done, [m for m in dict.fromkeys(wanted) if m in present])
    pairs = pair(rows, baseline, column)
    differ = any(_differs(rows.at[i, "output_size"], rows.at[j, "output_size"]) for i, j in pairs.items())
    per_pixel = differ and not per_image and metrics is None
    if per_pixel:
        chosen = [PER_PIXEL[m] if m in PER_PIXEL and PER_PIXEL[m] in present else m for m in chosen]
    table, families = _relative(rows, pairs, chosen, baseline, column)
    if by_source:
        notes += load_warnings(done, baseline, sources)
    machine = (control_change_notes(done, baseline, sources) if by_source else []) + control_drift_notes(done)
    failed = [
        f"{r.variant}{'' if r.runtime == 'torch' else f' on {r.runtime}'} {r.mode} {r.input_size}px b{r.batch} "
        f"({r.source}): {r.status}"
        + (f" - {r.message}" if r.message else "")
        for r in frame[frame["status"] != "ok"].itertuples()
    ]
    return Comparison(_ordered(table, baseline, column), baseline, column, chosen, common, failed,
                      per_pixel, differ, notes, families, noise(rows), seed_noise(rows), paired_noise(rows), machine,
                      instance_noise(rows))


def why_failed(failed: pd.DataFrame) -> str:
    """'3 error, 1 oom; first: paper infer 572px: RuntimeError: ...': what the failed rows say, in one line."""
    counts = failed["status"].value_counts(sort=False)
    first = failed.iloc[0]
    size = key_one(first["input_size"])
    case = " ".join([str(first["variant"]), str(first["mode"]), *([f"{int(size)}px"] if size is not None else [])])
    message = str(first["message"]).strip().splitlines()[0][:MESSAGE_CHARS] if str(first["message"]).strip() \
        else "no message recorded"
    return f"{', '.join(f'{n} {status}' for status, n in counts.items())}; first: {case}: {message}"


def _differs(a: Any, b: Any) -> bool:
    return not missing(a) and not missing(b) and a != b


# --- one row per case ------------------------------------------------------------------------------------


def _aggregate(frame: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per source, variant label, setting and grid point: each metric's value over the repeats,
    its spread (``_low``, ``_high``) and what its verdict needs (``_samples_<m>``)."""
    keys = ["source", "variant", *FACTORS, "point"]
    config = [c for c in frame.columns if c.startswith("cfg_")]
    out = []
    for group_key, group in frame.groupby(keys, dropna=False, sort=False):
        row = dict(zip(keys, key(group_key), strict=True))
        first = group.iloc[0]
        row.update(name=first["name"], size_rule=key_one(first.get("size_rule")),
                   requested_size=key_one(first.get("requested_size")), output_size=group["output_size"].median(),
                   repeats=len(group),
                   _config={c.removeprefix("cfg_"): first[c] for c in config})
        for metric in metrics:
            row.update(_summarise(group, metric))
        row.update(row_samples(group, metrics), **export_facts(group))
        out.append(row)
    return pd.DataFrame(out)


def _summarise(group: pd.DataFrame, metric: str) -> dict[str, Any]:
    info = METRICS[metric]
    values = group[metric].dropna().astype(float)
    out: dict[str, Any] = {f"_samples_{metric}": values.to_list()}
    if values.empty:
        return {**out, metric: np.nan, f"{metric}_low": np.nan, f"{metric}_high": np.nan}
    if info.verdict == "seeds":
        seeds = _seed_values(group, info.samples)
        if seeds:
            out[f"_samples_{metric}"] = seeds
            mean, std = float(np.mean(seeds)), float(np.std(seeds, ddof=1)) if len(seeds) > 1 else 0.0
        else:  # records without per-seed values: their mean, std and seed count
            mean = float(values.median())
            std = float(np.nan_to_num(group[info.std].median())) if info.std in group else 0.0
            seeds_n = group["quality_seeds"].max() if "quality_seeds" in group else np.nan
            out[f"_samples_{metric}"] = stats.Summary(mean, std**2, 1 if missing(seeds_n) else int(seeds_n))
        return {**out, metric: mean, f"{metric}_low": mean - std, f"{metric}_high": mean + std}
    positive = bool((values > 0).all())
    if info.verdict == "exact" or not positive:
        return {**out, metric: float(values.median()), f"{metric}_low": values.min(), f"{metric}_high": values.max()}
    logs = np.log(values.to_numpy())
    value = float(np.exp(logs.mean()))
    if len(logs) > 1:
        half = float(sstats.t.ppf(0.975, len(logs) - 1)) * logs.std(ddof=1) / math.sqrt(len(logs))
        low, high = value * math.exp(-half), value * math.exp(half)
    else:
        low, high = _block_spread(group.iloc[0], info, value)
    return {**out, metric: value, f"{metric}_low": low, f"{metric}_high": high}


def _block_spread(record: pd.Series, info: Any, value: float) -> tuple[float, float]:
    """One repeat: the p25-p75 of its timed blocks, carried over to a figure derived from the timing."""
    spread = (METRICS[info.timing] if info.timing else info).spread
    if spread is None or not all(record.get(c, 0) > 0 for c in (*spread, "latency_ms_median")):  # nor is NaN
        return value, value
    low, high = record[spread[0]] / record["latency_ms_median"], record[spread[1]] / record["latency_ms_median"]
    return (value / high, value / low) if info.higher_is_better else (value * low, value * high)


def _seed_values(group: pd.DataFrame, column: str | None) -> list[float]:
    if column is None or column not in group:
        return []
    seeds: list[float] = []
    for text in group[column].dropna():
        seeds += [float(v) for v in listed(text) or ()]
    return seeds


# --- each row against its reference ----------------------------------------------------------------------


def _relative(rows: pd.DataFrame, pairs: dict[Any, Any], metrics: list[str], baseline: str,
              by: str) -> tuple[pd.DataFrame, dict[str, Family]]:
    """Add each row's reference values, relative changes and verdicts (``by``: the baseline's column)."""
    by_source = by == "source"
    table = rows.copy()
    refs = pd.Series(pairs, dtype=object).reindex(rows.index)
    for column in ("input_size", "output_size", "variant"):
        table[f"ref_{column}"] = [rows.at[j, column] if not missing(j) else np.nan for j in refs]
    table["is_reference"] = rows[by] == baseline
    table["config_change"] = [
        ", ".join(config_change(rows.at[j, "_config"], rows.at[i, "_config"])) if by_source and not missing(j)
        else "" for i, j in refs.items()]
    for metric in metrics:
        base = [rows.at[j, metric] if not missing(j) else np.nan for j in refs]
        table[f"{metric}_ref"] = base
        table[f"{metric}_rel"] = [v / b - 1 if b and not missing(b) else np.nan for v, b in zip(rows[metric], base,
                                                                                                   strict=True)]
    others = {i: j for i, j in pairs.items() if i != j}
    families: dict[str, Family] = {}
    judged: dict[str, tuple[dict[Any, stats.Effect | stats.Verdict], float]] = {}
    for metric in dict.fromkeys(METRICS[m].timing or m for m in metrics if METRICS[m].verdict != "exact"):
        found = {i: _judge(rows, metric, i, j, by_source) for i, j in others.items() if metric in rows  # derived
                 and not missing(rows.at[i, metric]) and not missing(rows.at[j, metric])}  # without a timing
        found = stats.moderate(found, {i: _noise_group(rows.loc[i]) for i in found})
        effects = [e.p for e in found.values() if isinstance(e, stats.Effect)]
        level, real = stats.fcr_level(effects)
        methods = pd.Series([e.method for e in found.values() if e.method]).value_counts(sort=False)
        families[metric] = Family(len(effects), real, level, {str(k): int(v) for k, v in methods.items()})
        judged[metric] = (found, level)
    for metric in metrics:
        if METRICS[metric].verdict == "exact":
            continue
        timing = METRICS[metric].timing
        found, level = judged[timing or metric]
        verdicts = {i: _derive(rows, metric, i, others[i], found[i], level) if timing else _settle(found[i], level)
                    for i in found if not missing(rows.at[i, metric]) and not missing(rows.at[others[i], metric])}
        paired = [i for i, v in verdicts.items() if v.method and v.method != "unpaired" and not missing(v.rel)]
        table.loc[paired, f"{metric}_rel"] = [verdicts[i].rel for i in paired]  # the paired estimate, as its interval
        for name in ("verdict", "rel_low", "rel_high", "level", "p", "why", "method"):
            attribute = {"verdict": "status", "rel_low": "low", "rel_high": "high"}.get(name, name)
            table[f"{metric}_{name}"] = [getattr(verdicts[i], attribute) if i in verdicts else None for i in rows.index]
    families = {m: f for m, f in families.items() if m in metrics}
    return table.drop(columns=[c for c in table if c.startswith("_")]), families


def _noise_group(row: pd.Series) -> tuple:
    """Rows measured alike (same mode and grid point), whose paired timings share their noise."""
    return tuple(key_one(row.get(k)) for k in ("mode", "device", "requested_size", "threads"))


def _judge(rows: pd.DataFrame, metric: str, i: Any, j: Any, by_source: bool) -> stats.Effect | stats.Verdict:
    """The effect of row ``i`` against row ``j`` for a measured (not derived) metric: paired or
    control-aware for a timing where the rows allow it (`samples`), else over the repeats unpaired; none
    for a timing where either output differs from eager torch's (`runtimes.mismatched`)."""
    found = (mismatched(rows.loc[i], rows.loc[j]) if metric in TIMED else None) \
        or judge_timing(rows.loc[i], rows.loc[j], metric, by_source)
    if found is not None:
        return found
    info = METRICS[metric]
    new, ref = rows.at[i, f"_samples_{metric}"], rows.at[j, f"_samples_{metric}"]
    unit = "seed" if info.verdict == "seeds" else "repeat"
    if not isinstance(new, stats.Summary) and not isinstance(ref, stats.Summary):
        log = info.verdict != "seeds" and min(new) > 0 and min(ref) > 0
        return stats.judge(stats.Summary.of(ref, log), stats.Summary.of(new, log), log, unit,
                           once_is_exact=info.verdict == "trace")
    summaries = [s if isinstance(s, stats.Summary) else stats.Summary.of(s, log=False) for s in (ref, new)]
    return stats.judge(*summaries, log=False, unit=unit)


def _settle(found: stats.Effect | stats.Verdict, level: float) -> stats.Verdict:
    return stats.verdict(found, level) if isinstance(found, stats.Effect) else found


def _derive(rows: pd.DataFrame, metric: str, i: Any, j: Any, found: stats.Effect | stats.Verdict,
            level: float) -> stats.Verdict:
    """A figure computed from a timing: its own change, with the timing's noise and level."""
    value, ref = rows.at[i, metric], rows.at[j, metric]
    if isinstance(found, stats.Effect) and value > 0 and ref > 0:
        change = math.log(value / ref)
        timing = METRICS[metric].timing
        if found.method != "unpaired" and rows.at[i, timing] > 0 and rows.at[j, timing] > 0:
            # a paired timing estimate differs from the ratio of the means: a derived figure (1 / time)
            # moves by the same amount the other way
            change -= found.estimate - math.log(rows.at[i, timing] / rows.at[j, timing])
        return stats.verdict(found.shifted(change), level)
    return replace(found, rel=value / ref - 1)


def _ordered(table: pd.DataFrame, baseline: str, by: str) -> pd.DataFrame:
    """Rows that belong together side by side: per mode and setting, the reference first (for a
    comparison of sources: per variant and setting, the sources next to each other; by runtime: per
    variant and setting, the runtimes next to each other, the baseline's first; torch first otherwise)."""
    modes = {m: i for i, m in enumerate(MODES)}
    groups = table["ref_variant"].where(table["ref_variant"].notna(), table["variant"]) if by == "source" \
        else table["variant"]
    variants = {v: i for i, v in enumerate(dict.fromkeys([baseline, *groups]))}
    sources = {s: i for i, s in enumerate(dict.fromkeys([baseline, *table["source"]]))}
    first_runtime = baseline if by == "runtime" else "torch"
    runtimes = {r: i for i, r in enumerate(dict.fromkeys([first_runtime, *table["runtime"]]))}

    def rank(value: Any) -> tuple:
        return (value is None, value if value is not None else 0)

    def order(i: int) -> tuple:
        row = table.iloc[i]
        size = row["input_size"] if missing(row["ref_input_size"]) else row["ref_input_size"]
        setting = tuple(rank(key_one(row[f])) for f in FACTORS if f not in ("mode", "runtime", "input_size"))
        variant, source, runtime = variants[groups.iloc[i]], sources[row["source"]], runtimes[row["runtime"]]
        first, last = {"source": ((variant, runtime), source), "variant": ((source, runtime), variant),
                       "runtime": ((source, variant), runtime)}[by]
        return (modes.get(row["mode"], len(modes)), str(row["mode"]), first, setting[:1], rank(key_one(size)),
                setting[1:], row["point"], last, rank(key_one(row["input_size"])))

    return table.iloc[sorted(range(len(table)), key=order)].reset_index(drop=True)
