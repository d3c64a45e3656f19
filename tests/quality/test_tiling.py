"""Overlap-tile inference equals one pass over the whole mirrored image, for valid and padded UNets."""

import numpy as np
import pytest
import torch

from unet_bench.errors import BenchError
from unet_bench.models import UNet, get_config
from unet_bench.models.geometry import output_size, receptive_field
from unet_bench.quality.tiling import mirror_pad, predict_tiled, tile_grid


def single_pass(model: UNet, image: np.ndarray, tile_in: int, halo: int) -> torch.Tensor:
    """The whole mirrored image in one forward pass, cropped to the image."""
    padded = torch.from_numpy(mirror_pad(image, tile_grid(model.cfg, tile_in, halo)))
    with torch.no_grad():
        out = model(padded[None])[0]
    return out[:, halo : halo + image.shape[1], halo : halo + image.shape[2]]


pytestmark = pytest.mark.usefixtures("one_thread")
IMAGE = np.random.default_rng(0).normal(size=(1, 100, 90)).astype(np.float32)


def test_valid_unet_tiled_equals_single_pass():
    model = UNet(get_config("paper", base_width=4)).eval()
    grid = tile_grid(model.cfg, 252)
    assert (grid.kept, grid.stride, grid.margin) == (68, 64, 92)  # tiles start on the 16 px pooling grid
    tiled = predict_tiled(model, IMAGE, tile_in=252, batch=3)
    assert tiled.shape == (2, 100, 90)
    assert grid.count(100) == 2 and grid.count(90) == 2  # really tiled: four tiles
    torch.testing.assert_close(tiled, single_pass(model, IMAGE, 252, 0), rtol=0, atol=1e-5)


def test_padded_unet_tiled_equals_single_pass_with_a_halo_of_the_receptive_radius():
    model = UNet(get_config("padded", base_width=4, depth=2)).eval()
    halo = (receptive_field(model.cfg) + 1) // 2
    tiled = predict_tiled(model, IMAGE, tile_in=96, halo=halo)
    assert tile_grid(model.cfg, 96, halo).count(100) > 1
    torch.testing.assert_close(tiled, single_pass(model, IMAGE, 96, halo), rtol=0, atol=1e-5)
    # without the halo the tile edges see zero padding: naive tiling differs from one pass
    naive = predict_tiled(model, IMAGE, tile_in=96, halo=0)
    assert (naive - single_pass(model, IMAGE, 96, 0)).abs().max() > 1e-4


def test_an_image_smaller_than_one_tile_is_one_pass():
    model = UNet(get_config("paper", base_width=4)).eval()
    small = IMAGE[:, :30, :40]
    tiled = predict_tiled(model, small[0], tile_in=252)  # a 2-D image works too
    torch.testing.assert_close(tiled, single_pass(model, small, 252, 0), rtol=0, atol=1e-5)


def test_tile_grid_refuses_invalid_tiles_and_halos():
    cfg = get_config("paper", base_width=4)
    with pytest.raises(BenchError, match="input height 250 is not valid"):
        tile_grid(cfg, 250)
    with pytest.raises(BenchError, match="halo 34 is not valid"):
        tile_grid(cfg, 252, halo=output_size(cfg, 252) // 2)
