"""Instance metrics against small cases worked out by hand."""

import numpy as np
import pytest

from unet_bench.quality.instances import adapted_rand_error, instance_scores, iou_matrix, matches, objects


def two_squares() -> np.ndarray:
    """Two 2x2 objects side by side, touching: labels 1 and 2 in a 2x4 strip."""
    true = np.zeros((4, 6), np.int32)
    true[1:3, 1:3], true[1:3, 3:5] = 1, 2
    return true


def test_a_perfect_prediction_scores_one_everywhere():
    true = two_squares()
    pred = np.zeros_like(true)
    pred[1:3, 1:3], pred[1:3, 4:5] = 1, 1  # both objects, kept apart by one background column
    true[1:3, 3] = 0
    assert instance_scores([pred], [true]) == {"object_f1": 1.0, "map": 1.0, "rand_error": 0.0}


def test_two_touching_objects_merged_into_one_blob():
    true = two_squares()
    blob = (true > 0).astype(np.int64)  # pixel Dice 1.0, but one object instead of two
    ious = iou_matrix(true, objects(blob))
    np.testing.assert_allclose(ious, [[0.5], [0.5]])  # 4 px shared of an 8 px union, each
    assert matches(ious, 0.5) == 1  # IoU >= 0.5 hits, one-to-one
    scores = instance_scores([blob], [true])
    assert scores["object_f1"] == pytest.approx(2 / 3)  # TP 1, FP 0, FN 1: 2 / (2 + 0 + 1)
    assert scores["map"] == pytest.approx(0.05)  # (1/2 at t = 0.5: TP 1 / (1 + 0 + 1); 0 at the 9 above) / 10
    # Rand: table [[4], [4]]: sum n_ij² = 32, precision 32 / 8² = 0.5, recall 32 / (4² + 4²) = 1
    assert scores["rand_error"] == pytest.approx(1 - 2 * 0.5 * 1 / 1.5)


def test_a_split_object_costs_recall_in_the_rand_error():
    true = np.zeros((2, 4), np.int32)
    true[:, :] = 1
    pred = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])
    # table [[4, 4]]: sum n_ij² = 32, precision 32 / (4² + 4²) = 1, recall 32 / 8² = 0.5
    assert adapted_rand_error(true, pred) == pytest.approx(1 / 3)


def test_map_counts_the_thresholds_an_iou_clears():
    true = np.zeros((4, 4), np.int32)
    true[:2, :] = 1  # 8 px
    pred = np.zeros((4, 4), np.int64)
    pred[:2, 1:] = 1  # 6 of them: IoU 0.75, a hit at t = 0.5 ... 0.75 (6 of 10 thresholds)
    scores = instance_scores([pred], [true])
    assert scores["map"] == pytest.approx(0.6)
    assert scores["object_f1"] == 1.0


def test_object_f1_pools_over_images_and_counts_false_objects():
    true = np.zeros((6, 6), np.int32)
    true[0:2, 0:2] = 1
    pred = np.zeros((6, 6), np.int64)
    pred[0:2, 0:2], pred[4:6, 4:6] = 1, 1  # the object and a false one
    empty = np.zeros((6, 6), np.int32)
    scores = instance_scores([pred, np.zeros_like(pred)], [true, empty])
    assert scores["object_f1"] == pytest.approx(2 / 3)  # TP 1, FP 1, FN 0
    assert scores["map"] == pytest.approx(0.5)  # one image with objects: 1 / (1 + 1 + 0); the empty pair skipped


def test_specks_under_the_minimum_size_are_no_objects():
    true = np.zeros((8, 12), np.int32)
    true[1:7, 1:7] = 1  # a 36 px object
    pred = (true > 0).astype(np.int64)
    pred[3, 9] = pred[6, 10] = 1  # two 1 px specks beside it
    assert objects(pred).max() == 3
    kept = objects(pred, min_size=2)
    assert kept.max() == 1 and (kept == 1).sum() == 36  # renumbered, the object whole
    assert instance_scores([pred], [true])["object_f1"] == pytest.approx(0.5)  # TP 1, FP 2: 2 / (2 + 2)
    assert instance_scores([pred], [true], min_size=2) == {"object_f1": 1.0, "map": 1.0, "rand_error": 0.0}
    assert instance_scores([pred], [true], min_size=37)["object_f1"] == 0.0  # the object too: FN 1
