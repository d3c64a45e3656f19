"""The paper's weight map and the Dice / IoU metrics, on masks small enough to check by hand."""

import math

import numpy as np
import pytest

from unet_bench.quality.metrics import dice, iou
from unet_bench.quality.weights import border_term, class_balance, weight_map


def two_touching_cells(gap: int = 2) -> np.ndarray:
    """Two 10x10 cells ``gap`` px apart, far from a third one."""
    inst = np.zeros((40, 60), dtype=np.int32)
    inst[5:15, 5:15] = 1
    inst[5:15, 15 + gap : 25 + gap] = 2
    inst[28:38, 45:55] = 3
    return inst


def test_border_term_peaks_at_w0_exp_between_touching_cells():
    inst = two_touching_cells(gap=2)
    term = border_term(inst, w0=10, sigma=5)
    # each pixel of the 2 px gap is 1 px from one cell and 2 px from the other
    gap = term[5:15, 15:17]
    assert gap.min() == pytest.approx(10 * math.exp(-(1 + 2) ** 2 / 50), rel=1e-6)
    assert term.max() == pytest.approx(gap.max())
    peak = np.unravel_index(term.argmax(), term.shape)
    assert 5 <= peak[0] < 15 and 15 <= peak[1] < 17  # the peak lies between the touching cells
    assert (term[inst > 0] == 0).all()  # objects get no border weight
    far = term[30, 30]  # background far from any pair of cells
    assert far < 0.01


def test_border_term_falls_as_cells_move_apart_and_vanishes_for_one_cell():
    peaks = [border_term(two_touching_cells(gap)).max() for gap in (1, 2, 4, 8)]
    assert peaks[0] == pytest.approx(10 * math.exp(-4 / 50), rel=1e-6)  # 1 px gap: d1 = d2 = 1
    assert all(a > b for a, b in zip(peaks, peaks[1:], strict=False))
    one = np.zeros((20, 20), np.int32)
    one[5:10, 5:10] = 1
    assert not border_term(one).any()


def test_class_balance_gives_each_class_the_same_total_weight():
    mask = np.zeros((10, 10), dtype=np.int64)
    mask[:2, :] = 1  # 20 object px, 80 background px
    w = class_balance(mask)
    assert w[0, 0] == pytest.approx(100 / (2 * 20)) and w[9, 9] == pytest.approx(100 / (2 * 80))
    assert w.mean() == pytest.approx(1.0)
    assert w[mask == 1].sum() == pytest.approx(w[mask == 0].sum())
    assert class_balance(np.zeros((4, 4), np.int64)).tolist() == np.full((4, 4), 0.5).tolist()


def test_weight_map_is_class_balance_plus_border_term():
    inst = two_touching_cells()
    mask = (inst > 0).astype(np.int64)
    np.testing.assert_allclose(weight_map(mask, inst), class_balance(mask) + border_term(inst))


def test_dice_and_iou_by_hand():
    target = np.array([[1, 1, 0, 0]])
    pred = np.array([[1, 0, 1, 0]])
    assert dice([pred], [target]) == pytest.approx(2 * 1 / (2 + 2))  # 0.5
    assert iou([pred], [target]) == pytest.approx(1 / 3)
    assert dice([target], [target]) == iou([target], [target]) == 1.0
    assert dice([np.zeros_like(target)], [target]) == 0.0  # all background scores nothing
    assert dice([np.zeros((2, 2))], [np.zeros((2, 2))]) == 1.0  # no object anywhere: nothing missed
    # pooled over images: (2·(1 + 2)) / ((2 + 2) + (2 + 2)), not the mean of the per-image scores
    t2, p2 = np.array([[1, 1]]), np.array([[1, 1]])
    assert dice([pred, p2], [target, t2]) == pytest.approx(6 / 8)
    assert iou([pred, p2], [target, t2]) == pytest.approx(3 / 5)
    assert dice([pred], [target], cls=0) == pytest.approx(0.5)
