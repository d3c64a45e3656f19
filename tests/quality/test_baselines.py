"""The baselines every quality result is shown against."""

import numpy as np
import pytest

from unet_bench.quality.baselines import all_foreground_dice, tune_threshold
from unet_bench.quality.data import SegmentationSet
from unet_bench.quality.metrics import dice


def test_all_foreground_dice_is_two_f_over_one_plus_f():
    mask = np.zeros((4, 4), np.int64)
    mask[0, :] = 1  # f = 1/4: 2 * 4 / (16 + 4)
    assert all_foreground_dice([mask]) == pytest.approx(0.4)
    assert all_foreground_dice([mask, np.ones((4, 4), np.int64)]) == pytest.approx(2 * 20 / (32 + 20))


def bright_squares(seed: int, sign: float) -> SegmentationSet:
    rng = np.random.default_rng(seed)
    masks, images = [], []
    for _ in range(3):
        mask = np.zeros((24, 24), np.int64)
        y, x = rng.integers(2, 12, size=2)
        mask[y : y + 8, x : x + 8] = 1
        masks.append(mask)
        images.append((sign * mask + rng.normal(0, 0.2, mask.shape)).astype(np.float32))
    return SegmentationSet(tuple(images), tuple(masks), tuple(masks.copy()))


@pytest.mark.parametrize("sign, brighter", [(1.0, True), (-1.0, False)])
def test_the_threshold_rule_is_tuned_on_training_data_for_either_polarity(sign, brighter):
    train = bright_squares(0, sign)
    rule = tune_threshold(train)
    assert rule.brighter is brighter and -0.5 < rule.threshold * sign < 1.0
    assert rule.train_dice == pytest.approx(dice([rule.predict(i) for i in train.images], train.masks))
    assert rule.train_dice > 0.95
    # applied as tuned, never re-fitted: on data of the other polarity it fails
    flipped = bright_squares(1, -sign)
    assert dice([rule.predict(i) for i in flipped.images], flipped.masks) < 0.2
