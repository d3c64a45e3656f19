"""3-D networks through counts, timing, memory and the suite, at tiny widths and the smallest sizes."""

import math

import pytest
import torch
from torch import nn

from unet_bench.cli import main
from unet_bench.measure import measure
from unet_bench.measure.counts import count
from unet_bench.models import create_model
from unet_bench.record import Case, Record
from unet_bench.suite.spec import load_spec

TINY = (("base_width", 2),)
SHAPE = (92, 92, 100)  # the smallest valid size on two axes, the next but one on the third


def macs_by_hand(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Sum of prod(kernel)·Cin·Cout·(output voxels; input voxels for a transposed conv), from forward hooks."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        voxels = inputs[0] if isinstance(module, nn.ConvTranspose3d) else output
        total += math.prod(module.kernel_size) * module.in_channels * module.out_channels * math.prod(voxels.shape[2:])

    for m in model.modules():
        if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model.eval()(torch.zeros(1, model.cfg.in_channels, *shape))
    return total


@pytest.mark.parametrize("change", [{}, {"upsample": "bilinear"}, {"attention": True}, {"residual": True}])
def test_3d_counts_agree_with_a_hand_count_and_both_counters(change):
    model = create_model("3d", base_width=2, **change)
    counts = count(model, (1, 3, *SHAPE))
    assert counts.macs == macs_by_hand(model, SHAPE)
    assert counts.crosscheck.agree
    assert counts.output_shape == (1, 3, 4, 4, 12)
    assert counts.output_pixels == 4 * 4 * 12
    assert "batch_norm" in counts.other_ops  # fvcore counts BatchNorm3d apart from the MACs
    if change.get("upsample") == "bilinear":
        assert "upsample_trilinear3d" in counts.crosscheck.fvcore_only


def test_3d_counts_case_records_every_axis():
    record = measure(Case("3d", overrides=TINY, input_size=92, input_shape=SHAPE))
    assert (record.get('input_size'), record.get('input_shape')) == (92, [92, 92, 100])
    assert (record.get('output_size'), record.get('output_shape')) == (4, [4, 4, 12])
    assert record.get("macs_per_output_pixel") == record.get('macs') / (4 * 4 * 12)
    assert record.config["spatial_dims"] == 3
    back = Record.from_dict(record.to_dict())
    assert back.get("input_shape") == [92, 92, 100]


def test_3d_cube_case_needs_no_shape():
    case = Case("3d", overrides=TINY, input_size=92)
    assert case.size == 92 and case.size_text == "92"
    record = measure(case)
    assert (record.get('output_size'), record.get('output_shape'), record.get('input_shape')) == (4, None, None)


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_3d_infer_and_train_are_timed_and_their_memory_measured(mode):
    case = Case("3d", overrides=TINY, mode=mode, batch=2, input_size=92, input_shape=SHAPE, min_run_time_s=0.05,
                channels_last=mode == "infer")
    record = measure(case)
    assert record.status == "ok" and record.get('latency_ms_median') > 0
    output_mpix = 2 * 4 * 4 * 12 / 1e6
    assert record.get("latency_ms_per_output_mpix") == pytest.approx(record.get('latency_ms_median') / output_mpix)
    assert record.get('peak_mem_bytes') > 0
    if mode == "train":
        assert record.get('saved_activation_bytes') > 0


def test_case_id_of_a_square_case_is_unchanged_by_the_shape_field():
    # ids written before input_shape existed (so results from then still resume)
    assert Case("paper", input_size=572).case_id == "ba36deb86cf29598"
    assert Case("paper", mode="infer", input_size=188, overrides=(("depth", 3),)).case_id == "5890b10508fa6f19"
    shaped = Case("3d", input_size=132, input_shape=(132, 132, 116))
    assert Case.from_dict(shaped.to_dict()) == shaped and shaped.case_id != Case("3d", input_size=132).case_id
    assert shaped.label.startswith("3d counts cpu b1 132x132x116px")


def test_suite_reads_sizes_per_axis(tmp_path):
    path = tmp_path / "v.toml"
    path.write_text('name = "v"\ndescription = "volumes"\nvariants = ["3d"]\nsizes = ["93x92x99", 92]\n'
                    'size_rule = "nearest-input"\nset = {base_width = 2}\n')
    cases = [p.case for p in load_spec(path).planned]
    assert [(c.input_size, c.input_shape, c.requested_size) for c in cases] == [
        (92, (92, 92, 100), 93), (92, None, 92)]
    path.write_text('name = "v"\ndescription = "volumes"\nvariants = ["paper"]\nsizes = ["188x188x188"]\n')
    with pytest.raises(ValueError, match=r"paper: a 2-D network takes 2 sizes \(heightxwidth\), not 188x188x188"):
        load_spec(path)


def test_cli_count_takes_a_size_per_axis(capsys):
    assert main(["count", "3d", "--set", "base_width=2", "--size", "92x92x100"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3d: 1x3x92x92x100 -> 1x3x4x4x12")
    assert main(["count", "3d", "--set", "base_width=2", "--size", "92x92"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("a 3-D network takes 3 sizes (depthxheightxwidth), not 92x92") and "\n" not in err
    assert main(["count", "3d", "--size", "92x92x93"]) == 2
    assert "input width 93 is not valid" in capsys.readouterr().err


def test_shipped_volumes_experiment_plans_the_paper_tile_and_the_ablations():
    from pathlib import Path

    spec = load_spec(Path(__file__).parents[2] / "experiments" / "volumes.toml")
    counts = [p.case for p in spec.planned if p.case.mode == "counts"]
    assert [(c.variant, c.input_shape) for c in counts] == [("3d", (132, 132, 116))]
    infer = [(c.variant, c.input_size, c.repeat) for c in (p.case for p in spec.planned) if c.mode == "infer"]
    names = ["3d", "3d-residual", "3d-strided", "3d-attention"]
    assert infer == [(name, 92, repeat) for repeat in range(3) for name in names]  # repeats interleaved
