"""The residual, strided and attention variants: parameters by hand, and what each block computes."""

import pytest
import torch
from torch import nn

from unet_bench import BenchError, create_model, get_config
from unet_bench.models import geometry
from unet_bench.models.blocks import AttentionGate, Residual

PAPER_PARAMS = 31_030_658
WIDTHS = (64, 128, 256, 512, 1024)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta(name: str, **overrides) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **overrides)


def test_residual_adds_a_1x1_projection_where_channels_change():
    # encoder: 1→64, 64→128, ... 512→1024; decoder (concat): 2C→C for C = 512 ... 64; every one changes channels
    projections = [(1, 64), *zip(WIDTHS[:-1], WIDTHS[1:], strict=True), *((2 * c, c) for c in WIDTHS[:-1])]
    assert n_params(meta("residual")) == PAPER_PARAMS + sum(i * o + o for i, o in projections)
    # with additive skips the decoder's units keep their channels: identity shortcuts, no parameters
    encoder = [(1, 64), *zip(WIDTHS[:-1], WIDTHS[1:], strict=True)]
    assert n_params(meta("additive", residual=True)) == n_params(meta("additive")) + sum(i * o + o for i, o in encoder)


def test_residual_shortcut_is_the_centre_cropped_input():
    cfg = get_config("residual", base_width=2)
    body = nn.Sequential(nn.Conv2d(3, 3, 5))  # a valid 5x5 conv: loses 2 px on each side
    block = Residual(cfg, body, 3, 3)
    with torch.no_grad():
        body[0].weight.zero_()
        body[0].bias.fill_(1.0)
    x = torch.randn(1, 3, 9, 11)
    torch.testing.assert_close(block(x), x[:, :, 2:7, 2:9] + 1, rtol=0, atol=0)


def test_strided_replaces_each_pool_by_a_stride_2_conv():
    # each pool becomes a 3x3 C→C conv with bias, at C = 64, 128, 256, 512
    assert n_params(meta("strided")) == PAPER_PARAMS + sum(9 * c * c + c for c in WIDTHS[:-1])
    model = meta("strided")
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    strided = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert [(m.in_channels, m.kernel_size, m.padding) for m in strided] == [(c, (3, 3), (1, 1)) for c in WIDTHS[:-1]]


def test_strided_keeps_the_valid_sizes_and_widens_the_receptive_field():
    paper, strided = get_config("paper"), get_config("strided")
    assert geometry.valid_sizes(strided, 1, 700) == geometry.valid_sizes(paper, 1, 700)
    assert geometry.output_size(strided, 572) == 388
    # each stride-2 conv reads one more pixel on the low side than the pool: 1 + 2 + 4 + 8 more in all
    assert geometry.receptive_field(strided) == geometry.receptive_field(paper) + 15 == 219


def test_attention_gate_parameters_and_values():
    # per decoder level: W_x C→C/2, W_g C→C/2, psi C/2→1, all 1x1 with bias (C = the skip's channels)
    gates = sum(2 * (c * (c // 2) + c // 2) + (c // 2 + 1) for c in WIDTHS[:-1])
    assert n_params(meta("attention")) == PAPER_PARAMS + gates
    cfg = get_config("attention", base_width=2)
    gate = AttentionGate(cfg, 4, 4)
    with torch.no_grad():
        for p in gate.parameters():
            p.zero_()
    x, g = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(gate(x, g), x / 2, rtol=0, atol=0)  # all-zero logits: sigmoid(0) = 1/2


def test_attention_needs_a_skip():
    with pytest.raises(BenchError, match="attention=True gates the skips, so it needs skip='concat' or skip='add'"):
        get_config("attention", skip="none")


@pytest.mark.parametrize("name", ["residual", "strided", "attention"])
def test_design_variants_build_in_3d_from_the_same_blocks(name):
    ((field, (_, value)),) = get_config("paper").diff(get_config(name)).items()
    assert get_config("3d").diff(get_config(f"3d-{name}")) == {field: (getattr(get_config("3d"), field), value)}
    model = create_model(f"3d-{name}", base_width=2).train()
    out = model(torch.randn(2, 3, 92, 92, 100))
    assert tuple(out.shape) == (2, 3, 4, 4, 12)
    out.sum().backward()


def test_select_models_keeps_order_and_drops_exclusions():
    from unet_bench.models.registry import select_models

    names = select_models(["*", "!3d*"])
    assert names[0] == "paper" and {"residual", "strided", "attention"} <= set(names)
    assert not [n for n in names if n.startswith("3d")]
    assert select_models(["attention", "*norm", "batchnorm"]) == ["attention", "batchnorm", "instancenorm", "groupnorm"]
    with pytest.raises(BenchError, match=r"'!4d' names no registered variant; valid variants are 'paper'"):
        select_models(["*", "!4d"])
