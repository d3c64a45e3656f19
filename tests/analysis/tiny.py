"""The tiny experiment the analysis tests run for real, and how to find one of its rows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests.records import flat
from unet_bench.record import Record

# Counts of three variants, inference of two at one grid point (common output 20: paper 60 → 20, padded
# 20 → 20), the same two at one input size (60: paper → 20, padded → 60, so outputs differ), and one more
# size, batch and memory format of the paper network (for the scaling curves and the throughput figure).
TINY_EXPERIMENT = """
name = "tiny"
description = "the analysis tests' tiny run"
threads = 1
min_run_time_s = 0.02
set = { base_width = 4, depth = 2 }
size_rule = "common-output"   # each variant at the input that gives a 20 px output: paper 60, padded 20
sizes = [20]

[[grid]]
variants = ["paper", "padded", "bilinear"]
modes = ["counts"]

[[grid]]
variants = ["paper", "padded"]
modes = ["infer"]

[[grid]]
variants = ["paper", "padded"]
modes = ["infer"]
sizes = [60]
size_rule = "input"           # one input for both: outputs 20 and 60

[[grid]]
variants = ["paper"]
modes = ["infer"]
sizes = [36]                  # a second size: input 76

[[grid]]
variants = ["paper"]
modes = ["infer"]
batches = [2]

[[grid]]
variants = ["paper"]
modes = ["infer"]
channels_last = [true]
"""
CASES = 10


def row(frame: pd.DataFrame, variant: str, mode: str, **factors) -> pd.Series:
    """The one row of ``frame`` with these values (input 60 for a 20 px output, batch 1, contiguous unless
    given)."""
    rows = frame[(frame["variant"] == variant) & (frame["mode"] == mode)]
    defaults = {"input_size": 60, "batch": 1, "channels_last": False, "size_rule": "common-output"}
    for name, value in {**defaults, **factors}.items():
        rows = rows[rows[name].isna() if value is None else rows[name] == value]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def records(results: Path) -> list[dict]:
    """The records of a results directory, as written, each as its flat columns (written back, they read
    as the flat format of earlier versions)."""
    return [flat(json.loads(line)) for line in (results / "results.jsonl").read_text().splitlines()]


def write(directory: Path, written: list[dict]) -> Path:
    """A results directory holding ``written`` (flat dicts, as `records` gives them), in today's format."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = (json.dumps(Record.from_dict(r).to_dict(), default=str) + "\n" for r in written)
    (directory / "results.jsonl").write_text("".join(lines))
    return directory


def repeated(record: dict, latencies_ms: list[float]) -> list[dict]:
    """Copies of a real timing record, one per repeat, with these latencies and the figures derived from
    a latency made to agree (throughput, FLOP/s, % of peak; per-pixel ones are derived on load)."""
    out = []
    for repeat, latency in enumerate(latencies_ms):
        copy = {**record, "repeat": repeat, "case_id": f"{record['case_id']}-b{record['batch']}-{repeat}",
                "paired_ratio": None, "paired_ratios": None}  # the constructed latencies are not paired
        seconds = latency / 1e3
        achieved = copy["flops"] * copy["batch"] / seconds
        copy.update(latency_ms_median=latency, latency_ms_p25=latency * 0.99, latency_ms_p75=latency * 1.01,
                    images_per_s=copy["batch"] / seconds, achieved_flops_per_s=achieved,
                    peak_fraction=achieved / copy["peak_flops_per_s"])
        for derived in ("latency_ms_per_output_mpix", "output_mpix_per_s"):
            copy.pop(derived)
        out.append(copy)
    return out
