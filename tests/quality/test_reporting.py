"""Quality results as compare shows them: instance metrics with verdicts from the seeds, the baselines
beside every row, runs without the weight map as rows of their own, and the smallest Dice difference."""

import json

import pytest
from scipy import stats as sstats

from unet_bench.analysis.compare import compare
from unet_bench.analysis.findings import summarize
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
    assert f"{tmp_path}: Dice differences under {expected:.3f} cannot be told from the seeds' spread " \
           "(3 seeds per case)" in caption(comparison)
    assert f"{tmp_path}: the networks score Dice 0.720 to 0.820; the baselines on the same validation data: " \
           "tuned threshold 0.600, all foreground 0.450" in summarize(comparison)


def test_minimal_detectable_difference_in_absolute_units():
    groups = [[0.80, 0.82, 0.84], [0.70, 0.72, 0.74]]
    assert minimal_detectable(groups, log=False) == pytest.approx(sstats.t.ppf(0.975, 4) * 0.02 * (2 / 3) ** 0.5)
    assert minimal_detectable([[0.8, 0.9]], log=False) is None  # 2 seeds: too few for a verdict
