"""The regression gate for CI: which rows of a comparison got worse by more than a threshold.

A row regresses when its change is real by the verdict rule of `stats` (the interval over independent
repeats excludes zero; a deterministic figure that changed at all is real) AND its estimated change is
worse than the threshold in the metric's bad direction (slower, larger, lower Dice). A change within the
noise never fails a build, however large its point estimate: with too few repeats or too much noise, the
gate says so instead (a row with no verdict is not a regression). Better is never a regression.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from unet_bench.analysis import stats
from unet_bench.analysis.compare import Comparison
from unet_bench.analysis.pairing import missing
from unet_bench.analysis.results import METRICS
from unet_bench.errors import BenchError

MAX_THRESHOLD = 10.0  # 1000 %


def parse_threshold(text: str) -> float:
    """``"5%"`` (or ``"5"``: percent either way) -> 0.05; anything else is a one-line error."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*%?\s*", text)
    value = float(match[1]) / 100 if match else math.nan
    if not 0 <= value <= MAX_THRESHOLD:
        raise BenchError(f"--fail-on-regression {text!r} is not valid; give a percentage in [0, "
                         f"{MAX_THRESHOLD * 100:g}], e.g. 5%")
    return value


@dataclass(frozen=True)
class Regression:
    """One row and metric that got worse: its change and the interval of the change (NaN when exact)."""

    row: str
    metric: str
    rel: float
    low: float
    high: float
    verdict: str

    def describe(self, threshold: float) -> str:
        interval = f" [{self.low:+.1%}, {self.high:+.1%}]" if not math.isnan(self.low) else " (exact)"
        return f"{self.row}: {METRICS[self.metric].label} {self.rel:+.1%}{interval}, worse than {threshold:.1%}"


def regressions(comparison: Comparison, threshold: float) -> list[Regression]:
    """Every compared row and metric that is really worse than ``threshold`` (0.05 = 5 %)."""
    table = comparison.table
    found = []
    for metric in comparison.metrics:
        sign = -1.0 if METRICS[metric].higher_is_better else 1.0
        for _, row in table[~table["is_reference"]].iterrows():
            rel = row.get(f"{metric}_rel")
            if missing(rel) or sign * rel <= threshold:
                continue
            status = row.get(f"{metric}_verdict", stats.EXACT)  # counts carry no verdict: exact
            if status == stats.REAL or (status == stats.EXACT and rel != 0):
                found.append(Regression(_name(row, comparison), metric, float(rel),
                                        _number(row.get(f"{metric}_rel_low")), _number(row.get(f"{metric}_rel_high")),
                                        status))
    return found


def _number(value: object) -> float:
    return math.nan if missing(value) else float(value)


def blind_rows(comparison: Comparison) -> int:
    """Rows the gate cannot judge: compared, but with too few repeats for a verdict."""
    table = comparison.table
    columns = [f"{m}_verdict" for m in comparison.metrics if f"{m}_verdict" in table]
    return int(sum((table[c] == stats.NONE) for c in columns).astype(bool).sum()) if columns else 0


def _name(row: pd.Series, comparison: Comparison) -> str:
    batch, size = row["batch"], row["input_size"]  # absent from pytest-benchmark rows
    parts = [row["variant"], row["mode"], row["device"], None if missing(batch) else f"b{int(batch)}",
             None if missing(size) else f"{int(size)}px"]
    case = " ".join(str(part) for part in parts if not missing(part))
    if comparison.by_source:
        return f"{case} in {row['source']} against {comparison.baseline}"
    return f"{case} against {row['ref_variant']} in {row['source']}"
