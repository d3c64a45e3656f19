"""The ablation table: each variant against a baseline measured in the same run, and whether a latency
change is larger than the noise.

`compare` aggregates the repeats of each case (median of the repeat values) and puts every row beside its
reference: the baseline variant (default ``paper``) in the same results directory and setting, or, when
the baseline names a results directory, the same variant and setting in that directory (before/after a
change, CPU vs GPU). A setting is the `FACTORS` (mode, device, dtype, batch, ...) plus the input size;
when the variants were given different inputs (valid convs need other sizes), rows are paired one to one
with the reference: same input size, else the same output size (the suite's ``common-output`` rule), else
the nearest output size within 10 % (``nearest-output``), else the nearest input size within 10 %
(``nearest-input``); a row with none of these has no reference and no Δ.

**Noise rule** for latency (and any metric with a measured spread): the change is *within noise* when
the two interquartile intervals overlap — each interval running from the lowest p25 to the highest p75
over the case's repeats — or when a two-sided Mann–Whitney U test on the repeat medians gives p ≥ 0.05.
The test is run only when both sides have at least 3 repeats and enough of them for p < 0.05 to be
reachable at all (2 / C(n₁+n₂, n₁) < 0.05: 4 v 4, 3 v 5; 3 v 3 cannot, so there the intervals decide).
A change is reported as real only when neither says noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from unet_bench.analysis.results import FACTORS, METRICS, ok, variant_labels
from unet_bench.analysis.stats import within_noise
from unet_bench.errors import BenchError, choices
from unet_bench.record import MODES

SIZE_TOLERANCE = 0.10  # nearest-valid sizes of one grid point differ by less than this fraction
DEFAULT_METRICS = ("params", "macs", "peak_mem_bytes", "latency_ms_median", "dice_mean")
COUNT_METRICS = ("params", "params_trainable", "macs", "flops", "other_flops", "train_flops", "macs_per_output_pixel")


@dataclass
class Comparison:
    """An aggregated table plus what a reader needs to interpret it.

    ``table`` has one row per source, variant label and setting: the factor columns, ``output_size``,
    ``repeats``, ``ref_input_size`` (the reference's input size) and per metric ``<m>`` (median over
    repeats), ``<m>_low``/``<m>_high`` (its measured spread), ``<m>_ref`` (the reference's value),
    ``<m>_rel`` (relative change, 0.1 = +10 %), and for timings ``<m>_within_noise`` and ``<m>_p`` (the
    test's p-value, NaN where it was not run).
    """

    table: pd.DataFrame
    baseline: str
    by_source: bool  # True: the baseline is a results directory; False: a variant
    metrics: list[str]
    common_overrides: str = ""
    failed: list[str] = field(default_factory=list)


def available_metrics(frame: pd.DataFrame) -> list[str]:
    """Metrics with at least one measured value in ``frame``."""
    return [m for m in METRICS if m in frame and frame[m].notna().any()]


def choose_metrics(frame: pd.DataFrame, metrics: list[str] | None) -> list[str]:
    """The requested metrics (or the defaults that were measured); unknown ones are refused."""
    present = available_metrics(frame)
    if metrics is None:
        return [m for m in DEFAULT_METRICS if m in present] or present
    for metric in metrics:
        if metric in METRICS and metric not in present:
            raise BenchError(f"metric {metric!r} was not measured in these results; measured: {choices(present)}")
        if metric not in present:
            raise BenchError(f"unknown metric {metric!r}; metrics measured in these results: {choices(present)}")
    return list(metrics)


def compare(frame: pd.DataFrame, baseline: str | None = None, metrics: list[str] | None = None) -> Comparison:
    """Compare every variant with ``baseline`` (a variant label or a source; see the module docstring).

    ``baseline=None`` means ``paper`` for one source and the first source for several.
    """
    metrics = choose_metrics(frame, metrics)
    labels, common = variant_labels(frame)
    frame = frame.assign(variant=labels)
    sources = list(dict.fromkeys(frame["source"]))
    if baseline is None:
        baseline = "paper" if len(sources) == 1 else sources[0]
    by_source = baseline in sources
    if not by_source and baseline not in set(labels):
        raise BenchError(f"unknown baseline {baseline!r}; valid baselines are the variants "
                         f"{choices(dict.fromkeys(labels))} or the results {choices(sources)}")
    rows = _aggregate(ok(frame), metrics)
    if rows.empty:
        raise BenchError(f"no successful measurement in {', '.join(sources)}; every case failed")
    table = _ordered(_relative(rows, metrics, baseline, by_source), baseline, by_source)
    failed = [
        f"{r.variant} {r.mode} {r.input_size}px b{r.batch} ({r.source}): {r.status}"
        + (f" - {r.message}" if r.message else "")
        for r in frame[frame["status"] != "ok"].itertuples()
    ]
    return Comparison(table, baseline, by_source, metrics, common, failed)


def _key(values) -> tuple:
    return tuple(None if missing(v) else v for v in values)


def key_one(value: Any) -> Any:
    """A value as a grouping key: NaN and None both become None."""
    return None if missing(value) else value


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _aggregate(frame: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per source, variant label and setting: the median over repeats, its spread (``_low`` and
    ``_high``: lowest p25 / highest p75 for timings, mean ± std for quality over seeds, else the range
    over repeats) and the repeat values."""
    keys = ["source", "variant", *FACTORS]
    out = []
    for key, group in frame.groupby(keys, dropna=False, sort=False):
        row = dict(zip(keys, _key(key), strict=True))
        row["output_size"] = group["output_size"].median()
        row["repeats"] = len(group)
        for metric in metrics:
            values = group[metric].dropna()
            info = METRICS[metric]
            row[metric] = values.median() if len(values) else np.nan
            low, high = values.min(), values.max()
            if info.spread:
                p25, p75 = group[info.spread[0]].dropna(), group[info.spread[1]].dropna()
                low, high = (p25.min(), p75.max()) if len(p25) and len(p75) else (low, high)
            elif info.std and group[info.std].notna().any():
                std = group[info.std].median()
                low, high = row[metric] - std, row[metric] + std
            row[f"{metric}_low"], row[f"{metric}_high"] = low, high
            row[f"_{metric}_samples"] = values.to_list()
        out.append(row)
    return pd.DataFrame(out)


def _relative(rows: pd.DataFrame, metrics: list[str], baseline: str, by_source: bool) -> pd.DataFrame:
    """Add each row's reference values, relative changes and noise flags."""
    setting = [f for f in FACTORS if f != "input_size"]
    if by_source:
        ref_rows = rows[rows["source"] == baseline]
        # A factor on which the sources do not overlap at all (device: cpu vs cuda) is what is compared.
        others = rows[rows["source"] != baseline]
        setting = [f for f in setting if _overlap(ref_rows[f], others[f])]
        match = ["variant", *setting]
    else:
        ref_rows = rows[rows["variant"] == baseline]
        match = ["source", *setting]
    references = {_key(k): g for k, g in ref_rows.groupby(match, dropna=False, sort=False)}
    ref_index: dict[Any, pd.Series] = {}
    for key, group in rows.groupby([*match, "source" if by_source else "variant"], dropna=False, sort=False):
        ref_index.update(_pair_sizes(group, references.get(_key(key[:-1]))))
    table = rows.copy()
    table["ref_input_size"] = [ref_index[i]["input_size"] if i in ref_index else np.nan for i in rows.index]
    table["is_reference"] = (rows["source"] == baseline) if by_source else (rows["variant"] == baseline)
    for metric in metrics:
        spread = METRICS[metric].spread
        ref_values, rels, noise, pvalues = [], [], [], []
        for index, row in rows.iterrows():
            ref = ref_index.get(index)
            base = np.nan if ref is None else ref[metric]
            ref_values.append(base)
            rels.append(row[metric] / base - 1 if base and not missing(base) else np.nan)
            if spread:
                within, p = (np.nan, np.nan) if ref is None or missing(base) or missing(row[metric]) else \
                    within_noise(
                        (ref[f"{metric}_low"], ref[f"{metric}_high"]), ref[f"_{metric}_samples"],
                        (row[f"{metric}_low"], row[f"{metric}_high"]), row[f"_{metric}_samples"])
                noise.append(within)
                pvalues.append(p)
        table[f"{metric}_ref"] = ref_values
        table[f"{metric}_rel"] = rels
        if spread:
            table[f"{metric}_within_noise"] = noise
            table[f"{metric}_p"] = pvalues
    return table.drop(columns=[c for c in table if c.startswith("_")])


def _ordered(table: pd.DataFrame, baseline: str, by_source: bool) -> pd.DataFrame:
    """Rows that belong together side by side: per mode and setting, the reference first (for a
    comparison of sources: per variant and setting, the sources next to each other)."""
    modes = {m: i for i, m in enumerate(MODES)}
    variants = {v: i for i, v in enumerate(dict.fromkeys([baseline, *table["variant"]]))}
    sources = {s: i for i, s in enumerate(dict.fromkeys([baseline, *table["source"]]))}

    def rank(value: Any) -> tuple:
        return (value is None, value if value is not None else 0)

    def key(i: int) -> tuple:
        row = table.iloc[i]
        size = row["input_size"] if missing(row["ref_input_size"]) else row["ref_input_size"]
        setting = tuple(rank(key_one(row[f])) for f in FACTORS if f not in ("mode", "input_size"))
        first, last = (variants[row["variant"]], sources[row["source"]])[:: 1 if by_source else -1]
        return (modes.get(row["mode"], len(modes)), str(row["mode"]), first, setting[:2], rank(key_one(size)),
                setting[2:], last, rank(key_one(row["input_size"])))

    return table.iloc[sorted(range(len(table)), key=key)].reset_index(drop=True)


def _overlap(a: pd.Series, b: pd.Series) -> bool:
    return bool({_key([v])[0] for v in a} & {_key([v])[0] for v in b}) or b.empty


def _pair_sizes(rows: pd.DataFrame, refs: pd.DataFrame | None) -> dict[Any, pd.Series]:
    """Pair rows of one variant and setting with reference rows one to one: same input size first, then
    same output size, then the nearest output size, then the nearest input size, each within
    `SIZE_TOLERANCE` (closest pairs first)."""
    pairs: dict[Any, pd.Series] = {}
    if refs is None or refs.empty:
        return pairs
    free = dict(refs.iterrows())
    rules = (
        lambda r, c: 0 if r["input_size"] == c["input_size"] else None,
        lambda r, c: _gap(r["output_size"], c["output_size"], exact=True),
        lambda r, c: _gap(r["output_size"], c["output_size"]),
        lambda r, c: _gap(r["input_size"], c["input_size"]),
    )
    for rule in rules:
        options = sorted(
            (gap, i, j) for i, row in rows.iterrows() if i not in pairs for j, ref in free.items()
            if not missing(row["input_size"]) and (gap := rule(row, ref)) is not None
        )
        for _, i, j in options:
            if i not in pairs and j in free:
                pairs[i] = free.pop(j)
    return pairs


def _gap(size: float, ref: float, exact: bool = False) -> float | None:
    """|size - ref| when it is small enough to count as the same setting, else None."""
    if missing(size) or missing(ref):
        return None
    gap = abs(size - ref)
    return gap if gap == 0 or (not exact and gap <= SIZE_TOLERANCE * ref) else None
