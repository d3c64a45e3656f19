"""`compare OLD NEW --fail-on-regression PCT`: exit 1 on a real change worse than PCT, 0 on noise or better.

OLD and NEW are built from a real timing record of the tiny run, with per-repeat latencies set (what a run
cannot be made to produce on purpose): a clear 20 % slowdown with 1 % noise, an A/A pair drawn alike,
a real but small change, a large but noisy one, and a speed-up.
"""

import json

import pytest

from tests.analysis.tiny import records, repeated, write
from unet_bench.analysis.regression import parse_threshold
from unet_bench.cli import main
from unet_bench.errors import BenchError

OLD_MS = [1.00, 1.02, 0.99, 1.01]


def gate(tmp_path, tiny_results, new_ms, threshold="5%", metrics=("--metrics", "latency_ms_median"), old_ms=OLD_MS):
    paper = next(r for r in records(tiny_results) if r["variant"] == "paper" and r["mode"] == "infer"
                 and r["input_size"] == 60 and r["batch"] == 1 and not r["channels_last"])
    old = write(tmp_path / "old", repeated(paper, old_ms))
    new = write(tmp_path / "new", repeated(paper, new_ms))
    return main(["compare", str(old), str(new), *metrics, "--fail-on-regression", threshold])


def test_a_real_slowdown_beyond_the_threshold_fails_and_names_the_row(tmp_path, tiny_results, capsys):
    assert gate(tmp_path, tiny_results, [1.20, 1.23, 1.19, 1.21]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("regression: ")]
    assert len(lines) == 1
    assert lines[0].startswith(f"regression: paper infer cpu b1 60px in {tmp_path / 'new'} against")
    assert "latency +20.1% [+17.4%, +23.0%]" in lines[0] and "worse than 5.0%" in lines[0]
    assert "1 regression(s) worse than 5.0%" in err


def test_an_a_a_pair_passes(tmp_path, tiny_results, capsys):
    assert gate(tmp_path, tiny_results, [1.01, 0.99, 1.02, 1.00]) == 0
    err = capsys.readouterr().err
    assert "regression: " not in err and "no regression worse than 5.0%" in err


@pytest.mark.parametrize("new_ms, why", [
    ([1.03, 1.05, 1.02, 1.04], "real, but smaller than the threshold"),
    ([0.80, 1.60, 1.00, 1.50], "a +20 % estimate, within noise"),
    ([0.70, 0.71, 0.69, 0.70], "faster"),
])
def test_small_noisy_or_better_changes_pass(tmp_path, tiny_results, new_ms, why):
    assert gate(tmp_path, tiny_results, new_ms) == 0, why


def test_the_same_slowdown_fails_under_the_default_metrics_and_passes_a_larger_threshold(tmp_path, tiny_results):
    assert gate(tmp_path, tiny_results, [1.20, 1.23, 1.19, 1.21], metrics=()) == 1  # counts equal: no regression
    assert gate(tmp_path, tiny_results, [1.20, 1.23, 1.19, 1.21], threshold="25") == 0


def test_too_few_repeats_say_the_gate_was_blind(tmp_path, tiny_results, capsys):
    assert gate(tmp_path, tiny_results, [1.5, 1.52], old_ms=[1.0, 1.01]) == 0
    assert "1 row(s) had too few repeats for a verdict" in capsys.readouterr().err


def test_bad_thresholds_are_one_line(tmp_path, tiny_results, capsys):
    assert parse_threshold("5%") == pytest.approx(0.05) and parse_threshold("2.5") == pytest.approx(0.025)
    for text in ("-5%", "five", "5%%", "2000%"):
        with pytest.raises(BenchError, match="give a percentage in"):
            parse_threshold(text)
    assert gate(tmp_path, tiny_results, OLD_MS, threshold="x") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--fail-on-regression 'x' is not valid" in err


def test_pytest_benchmark_files_get_no_verdict_and_the_gate_says_so(tmp_path, capsys):
    def bench(path, median):
        stats = {"median": median, "q1": median * 0.99, "q3": median * 1.01, "iqr": median * 0.02, "rounds": 20}
        path.write_text(json.dumps({"benchmarks": [{"name": "test_paper_forward", "stats": stats}],
                                    "machine_info": {}, "commit_info": {}, "datetime": "2026-01-01T00:00:00"}))
        return str(path)

    old, new = bench(tmp_path / "old.json", 0.010), bench(tmp_path / "new.json", 0.013)
    assert main(["compare", old, new, "--fail-on-regression", "5%"]) == 0
    err = capsys.readouterr().err
    assert "regression: " not in err and "1 row(s) had too few repeats for a verdict" in err


def test_the_gate_needs_an_old_and_a_new_run(tmp_path, tiny_results, capsys):
    # one results directory, or the same one twice, would gate variants against paper: refused in one line
    assert main(["compare", str(tiny_results), "--fail-on-regression", "5%"]) == 2
    assert main(["compare", str(tiny_results), str(tiny_results), "--fail-on-regression", "5%"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and err.count("--fail-on-regression compares a new run with an old one") == 2
