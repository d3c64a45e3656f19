"""The paper network and the registered variants, against independent references."""

import pytest
import torch
from torch import nn

import unet_bench
from tests.models.reference_unets import FlatUNet, copy_weights
from unet_bench import BenchError, UNet, UNetConfig, create_model, get_config, get_variant, list_models
from unet_bench.models import geometry

PAPER = UNetConfig()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_model(name: str, **overrides) -> UNet:
    with torch.device("meta"):
        return create_model(name, **overrides)


def test_paper_parameter_count_is_exact():
    assert n_params(meta_model("paper")) == 31_030_658
    assert n_params(FlatUNet().to("meta")) == 31_030_658


def test_paper_maps_572_to_388_with_two_classes():
    out = meta_model("paper")(torch.empty(1, 1, 572, 572, device="meta"))
    assert tuple(out.shape) == (1, 2, 388, 388)


@pytest.mark.parametrize(
    "name, reference, width",
    [
        ("paper", dict(), 64),  # full width once; the rest run narrow to keep the suite fast
        ("paper", dict(), 4),
        ("bilinear", dict(upsample="bilinear"), 4),
        ("additive", dict(merge="add"), 4),
    ],
)
def test_matches_flat_reference_after_copying_weights(name, reference, width):
    ref = FlatUNet(width, **reference).eval()
    model = create_model(name, base_width=width).eval()
    assert n_params(model) == n_params(ref)
    copy_weights(ref, model)
    x = torch.randn(2, 1, 188, 204)  # the smallest valid size, and a non-square input
    with torch.no_grad():
        expected, got = ref(x), model(x)
    assert got.shape == expected.shape == (2, 2, 4, 20)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_bilinear_and_additive_parameter_counts():
    # bilinear: each 2x2 up-conv C*C/2*4 weights becomes a 1x1 conv C*C/2, same bias
    saved = sum(3 * c * (c // 2) for c in (128, 256, 512, 1024))
    assert n_params(meta_model("bilinear")) == 31_030_658 - saved == 28_941_698
    # additive: the first conv of each decoder block takes C/2 instead of C inputs
    saved = sum((c // 2) * (c // 2) * 9 for c in (128, 256, 512, 1024))
    assert n_params(meta_model("additive")) == 31_030_658 - saved
    assert n_params(meta_model("padded")) == 31_030_658


@pytest.mark.parametrize("name", list_models())
def test_every_variant_changes_exactly_one_factor_of_its_base_and_runs(name):
    variant = get_variant(name)
    cfg = variant.config
    diff = get_config(variant.base).diff(cfg)
    assert len(diff) == (0 if variant.base == name else 1), diff
    assert variant.base in ("paper", "3d")
    width = 8 if cfg.spatial_dims == 2 else 2
    small = cfg.replace(base_width=width) if "base_width" not in diff else cfg.replace(base_width=4)
    size = geometry.smallest_valid_size(small)
    shape = (size,) * (small.spatial_dims - 1) + (size + 2**small.depth,)  # one axis longer than the others
    model = UNet(small).train()  # train mode: batch norm needs >1 value per channel, so batch 2
    out = model(torch.randn(2, small.in_channels, *shape))
    assert tuple(out.shape) == (2, small.num_classes, *geometry.output_size(small, shape))
    out.sum().backward()


def test_padded_keeps_the_input_size():
    out = create_model("padded", base_width=4)(torch.randn(1, 1, 64, 80))
    assert out.shape[-2:] == (64, 80)


def test_overrides_stack_on_a_variant():
    cfg = get_config("padded", depth=3, base_width=32)
    assert (cfg.padding, cfg.depth, cfg.base_width) == ("same", 3, 32)
    model = create_model("padded", depth=3, base_width=32)
    assert model.cfg == cfg
    assert len(model.downs) == 3 and model.stem[0].out_channels == 32


def test_unknown_variant_and_key_name_the_valid_ones():
    with pytest.raises(BenchError, match=r"unknown variant 'unet'; valid variants are 'paper', 'padded'"):
        create_model("unet")
    with pytest.raises(BenchError, match=r"unknown config key 'widht'.*'base_width'"):
        create_model("paper", widht=3)
    with pytest.raises(BenchError, match=r"norm='layer' is not valid; choose one of 'none', 'batch'"):
        create_model("paper", norm="layer")


def test_config_round_trips_through_a_plain_dict():
    cfg = get_config("groupnorm", depth=3)
    data = cfg.to_dict()
    assert data["norm"] == "group" and data["depth"] == 3
    assert UNetConfig.from_dict(data) == cfg
    with pytest.raises(BenchError):
        UNetConfig.from_dict({**data, "colour": "red"})


def test_list_models_filters_by_glob():
    assert list_models("*norm") == ["batchnorm", "instancenorm", "groupnorm"]
    for required in [
        "paper",
        "padded",
        "bilinear",
        "additive",
        "no-skip",
        "batchnorm",
        "instancenorm",
        "groupnorm",
        "nearest",
        "pixelshuffle",
        "leaky-relu",
    ]:
        assert required in list_models()


def test_top_level_api():
    assert unet_bench.create_model is create_model
    assert isinstance(unet_bench.__version__, str)
