"""Counts: exact values, two counters that agree, stages that add up, training FLOPs counted."""

import pytest
import torch
from torch import nn

from unet_bench.errors import InvalidInputSizeError
from unet_bench.measure import measure
from unet_bench.measure.counts import count, flop_counter_counts, layer_table, meta_copy, param_counts
from unet_bench.models import create_model
from unet_bench.record import Case

TINY = (("base_width", 4),)


def conv_macs_by_hand(model: nn.Module, size: int) -> int:
    """Sum of k*k*Cin*Cout*Hout*Wout over the convs, from shapes recorded by forward hooks."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        # a transposed conv applies the whole kernel at every input pixel, a conv at every output pixel
        pixels = inputs[0] if isinstance(module, nn.ConvTranspose2d) else output
        total += kh * kw * module.in_channels * module.out_channels * pixels.shape[-2] * pixels.shape[-1]

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, model.cfg.in_channels, size, size))
    return total


def test_paper_at_572_is_exact():
    """The paper network's known values, counted by fvcore at full width and size (one real forward)."""
    record = measure(Case("paper", input_size=572))
    assert record.get("macs") == 150_428_424_448
    assert record.get("flops") == 300_856_848_896
    assert record.get("params") == record.get("params_trainable") == 31_030_658
    assert record.get("output_size") == 388
    assert record.get("other_flops") == 0
    assert record.extra["crosscheck"]["agree"]
    assert record.extra["crosscheck"]["flop_counter_flops"] == 300_856_848_896
    assert record.get("macs_per_output_pixel") == 150_428_424_448 / 388**2
    assert sum(record.extra["macs_per_stage"].values()) == record.get('macs')
    # the first conv (1 -> 64, 570x570) computes no input gradient: train = 3 x forward - 2 x its MACs
    first_conv_macs = 9 * 1 * 64 * 570 * 570
    assert record.get("train_flops") == 3 * record.get('flops') - 2 * first_conv_macs


def test_flop_counter_on_meta_matches_the_paper_without_compute():
    with torch.device("meta"):
        model = create_model("paper")
    flops = flop_counter_counts(model, (1, 1, 572, 572), train=False)
    assert flops == {"convolution": 300_856_848_896}


@pytest.mark.parametrize("name", ["paper", "padded", "pixelshuffle", "additive", "no-skip", "depth-3"])
def test_conv_only_variants_agree_with_hand_count_and_flop_counter(name):
    model = create_model(name, base_width=4)
    size = 188 if name != "padded" else 64
    counts = count(model, (1, 1, size, size))
    assert counts.macs == conv_macs_by_hand(model, size)
    assert counts.crosscheck.agree and counts.crosscheck.fvcore_only == {}
    assert counts.crosscheck.flop_counter_flops == counts.flops
    assert counts.other_ops == {}


@pytest.mark.parametrize(
    "name, op, per_element",
    [("bilinear", "upsample_bilinear2d", 4), ("nearest", "upsample_nearest2d", 1)],
)
def test_interpolation_is_reported_apart_and_only_by_fvcore(name, op, per_element):
    model = create_model(name, base_width=4)
    counts = count(model, (1, 1, 188, 188))
    assert counts.macs == conv_macs_by_hand(model, 188)
    # fvcore counts per output element of each x2 up-sampling; FlopCounterMode counts nothing there
    cfg = model.cfg
    from unet_bench.models.geometry import trace

    t = trace(cfg, 188)
    sizes = [t.bottleneck] + list(t.decoder[:-1])  # inputs of the up-samplings
    widths = list(reversed(cfg.widths()))[:-1]
    expected = sum(per_element * c * (2 * s) ** 2 for c, s in zip(widths, sizes, strict=True))
    assert counts.other_ops == {op: expected}
    assert counts.crosscheck.fvcore_only == {op: expected}
    assert counts.crosscheck.agree  # on the convs they still agree exactly
    assert "only fvcore counts" in counts.crosscheck.describe()


def test_disagreement_is_reported_not_hidden():
    """A linear layer counted by both: fvcore's 'linear' and FlopCounterMode's addmm must agree too."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    counts = count(model, (1, 1, 8, 8))
    assert counts.macs == 9 * 4 * 36 + 144 * 3
    assert counts.crosscheck.agree
    bad = counts.crosscheck
    bad.flop_counter_flops += 2
    assert not bad.agree and "DISAGREE" in bad.describe()


def test_params_per_stage_sum_to_total_and_follow_the_network():
    model = create_model("paper", base_width=8)
    params = param_counts(model)
    assert sum(params.per_stage.values()) == params.total == sum(p.numel() for p in model.parameters())
    assert list(params.per_stage) == [
        "encoder0", "encoder1", "encoder2", "encoder3", "bottleneck",
        "decoder3", "decoder2", "decoder1", "decoder0", "head",
    ]
    assert params.per_stage["encoder0"] == (9 * 1 * 8 + 8) + (9 * 8 * 8 + 8)
    assert params.per_stage["bottleneck"] == (9 * 64 * 128 + 128) + (9 * 128 * 128 + 128)
    assert params.per_stage["head"] == 8 * 2 + 2
    # decoder3: up-conv 128 -> 64 (2x2), then 3x3 convs 128 -> 64 -> 64
    assert params.per_stage["decoder3"] == (4 * 128 * 64 + 64) + (9 * 128 * 64 + 64) + (9 * 64 * 64 + 64)


def test_trainable_params_exclude_frozen_ones():
    model = create_model("paper", base_width=4)
    model.stem.requires_grad_(False)
    params = param_counts(model)
    assert params.trainable == params.total - params.per_stage["encoder0"]


def test_train_flops_are_counted_from_the_backward_graph():
    """Backward = 2 x forward for every conv except the first, which computes no input gradient."""
    model = create_model("paper", base_width=4)
    counts = count(model, (1, 1, 188, 188))
    first = model.stem[0]
    first_macs = 9 * first.in_channels * first.out_channels * 186 * 186
    assert counts.train_flops_by_op["convolution"] == counts.flops
    assert counts.train_flops_by_op["convolution_backward"] == 2 * counts.flops - 2 * first_macs
    frozen = create_model("paper", base_width=4)
    frozen.requires_grad_(False)
    frozen.head.requires_grad_(True)  # only the head learns: no gradient flows past it
    head_macs = 1 * 4 * 2 * 4 * 4
    flops = flop_counter_counts(meta_copy(frozen), (1, 1, 188, 188), train=True)
    assert flops["convolution_backward"] == 2 * head_macs


def test_per_layer_table_names_every_stage():
    counts = count(create_model("paper", base_width=4), (1, 1, 188, 188))
    table = layer_table(counts.analysis, max_depth=2)
    for name in ("stem", "downs.3", "ups.0", "head"):
        assert name in table


def test_invalid_size_is_refused_before_counting():
    with pytest.raises(InvalidInputSizeError, match="nearest valid sizes are 188 and 204"):
        measure(Case("paper", overrides=TINY, input_size=190))
