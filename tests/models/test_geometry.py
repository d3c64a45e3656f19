"""Valid sizes, output sizes and receptive fields, checked against the real networks."""

import pytest
import torch

from unet_bench import InvalidInputSizeError, UNet, UNetConfig, create_model, get_config
from unet_bench.models import geometry

PAPER = UNetConfig()


def test_paper_valid_sizes_are_16k_plus_124():
    assert geometry.valid_sizes(PAPER, 1, 1200) == [16 * k + 124 for k in range(4, 68)]
    assert geometry.smallest_valid_size(PAPER) == 188
    for size in (188, 204, 572, 1196):
        assert geometry.output_size(PAPER, size) == size - 184
    assert geometry.output_size(PAPER, (572, 188)) == (388, 4)


def test_nearest_valid_sizes():
    assert geometry.nearest_valid_sizes(PAPER, 570) == (556, 572)
    assert geometry.nearest_valid_sizes(PAPER, 572) == (572, 572)
    assert geometry.nearest_valid_sizes(PAPER, 10) == (None, 188)
    assert geometry.input_size_for_output(PAPER, 388) == 572
    assert geometry.input_size_for_output(get_config("padded"), 384) == 384
    with pytest.raises(InvalidInputSizeError, match="nearest reachable outputs are \\[384, 400\\]"):
        geometry.input_size_for_output(get_config("padded"), 388)


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("padding, skip", [("valid", "concat"), ("valid", "none"), ("same", "concat"),
                                           ("same", "add")])
def test_closed_form_agrees_with_tracing_every_size(depth, padding, skip):
    """The progression (first + k·period) lists exactly the sizes that trace through, one by one."""
    cfg = PAPER.replace(depth=depth, padding=padding, skip=skip)
    hi = geometry.smallest_valid_size(cfg) + 5 * 2**depth
    traced = [s for s in range(1, hi + 1) if geometry.trace(cfg, s) is not None]
    assert geometry.valid_sizes(cfg, 1, hi) == traced
    assert geometry.valid_sizes(cfg, traced[1] - 1, traced[3]) == traced[1:4]
    for size in range(1, hi + 1):
        below, above = geometry.nearest_valid_sizes(cfg, size)
        assert below == max((s for s in traced if s <= size), default=None)
        assert above == min(s for s in traced if s >= size)


def test_deep_networks_and_huge_bounds_answer_from_the_closed_form():
    deep = PAPER.replace(depth=10, padding="same", base_width=2)
    assert geometry.nearest_valid_sizes(deep, 10**9 + 1) == (10**9 - 10**9 % 1024, 10**9 - 10**9 % 1024 + 1024)
    assert geometry.smallest_valid_size(PAPER.replace(depth=10, base_width=2)) == 1024 * 4 + 4 * 2047
    assert len(geometry.valid_sizes(PAPER, 1, 10**7)) == (10**7 - 124) // 16 - 3


@pytest.mark.parametrize(
    "overrides",
    [{}, {"padding": "same"}, {"depth": 3}, {"depth": 2, "upsample": "bilinear"}, {"skip": "none", "depth": 3}],
)
def test_geometry_agrees_with_the_network(overrides):
    cfg = PAPER.replace(base_width=2, **overrides)
    model = UNet(cfg)
    first = geometry.smallest_valid_size(cfg)
    sizes = geometry.valid_sizes(cfg, 1, first + 3 * 2**cfg.depth)
    assert sizes[0] == first
    for h, w in zip(sizes, reversed(sizes), strict=True):
        out = model(torch.zeros(1, 1, h, w))
        assert tuple(out.shape[-2:]) == geometry.output_size(cfg, (h, w))


def test_invalid_size_is_refused_before_any_convolution():
    model = create_model("paper", base_width=2)
    calls = []
    model.stem.register_forward_pre_hook(lambda *_: calls.append(1))
    with pytest.raises(ValueError, match=r"input width 570 is not valid.*nearest valid sizes are 556 and 572"):
        model(torch.zeros(1, 1, 572, 570))
    with pytest.raises(InvalidInputSizeError, match=r"input height 100 .*nearest valid size is 188"):
        model(torch.zeros(1, 1, 100, 572))
    assert calls == []


@pytest.mark.parametrize("name, expected", [("paper", 204), ("bilinear", 236), ("depth-3", 100), ("strided", 219),
                                            ("residual", 204), ("attention", 204)])
def test_receptive_field_matches_perturbation(name, expected):
    """With positive weights and inputs every path is monotone, so bumping an input row changes an
    output row exactly when the row lies in that output's receptive field."""
    cfg = get_config(name, base_width=2)
    assert geometry.receptive_field(cfg) == expected
    model = UNet(cfg).double()
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.01, 0.1)
    size = geometry.nearest_valid_sizes(cfg, 2 * expected)[1]
    width = geometry.smallest_valid_size(cfg)
    x = torch.rand(1, 1, size, width, dtype=torch.float64) + 1
    with torch.no_grad():
        base = model(x)
        for o in range(base.shape[-2] // 2, base.shape[-2] // 2 + 2**cfg.depth, 3):
            lo, hi = geometry.input_interval(cfg, size, o)
            for row, inside in ((lo - 1, False), (lo, True), (hi, True), (hi + 1, False)):
                bumped = x.clone()
                bumped[..., row, :] += 100
                changed = not torch.equal(model(bumped)[..., o, :], base[..., o, :])
                assert changed == inside, (o, row, lo, hi)
