"""The elastic warp: identity is identity, labels survive, one seed gives one warp, tiles stay aligned."""

import numpy as np
import pytest
from scipy import ndimage

from unet_bench.errors import BenchError
from unet_bench.models import get_config
from unet_bench.quality import train as train_module
from unet_bench.quality.data import SegmentationSet, standardize
from unet_bench.quality.elastic import displacements, sample_points, warp
from unet_bench.quality.evaluate import training_tile
from unet_bench.quality.synthetic import synthetic_set
from unet_bench.quality.train import TileSampler, TrainSettings


def discs(size: int = 64) -> np.ndarray:
    """Four labelled discs of 8 px radius, one touching the image's edge."""
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.int32)
    for k, (cy, cx) in enumerate([(14, 14), (14, 46), (46, 30), (56, 60)], start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= 64] = k
    return labels


def test_the_identity_warp_changes_nothing():
    image = np.random.default_rng(0).normal(size=(40, 48)).astype(np.float32)
    points = sample_points(image.shape, (0, 0), np.zeros((2, 40, 48)))
    assert np.allclose(warp(image, points, 3), image, atol=1e-5)
    labels = discs()
    assert (warp(labels, sample_points(labels.shape, (0, 0), np.zeros((2, 64, 64))), 0) == labels).all()


@pytest.mark.parametrize("seed", range(5))
def test_a_warp_keeps_every_label_and_adds_none(seed):
    labels = discs()
    field = displacements(np.random.default_rng(seed), labels.shape)
    warped = warp(labels, sample_points(labels.shape, (0, 0), field), 0)
    assert set(np.unique(warped)) == set(np.unique(labels))
    assert (warped != labels).mean() > 0.01  # and it did move them
    assert warped.dtype == labels.dtype


def test_the_field_is_smooth_seeded_and_of_the_papers_size():
    first, again = (displacements(np.random.default_rng(3), (100, 100)) for _ in range(2))
    other = displacements(np.random.default_rng(4), (100, 100))
    assert first.shape == (2, 100, 100) and (first == again).all() and not np.allclose(first, other)
    # neighbouring pixels move almost alike: the field varies over the 3 x 3 grid, not per pixel
    assert np.abs(np.diff(first, axis=1)).max() < 1.5
    # 10 px std at the control points (corners included): over many fields the corner offsets match it
    corners = np.concatenate([displacements(np.random.default_rng(s), (20, 20))[:, 0, 0] for s in range(400)])
    assert corners.std() == pytest.approx(10, rel=0.1)


@pytest.mark.parametrize("variant", ["paper", "padded"])
def test_elastic_tiles_warp_image_and_target_alike(variant):
    """Images that equal their masks: after the warp, the centre of each input tile still is its target."""
    cfg = get_config(variant, depth=2, base_width=4)
    masks = synthetic_set(2, 48, seed=3).masks
    data = SegmentationSet(tuple(standardize(m) for m in masks), masks, tuple(m.astype(np.int32) for m in masks))
    tile_in = training_tile(cfg, 24)
    rng = np.random.default_rng(0)
    elastic = TileSampler(cfg, data, tile_in, TrainSettings(weight_map=False, augment="elastic"))
    inputs, targets, _ = elastic.sample(rng, 16)
    out = targets.shape[-1]
    top = (tile_in - out) // 2
    centre = inputs[:, 0, top : top + out, top : top + out].numpy()
    threshold = (standardize(masks[0]).min() + standardize(masks[0]).max()) / 2
    agree = ((centre > threshold) == (targets.numpy() == 1)).mean()
    assert agree > 0.97  # cubic image against nearest-pixel labels differ only along edges
    assert set(np.unique(targets.numpy())) <= {0, 1}
    flips = TileSampler(cfg, data, tile_in, TrainSettings(weight_map=False, augment="flips"))
    assert not (flips.sample(np.random.default_rng(0), 16)[1] == targets).all()


def test_the_warps_strength_is_the_settings(monkeypatch):
    """The sampler draws every tile's field at the settings' ``elastic_sigma``."""
    cfg = get_config("padded", depth=2, base_width=4)
    masks = synthetic_set(2, 48, seed=3).masks
    data = SegmentationSet(tuple(standardize(m) for m in masks), masks, tuple(m.astype(np.int32) for m in masks))
    drawn = []

    def recorded(rng, shape, sigma):
        field = displacements(rng, shape, sigma=sigma)
        drawn.append(float(np.abs(field).mean()))
        return field

    monkeypatch.setattr(train_module, "displacements", recorded)
    for sigma in (2.0, 10.0):
        sampler = TileSampler(cfg, data, 32, TrainSettings(weight_map=False, augment="elastic", elastic_sigma=sigma))
        sampler.sample(np.random.default_rng(0), 64)
    gentle, paper = np.mean(drawn[:64]), np.mean(drawn[64:])
    assert len(drawn) == 128 and gentle / paper == pytest.approx(0.2, rel=0.05)  # same draws, scaled
    with pytest.raises(BenchError, match="elastic_sigma=0 is not valid"):
        TrainSettings(elastic_sigma=0)


def test_augment_is_a_choice_and_booleans_keep_their_meaning():
    assert TrainSettings(augment=True).augment == "flips" and TrainSettings(augment=False).augment == "none"
    assert TrainSettings(augment="elastic").augment == "elastic"
    with pytest.raises(BenchError, match="augment='warp' is not valid; choose"):
        TrainSettings(augment="warp")
    with pytest.raises(BenchError, match="schedule='step' is not valid; choose"):
        TrainSettings(schedule="step")


def test_touching_objects_stay_apart_in_warped_targets():
    """Two objects that meet along an edge, drawn in the image as -1 and +1 on a 0 background: in every
    warped target, each connected object lies on one of them (the border between them is cut again)."""
    labels = np.zeros((48, 48), np.int32)
    labels[8:40, 6:24], labels[8:40, 24:42] = 1, 2
    border = np.zeros(labels.shape, bool)
    border[8:40, 23:25] = True
    instances = np.where(border, 0, labels)
    mask = (instances > 0).astype(np.int64)
    image = np.select([labels == 1, labels == 2], [-1.0, 1.0], 0.0).astype(np.float32)
    data = SegmentationSet((image,), (mask,), (instances,))
    cfg = get_config("padded", depth=2, base_width=4)
    sampler = TileSampler(cfg, data, 32, TrainSettings(weight_map=False, augment="elastic"))
    inputs, targets, _ = sampler.sample(np.random.default_rng(1), 32)
    merged = 0
    for image, target in zip(inputs[:, 0].numpy(), targets.numpy(), strict=True):
        found, n = ndimage.label(target)
        for k in range(1, n + 1):
            side = image[found == k] > 0
            merged += min(side.mean(), 1 - side.mean()) > 0.05  # pixels of both objects in one
    assert merged == 0
