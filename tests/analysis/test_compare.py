"""The ablation table on the tiny run: pairing by grid point, per-output-pixel figures where outputs
differ, before/after comparisons (an edited config, older results, another machine's load), verdicts and
the four output formats."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

from tests.analysis.tiny import records, repeated, row, write
from unet_bench.analysis import stats
from unet_bench.analysis.compare import compare
from unet_bench.analysis.results import load
from unet_bench.analysis.tables import caption, render
from unet_bench.cli import main
from unet_bench.errors import BenchError


def out(table: pd.DataFrame, variant: str, mode: str, **factors) -> pd.Series:
    return row(table, variant, mode, **factors)


def test_rows_pair_with_the_baseline_at_the_same_grid_point(frame):
    table = compare(frame, metrics=["params", "macs", "train_flops", "latency_ms_median"]).table
    assert "point" in table and compare(frame).common_overrides == "base_width=4,depth=2"
    for variant, size in (("padded", 20), ("bilinear", 60)):  # the request: a 20 px output
        got = out(table, variant, "counts", input_size=size)
        own, ref = row(frame, variant, "counts", input_size=size), row(frame, "paper", "counts")
        assert got["ref_input_size"] == 60 and got["ref_output_size"] == 20
        for metric in ("params", "macs", "train_flops"):
            assert got[metric] == own[metric] and got[f"{metric}_ref"] == ref[metric]
            assert got[f"{metric}_rel"] == pytest.approx(own[metric] / ref[metric] - 1, abs=1e-12)
    assert out(table, "padded", "counts", input_size=20)["params_rel"] == 0  # padding changes no weight
    assert out(table, "bilinear", "counts")["params_rel"] < 0  # 1x1 convs instead of 2x2 up-convs
    # paper was timed twice at 60 px: asked for a 20 px output, and asked for a 60 px input. Each padded
    # row is paired with the paper measurement of its own request.
    for rule, size in (("common-output", 20), ("input", 60)):
        got = out(table, "padded", "infer", input_size=size, size_rule=rule)
        own, ref = row(frame, "padded", "infer", input_size=size, size_rule=rule), \
            row(frame, "paper", "infer", size_rule=rule)
        assert got["latency_ms_median_ref"] == pytest.approx(ref["latency_ms_median"], rel=1e-12)
        # timed with its reference in one process: the change is the paired ratio, not the ratio of medians
        assert own["paired_reference"] == "paper" and got["latency_ms_median_method"] == "in process"
        assert got["latency_ms_median_rel"] == pytest.approx(own["paired_ratio"] - 1)
        assert got["latency_ms_median_verdict"] == stats.NONE and got["latency_ms_median_why"] == "1 paired repeat"
    assert out(table, "paper", "infer", batch=2)["is_reference"]  # no other variant there: nothing to pair
    assert "no verdict (1 paired repeat)" in render(compare(frame, metrics=["latency_ms_median"]))


def test_outputs_of_different_sizes_are_compared_per_output_pixel(frame):
    comparison = compare(frame)  # padded 60 → 60 beside paper 60 → 20
    assert comparison.per_pixel
    assert "latency_ms_per_output_mpix" in comparison.metrics and "macs_per_output_pixel" in comparison.metrics
    assert "latency_ms_median" not in comparison.metrics and "macs" not in comparison.metrics
    assert any(line.startswith("per output pixel") for line in caption(comparison))
    padded = out(comparison.table, "padded", "infer", size_rule="input")
    own = row(frame, "padded", "infer", size_rule="input")
    assert padded["latency_ms_per_output_mpix"] == pytest.approx(own["latency_ms_median"] / (60 * 60 / 1e6))
    assert padded["macs_per_output_pixel_rel"] < 0 and padded["latency_ms_per_output_mpix_rel"] < 0  # cheaper
    per_image = compare(frame, per_image=True)
    assert not per_image.per_pixel and {"latency_ms_median", "macs"} <= set(per_image.metrics)
    assert out(per_image.table, "padded", "counts", input_size=20)["macs_rel"] < 0
    assert any(line.startswith("per image: rows and their references differ") for line in caption(per_image))
    assert "latency per output Mpx (ms)" in render(comparison) and "latency (ms)" in render(per_image)


def test_figures_derived_from_a_timing_carry_its_verdict(tiny_results, tmp_path):
    # Constructed repeats on top of real records: a run cannot be made to produce a chosen spread.
    written = records(tiny_results)
    paper = next(r for r in written if r["variant"] == "paper" and r["size_rule"] == "input")
    padded = next(r for r in written if r["variant"] == "padded" and r["size_rule"] == "input")
    runs = repeated(paper, [1.00, 1.03, 0.98, 1.01]) + repeated(padded, [1.40, 1.46, 1.43])
    runs += repeated({**paper, "batch": 2}, [2.0, 2.1, 1.9]) + repeated({**padded, "batch": 2}, [2.02, 1.94, 2.1])
    table = compare(load([write(tmp_path, runs)]),
                    metrics=["latency_ms_median", "images_per_s", "peak_fraction", "output_mpix_per_s"]).table
    slower, same = out(table, "padded", "infer", size_rule="input"), out(table, "padded", "infer", batch=2,
                                                                           size_rule="input")
    assert slower["latency_ms_median_verdict"] == stats.REAL and same["latency_ms_median_verdict"] == stats.NOISE
    for got in (slower, same):
        assert got["repeats"] == 3 and got["latency_ms_median_level"] == pytest.approx(0.975)  # 1 of 2 rows real
        rel, low, high = (got[f"latency_ms_median_{k}"] for k in ("rel", "rel_low", "rel_high"))
        assert got["images_per_s_verdict"] == got["latency_ms_median_verdict"]  # batch / latency
        assert got["images_per_s_rel_low"] == pytest.approx(1 / (1 + high) - 1)
        for derived in ("images_per_s", "peak_fraction"):  # their own change, the latency's noise mirrored
            own = 1 + got[f"{derived}_rel"]
            assert (1 + got[f"{derived}_rel_low"]) / own == pytest.approx((1 + rel) / (1 + high))
            assert (1 + got[f"{derived}_rel_high"]) / own == pytest.approx((1 + rel) / (1 + low))
        # per output pixel, padded returns 9x the pixels: much cheaper, with the same noise
        assert got["output_mpix_per_s_verdict"] == stats.REAL and got["output_mpix_per_s_rel"] > 4


def test_two_results_directories_compare_against_each_other(tiny_results, tmp_path):
    after = tmp_path / "after"
    shutil.copytree(tiny_results, after)
    same = compare(load([tiny_results, after]))
    assert same.by_source and same.baseline == str(tiny_results)
    others = same.table[~same.table["is_reference"]]
    assert len(others) == len(same.table) / 2 and (others["config_change"] == "").all()
    assert not same.per_pixel  # each row beside the same variant: outputs of one size
    assert (others["params_rel"].dropna() == 0).all() and (others["latency_ms_median_rel"].dropna() == 0).all()
    assert (others["latency_ms_median_verdict"].dropna() == stats.NONE).all()  # one repeat a side
    # A GPU results directory differs in device (and tf32) everywhere: rows still pair by variant and setting.
    # Constructed from the CPU records, as this machine has no GPU.
    gpu = write(tmp_path / "gpu", [{**r, "device": "cuda", "tf32": True} for r in records(tiny_results)])
    cross = compare(load([tiny_results, gpu])).table
    assert cross.loc[~cross["is_reference"], "params_rel"].notna().all()


def test_an_edited_config_is_paired_by_variant_and_grid_point_and_named(tiny_results, tmp_path):
    # The experiment file edited between two runs: base_width 4 → 5 (records rewritten accordingly).
    edited = [{**r, "overrides": {**r["overrides"], "base_width": 5}, "config": {**r["config"], "base_width": 5}}
              for r in records(tiny_results)]
    comparison = compare(load([tiny_results, write(tmp_path / "wider", edited)]), metrics=["params"])
    table = comparison.table
    others = table[~table["is_reference"]]
    assert len(others) == 10 and others["ref_variant"].notna().all()
    assert set(others["variant"]) == {"paper[base_width=5]", "padded[base_width=5]", "bilinear[base_width=5]"}
    assert (others["config_change"] == "base_width 4 → 5").all()
    assert others["params_rel"].notna().all()
    assert f"config differs from the paired row in {tiny_results}: base_width 4 → 5 (10 rows)" in caption(comparison)
    # Side by side: each wider row right after the row it is paired with.
    assert (table["is_reference"].to_numpy()[::2]).all() and not table["is_reference"].to_numpy()[1::2].any()


def test_results_without_size_rules_pair_by_input_size_with_a_note(tiny_results, tmp_path, capsys):
    older = [{k: v for k, v in r.items() if k not in ("size_rule", "requested_size")} for r in records(tiny_results)]
    folder = write(tmp_path / "older", older)
    comparison = compare(load([folder]), metrics=["params", "latency_ms_median"])
    assert comparison.notes == [f"{folder}: written before records carried their size rule; its rows are paired "
                                "by equal input size only"]
    table = comparison.table
    assert pd.isna(out(table, "padded", "counts", input_size=20, size_rule=None)["ref_input_size"])  # 20 ≠ 60
    padded = out(table, "padded", "infer", size_rule=None)  # 60 px: paired with paper's two 60 px records
    assert padded["ref_input_size"] == 60 and padded["latency_ms_median_ref"] == pytest.approx(
        out(table, "paper", "infer", size_rule=None)["latency_ms_median"])
    assert main(["compare", str(folder)]) == 0
    assert "note: " + comparison.notes[0] in capsys.readouterr().err


def test_a_difference_in_machine_load_is_warned(tiny_results, tmp_path, capsys):
    # The load fields are filled by the measurement; set here to chosen values on real records.
    def at(load_avg: float, steal: float, name: str):
        return write(tmp_path / name, [{**r, "env": {**r["env"], "cpu_cores": 2, "loadavg_before": load_avg,
                                                     "loadavg_after": load_avg + 0.2, "cpu_steal_before": steal,
                                                     "cpu_steal_after": steal}} for r in records(tiny_results)])
    quiet, busy, quiet_too = at(0.2, 0.0, "quiet"), at(2.9, 0.10, "busy"), at(0.6, 0.01, "quiet-too")
    warned = compare(load([quiet, busy]))
    assert warned.notes == [
        f"load differs: {quiet} was timed at a 1-minute load average of 0.3 and {busy} at 3 (2 cores; median over "
        "timed records): timing differences between them may come from the load, not from the change",
        f"CPU steal differs: {quiet} 0%, {busy} 10% (median over timed records): timing differences may come from "
        "the host, not the change"]
    assert set(warned.notes) <= set(caption(warned))
    assert compare(load([quiet, quiet_too])).notes == []
    unrecorded = write(tmp_path / "unrecorded", [
        {**r, "env": {k: v for k, v in r["env"].items() if not k.startswith(("loadavg_", "cpu_steal_"))}}
        for r in records(tiny_results)])
    assert compare(load([unrecorded, busy])).notes == []  # no load recorded on one side: nothing to say
    assert main(["compare", str(quiet), str(busy)]) == 0
    assert capsys.readouterr().err.count("note: ") == 2


def test_unknown_baseline_or_metric_names_the_valid_ones(frame):
    with pytest.raises(BenchError, match=r"unknown baseline 'unet'; valid baselines are the variants 'paper'"):
        compare(frame, baseline="unet")
    with pytest.raises(BenchError, match=r"unknown metric 'speed'; .*'latency_ms_median'"):
        compare(frame, metrics=["speed"])
    with pytest.raises(BenchError, match=r"metric 'dice_mean' was not measured in these results; measured: 'params'"):
        compare(frame, metrics=["dice_mean"])


def test_text_markdown_and_csv(frame):
    comparison = compare(frame)
    text = render(comparison, "text")
    assert "mode: counts" in text and "mode: infer" in text and "every network: base_width=4,depth=2" in text
    padded = next(line for line in text.splitlines() if line.split()[:1] == ["padded"])
    assert "+0.0%" in padded  # parameters unchanged by padding
    md = render(comparison, "md")
    assert "### mode: counts" in md and "| variant" in md
    csv = pd.read_csv(pd.io.common.StringIO(render(comparison, "csv")))
    assert len(csv) == len(comparison.table)
    paper_macs = csv.loc[(csv["variant"] == "paper") & (csv["mode"] == "counts"), "macs_per_output_pixel"]
    counted = row(frame, "paper", "counts")
    assert paper_macs.tolist() == [pytest.approx(counted["macs"] / counted["output_size"] ** 2)]


def test_latex_is_a_well_formed_booktabs_table(frame):
    latex = render(compare(frame), "latex")
    tables = re.findall(r"\\begin\{tabular\}\{([lrc]+)\}\n(.*?)\\end\{tabular\}", latex, re.S)
    assert len(tables) == 2  # counts and infer
    for spec, body in tables:
        assert body.count(r"\toprule") == body.count(r"\midrule") == body.count(r"\bottomrule") == 1
        rows = [line for line in body.splitlines() if line.endswith(r"\\")]
        assert len(rows) >= 4
        assert all(line.replace(r"\&", "").count("&") == len(spec) - 1 for line in rows)
    assert "\\%" in latex and "$\\Delta$" in latex and "Δ" not in latex.replace("% Δ", "")


def failed(record: dict, status: str, message: str) -> dict:
    """A real record as the runner writes a failed case: its status and message, no measured value."""
    measured = {k: None for k in ("output_size", "params", "params_trainable", "macs", "flops", "latency_ms_median",
                                  "latency_ms_p25", "latency_ms_p75", "images_per_s", "peak_mem_bytes")}
    return {**record, **measured, "status": status, "message": message}


def test_when_every_case_failed_compare_says_why(tiny_results, tmp_path, capsys):
    written = records(tiny_results)
    statuses = ["oom" if r["mode"] == "infer" and r["batch"] == 2 else "error" for r in written]
    folder = write(tmp_path / "x", [failed(r, s, f"RuntimeError: boom {i}\n  at line 3")
                                    for i, (r, s) in enumerate(zip(written, statuses, strict=True))])
    first = written[0]
    why = (f"no successful measurement in {folder}: 9 error, 1 oom; first: {first['variant']} {first['mode']} "
           f"{first['input_size']}px: RuntimeError: boom 0")
    with pytest.raises(BenchError, match=re.escape(why) + "$"):
        compare(load([folder]), metrics=["macs"])
    for command in ("compare", "report"):
        assert main([command, str(folder)]) == 2
        assert capsys.readouterr().err == f"unet-bench {command}: error: {why}\n"


def test_a_baseline_that_only_failed_says_so(tiny_results, tmp_path):
    written = records(tiny_results)
    folder = write(tmp_path / "x", [failed(r, "error", "") if r["variant"] == "paper" else r for r in written])
    with pytest.raises(BenchError, match=re.escape(
            "no successful measurement of the baseline 'paper': 6 error; first: paper counts 60px: no message "
            "recorded; choose another with --baseline: 'padded', 'bilinear'")):
        compare(load([folder]))
    assert set(compare(load([folder]), baseline="padded").table["variant"]) == {"padded", "bilinear"}
    before = write(tmp_path / "before", [failed(r, "error", "boom") for r in written])  # against results
    with pytest.raises(BenchError, match=re.escape(
            f"no successful measurement of the baseline '{before}': 10 error; first: paper counts 60px: boom; "
            f"choose another with --baseline: '{tiny_results}'")):
        compare(load([before, tiny_results]))


def test_results_without_paper_rows_compare_against_their_first_variant(frame):
    without = frame[frame["variant"] != "paper"]
    comparison = compare(without, metrics=["params"])
    first = without["variant"].iloc[0]
    assert comparison.baseline == first and first != "paper"
    assert any("no paper rows: the baseline is " + first in note for note in comparison.notes)
    assert comparison.table.loc[comparison.table["variant"] == first, "is_reference"].all()
