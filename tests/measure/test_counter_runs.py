"""The counter reconciliation on a network small enough to count by hand."""

import importlib.util

import pytest
import torch
from torch import nn

from unet_bench.analysis.causes import explain
from unet_bench.measure import counter_runs
from unet_bench.measure.counter_runs import reference, run_counters


def tiny() -> nn.Module:
    """1x6x6 in: conv 3x3 1→2 (out 2x4x4), ReLU, max-pool 2 (2x2x2), up-conv 2x2/2 2→1 (1x4x4), bilinear x2
    (1x8x8)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.ConvTranspose2d(2, 1, 2, stride=2),
                         nn.Upsample(scale_factor=2, mode="bilinear"))


# By hand: conv 32 outputs x 9 MACs = 288 MACs = 576 FLOPs, bias 32 adds; ReLU 32; pool 8 outputs x 3
# comparisons = 24; up-conv 8 inputs x 1 output channel x 4 = 32 MACs = 64 FLOPs (on its output grid:
# 16 outputs x 2 input channels x 4 = 128 MACs = 256 FLOPs), bias 16; bilinear 64 outputs x 7 = 448.
HAND = {"convolution": 576, "transposed convolution": 64, "interpolation": 448, "normalisation": 0,
        "pooling": 24, "element-wise": 32 + 32 + 16, "other": 0}


def causes(result, counter):
    return explain(result.reference, counter)


def test_our_reference_matches_the_hand_count():
    ref = reference(tiny(), (1, 1, 6, 6))
    assert ref.flops == HAND
    assert ref.total == 1192
    assert ref.bias_adds == {"convolution": 32, "transposed convolution": 16}
    assert ref.transposed_output_grid == 256


def test_each_counter_reconciles_with_the_hand_count():
    result = run_counters(tiny(), (1, 1, 6, 6))
    by_name = {c.name: c for c in result.counters}
    torch_counter = by_name["torch FlopCounterMode"]
    assert torch_counter.total == 576 + 64 and causes(result, torch_counter) == [
        "interpolation: not counted (ours 448 FLOPs)", "pooling: not counted (ours 24 FLOPs)",
        "element-wise: not counted (ours 80 FLOPs)"]
    if importlib.util.find_spec("thop"):
        thop = by_name["thop"]
        assert thop.by_type["convolution"] == 288 and thop.by_type["transposed convolution"] == 128
        assert "transposed convolution: counted on the output grid, as a convolution would be (4 x" in \
            "; ".join(causes(result, thop))
        assert causes(result, thop)[0].startswith("counts MACs")
    if importlib.util.find_spec("torchinfo"):
        info = by_name["torchinfo"]
        assert info.by_type["convolution"] == 288 + 32
        assert "convolution: counts the bias add inside it (ours: element-wise)" in causes(result, info)
    if importlib.util.find_spec("ptflops"):  # layers: conv 288 + 32 bias, ReLU 32, pool 32 (its inputs),
        ptflops = by_name["ptflops"]  # up-conv 32 + 16 bias, upsample 64; then ReLU, pool, upsample again
        assert ptflops.total == 320 + 32 + 32 + 48 + 64 + (32 + 32 + 64)
        assert causes(result, ptflops) == [
            "counts MACs: 1 per multiply-accumulate where ours counts 2 FLOPs",
            "convolution: counts the bias add inside it (ours: element-wise)",
            "transposed convolution: counts the bias add inside it (ours: element-wise)",
            "interpolation: 2 FLOPs per output value where ours counts 7",
            "pooling: 8 FLOPs per output value where ours counts 3",
            "element-wise: 2 FLOPs per output value where ours counts 1",
            "other: the activation, pooling and interpolation layers counted a second time, through the "
            "functionals it patches"]
    if importlib.util.find_spec("calflops") and importlib.util.find_spec("transformers"):
        calflops = by_name["calflops"]
        assert calflops.by_type["convolution"] == 576 + 32
        assert "convolution: counts the bias add inside it (ours: element-wise)" in causes(result, calflops)
    fvcore = by_name["fvcore"]
    assert fvcore.by_type["convolution"] == 288 and fvcore.by_type["interpolation"] == 64 * 4
    assert "interpolation: 8 FLOPs per output value where ours counts 7" in causes(result, fvcore)


def test_a_counter_not_installed_is_listed_never_an_error(monkeypatch):
    monkeypatch.setattr(counter_runs, "COUNTERS", (("nocounter", "no-such-counter-package", None),))
    result = run_counters(tiny(), (1, 1, 6, 6))
    assert [(c.name, c.status, c.total) for c in result.counters] == [("nocounter", "not installed", None)]
    assert causes(result, result.counters[0]) == ["not installed"]


@pytest.mark.parametrize("variant", ["paper", "bilinear", "additive"])
def test_the_reference_agrees_with_the_exact_conv_count(variant):
    from unet_bench.measure.counts import count
    from unet_bench.models import create_model

    model = create_model(variant, base_width=2)
    ref = reference(model, (1, 1, 188, 188))
    macs = count(model, (1, 1, 188, 188)).macs
    assert ref.flops["convolution"] + ref.flops["transposed convolution"] == 2 * macs
