"""Quality results as compare shows them: instance metrics with verdicts from the seeds, the baselines
beside every row, runs without the weight map as rows of their own, and the smallest Dice difference."""

import dataclasses
import json

import pytest
from scipy import stats as sstats

from unet_bench.analysis.compare import compare
from unet_bench.analysis.findings import summarize
from unet_bench.analysis.plots import make_figures
from unet_bench.analysis.results import load
from unet_bench.analysis.stats import minimal_detectable
from unet_bench.analysis.tables import caption
from unet_bench.record import Case, Record


def quality_record(variant: str, dice: list[float], f1: list[float], weight_map: bool = True) -> dict:
    case = Case(variant, (("base_width", 8),), mode="quality", batch=4, input_size=64, weight_map=weight_map,
                requested_size=64, size_rule="nearest-output")
    mean = sum(dice) / len(dice)
    record = Record.for_case(case, status="ok", dice_mean=mean, dice_std=0.01, quality_seeds=len(dice),
                             object_f1_mean=sum(f1) / len(f1), dice_threshold=0.6, dice_all_foreground=0.45,
                             extra={"dice_per_seed": dice, "object_f1_per_seed": f1})
    record.weight_map = weight_map
    return record.to_dict()


def test_compare_shows_instance_metrics_and_baselines_per_variant(tmp_path):
    records = [quality_record("paper", [0.80, 0.82, 0.84], [0.50, 0.52, 0.54]),
               quality_record("paper", [0.80, 0.82, 0.84], [0.30, 0.31, 0.32], weight_map=False),
               quality_record("padded", [0.70, 0.72, 0.74], [0.40, 0.42, 0.44])]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    comparison = compare(load([tmp_path]))
    table = comparison.table.set_index("variant")
    assert list(table.index) == ["paper", "paper[no-weight-map]", "padded"]
    assert table.loc["paper[no-weight-map]", "object_f1_mean_verdict"] == "real"  # 0.31 against 0.52
    assert table.loc["paper[no-weight-map]", "dice_mean_rel"] == 0  # the same pixels, fewer objects
    assert (table["dice_threshold"] == 0.6).all() and (table["dice_all_foreground"] == 0.45).all()
    # pooled seed std 0.02 over 3 + 3 seeds: t(0.975, 4) * 0.02 * sqrt(2 / 3)
    expected = sstats.t.ppf(0.975, 4) * 0.02 * (2 / 3) ** 0.5
    assert comparison.seed_noise[str(tmp_path)] == (pytest.approx(expected), 3)
    # object F1: seed stds 0.02, 0.01 and 0.02 pooled over the three rows
    f1 = sstats.t.ppf(0.975, 4) * ((0.02**2 + 0.01**2 + 0.02**2) / 3) ** 0.5 * (2 / 3) ** 0.5
    assert f"{tmp_path}: Dice differences under {expected:.3f}, object F1 under {f1:.3f} cannot be told from the " \
           "seeds' spread (3 seeds per case)" in caption(comparison)
    assert f"{tmp_path}: the networks score Dice 0.720 to 0.820; the baselines on the same validation data: " \
           "tuned threshold 0.600, all foreground 0.450" in summarize(comparison)


def test_minimal_detectable_difference_in_absolute_units():
    groups = [[0.80, 0.82, 0.84], [0.70, 0.72, 0.74]]
    assert minimal_detectable(groups, log=False) == pytest.approx(sstats.t.ppf(0.975, 4) * 0.02 * (2 / 3) ** 0.5)
    assert minimal_detectable([[0.8, 0.9]], log=False) is None  # 2 seeds: too few for a verdict


def curve_record(variant: str, f1: list[float], macs_per_pixel: float, augment: str = "flips") -> dict:
    """A quality record with learning curves (the last point the final score) and its cost."""
    record = Record.from_dict(quality_record(variant, [0.8, 0.81, 0.82], f1))
    record.case = dataclasses.replace(record.case, augment=augment, train_images=2 if augment != "flips" else None)
    record.case_id = record.case.case_id
    curves = [[v - 0.2, v - 0.05, v] for v in f1]
    record.set(curve_steps=[10, 20, 30], curve_object_f1_mean=[sum(c) / 3 for c in zip(*curves, strict=True)],
               curve_object_f1_gain=0.05,
               macs_per_output_pixel=macs_per_pixel, macs=int(macs_per_pixel) * 64 * 64, output_size=64,
               extra={"curve_object_f1_per_seed": curves, "curve_dice_per_seed": curves,
                      "curve_object_f1_gain_per_seed": [0.05, 0.05, 0.05]})
    return record.to_dict()


def test_learning_curves_cost_per_object_and_augmentation_rows(tmp_path):
    records = [curve_record("paper", [0.70, 0.72, 0.74], 500), curve_record("padded", [0.60, 0.61, 0.62], 50),
               curve_record("paper", [0.50, 0.52, 0.54], 500, augment="elastic")]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    frame = load([tmp_path])
    table = compare(frame).table.set_index("variant")
    assert list(table.index) == ["paper", "padded", "paper[augment=elastic,train_images=2]"]
    # 1 GFLOP per output megapixel (500 MACs a pixel) against 0.1: ten times the cost
    assert table.loc["paper", "object_f1_per_gflop"] == pytest.approx(0.72)
    assert table.loc["padded", "object_f1_per_gflop"] == pytest.approx(6.1)
    assert table.loc["padded", "object_f1_per_gflop_verdict"] == "real"
    assert table.loc["paper", "curve_object_f1_gain"] == pytest.approx(0.05)
    figures = make_figures(frame, tmp_path / "figures", formats=("png",), names=["learning_curves"])
    assert [f.name for f in figures] == ["learning_curves"] and figures[0].paths[0].stat().st_size > 10_000
    assert "mean over 3 training seeds, band ± one standard deviation" in figures[0].caption
    assert make_figures(load([tmp_path]).assign(curve_steps=None), tmp_path / "none", formats=("png",),
                        names=["learning_curves"]) == []
