"""Training that respects valid convolutions, and `evaluate_quality` end to end on a tiny task."""

import numpy as np
import pytest
import torch

from unet_bench.errors import BenchError
from unet_bench.models import UNet, get_config
from unet_bench.models.geometry import output_size
from unet_bench.quality.data import SegmentationSet, Split, standardize
from unet_bench.quality.evaluate import evaluate_quality, training_tile
from unet_bench.quality.synthetic import synthetic_set, synthetic_task
from unet_bench.quality.train import (
    TileSampler,
    TrainSettings,
    lr_factor,
    make_optimizer,
    make_schedule,
    paper_init,
    train,
)
from unet_bench.record import Case, Record

TINY = {"depth": 2, "base_width": 4}
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_task() -> Split:
    return synthetic_task(1, n_train=8, n_val=4, size=64)


@pytest.fixture(scope="module")
def easy_task(tiny_task) -> Split:
    """The tiny task's masks drawn as noisy images: what a tiny network learns in 40 steps."""
    rng = np.random.default_rng(0)

    def drawn(part: SegmentationSet) -> SegmentationSet:
        images = tuple(standardize(m + rng.normal(0, 0.3, m.shape)) for m in part.masks)
        return SegmentationSet(images, part.masks, part.instances)

    return Split(drawn(tiny_task.train), drawn(tiny_task.val))


def test_tiny_training_lowers_the_loss_and_beats_trivial_predictors(easy_task):
    cfg = get_config("paper", **TINY)
    result = evaluate_quality(cfg, seeds=1, steps=40, tile_out=32, optimizer="adam", lr=3e-3, data=easy_task)
    extra = result["extra"]
    assert extra["loss_end_per_seed"][0] < 0.6 * extra["loss_start_per_seed"][0]
    # all background scores Dice 0; all foreground, the best constant, scores 2p/(1+p)
    p = extra["val_foreground_fraction"]
    assert result["dice_all_foreground"] == pytest.approx(2 * p / (1 + p))
    assert result["dice_mean"] > result["dice_all_foreground"] + 0.25
    # drawn from the masks, the easy task is one a threshold solves: the rule tuned on training images
    # finds the objects of the validation images too
    assert result["dice_threshold"] > 0.9 and extra["threshold_rule"]["brighter"] is True
    assert 0 <= result["object_f1_mean"] <= 1 and 0 <= result["map_mean"] <= 1
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
    extra = result["extra"]
    assert extra["optimizer"] == "adam" and extra["lr"] == 2e-3 and extra["momentum"] is None  # the defaults
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


def test_paper_init_draws_std_sqrt_2_over_inputs_per_output_unit():
    model = UNet(get_config("paper", base_width=16))
    paper_init(model)
    conv = model.downs[3][1][0]  # 3x3 conv, 128 -> 256 channels: N = 9 * 128
    up = model.ups[0].up  # 2x2 stride-2 up-conv, 256 -> 128: each output sees N = 256 inputs
    for layer, n in ((conv, 9 * 128), (up, 256)):
        assert layer.weight.std().item() == pytest.approx((2 / n) ** 0.5, rel=0.02)
        assert not layer.bias.any()
    default = UNet(get_config("paper", base_width=16)).downs[3][1][0].weight.std().item()
    assert default < 0.5 * (2 / (9 * 128)) ** 0.5  # torch's default is far smaller: why the paper's matters


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
    with pytest.raises(BenchError, match="in_channels=3, num_classes=2 cannot train"):
        evaluate_quality(cfg.replace(in_channels=3), data=tiny_task)
    with pytest.raises(BenchError, match="training diverged"):
        evaluate_quality(cfg, steps=20, lr=1e6, data=tiny_task, seeds=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_cuda_matches_the_cpu_interface(easy_task):
    cfg = get_config("paper", **TINY)
    result = evaluate_quality(cfg, seeds=1, steps=40, tile_out=32, optimizer="adam", lr=3e-3, data=easy_task,
                              device="cuda")
    assert result["dice_mean"] > result["dice_all_foreground"] + 0.25


def test_the_learning_curve_is_recorded_every_n_steps_and_ends_at_the_final_score(easy_task):
    cfg = get_config("padded", **TINY)
    result = evaluate_quality(cfg, seeds=2, steps=30, tile_out=32, lr=3e-3, curve_every=10, data=easy_task,
                              schedule="cosine")
    extra = result["extra"]
    assert result["curve_steps"] == [10, 20, 30]
    for name in ("dice", "object_f1"):
        per_seed = extra[f"curve_{name}_per_seed"]
        assert [curve[-1] for curve in per_seed] == extra[f"{name}_per_seed"]  # last point = final score
        assert result[f"curve_{name}_mean"] == pytest.approx(np.mean(per_seed, axis=0).tolist())
        # gain over the last quarter: the last point against the one nearest step 22.5 (step 20)
        assert result[f"curve_{name}_gain"] == pytest.approx(result[f"curve_{name}_mean"][2]
                                                             - result[f"curve_{name}_mean"][1])
    assert result["curve_dice_mean"][-1] > result["curve_dice_mean"][0]  # it learned between the points
    assert extra["schedule"] == "cosine" and extra["augment"] == "flips"
    record = Record.for_case(Case("padded", mode="quality", seeds=2, schedule="cosine"), **result)
    assert Record.from_dict(record.to_dict()) == record
    assert evaluate_quality(cfg, seeds=1, steps=4, tile_out=32, data=easy_task)["curve_steps"] == [1, 2, 3, 4]
    assert evaluate_quality(cfg, seeds=1, steps=4, tile_out=32, curve_every=0, data=easy_task)["curve_steps"] == [4]


def test_the_learning_rate_schedules_follow_their_shapes():
    # constant; cosine from 1 to about 0 (halfway at the middle step); warmup-cosine rises over the
    # first tenth (10 of 100 steps: 0.1, 0.2, ... 1.0) and then falls as cosine over the other 90
    assert [lr_factor("constant", s, 100) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    assert lr_factor("cosine", 0, 100) == 1.0 and lr_factor("cosine", 50, 100) == pytest.approx(0.5)
    assert lr_factor("cosine", 99, 100) < 0.001
    warm = [lr_factor("warmup-cosine", s, 100) for s in range(100)]
    assert warm[:10] == pytest.approx([0.1 * k for k in range(1, 11)])
    assert warm[10] == 1.0 and warm[55] == pytest.approx(0.5) and warm[99] < 0.001
    assert all(a >= b for a, b in zip(warm[10:-1], warm[11:], strict=True))  # no rise after the warm-up
    # a scheduler over a real optimizer steps through the same values
    model = torch.nn.Linear(2, 2)
    settings = TrainSettings(steps=20, lr=0.01, schedule="warmup-cosine")
    optimizer = make_optimizer(model, settings)
    schedule = make_schedule(optimizer, settings)
    seen = []
    for _ in range(20):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert seen == pytest.approx([0.01 * lr_factor("warmup-cosine", s, 20) for s in range(20)])
    assert seen[:2] == pytest.approx([0.005, 0.01])
