"""Loading results: one flat row per case, partial lines reported, pytest-benchmark files read, and the
per-output-pixel figures filled in for records written before they existed."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.analysis.tiny import CASES
from tests.records import flat
from unet_bench.analysis.results import load
from unet_bench.errors import BenchError

pytest_plugins = ["pytester"]


def test_load_gives_one_row_per_case_with_flat_named_columns(frame, tiny_results):
    assert len(frame) == CASES
    assert frame["source"].unique().tolist() == [str(tiny_results)]
    for column in ("latency_ms_median", "latency_ms_p25", "macs", "params", "peak_mem_bytes", "images_per_s"):
        assert frame[column].dtype == float, column
    assert (frame["cfg_depth"] == 2).all() and (frame["cfg_base_width"] == 4).all()
    assert set(frame["cfg_padding"]) == {"valid", "same"}
    assert (frame["overrides"] == "base_width=4,depth=2").all()
    assert set(frame["size_rule"]) == {"common-output", "input"}  # how each size was chosen, kept
    assert set(frame.loc[frame["size_rule"] == "common-output", "requested_size"]) == {20, 36}
    assert frame["env_torch"].notna().all() and frame["env_cpu"].notna().all()
    infer = frame[frame["mode"] == "infer"]
    assert infer["latency_ms_median"].gt(0).all() and infer["peak_mem_bytes"].gt(0).all()
    assert frame.loc[frame["mode"] == "counts", "latency_ms_median"].isna().all()
    assert (frame["flops"] == 2 * frame["macs"]).all()
    assert "extra_params_per_stage_head" in frame  # nested extra dicts flattened with '_'


def test_truncated_last_line_is_skipped_and_reported(tiny_results, tmp_path):
    copy = tmp_path / "killed"
    shutil.copytree(tiny_results, copy)
    text = (copy / "results.jsonl").read_text()
    first = text.splitlines()[0]
    # a re-recorded case (same case_id) keeps one row; a kill mid-write leaves half a line
    (copy / "results.jsonl").write_text(text + first + "\n" + first[: len(first) // 2])
    loaded = load([copy])
    assert len(loaded) == CASES
    assert len(loaded.attrs["notes"]) == 1 and "partial last line" in loaded.attrs["notes"][0]


def test_pytest_benchmark_json_is_loaded(pytester, tmp_path):
    pytester.makepyfile(
        """
        import torch
        from unet_bench import create_model

        def test_tiny_unet(benchmark):
            model = create_model("paper", base_width=4, depth=2).eval()
            x = torch.zeros(2, 1, 60, 60)
            benchmark.extra_info.update(variant="paper", batch=2, input_size=60)
            with torch.inference_mode():
                benchmark.pedantic(model, args=(x,), rounds=5, iterations=1)
        """
    )
    out = tmp_path / "bench.json"
    result = pytester.runpytest_inprocess("-p", "pytest_benchmark", f"--benchmark-json={out}", "-q")
    result.assert_outcomes(passed=1)
    data = json.loads(out.read_text())
    stats = data["benchmarks"][0]["stats"]
    loaded = load([out])
    assert len(loaded) == 1
    bench = loaded.iloc[0]
    assert bench["variant"] == "paper" and bench["batch"] == 2 and bench["input_size"] == 60
    assert bench["latency_ms_median"] == pytest.approx(stats["median"] * 1e3)
    assert bench["latency_ms_p25"] == pytest.approx(stats["q1"] * 1e3)
    assert bench["latency_n"] == stats["rounds"] == 5
    assert bench["images_per_s"] == pytest.approx(2 / stats["median"])
    assert bench["source"] == str(out)


@pytest.mark.parametrize("name, content, message", [
    ("nope", None, "results directory '.*nope' does not exist"),
    (".", None, "no results.jsonl in"),
    (".", "", "holds no readable record"),
    (".", '{"mode": "infer"}\n', r"holds no readable record \(.*results.jsonl:1: line skipped: no 'variant'"),
])
def test_missing_or_empty_results_are_one_line_errors(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / "results.jsonl").write_text(content)
    with pytest.raises(BenchError, match=message):
        load([tmp_path / name])


def test_per_output_pixel_figures_are_derived_for_older_records(tiny_results, frame, tmp_path):
    old = [flat(json.loads(line)) for line in (tiny_results / "results.jsonl").read_text().splitlines()]
    for record in old:  # as written before records carried them
        for key in ("latency_ms_per_output_mpix", "output_mpix_per_s", "requested_size", "size_rule"):
            record.pop(key)
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    loaded = load([tmp_path])
    timed = frame["latency_ms_median"].notna()
    assert timed.sum() == 7
    for column in ("latency_ms_per_output_mpix", "output_mpix_per_s"):
        assert loaded.loc[timed, column].to_numpy() == pytest.approx(frame.loc[timed, column].to_numpy(), rel=1e-9)
    assert loaded.loc[~timed, "latency_ms_per_output_mpix"].isna().all()
    assert loaded["size_rule"].isna().all() and loaded["requested_size"].isna().all()
