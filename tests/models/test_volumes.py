"""The 3-D U-Net (Çiçek et al. 2016) from the same blocks, and geometry per axis."""

import pytest
import torch
from torch import nn

from unet_bench import InvalidInputSizeError, UNet, create_model, get_config
from unet_bench.models import geometry

CICEK = get_config("3d")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_3d_maps_132x132x116_to_44x44x28_with_three_classes():
    with torch.device("meta"):
        out = create_model("3d")(torch.empty(1, 3, 132, 132, 116))
    assert tuple(out.shape) == (1, 3, 44, 44, 28)
    assert geometry.output_size(CICEK, (132, 132, 116)) == (44, 44, 28)


def test_3d_channels_double_before_each_pooling():
    with torch.device("meta"):
        model = create_model("3d")
    convs = [(m.in_channels, m.out_channels) for m in model.modules() if isinstance(m, nn.Conv3d)]
    encoder = [(3, 32), (32, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512)]
    decoder = [(768, 256), (256, 256), (384, 128), (128, 128), (192, 64), (64, 64), (64, 3)]
    assert convs == encoder + decoder
    ups = [(m.in_channels, m.out_channels, m.kernel_size) for m in model.modules() if isinstance(m, nn.ConvTranspose3d)]
    assert ups == [(512, 512, (2, 2, 2)), (256, 256, (2, 2, 2)), (128, 128, (2, 2, 2))]
    assert sum(isinstance(m, nn.BatchNorm3d) for m in model.modules()) == 14
    assert not any(isinstance(m, nn.MaxPool2d | nn.Conv2d | nn.BatchNorm2d) for m in model.modules())


def test_3d_parameters_against_the_papers_count():
    """The paper's 19,069,955 leaves out batch norm's scale and shift and the up-convs' biases."""
    with torch.device("meta"):
        model = create_model("3d")
    bn_affine = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm3d) for p in m.parameters())
    up_bias = sum(m.bias.numel() for m in model.modules() if isinstance(m, nn.ConvTranspose3d))
    assert (bn_affine, up_bias) == (2 * 2336, 512 + 256 + 128)
    assert n_params(model) == 19_075_523 == 19_069_955 + bn_affine + up_bias
    running = sum(b.numel() for name, b in model.named_buffers() if "running" in name)
    assert running == 2 * 2336  # running mean and variance: buffers, not parameters


def test_3d_valid_sizes_per_axis_and_errors_name_the_axis():
    assert geometry.valid_sizes(CICEK, 1, 140) == [92, 100, 108, 116, 124, 132, 140]
    assert geometry.receptive_field(CICEK) == 100
    model = create_model("3d", base_width=2)
    near = r"input width 117 is not valid.*nearest valid sizes are 116 and 124"
    with pytest.raises(InvalidInputSizeError, match=near):
        model(torch.zeros(1, 3, 92, 100, 117))
    with pytest.raises(InvalidInputSizeError, match=r"a 3-D network takes 3 sizes \(depthxheightxwidth\), not 92x92"):
        model(torch.zeros(1, 3, 92, 92))
    assert geometry.spatial_shape(CICEK, 92) == (92, 92, 92)
    assert geometry.spatial_shape(get_config("paper"), (188, 204)) == (188, 204)


def test_3d_largest_feature_map_counts_voxels():
    # stem output of 132x132x116: 64 channels x 128x128x112 voxels is the largest map a level keeps
    assert geometry.largest_feature_map(CICEK, (132, 132, 116)) == 64 * 128 * 128 * 112
    assert geometry.largest_feature_map(get_config("paper"), 572) == 64 * 568**2


def test_3d_runs_forward_and_backward_at_a_tiny_width():
    model = create_model("3d", base_width=2).train()
    x = torch.randn(2, 3, 92, 92, 100)
    out = model(x)
    assert tuple(out.shape) == (2, 3, 4, 4, 12)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("upsample", ["bilinear", "nearest"])
def test_3d_interpolating_up_samplings_are_linear_per_axis(upsample):
    model = create_model("3d", base_width=2, upsample=upsample)
    modes = [m.mode for m in model.modules() if isinstance(m, nn.Upsample)]
    assert modes == [{"bilinear": "trilinear", "nearest": "nearest"}[upsample]] * 3
    assert tuple(model(torch.zeros(1, 3, 92, 92, 92)).shape) == (1, 3, 4, 4, 4)


def test_3d_refuses_pixelshuffle_in_one_line():
    with pytest.raises(ValueError, match="pixelshuffle' is 2-D only; for spatial_dims=3 choose one of 'transposed'"):
        get_config("3d", upsample="pixelshuffle")


def test_spatial_dims_is_checked():
    with pytest.raises(ValueError, match=r"spatial_dims=1 is not valid; choose one of 2, 3"):
        get_config("paper", spatial_dims=1)
    model = UNet(get_config("paper", spatial_dims=3, base_width=2))
    assert tuple(model(torch.zeros(1, 1, 188, 188, 204)).shape) == (1, 2, 4, 4, 20)
