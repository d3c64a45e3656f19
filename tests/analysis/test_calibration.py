"""The verdict rule calibrated on real runs, with the machine loaded on purpose: the same small suite run
twice, once as the machine is and once beside a process spinning one core (A/A under different load), is
called real in at most 5 % of its rows; two code versions in alternation (`unet-bench ab`: a copy of this
package whose default base width is 56 instead of 64, -23 % MACs) are told apart under that load.

Runs: five variants at four small sizes (base width 16, depth 2, one thread, 0.05 s of timing a case),
4 repeats in the first run and 3 in the second; every variant is paired in process with paper, and the
second run's control workload ran slower under the load, so `compare` judges on latency over the control
with the control's change counted in each interval (`stats.across_runs`). The A/B times paper at two sizes
in 3 alternated rounds. Verdicts are asserted, not timings; tests/benchmarks/test_verdict_calibration.py
is the larger calibration with the figures printed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.load import competing_load
from unet_bench.analysis import stats
from unet_bench.analysis.compare import compare
from unet_bench.analysis.results import load
from unet_bench.suite.alternate import Environment, run_alternated
from unet_bench.suite.runner import run_suite
from unet_bench.suite.spec import load_spec

SUITE = """
name = "calibration"
description = "small networks, timed in fresh processes, for the verdict calibration"
threads = 1
min_run_time_s = 0.05
repeats = {repeats}
set = {{ base_width = {width}, depth = 2 }}
size_rule = "nearest-output"
sizes = {sizes}
variants = {variants}
modes = ["infer"]
"""
VARIANTS, SIZES = ["paper", "padded", "bilinear", "additive", "no-skip"], [8, 16, 24, 32]
PACKAGE = Path(__file__).resolve().parents[2] / "unet_bench"
AB_SUITE = """
name = "ab"
description = "paper at two sizes, for an alternated A/B"
threads = 1
min_run_time_s = 0.1
repeats = 5
set = { depth = 2 }
size_rule = "nearest-output"
sizes = [16, 32]
variants = ["paper"]
modes = ["infer"]
"""


def run(root: Path, name: str, width: int, variants: list[str], sizes: list[int], repeats: int) -> Path:
    spec_path = root / f"{name}.toml"
    text = SUITE.format(width=width, variants=variants, sizes=sizes, repeats=repeats)
    spec_path.write_text(text.replace("'", '"'))
    summary = run_suite(load_spec(spec_path), root / name, progress=False, log=lambda line: None)
    assert summary.exit_code == 0
    return root / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("calibration")
    first = run(root, "A", 16, VARIANTS, SIZES, repeats=4)
    with competing_load():
        again = run(root, "A-again", 16, VARIANTS, SIZES, repeats=3)
    return {"A": first, "A again": again}


def test_the_same_suite_run_twice_under_different_load_is_called_real_in_at_most_5_percent_of_rows(runs):
    comparison = compare(load([runs["A"], runs["A again"]]), metrics=["macs", "latency_ms_median"])
    rows = comparison.table[~comparison.table["is_reference"]]
    assert len(rows) == 20 and rows["ref_variant"].notna().all() and (rows["macs_rel"] == 0).all()
    assert (rows["repeats"] == 3).all() and rows["latency_ms_median_verdict"].isin([stats.REAL, stats.NOISE]).all()
    assert set(rows["latency_ms_median_method"]) <= {"normalised by the control", "raw, control steady"}
    real = int((rows["latency_ms_median_verdict"] == stats.REAL).sum())
    assert real <= 0.05 * len(rows), f"{real} of {len(rows)} unchanged rows called real"
    within = compare(load([runs["A again"]]), metrics=["latency_ms_median"])  # in the loaded run: paired
    paired = within.table[~within.table["is_reference"]]
    assert (paired["latency_ms_median_method"] == "in process").all()


def test_two_code_versions_in_alternation_are_told_apart_under_load(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for checkout in (old, new):
        shutil.copytree(PACKAGE, checkout / "unet_bench", ignore=shutil.ignore_patterns("__pycache__"))
    config = new / "unet_bench" / "models" / "config.py"
    config.write_text(config.read_text().replace("base_width: int = 64", "base_width: int = 48", 1))
    spec_path = tmp_path / "ab.toml"
    spec_path.write_text(AB_SUITE)
    with competing_load():
        dirs = run_alternated(load_spec(spec_path), Environment(sys.executable, str(old)),
                              Environment(sys.executable, str(new)), tmp_path / "ab", log=lambda line: None)
    comparison = compare(load([dirs["old"], dirs["new"]]), str(dirs["old"]), ["macs", "latency_ms_median"])
    rows = comparison.table[~comparison.table["is_reference"]]
    assert len(rows) == 2 and (rows["config_change"] == "base_width 64 → 48").all()
    assert (rows["latency_ms_median_method"] == "alternated, by round, over the control").all()
    assert (rows["latency_ms_median_verdict"] == stats.REAL).all() and (rows["latency_ms_median_rel"] < 0).all()
    assert not [line for line in comparison.machine if line.startswith("control ")]  # rounds, not the run rule
