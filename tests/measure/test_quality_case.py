"""A quality case through the runner's dispatch, and the training settings an experiment file sets."""

import hashlib
import json
import statistics

import pytest

from unet_bench.errors import BenchError
from unet_bench.measure import measure
from unet_bench.models import geometry
from unet_bench.models.registry import get_config
from unet_bench.record import Case
from unet_bench.suite.spec import load_spec


@pytest.mark.usefixtures("one_thread")
def test_quality_case_gives_one_record_with_quality_baselines_and_cost():
    overrides = (("base_width", 2), ("depth", 2))
    cfg = get_config("paper", **dict(overrides))
    size = geometry.input_size_for_output(cfg, 36)
    case = Case("paper", overrides, mode="quality", batch=2, input_size=size, seeds=2, threads=1, steps=20,
                lr=0.01, optimizer="sgd", weight_map=False)
    record = measure(case)
    assert record.get("mode") == "quality" and record.case_id == case.case_id and record.status == "ok"
    assert record.get("quality_seeds") == 2 and len(record.extra["dice_per_seed"]) == 2
    assert record.get("train_steps") == 20
    assert record.extra["lr"] == 0.01 and record.extra["optimizer"] == "sgd" and record.get('weight_map') is False
    # a 2-wide network may still predict all background after 20 steps: this checks the plumbing, and
    # test_train checks that training learns
    for name in ("dice", "iou", "object_f1", "map", "rand_error"):
        per_seed = record.extra[f"{name}_per_seed"]
        assert record.get(f"{name}_mean") == pytest.approx(statistics.mean(per_seed))
        assert 0 <= record.get(f"{name}_threshold") <= 1
    assert 0 <= record.get('iou_mean') <= record.get('dice_mean') <= 1
    # the baselines on the default synthetic task's validation split
    assert record.get("dice_all_foreground") == pytest.approx(0.447, abs=1e-3)
    assert record.get("dice_threshold") == pytest.approx(0.597, abs=1e-3)
    assert record.get('macs') > 0 and record.get("flops") == 2 * record.get('macs') and record.get('params') > 0
    assert record.config == cfg.to_dict() and record.env["torch"]


def test_an_experiment_file_sets_steps_learning_rate_and_weight_map(tmp_path):
    path = tmp_path / "q.toml"
    path.write_text('name = "q"\ndescription = "d"\nmodes = ["quality", "counts"]\nsizes = [64]\n'
                    'size_rule = "nearest-output"\nsteps = 50\nlr = 0.01\noptimizer = "sgd"\n'
                    'variants = ["padded"]\nweight_map = [true, false]\n')
    cases = [p.case for p in load_spec(path).planned]
    quality = [c for c in cases if c.mode == "quality"]
    assert [(c.steps, c.lr, c.optimizer, c.weight_map) for c in quality] == [(50, 0.01, "sgd", True),
                                                                              (50, 0.01, "sgd", False)]
    counts = [c for c in cases if c.mode == "counts"]  # training settings mean nothing there: one case
    assert [(c.steps, c.lr, c.weight_map) for c in counts] == [(None, None, True)]
    # a case at the default settings keeps the id it had before cases carried them (results stay resumable)
    later = ("steps", "lr", "optimizer", "weight_map", "input_shape", "augment", "schedule", "train_images", "runtime",
             "elastic_sigma")
    before = {k: v for k, v in counts[0].to_dict().items() if k not in later}
    assert counts[0].case_id == hashlib.sha1(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert quality[0].case_id != quality[1].case_id
    path.write_text('name = "q"\ndescription = "d"\nmodes = ["quality"]\nvariants = ["padded"]\nsteps = 0\n')
    with pytest.raises(BenchError, match=r"q.toml: steps: 0 is not allowed; it must be an integer in \[1, "):
        load_spec(path)
