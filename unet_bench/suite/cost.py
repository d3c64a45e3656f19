"""Predicted wall time of a case, for ``--dry-run`` and the progress bar's ETA.

A model of what `unet_bench.measure.measure` does, priced from the case's forward FLOPs (counted on the
meta device, no compute) and a few constants of this kind of machine. Torch and the measure modules are
imported inside the functions that use them: a dry run checks and prices a suite before any of them loads.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Iterator

from unet_bench.models.config import UNetConfig
from unet_bench.models.external import ExternalConfig
from unet_bench.models.geometry import input_shape
from unet_bench.models.registry import build_network, get_config
from unet_bench.quality.settings import DEFAULT_STEPS
from unet_bench.record import Case

# Rates of fp32 UNet convolutions through oneDNN on one AVX-512 core (2.6 GHz Xeon, fitted to the default
# suite's records on a 2-core machine): inference in channels_last and contiguous layout, and a training
# step at a small tile (forward + backward + optimizer, per forward FLOP x 3). Another CPU scales them.
CPU_FLOPS_PER_S_PER_CORE = {("infer", True): 140e9, ("infer", False): 100e9, ("train", True): 60e9,
                            ("train", False): 60e9}
CUDA_FLOPS_PER_S = 50e12  # a data-centre GPU in fp32/TF32; bf16 and fp16 about twice that
PROFILER_SLOWDOWN = 1.5  # a step under torch.profiler and layer scopes, against the same step unprofiled
RANK_START_S = 3.0  # train-ddp: a rank's Python process with torch imported, and the process group
# A quality step against a timed training step of the same FLOPs: at the small widths quality trains
# (base_width 8) activations, tile sampling and Adam weigh more than in the timed suites, and the
# validation split is scored at every learning-curve point. Fitted to quality.toml's networks on a
# quiet 2-core machine: ours 1.6-1.8; other libraries' 2.3-6 (their norms, which their FLOP count leaves
# out, weigh most at these widths).
QUALITY_SLOWDOWN = {"ours": 1.8, "external": 4.0}
CASE_OVERHEAD_S = 0.4  # process fork, model build, load samples and environment fingerprint, the record
COMPILE_S = 60.0  # torch.compile of one UNet
EXPORT_S = 3.0  # ONNX export of one UNet and its load into a runtime (torch.export tracing dominates)
QUANTIZE_S = 3.0  # int8: graph preparation and quantization, besides the calibration forwards
CEILING_S = {"cpu": 5.0, "cuda": 10.0}  # the compute kernels behind a ceiling, once per run and key


@functools.cache  # one entry per network and size of a plan: at most MAX_NETWORKS of them
def forward_flops(cfg: UNetConfig, input_size: int | tuple[int, ...]) -> int:
    """Forward FLOPs of one image, counted on the meta device (no compute, milliseconds), once per network
    and size however many cases share them (a plan's cost grows with its cases, its counting with its
    networks). Our own networks are counted from their convolutions' shapes, as torch's FlopCounterMode
    counts them (a test holds the two equal); another library's network by FlopCounterMode itself."""
    import torch

    shape = input_shape(input_size, cfg.in_channels, cfg.spatial_dims)
    if isinstance(cfg, ExternalConfig):
        from unet_bench.measure.counts import flop_counter_counts

        with torch.device("meta"):
            model = build_network(cfg).to("meta")  # a library may create a tensor on the CPU explicitly
        return sum(flop_counter_counts(model, shape, train=False).values())
    with torch.device("meta"), _no_initialisation():
        model = build_network(cfg)
    return conv_flops(model, shape)


INITIALISERS = ("kaiming_uniform_", "kaiming_normal_", "uniform_", "normal_", "ones_", "zeros_", "constant_",
                "xavier_uniform_", "xavier_normal_", "trunc_normal_")


@contextlib.contextmanager
def _no_initialisation() -> Iterator[None]:
    """Layers built without drawing their initial weights: on the meta device there are no values, yet each
    draw still runs torch's decompositions (half of a pricing build). Our own networks only."""
    from torch.nn import init

    saved = {name: getattr(init, name) for name in INITIALISERS}
    try:
        for name in INITIALISERS:
            setattr(init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, function in saved.items():
            setattr(init, name, function)


def conv_flops(model, shape: tuple[int, ...]) -> int:
    """FLOPs of every convolution and transposed convolution of one inference forward (2 per
    multiply-accumulate), from their weights and the shapes a meta forward gives: a convolution does
    C_in/groups x kernel MACs per output value, a transposed one C_out/groups x kernel per input value."""
    import torch
    from torch import nn

    total = 0

    def add(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        weight = module.weight
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            total += 2 * inputs[0].numel() * weight.shape[1] * math.prod(weight.shape[2:])
        else:
            total += 2 * output.numel() * math.prod(weight.shape[1:])

    hooks = [m.register_forward_hook(add) for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(shape, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def predict_cost_s(case: Case, cfg: UNetConfig, max_batch: int | None = None, timed_only: bool = False) -> float:
    """Predicted wall time of one case (of a whole search when ``max_batch`` is set), in seconds.

    Follows measure's protocol: infer and train run their step for the warm-up, the fewest timed blocks
    (or the timing budget, if longer) and once more for memory (saved-for-backward bytes and peak in one
    call). What a run measures once is priced apart (`run_once_costs`). A search is priced as if it
    reached ``max_batch``.
    """
    from unet_bench.measure.timing import CONTROL_SHARE, MIN_BLOCKS, MIN_QUARTETS, warmup_calls

    if case.device == "cuda":
        rate = CUDA_FLOPS_PER_S * (2 if case.dtype in ("bf16", "fp16") else 1)
    else:
        kind = "infer" if case.mode == "infer" else "train"
        rate = CPU_FLOPS_PER_S_PER_CORE[kind, case.channels_last] * _cores(case.threads)
    forward_s = forward_flops(cfg, case.size) / rate
    step_s = forward_s * (max_batch or case.batch) * (3 if case.mode in ("train", "quality", "train-ddp") else 1)
    cost = (0.0 if timed_only else CASE_OVERHEAD_S) + (COMPILE_S if case.compile else 0.0)
    if case.mode == "quality":
        slowdown = QUALITY_SLOWDOWN["external" if isinstance(cfg, ExternalConfig) else "ours"]
        cost += case.seeds * (case.steps or DEFAULT_STEPS) * step_s * slowdown
    elif case.mode in ("infer", "train"):
        paired = timed_only or case.reference is not None
        fewest = 2 * MIN_QUARTETS if paired else MIN_BLOCKS  # blocks of each side
        timed_s = max(fewest * step_s, case.min_run_time_s / (2 if paired else 1)) * (1 + CONTROL_SHARE)
        cost += (warmup_calls(case.device, case.compile, case.mode == "train") + case.memory) * step_s + timed_s
        if case.runtime != "torch":  # export (and quantize), then one forward of each side for the check
            from unet_bench.measure.quantize import CALIBRATION_IMAGES
            from unet_bench.measure.timing import WARMUP_CALLS

            cost += EXPORT_S + (WARMUP_CALLS - warmup_calls(case.device, case.compile) + 2) * step_s
            cost += (QUANTIZE_S + CALIBRATION_IMAGES * step_s) if case.dtype == "int8" else 0.0
    elif case.mode == "profile":  # infer then train: warm-up, timed budget, profiled steps, energy run
        from unet_bench.measure.energy import IDLE_S, RUN_S
        from unet_bench.measure.step_profile import PROFILED_STEPS

        for steps_s, train in ((forward_s * case.batch, False), (3 * forward_s * case.batch, True)):
            timed_s = max(MIN_BLOCKS * steps_s, case.min_run_time_s)
            calls = warmup_calls(case.device, False, train) + 1 + PROFILER_SLOWDOWN * PROFILED_STEPS
            cost += calls * steps_s + timed_s
            cost += IDLE_S + max(RUN_S, steps_s)
    elif case.mode == "train-ddp":  # each world size: its other ranks start, warm up and run the timed blocks
        cost += len(case.world_sizes) * (RANK_START_S + step_s + max(MIN_BLOCKS * step_s, case.min_run_time_s))
    if max_batch:  # probes doubling up to about max_batch (twice its cost in all), then a bisection
        cost *= 2 + math.log2(max_batch)
    return cost


def run_once_costs(cases: list[Case]) -> list[float]:
    """Seconds each case adds for what a suite measures once and shares: the counts of its network and
    size (one real forward, in the runner) and the ceiling of its device, precision and threads, each
    charged to the first case that needs it."""
    from unet_bench.measure.peaks import ceiling_key

    seen: set[tuple] = set()
    costs = []
    for case in cases:
        cost = 0.0
        network = ("counts", case.variant, case.overrides, case.size)
        if network not in seen:
            seen.add(network)
            cfg = get_config(case.variant, **case.overrides_dict())
            cost += forward_flops(cfg, case.size) / (CPU_FLOPS_PER_S_PER_CORE["infer", False] * _cores(None))
        if case.mode in ("infer", "train", "profile") and (key := ("ceiling", *ceiling_key(case))) not in seen:
            seen.add(key)
            cost += CEILING_S[case.device]
        costs.append(cost)
    return costs


def _cores(threads: int | None) -> int:
    return threads or len(os.sched_getaffinity(0))
