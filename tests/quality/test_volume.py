"""The synthetic volume task and the quality path (sampling, tiling, training, scoring) in 3-D."""

import numpy as np
import pytest
import torch

from unet_bench.errors import BenchError
from unet_bench.measure import measure
from unet_bench.models import UNet, get_config
from unet_bench.quality.evaluate import evaluate_quality
from unet_bench.quality.labels import separation_borders
from unet_bench.quality.tiling import mirror_pad, predict_tiled, tile_grid
from unet_bench.quality.train import TileSampler, TrainSettings
from unet_bench.quality.volume import synthetic_volumes, volume_task
from unet_bench.record import Case

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL_3D = dict(in_channels=1, base_width=4, padding="same", depth=2)  # 16^3 tiles, seconds to train


def test_volumes_are_seeded_and_have_touching_cells_with_a_border_between():
    a, b = synthetic_volumes(2, 24, seed=3), synthetic_volumes(2, 24, seed=3)
    for x, y in zip(a.images + a.masks + a.instances, b.images + b.masks + b.instances, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.images[0], synthetic_volumes(1, 24, seed=4).images[0])
    image, mask, instances = a.images[0], a.masks[0], a.instances[0]
    assert image.shape == mask.shape == (24, 24, 24) and image.dtype == np.float32
    assert abs(float(image.mean())) < 1e-5 and abs(float(image.std()) - 1) < 1e-4
    assert 0.05 < a.foreground_fraction() < 0.5
    # the mask never lets two different cells touch face to face: a background border lies between them
    assert not separation_borders(instances).any()
    assert mask[instances > 0].all() and not mask[instances == 0].any()
    # cells are brighter than the background
    assert image[mask > 0].mean() > image[mask == 0].mean() + 0.5


def test_separation_borders_along_every_axis_of_a_volume():
    labels = np.zeros((3, 3, 4), dtype=np.int32)
    labels[1, 1, :2], labels[1, 1, 2:] = 1, 2  # two cells meeting along the last axis
    labels[0, 1, 0] = 3  # a third cell above the first along the first axis
    got = separation_borders(labels)
    assert sorted(map(tuple, np.argwhere(got))) == [(0, 1, 0), (1, 1, 0), (1, 1, 1), (1, 1, 2)]


def test_sampler_cuts_cubic_tiles_with_targets_under_their_output():
    cfg = get_config("3d", in_channels=1, base_width=2)  # valid: 92^3 -> 4^3
    data = synthetic_volumes(1, 12, seed=0)
    sampler = TileSampler(cfg, data, 92, TrainSettings(weight_map=False, augment=False))
    inputs, targets, weights = sampler.sample(np.random.default_rng(0), 2)
    assert inputs.shape == (2, 1, 92, 92, 92) and targets.shape == weights.shape == (2, 4, 4, 4)
    # the input tile's centre is the target window: the mirrored volume cropped back gives the image
    x = inputs[0, 0].numpy()[44:48, 44:48, 44:48]
    padded = sampler.images[0]
    hits = [(z, y, w) for z in range(9) for y in range(9) for w in range(9)
            if np.array_equal(data.images[0][z:z + 4, y:y + 4, w:w + 4], x)]
    assert hits and all(np.array_equal(padded[z + 44:z + 48, y + 44:y + 48, w + 44:w + 48], x) for z, y, w in hits)


def test_a_2d_network_refuses_volumes_in_one_line():
    with pytest.raises(BenchError, match="a 2-D network cannot train on 3-D images"):
        TileSampler(get_config("paper", base_width=2), synthetic_volumes(1, 12), 188, TrainSettings())


def test_valid_3d_unet_tiled_equals_single_pass():
    model = UNet(get_config("3d", in_channels=1, base_width=2, depth=1)).eval()  # 32^3 -> 16^3
    grid = tile_grid(model.cfg, 32)
    volume = np.random.default_rng(0).normal(size=(20, 18, 17)).astype(np.float32)
    tiled = predict_tiled(model, volume, tile_in=32, batch=3)
    assert tiled.shape == (3, 20, 18, 17) and grid.count(20) == 2  # really tiled: eight tiles
    padded = torch.from_numpy(mirror_pad(volume[None], grid))
    with torch.no_grad():
        whole = model(padded[None])[0][:, :20, :18, :17]
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)


def test_3d_quality_beats_the_all_foreground_baseline():
    data = volume_task(0, n_train=4, n_val=2, size=24)
    result = evaluate_quality(get_config("3d", **SMALL_3D), seeds=1, steps=60, batch=2, tile_out=16, data=data,
                              optimizer="adam", lr=3e-3)
    extra = result["extra"]
    assert (extra["tile_in"], extra["tile_out"]) == (16, 16)
    assert extra["loss_end_per_seed"][0] < extra["loss_start_per_seed"][0] / 2
    assert result["dice_mean"] > 2 * result["dice_all_foreground"]  # measured 0.80 against 0.25


def test_3d_quality_case_trains_on_the_volume_task_and_counts_at_the_cubic_tile():
    overrides = (("base_width", 2), ("depth", 1), ("in_channels", 1), ("padding", "same"))
    record = measure(Case("3d", overrides, mode="quality", batch=1, input_size=8, seeds=1, threads=1))
    assert record.status == "ok" and record.config["spatial_dims"] == 3
    assert record.extra["val_images"] == 4 and record.extra["tile_out"] == 8  # the default volume task
    assert record.get("output_size") == 8 and record.get("macs_per_output_pixel") == record.get('macs') / 8**3
    assert 0 <= record.get('iou_mean') <= record.get('dice_mean') <= 1
