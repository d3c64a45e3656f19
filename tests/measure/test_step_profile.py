"""The per-layer profile: its FLOPs are the counter's, exactly; its layers are the counter's layers; its
time accounts for the step."""

import pytest

from unet_bench.kinds import STEP, by_kind
from unet_bench.measure.bandwidth import Bandwidth
from unet_bench.measure.counts import count
from unet_bench.measure.layers import count_layers
from unet_bench.measure.network import build_model
from unet_bench.measure.peaks import Ceiling
from unet_bench.measure.step_profile import BETWEEN_OPS, profile_step
from unet_bench.measure.steps import build_step
from unet_bench.measure.timing import time_call
from unet_bench.record import Case

SIZE = 44  # depth 2: 16k + 28 for k >= 1; output 4 px
TINY = (("base_width", 2), ("depth", 2))
CEILING = Ceiling("cpu", "fp32", 1, 1e11, "fixed for the test")
BANDWIDTH = Bandwidth("cpu", 1, 1e10, "fixed for the test")


def profiled(variant: str, mode: str, overrides: tuple = TINY, size: int = SIZE):
    case = Case(variant, overrides=overrides, mode=mode, input_size=size, threads=1)
    model = build_model(case)
    step = build_step(model, case, 1)
    step_s = time_call(step.run, 1, 0.05, 1).median_s
    return model, profile_step(step, mode, "cpu", step_s, CEILING, BANDWIDTH, steps=2)


@pytest.mark.parametrize("variant", ["paper", "instancenorm", "nearest", "bilinear"])
def test_flops_are_the_counters_exactly(variant, one_thread):
    model, infer = profiled(variant, "infer")
    counts = count(model, (1, 1, SIZE, SIZE))
    assert sum(r.flops for r in infer.rows) == counts.flops + counts.other_flops
    _, train = profiled(variant, "train")
    conv = sum(r.flops for r in train.rows if r.kind in ("conv", "transposed conv"))
    assert conv == counts.train_flops
    assert counts.train_flops > 2 * counts.flops  # backward counted too, not the forward twice


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_every_counted_layer_was_timed_and_every_op_has_its_layer(mode, one_thread):
    _, profile = profiled("instancenorm", mode)
    counted = [r for r in profile.rows if r.flops or r.bytes]
    assert counted and all(r.time_s > 0 for r in counted), [r.layer for r in counted if r.time_s == 0]
    # ops outside every module are only the loss, the input's gradient bookkeeping and the optimizer
    outside = {r.kind for r in profile.rows if r.layer == STEP and r.time_s > 0}
    assert outside <= {"loss", "other"}
    kinds = by_kind(profile.to_dict()["rows"])
    assert kinds["norm"]["time_s"] > 0 and kinds["conv"]["time_s"] > 0 and kinds["pooling"]["time_s"] > 0
    if mode == "train":
        assert kinds["optimizer"]["time_s"] > 0 and kinds["loss"]["time_s"] > 0


def test_op_times_account_for_the_step(one_thread):
    """The units are run one after another on one thread, so they sum to at most the profiled step; the rest
    is the profiler's and Python's time between ops, which the unprofiled step does not pay: the ops sum to
    about the unprofiled step. A network big enough for its ops to outweigh Python (on a tiny one the hooks
    and the profiler's bookkeeping take half the step); bounds are loose: the machine is shared, and a stall
    of the machine inside the profiled steps (seen here: 0.4 s on a 4 ms step) lands between the ops, so the
    least disturbed of three profiles is the one checked."""
    profiles = [profiled("paper", "train", (("base_width", 8), ("depth", 2)), 60)[1] for _ in range(3)]
    assert all(p.ops_s <= p.profiled_step_s for p in profiles)
    profile = min(profiles, key=lambda p: p.profiled_step_s)
    assert profile.ops_s >= 0.4 * profile.profiled_step_s
    between = next(r for r in profile.rows if r.layer == BETWEEN_OPS)
    assert between.time_s + profile.ops_s == pytest.approx(profile.profiled_step_s)
    assert 0.5 * profile.step_s <= profile.ops_s <= 2 * profile.step_s


def test_bytes_are_compulsory_traffic():
    """A 3x3 conv reads its input and weights and writes its output once; the crop is a view: no bytes."""
    model = build_model(Case("paper", overrides=TINY, input_size=SIZE))
    counts = count_layers(model, (1, 1, SIZE, SIZE), train=False)
    first = counts.rows[("stem.0", "conv")]
    assert first.input_bytes == 4 * SIZE * SIZE
    assert first.weight_bytes == 4 * (2 * 1 * 9 + 2)
    assert first.output_bytes == 4 * 2 * (SIZE - 2) ** 2
    assert counts.rows[("ups.0", "crop")].bytes == 0
    cat = counts.rows[("ups.0", "concat or add")]
    assert cat.input_bytes == cat.output_bytes > 0


def test_backward_of_an_in_place_op_on_a_view_belongs_to_its_layer():
    """InstanceNorm returns a view; the in-place ReLU after it makes autograd rebase the view (extra nodes
    without a forward op of their own): those belong to the ReLU, not to the step."""
    model = build_model(Case("instancenorm", overrides=TINY, input_size=SIZE))
    counts = count_layers(model, (1, 1, SIZE, SIZE), train=True)
    assert not [key for key in counts.rows if key[0] == STEP and key[1] not in ("loss", "other")]
    relu = counts.rows[("stem.2", "activation")]
    assert relu.bytes > 4 * 2 * (SIZE - 2) ** 2 * 4  # forward in place + the view's rebase in backward
