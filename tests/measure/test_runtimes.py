"""Deployment runtimes: the exported network computes what eager torch computes, failures are results,
int8 calibrates on training images only, and the grid pairs each exported case with its torch twin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.records import flat_records
from unet_bench import BenchError
from unet_bench.errors import UnsupportedError
from unet_bench.measure import measure
from unet_bench.measure import runtimes as runtimes_module
from unet_bench.measure.network import build_model
from unet_bench.measure.outcome import classify_failure
from unet_bench.measure.quantize import calibration_batches
from unet_bench.measure.runtime_case import TOLERANCE, check_values
from unet_bench.measure.runtime_quality import CALIBRATION_TILES, calibration_tiles
from unet_bench.quality.synthetic import synthetic_task
from unet_bench.quality.tiling import tile_grid
from unet_bench.record import Case
from unet_bench.suite.runner import run_suite
from unet_bench.suite.spec import load_spec

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

TINY = (("base_width", 4), ("depth", 2))


def tiny(runtime: str, dtype: str = "fp32", **fields) -> Case:
    return Case("paper", overrides=TINY, mode="infer", input_size=44, runtime=runtime, dtype=dtype, threads=1,
                min_run_time_s=0.05, **fields)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_an_exported_network_computes_what_eager_torch_computes(runtime: str) -> None:
    record = measure(tiny(runtime))
    convs = sum(isinstance(m, nn.Conv2d) for m in build_model(tiny("torch")).modules())
    assert record.status == "ok"
    assert record.export.max_rel_error < TOLERANCE["fp32"] and record.export.output_mismatch is False
    assert record.export.op_census["Conv"] == convs  # every convolution of the network, none fused away
    ups = sum(isinstance(m, nn.ConvTranspose2d) for m in build_model(tiny("torch")).modules())
    assert record.export.op_census["ConvTranspose"] == ups
    assert record.export.model_file is None and record.export.model_bytes > 4 * sum(
        p.numel() for p in build_model(tiny("torch")).parameters())  # fp32 weights and the graph
    assert record.export.provider_options and record.threads_used == 1
    assert record.memory.peak_mem_bytes > 0 and "resident" in record.memory.peak_mem_method


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_int8_is_quantized_within_its_tolerance_and_says_how(runtime: str) -> None:
    record = measure(tiny(runtime, "int8"))
    census = record.export.op_census
    assert census["QuantizeLinear"] > 0 and census["DequantizeLinear"] > 0
    assert 0 < record.export.max_rel_error < TOLERANCE["int8"]
    assert record.export.max_rel_error > TOLERANCE["fp32"]  # it is another precision, not the same numbers
    assert "training split" in record.export.quantization["calibration_source"]
    assert record.timing.peak_fraction is None  # int8 kernels are not read against fp32 ceilings


def test_int8_calibration_images_are_training_images_only() -> None:
    batches = calibration_batches((2, 1, 64, 64), images=3)
    task = synthetic_task(0, n_train=6, n_val=8, size=64)
    used = np.concatenate(batches)[:, 0]
    assert used.shape == (6, 64, 64)
    assert all(np.array_equal(a, b) for a, b in zip(used, task.train.images, strict=True))
    assert not any(np.allclose(u, v) for u in used for v in task.val.images)


def test_an_output_beyond_tolerance_is_a_mismatch() -> None:
    expected = np.linspace(-2, 2, 100, dtype=np.float32).reshape(1, 1, 10, 10)
    close = check_values(expected + 1e-6, expected, "fp32")
    off = check_values(expected * 1.01, expected, "fp32")
    assert close["output_mismatch"] is False and close["max_rel_error"] == pytest.approx(5e-7, rel=0.1)
    assert off["output_mismatch"] is True and off["max_rel_error"] == pytest.approx(0.01, rel=1e-3)
    assert check_values(expected[..., :5], expected, "int8")["output_mismatch"] is True  # another shape


def failing_export(case: Case):
    """The real measure, with torch's exporter failing as it does on an op it cannot export."""
    def refuse(*args, **kwargs):
        raise torch.onnx.errors.UnsupportedOperatorError("aten::grid_sampler", 18, "")

    torch.onnx.export = refuse
    return measure(case)


def test_a_network_that_does_not_export_is_recorded_unsupported_and_the_suite_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "rt.toml"
    path.write_text('name = "rt"\ndescription = "d"\nvariants = ["paper"]\nmodes = ["infer"]\nsizes = [44]\n'
                    'runtimes = ["torch", "onnxruntime"]\nthreads = 1\nmin_run_time_s = 0.05\n'
                    'set = {base_width = 4, depth = 2}\n')
    summary = run_suite(load_spec(path), tmp_path / "out", progress=False, log=lambda line: None,
                        measure_fn=failing_export)
    records = {r["runtime"]: r for r in flat_records(tmp_path / "out" / "results.jsonl")}
    assert records["torch"]["status"] == "ok"
    assert records["onnxruntime"]["status"] == "unsupported"
    assert records["onnxruntime"]["message"].startswith("ONNX export failed: UnsupportedOperatorError")
    assert summary.written["unsupported"] == 1
    status, message = classify_failure(UnsupportedError("openvino cannot load the exported network: x"))
    assert (status, message) == ("unsupported", "openvino cannot load the exported network: x")


def test_a_suite_keeps_each_exported_model_and_pairs_it_with_torch(tmp_path: Path) -> None:
    path = tmp_path / "rt.toml"
    path.write_text('name = "rt"\ndescription = "d"\nvariants = ["paper"]\nmodes = ["infer", "counts"]\n'
                    'sizes = [44]\nruntimes = ["onnxruntime"]\nthreads = 1\nmin_run_time_s = 0.05\n'
                    'set = {base_width = 4, depth = 2}\n')
    spec = load_spec(path)
    assert [(p.case.mode, p.case.runtime) for p in spec.planned] == [("infer", "onnxruntime"), ("counts", "torch")]
    run_suite(spec, tmp_path / "out", progress=False, log=lambda line: None)
    record = next(r for r in flat_records(tmp_path / "out" / "results.jsonl") if r["runtime"] == "onnxruntime")
    assert record["status"] == "ok" and (tmp_path / "out" / record["model_file"]).is_file()
    assert record["paired_reference"] == "paper" and record["paired_reference_runtime"] == "torch"
    assert record["paired_ratio"] > 0 and len(record["paired_ratios"]) >= 4


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "g.toml"
    path.write_text('name = "g"\ndescription = "d"\nvariants = ["paper", "bilinear"]\nsizes = [44]\n'
                    'set = {base_width = 4, depth = 2}\n' + body)
    return path


def test_the_grid_runs_inference_on_each_runtime_and_the_other_modes_under_torch(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, 'modes = ["infer", "train"]\nruntimes = ["torch", "openvino"]\n'
                                     'dtypes = ["fp32", "int8"]\nchannels_last = [false, true]\n'))
    cases = {(c.variant, c.mode, c.runtime, c.dtype, c.channels_last): c for c in [p.case for p in spec.planned]}
    variants = ("paper", "bilinear")
    on_torch = {(v, m, "torch", "fp32", cl) for v in variants for m in ("infer", "train") for cl in (False, True)}
    on_openvino = {(v, "infer", "openvino", d, False) for v in variants for d in ("fp32", "int8")}
    assert set(cases) == on_torch | on_openvino
    twin = cases["bilinear", "infer", "openvino", "int8", False].reference
    assert (twin.variant, twin.runtime, twin.dtype, twin.memory) == ("bilinear", "torch", "fp32", False)
    assert cases["bilinear", "infer", "torch", "fp32", False].reference.variant == "paper"
    only_ort = load_spec(write(tmp_path, 'modes = ["infer", "train"]\n'), runtime="onnxruntime")
    assert {(p.case.mode, p.case.runtime) for p in only_ort.planned} == {("infer", "onnxruntime"), ("train", "torch")}


@pytest.mark.parametrize("body, message", [
    ('modes = ["infer"]\ndtypes = ["int8"]\n', "dtypes: 'int8' runs on a deployment runtime"),
    ('modes = ["counts"]\nruntimes = ["onnxruntime"]\n',
     "runtimes: 'onnxruntime' runs inference; add \"infer\" or \"quality\""),
    ('modes = ["infer"]\nruntimes = ["tensorrt"]\n', "runtimes: 'tensorrt' is not allowed; "
     "choose from 'torch', 'onnxruntime', 'openvino'"),
    ('modes = ["infer"]\nprecision = ["int8"]\ndtypes = ["fp32"]\n', "precision: is another name for dtypes"),
])
def test_a_runtime_the_grid_cannot_run_is_refused_in_one_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        load_spec(write(tmp_path, body))


def test_a_runtime_that_is_not_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(runtimes_module.MODULES, "openvino", "openvino_not_installed_here")
    with pytest.raises(BenchError, match=r'openvino.*not installed.*pip install "unet-bench\[runtimes\]"'):
        measure(tiny("openvino"))


def test_quality_on_a_runtime_scores_the_same_weights_and_says_what_int8_changes() -> None:
    case = Case("paper", overrides=TINY, mode="quality", input_size=44, runtime="onnxruntime", threads=1, seeds=1,
                steps=3, batch=2)
    same = measure(case)
    int8 = measure(Case(**{**case.to_dict(), "overrides": TINY, "dtype": "int8"}))
    torch_dice = same.extra["dice_torch_fp32_per_seed"]
    assert int8.extra["dice_torch_fp32_per_seed"] == torch_dice  # the same seed trains the same weights
    assert same.quality.dice_mean == pytest.approx(torch_dice[0], abs=1e-3)  # fp32 on the runtime: same function
    assert int8.extra["dice_change_per_seed"] == [int8.quality.dice_mean - torch_dice[0]]
    assert int8.export.quantization["calibration_images"] == CALIBRATION_TILES


def test_int8_quality_calibrates_on_training_tiles_only() -> None:
    task = synthetic_task(0)
    cfg = build_model(tiny("torch")).cfg
    tiles = calibration_tiles(task.train, cfg, 44, channels=1)
    margin = tile_grid(cfg, 44).margin
    assert len(tiles) == CALIBRATION_TILES and tiles[0].shape == (1, 1, 44, 44)
    for tile, image in zip(tiles, task.train.images, strict=False):  # each tile: its training image's corner
        inner = 44 - margin
        assert np.array_equal(tile[0, 0, margin:, margin:], image[:inner, :inner])


def test_profile_on_a_runtime_says_how_to_time_it_instead(capsys: pytest.CaptureFixture) -> None:
    from unet_bench.cli import main

    assert main(["profile", "paper", "--size", "188", "--runtime", "onnxruntime"]) == 2
    assert "unet-bench time paper --size 188 --runtime onnxruntime" in capsys.readouterr().err


def test_exported_networks_are_not_written_through_a_link(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "models").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(BenchError, match="models is a symbolic link"):
        measure(tiny("onnxruntime"), models_dir=tmp_path / "models")
    assert not any((tmp_path / "elsewhere").iterdir())
