"""The verdict rule calibrated on real runs: the same small suite run twice (A/A) is called real in at most
5 % of its rows, and the same networks with base_width 16 → 14 (A/B, −23 % MACs) in every row.

Runs: five variants at four small sizes (base width 16, depth 2, one thread, 0.05 s of timing a case), 4
repeats in the first run and 3 in the second; the A/B run times two of the variants at two sizes, base
width 14, 4 repeats. Verdicts are asserted, not timings. Two runs are two runs, one after the other; their
repeats are not interleaved.

Why these numbers (simulated with the rule itself, log-normal noise of 2 % a repeat): an unchanged table of
20 rows with 4 and 3 repeats has 2 or more rows called real 0.13 % of the time (6 % when the whole second
run is also shifted by the noise's own spread, as a change of load can do); a 10 % change is called real in
all of 4 rows with 4 repeats a side 99.98 % of the time (89 % at 3 % noise), but in all of 8 rows with 3
repeats only 85 % of the time: hence the extra repeat, and the noise limit under which power is checked.
At these sizes 14 channels run about 10 % faster than 16 on one thread, not 23 %: oneDNN pads channels to
its vector width.

What the rule promises holds for runs made under comparable conditions. When the machine's load differed
between the two runs (records carry the load average), `compare` says so, and that is its answer. When a
run was too noisy to tell a change of this size at all (its own detectable change over
`DETECTABLE_LIMIT`: a busy shared machine), the A/B check of power is skipped with the figures: a rule that
called such a change real there would be guessing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from unet_bench.analysis import stats
from unet_bench.analysis.compare import compare
from unet_bench.analysis.results import load
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
DETECTABLE_LIMIT = 0.035  # noise of about 2 % a repeat: a 10 % change is then called real in every row


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
    return {"A": run(root, "A", 16, VARIANTS, SIZES, repeats=4),
            "A again": run(root, "A-again", 16, VARIANTS, SIZES, repeats=3),
            "B": run(root, "B", 14, ["paper", "bilinear"], [16, 24], repeats=4)}


def test_the_same_suite_run_twice_is_called_real_in_at_most_5_percent_of_rows(runs):
    comparison = compare(load([runs["A"], runs["A again"]]), metrics=["macs", "latency_ms_median"])
    rows = comparison.table[~comparison.table["is_reference"]]
    assert len(rows) == 20 and rows["ref_variant"].notna().all() and (rows["macs_rel"] == 0).all()
    assert (rows["repeats"] == 3).all() and rows["latency_ms_median_verdict"].isin([stats.REAL, stats.NOISE]).all()
    real = int((rows["latency_ms_median_verdict"] == stats.REAL).sum())
    load_warned = any(note.startswith("load differs") for note in comparison.notes)
    assert real <= 0.05 * len(rows) or load_warned, f"{real} of {len(rows)} unchanged rows called real"


def test_base_width_16_against_14_is_called_real_in_every_row(runs):
    comparison = compare(load([runs["A"], runs["B"]]), metrics=["macs", "latency_ms_median"])
    rows = comparison.table[~comparison.table["is_reference"]]
    # Paired across the edited config by variant and grid point, the change named.
    assert len(rows) == 4 and (rows["repeats"] == 4).all() and rows["ref_variant"].notna().all()
    assert (rows["config_change"] == "base_width 16 → 14").all()
    assert rows["macs_rel"].between(-0.24, -0.22).all()
    detectable = {source: noise[0] for source, noise in comparison.noise.items()}
    if not all(d is not None and d < DETECTABLE_LIMIT for d in detectable.values()):
        pytest.skip(f"too noisy a machine to check power: detectable changes {detectable}")
    assert (rows["latency_ms_median_verdict"] == stats.REAL).all() and (rows["latency_ms_median_rel"] < 0).all()
    assert comparison.families["latency_ms_median"].level == pytest.approx(0.95)  # every row real: plain 95 %
