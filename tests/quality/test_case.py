"""A quality case through the runner's dispatch: one record with Dice, IoU and the counts beside them."""

import statistics

import pytest

from unet_bench.measure import measure
from unet_bench.models import geometry
from unet_bench.models.registry import get_config
from unet_bench.record import Case


@pytest.mark.usefixtures("one_thread")
def test_quality_case_gives_one_record_with_quality_and_cost():
    overrides = (("base_width", 2), ("depth", 2))
    cfg = get_config("paper", **dict(overrides))
    size = geometry.input_size_for_output(cfg, 36)
    case = Case("paper", overrides, mode="quality", batch=2, input_size=size, seeds=2, threads=1)
    record = measure(case)
    assert record.mode == "quality" and record.case_id == case.case_id and record.status == "ok"
    assert record.quality_seeds == 2 and len(record.extra["dice_per_seed"]) == 2
    # a 2-wide network may still predict all background after 300 steps: this checks the plumbing, and
    # tests/test_quality_train.py checks that training learns
    assert record.dice_mean == pytest.approx(statistics.mean(record.extra["dice_per_seed"]))
    assert record.iou_mean == pytest.approx(statistics.mean(record.extra["iou_per_seed"]))
    assert 0 <= record.iou_mean <= record.dice_mean <= 1 and record.train_steps > 0
    assert record.macs > 0 and record.flops == 2 * record.macs and record.params > 0
    assert record.config == cfg.to_dict() and record.env["torch"]
