"""Networks on several runtimes (`runtime_records`): compare by runtime pairs each row with the same variant
under torch eager and uses the in-process pairs only where they were timed against that very row; a row
whose output differs from eager torch's is marked and never a speed-up; unsupported cases are listed; the
report's runtime section appears with several runtimes only."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from tests.analysis.runtime_records import OUTPUT, timed, two_runtimes, unsupported, write
from unet_bench.analysis import stats
from unet_bench.analysis.compare import compare
from unet_bench.analysis.findings import summarize
from unet_bench.analysis.report import write_report
from unet_bench.analysis.results import load
from unet_bench.analysis.runtime_losses import quality_losses
from unet_bench.analysis.runtime_section import op_census
from unet_bench.analysis.runtimes import MISMATCH_MARK, RUNTIME_METRICS
from unet_bench.analysis.tables import caption, render, sections
from unet_bench.cli import main
from unet_bench.record import Case, Record

LATENCY = "latency_ms_per_output_mpix"
MPIX = OUTPUT**2 / 1e6


def one(table, variant: str, runtime: str, **factors):
    rows = table[(table["variant"] == variant) & (table["runtime"] == runtime)]
    for name, value in factors.items():
        rows = rows[rows[name] == value]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def geomean(values: list[float]) -> float:
    return math.exp(np.mean(np.log(values)))


@pytest.fixture
def results(tmp_path):
    return write(tmp_path / "runtimes", [*two_runtimes(), unsupported("paper", "openvino", "openvino: cannot "
                                                                      "compile op ConvTranspose")])


def test_by_runtime_each_row_is_beside_the_same_variant_under_torch(results):
    comparison = compare(load([results]), by="runtime")
    table = comparison.table
    assert comparison.baseline == "torch" and comparison.by == "runtime" and not comparison.by_source
    assert comparison.metrics == list(RUNTIME_METRICS)
    assert [(r.variant, r.runtime) for r in table.itertuples()] == [
        ("paper", "torch"), ("paper", "onnxruntime"), ("bilinear", "torch"), ("bilinear", "onnxruntime")]
    assert table["is_reference"].tolist() == [True, False, True, False]
    for variant, torch_ms in (("paper", [100.0, 104.0, 98.0]), ("bilinear", [90.0, 95.0, 88.0])):
        row = one(table, variant, "onnxruntime")
        assert row["ref_variant"] == variant
        assert row[f"{LATENCY}_ref"] == pytest.approx(geomean(torch_ms) / MPIX)
    paper = one(table, "paper", "onnxruntime")
    # timed against its torch twin in each process: the change is the paired ratio, real
    assert paper[f"{LATENCY}_method"] == "in process" and paper[f"{LATENCY}_verdict"] == stats.REAL
    assert paper[f"{LATENCY}_rel"] == pytest.approx(geomean([0.80, 0.81, 0.79]) - 1)
    assert paper[f"{LATENCY}_rel_high"] < 0
    # the export's figures, taken once per case, without verdicts
    assert paper["max_rel_error"] == pytest.approx(1e-6) and paper["export_s"] == pytest.approx(2.6)
    assert paper["model_bytes"] == 124_000_000 and "max_rel_error_verdict" not in table
    assert math.isnan(one(table, "paper", "torch")["max_rel_error"])
    assert caption(comparison)[0] == ("Δ = relative change against the same variant at the same grid point and "
                                      "setting under torch eager")


def test_another_runtime_can_be_the_baseline(results):
    table = compare(load([results]), "onnxruntime", by="runtime").table
    torch = one(table, "paper", "torch")
    assert not torch["is_reference"] and one(table, "paper", "onnxruntime")["is_reference"]
    # torch paper was not timed against onnxruntime in its processes: paired by round, not in process
    assert torch[f"{LATENCY}_method"] == "by round"
    assert torch[f"{LATENCY}_rel"] == pytest.approx(geomean([100 / 81, 104 / 84, 98 / 78]) - 1)


@pytest.mark.parametrize("reference, runtime, method", [
    ("paper", "torch", "in process"),
    ("paper", None, "in process"),  # records that leave the reference's runtime unset: torch eager
    ("bilinear", "torch", "by round"),  # timed against another variant
    ("paper", "openvino", "by round"),  # timed against the same variant under another runtime
])
def test_in_process_pairs_count_only_against_the_row_they_were_timed_with(tmp_path, reference, runtime, method):
    records = [*timed("paper", "torch", [100.0, 104.0, 98.0]),
               *timed("paper", "onnxruntime", [81.0, 84.0, 78.0], ratios=[0.70, 0.71, 0.69])]
    for record in records[3:]:
        record.set(paired_reference=reference, paired_reference_runtime=runtime)
    row = one(compare(load([write(tmp_path / "r", records)]), by="runtime").table, "paper", "onnxruntime")
    assert row[f"{LATENCY}_method"] == method
    expected = [0.70, 0.71, 0.69] if method == "in process" else [81 / 100, 84 / 104, 78 / 98]
    assert row[f"{LATENCY}_rel"] == pytest.approx(geomean(expected) - 1)


def test_by_variant_does_not_take_a_twin_pairing_for_the_baseline(tmp_path):
    # paper[base_width=32] under onnxruntime was timed against itself under torch: its paired_reference is
    # the registered name "paper", the baseline's; against onnxruntime paper it must pair by round.
    wide = (("base_width", 32),)
    records = [*timed("paper", "torch", [100.0, 104.0, 98.0]),
               *timed("paper", "torch", [300.0, 310.0, 296.0], ratios=[3.0, 3.02, 2.98], overrides=wide),
               *timed("paper", "onnxruntime", [81.0, 84.0, 78.0], ratios=[0.80, 0.81, 0.79]),
               *timed("paper", "onnxruntime", [250.0, 260.0, 245.0], ratios=[0.83, 0.84, 0.82], overrides=wide)]
    table = compare(load([write(tmp_path / "r", records)]), metrics=["latency_ms_median"]).table
    exported = one(table, "paper[base_width=32]", "onnxruntime")
    assert exported["ref_variant"] == "paper" and exported["latency_ms_median_method"] == "by round"
    assert exported["latency_ms_median_rel"] == pytest.approx(geomean([250 / 81, 260 / 84, 245 / 78]) - 1)
    eager = one(table, "paper[base_width=32]", "torch")  # timed against paper under torch: in process
    assert eager["latency_ms_median_method"] == "in process"
    assert eager["latency_ms_median_rel"] == pytest.approx(geomean([3.0, 3.02, 2.98]) - 1)


def test_a_mismatched_output_is_marked_and_never_a_speed_up(results):
    frame = load([results])
    comparison = compare(frame, by="runtime")
    row = one(comparison.table, "bilinear", "onnxruntime")
    assert row["output_mismatch"] and row["worst_rel_error"] == 0.25 and row["error_tolerance"] == 1e-4
    assert row[f"{LATENCY}_verdict"] == stats.NONE and row[f"{LATENCY}_why"] == "its output differs from eager torch"
    assert row[f"{LATENCY}_rel"] == pytest.approx(geomean([46.0, 48.0, 44.0]) / geomean([90.0, 95.0, 88.0]) - 1)
    assert comparison.families[LATENCY].rows == 1  # the paper row alone was judged
    (_, _, display), = sections(comparison)
    heading = "latency per output Mpx (ms)"
    marked = [cell.endswith(f" {MISMATCH_MARK}") for cell in display[heading]]
    assert marked == [False, False, False, True]
    assert not display["max rel error vs torch"].str.contains(MISMATCH_MARK).any()  # a timing mark only
    assert "Δ max rel error vs torch" not in display  # torch eager has no export to compare with
    line = next(line for line in caption(comparison) if line.startswith(MISMATCH_MARK))
    assert "bilinear on onnxruntime" in line and "max relative error 0.25, tolerance 0.0001" in line
    assert r"$^\dagger$" in render(comparison, "latex") and MISMATCH_MARK in render(comparison, "md")
    summary = " ".join(summarize(comparison))
    assert "latency per output Mpx -20." in summary and "-49." not in summary and "-50." not in summary
    # by variant too: the mismatched row, and a row compared against a mismatched reference, get no verdict
    by_variant = compare(frame, "bilinear", metrics=["latency_ms_median"]).table
    assert one(by_variant, "paper", "onnxruntime")["latency_ms_median_why"] == \
        "the reference's output differs from eager torch"
    assert one(by_variant, "paper", "torch")["latency_ms_median_verdict"] != stats.NONE


def test_unsupported_cases_are_listed_with_their_message(results):
    comparison = compare(load([results]), by="runtime")
    assert comparison.failed == [f"paper on openvino infer 572px b1 ({results}): unsupported - openvino: cannot "
                                 "compile op ConvTranspose"]
    assert f"not measured: {comparison.failed[0]}" in caption(comparison)


def test_int8_is_compared_with_the_fp32_network_under_torch(tmp_path):
    records = [*timed("paper", "torch", [100.0, 104.0, 98.0]),
               *timed("paper", "onnxruntime", [40.0, 42.0, 39.0], ratios=[0.40, 0.41, 0.39], dtype="int8")]
    row = one(compare(load([write(tmp_path / "r", records)]), by="runtime").table, "paper", "onnxruntime")
    assert row["dtype"] == "int8" and row[f"{LATENCY}_method"] == "in process"
    assert row[f"{LATENCY}_rel"] == pytest.approx(geomean([0.40, 0.41, 0.39]) - 1)



def test_a_baseline_runtime_with_int8_rows_keeps_each_precision_beside_its_own(tmp_path):
    records = [*timed("paper", "torch", [100.0, 104.0, 98.0]),
               *timed("paper", "onnxruntime", [50.0, 52.0, 49.0], ratios=[0.50, 0.50, 0.50]),
               *timed("paper", "onnxruntime", [20.0, 21.0, 19.5], ratios=[0.20, 0.20, 0.20], dtype="int8"),
               *timed("paper", "openvino", [55.0, 57.2, 53.9], ratios=[0.55, 0.55, 0.55])]
    table = compare(load([write(tmp_path / "r", records)]), "onnxruntime", by="runtime").table
    openvino, fp32 = one(table, "paper", "openvino"), table[(table["runtime"] == "onnxruntime")
                                                             & (table["dtype"] == "fp32")].iloc[0]
    assert openvino[f"{LATENCY}_ref"] == pytest.approx(fp32[LATENCY])  # fp32 beside fp32, not the int8 row
    assert openvino[f"{LATENCY}_rel"] == pytest.approx(0.10, abs=1e-9)


@pytest.mark.parametrize("args, message", [
    (["--baseline", "tensorrt"], "unknown baseline runtime 'tensorrt'; valid baselines by runtime are the "
                                 "runtimes of these results: 'torch', 'onnxruntime', 'openvino'"),
    (["--baseline", "openvino"], "no successful measurement of the baseline 'openvino': 1 unsupported"),
    (["--by", "dtype"], "invalid choice: 'dtype'"),
])
def test_cli_by_runtime_errors_are_one_line_with_exit_2(results, capsys, args, message):
    try:
        code = main(["compare", str(results), "--by", "runtime", *args])
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err


def test_cli_compare_by_runtime(results, capsys):
    assert main(["compare", str(results), "--by", "runtime", "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert "under torch eager" in out and "| onnxruntime |" in out and "max rel error vs torch" in out


def test_the_op_census_counts_what_the_variants_change(results):
    census = op_census(load([results]))
    assert census.columns.tolist() == ["variant", "runtime", "dtype", "opset", "provider", "Conv", "ConvTranspose",
                                       "Concat", "other", "nodes"]
    # Relu 18, MaxPool 4 and Slice 8 are no group of their own; no torch row has a graph
    assert census.values.tolist() == [["paper", "onnxruntime", "fp32", "17", "CPUExecutionProvider", "23", "4", "4",
                                       "30", "61"],
                                      ["bilinear", "onnxruntime", "fp32", "17", "CPUExecutionProvider", "23", "4",
                                       "4", "30", "61"]]


def test_report_has_a_runtime_section_with_several_runtimes_only(results, tmp_path):
    html, md, _ = write_report([results], tmp_path / "report")
    text = md.read_text()
    section = text[text.index("## Runtimes"):text.index("## Figures")]
    assert "under torch eager" in section and "Exported graphs: nodes per op type" in section
    assert "![Latency per output pixel by runtime](figures/runtimes.png)" in section
    assert '<figure id="runtimes">' in html.read_text()
    image = np.asarray(Image.open(tmp_path / "report" / "figures" / "runtimes.png").convert("L"))
    assert image.shape[1] > 300 and (image < 128).mean() > 0.01
    torch_only = write(tmp_path / "torch", [r for r in two_runtimes() if r.case.runtime == "torch"])
    _, md, _ = write_report([torch_only], tmp_path / "torch_report")
    assert "## Runtimes" not in md.read_text() and not (tmp_path / "torch_report" / "figures" / "runtimes.png").exists()


def quality_on(runtime: str, dice: list[float], dice_change: list[float]) -> Record:
    """A quality record scored on ``runtime`` in int8, with eager torch fp32's per-seed scores beside."""
    record = Record.for_case(Case("paper", mode="quality", input_size=252, runtime=runtime, dtype="int8", seeds=3),
                             suite="int8", dice_mean=float(np.mean(np.add(dice, dice_change))), quality_seeds=3)
    for score, base, change in (("dice", dice, dice_change), ("object_f1", [0.5, 0.6, 0.7], [0.01, -0.02, 0.01]),
                                ("rand_error", [0.3, 0.3, 0.3], [0.0, 0.0, 0.0])):
        record.extra[f"{score}_torch_fp32_per_seed"] = base
        record.extra[f"{score}_change_per_seed"] = change
    return record


def test_what_int8_loses_in_quality_is_a_paired_interval_over_seeds(tmp_path):
    folder = write(tmp_path / "q", [quality_on("onnxruntime", [0.78, 0.75, 0.72], [-0.010, -0.014, -0.018])])
    table = quality_losses(load([folder]))
    row = table.iloc[0]
    half = 4.303 * 0.004 / 3**0.5  # t(0.975, 2) x sd of the changes / sqrt(3)
    assert (row["runtime"], row["dtype"], row["seeds"], row["Dice (torch fp32)"]) == ("onnxruntime", "int8", 3, "0.750")
    assert row["Δ Dice"] == f"-0.014 [{-0.014 - half:+.3f}, {-0.014 + half:+.3f}] real"
    assert row["Δ object F1"].endswith("~")  # changes of both signs: within noise
    assert row["Δ Rand error"] == "+0.000 [+0.000, +0.000] ~"  # no change at all is no loss
    _, md, _ = write_report([folder], tmp_path / "report")
    assert "What the runtime's precision loses in quality" in md.read_text()
    assert quality_losses(load([write(tmp_path / "t", two_runtimes())])) is None
