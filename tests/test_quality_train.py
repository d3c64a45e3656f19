"""Training that respects valid convolutions, and `evaluate_quality` end to end on a tiny task."""

import numpy as np
import pytest

from unet_bench.errors import BenchError
from unet_bench.models import get_config
from unet_bench.models.geometry import output_size
from unet_bench.quality.data import SegmentationSet, Split, standardize
from unet_bench.quality.evaluate import evaluate_quality, training_tile
from unet_bench.quality.synthetic import synthetic_set, synthetic_task
from unet_bench.quality.train import TileSampler, TrainSettings, train
from unet_bench.record import Case, Record

TINY = {"depth": 2, "base_width": 4}
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_task() -> Split:
    return synthetic_task(1, n_train=8, n_val=4, size=64)


def test_tiny_training_lowers_the_loss_and_beats_trivial_predictors(tiny_task):
    cfg = get_config("paper", **TINY)
    result = evaluate_quality(cfg, seeds=1, steps=40, tile_out=32, optimizer="adam", lr=3e-3, data=tiny_task)
    extra = result["extra"]
    assert extra["loss_end_per_seed"][0] < 0.6 * extra["loss_start_per_seed"][0]
    # all background scores Dice 0; all foreground, the best constant, scores 2p/(1+p)
    p = tiny_task.val.foreground_fraction()
    assert extra["dice_all_foreground"] == pytest.approx(2 * p / (1 + p))
    assert result["dice_mean"] > extra["dice_all_foreground"] + 0.25
    assert 0 < result["iou_mean"] < result["dice_mean"]  # IoU = D / (2 − D) < D
    assert result["iou_mean"] == pytest.approx(result["dice_mean"] / (2 - result["dice_mean"]))
    assert (extra["tile_in"], extra["tile_out"]) == (training_tile(cfg, 32), 32)


def test_result_is_a_record_and_reports_the_spread_over_seeds(tiny_task):
    cfg = get_config("padded", **TINY)
    result = evaluate_quality(cfg, seeds=2, steps=3, batch=2, tile_out=32, data=tiny_task)
    dices = result["extra"]["dice_per_seed"]
    assert result["quality_seeds"] == 2 and result["train_steps"] == 3 and len(dices) == 2
    assert result["dice_mean"] == pytest.approx(np.mean(dices))
    assert result["dice_std"] == pytest.approx(np.std(dices, ddof=1))
    assert result["extra"]["infer_halo"] == 8  # padded: a quarter of the 32 px tile output is dropped
    assert result["extra"]["optimizer"] == "sgd" and result["extra"]["momentum"] == 0.99  # the paper's
    record = Record.for_case(Case("padded", mode="quality", seeds=2), **result)
    assert Record.from_dict(record.to_dict()) == record


@pytest.mark.parametrize("variant", ["paper", "padded"])
def test_targets_are_the_window_under_the_output(variant):
    """Images that equal their masks: the centre of every (flipped, rotated) input tile is its target."""
    cfg = get_config(variant, **TINY)
    masks = synthetic_set(2, 48, seed=3).masks
    images = tuple(standardize(m) for m in masks)
    data = SegmentationSet(images, masks, tuple(m.astype(np.int32) for m in masks))
    tile_in = training_tile(cfg, 20)
    sampler = TileSampler(cfg, data, tile_in, TrainSettings(weight_map=False))
    inputs, targets, weights = sampler.sample(np.random.default_rng(0), 16)
    out = output_size(cfg, tile_in)
    assert inputs.shape == (16, 1, tile_in, tile_in) and targets.shape == (16, out, out)
    top = (tile_in - out) // 2
    centre = inputs[:, 0, top : top + out, top : top + out]
    assert ((centre > 0) == (targets == 1)).all()
    assert (weights == 1).all()


def test_training_is_deterministic_per_seed(tiny_task):
    cfg = get_config("batchnorm", **TINY)
    settings = TrainSettings(steps=3, batch=2)
    runs = [train(cfg, tiny_task.train, tile_in=72, seed=s, settings=settings).losses for s in (0, 0, 1)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_bad_settings_and_divergence_are_one_line_errors(tiny_task):
    cfg = get_config("paper", **TINY)
    with pytest.raises(BenchError, match="optimizer='rmsprop' is not valid"):
        evaluate_quality(cfg, optimizer="rmsprop", data=tiny_task)
    with pytest.raises(BenchError, match="input height 70 is not valid"):
        evaluate_quality(cfg, tile_in=70, data=tiny_task)
    with pytest.raises(BenchError, match="smaller than the 96 px output tile"):
        evaluate_quality(cfg, tile_out=96, data=tiny_task)
    with pytest.raises(BenchError, match="training diverged"):
        evaluate_quality(cfg, steps=20, lr=1e6, data=tiny_task, seeds=1)
