"""Rows run on a deployment runtime: whether their output is still the network's, and what a comparison
says when it is not.

An exported network whose output differs from eager torch's beyond the tolerance of its precision
(``output_mismatch``) computes something else, so its speed is no speed-up however fast it runs. Each
aggregated row of `compare` carries the flag (set when any repeat mismatched), its worst relative error and
the tolerance (`export_facts`); a timing of such a row, or of a row compared against one, gets no verdict
(`mismatched`); the tables mark its timing cells and say why under them (`mark`, `mismatch_lines`).
"""

from __future__ import annotations

import math

import pandas as pd

from unet_bench.analysis import stats
from unet_bench.analysis.pairing import missing
from unet_bench.analysis.results import METRICS
from unet_bench.analysis.samples import TIMED

# What `compare --by runtime` shows by default: speed per output pixel, how far the output is from eager
# torch's, and what the export cost.
RUNTIME_METRICS = ("latency_ms_per_output_mpix", "max_rel_error", "export_s", "model_bytes")
EXPORT_METRICS = ("export_s", "model_bytes", "max_abs_error", "max_rel_error")  # taken once, with the export
MISMATCH_MARK = "†"


def export_facts(group: pd.DataFrame) -> dict[str, object]:
    """An aggregated row's ``output_mismatch`` (any repeat), ``worst_rel_error`` and ``error_tolerance``."""
    def worst(column: str) -> float:
        return float(group[column].max()) if column in group and group[column].notna().any() else math.nan

    flags = group["output_mismatch"] if "output_mismatch" in group else pd.Series(dtype=object)
    return {"output_mismatch": bool(flags.eq(True).any()), "worst_rel_error": worst("max_rel_error"),
            "error_tolerance": worst("error_tolerance")}


def mismatched(new: pd.Series, ref: pd.Series) -> stats.Verdict | None:
    """No verdict where a timing compares an output that is not the network's: the row's, or its
    reference's (None where both outputs agree with eager torch)."""
    for row, whose in ((new, "its"), (ref, "the reference's")):
        if row["output_mismatch"]:
            return stats.Verdict(stats.NONE, math.nan, why=f"{whose} output differs from eager torch")
    return None


def is_timing(metric: str) -> bool:
    """A timing, or a figure derived from one: what a mismatch makes meaningless."""
    return metric in TIMED or METRICS[metric].timing is not None


def mark(text: str, row: pd.Series, metric: str) -> str:
    """A table cell, marked where it is the timing of a row whose output differs from eager torch's."""
    return f"{text} {MISMATCH_MARK}" if row["output_mismatch"] and is_timing(metric) else text


def mismatch_lines(table: pd.DataFrame) -> list[str]:
    """One caption line per marked row: which runtime, by how much its output differs, against what bound."""
    lines = []
    for row in table[table["output_mismatch"]].itertuples():
        size = "" if missing(row.input_size) else f" {int(row.input_size)}px"
        tolerance = "no tolerance recorded" if missing(row.error_tolerance) else f"tolerance {row.error_tolerance:.3g}"
        error = "not recorded" if missing(row.worst_rel_error) else f"{row.worst_rel_error:.3g}"
        lines.append(f"{MISMATCH_MARK} {row.variant} on {row.runtime} ({row.mode}{size} b{int(row.batch)} "
                     f"{row.dtype}): the runtime's output differs from eager torch's beyond tolerance (max relative "
                     f"error {error}, {tolerance}); its timing is no speed-up and gets no verdict")
    return lines
