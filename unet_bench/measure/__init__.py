"""Measure one case: counts, then (for ``infer`` / ``train``) timing and memory, into one `Record`.

``measure(case)`` builds the case's variant and measures it; ``measure_module(model, case)`` measures any
``nn.Module`` the same way. Both raise on failure (a `BenchError` for a case that cannot be valid, an
out-of-memory error, ...): the runner catches and files it with ``classify_failure``.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from unet_bench.errors import BenchError, choices
from unet_bench.measure import env
from unet_bench.measure.counts import TRAIN_SCOPE, Counts, count
from unet_bench.measure.memory import memory_values
from unet_bench.measure.peaks import peak_flops
from unet_bench.measure.steps import COMPILE_OPTIONS, backend_flags, build_step
from unet_bench.measure.timing import Timing, time_call, warmup_calls
from unet_bench.models.geometry import check_input_size
from unet_bench.models.registry import get_config
from unet_bench.models.unet import UNet
from unet_bench.record import DEVICES, DTYPES, MODES, Case, Record

__all__ = ["build_model", "classify_failure", "count", "counts_values", "measure", "measure_module"]

OOM_MARKERS = ("out of memory", "not enough memory", "can't allocate memory", "cannot allocate memory")


def classify_failure(exc: BaseException) -> tuple[str, str]:
    """``(status, message)`` for a failed measurement: ``oom`` for any out-of-memory error, else ``error``.

    The message is one line: the exception's type and the first line of its text.
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return "oom", message
    if isinstance(exc, RuntimeError) and any(marker in text.lower() for marker in OOM_MARKERS):
        return "oom", message
    return "error", message


def check_case(case: Case) -> None:
    """Refuse a case this module cannot measure, with the valid choices."""
    for name, value, allowed in (("mode", case.mode, MODES), ("device", case.device, DEVICES),
                                 ("dtype", case.dtype, DTYPES)):
        if value not in allowed:
            raise BenchError(f"{name}={value!r} is not valid; choose one of {choices(allowed)}")
    if case.mode == "quality":
        raise BenchError("mode='quality' is measured by unet_bench.quality, not unet_bench.measure")
    if case.device == "cuda" and not torch.cuda.is_available():
        raise BenchError(
            f"device 'cuda' is not available here (torch {torch.__version__}, "
            f"{'built without CUDA' if torch.version.cuda is None else 'no GPU visible'}); use device 'cpu'"
        )
    if case.batch < 1:
        raise BenchError(f"batch={case.batch} is not valid; it must be a positive integer")
    if case.threads is not None and case.threads < 1:
        raise BenchError(f"threads={case.threads} is not valid; it must be a positive integer")


def build_model(case: Case) -> UNet:
    """The case's variant with its overrides, after checking the case and its input size."""
    check_case(case)
    cfg = get_config(case.variant, **case.overrides_dict())
    check_input_size(cfg, case.input_size, case.input_size)
    return UNet(cfg)


def measure(case: Case) -> Record:
    """Build the case's variant (with its overrides) and measure it."""
    return measure_module(build_model(case), case)


def in_channels_of(model: nn.Module) -> int:
    """Input channels of a network: its config's, else those of its first convolution."""
    cfg = getattr(model, "cfg", None)
    if cfg is not None and hasattr(cfg, "in_channels"):
        return cfg.in_channels
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return module.in_channels
    raise BenchError(f"cannot tell the input channels of {type(model).__name__}; pass in_channels")


def counts_values(counts: Counts) -> dict:
    """The record fields (and ``extra`` entries) that the counts fill."""
    return {
        "output_size": counts.output_shape[-1],
        "params": counts.params.total,
        "params_trainable": counts.params.trainable,
        "macs": counts.macs,
        "flops": counts.flops,
        "flops_scope": counts.scope,
        "other_flops": counts.other_flops,
        "train_flops": counts.train_flops,
        "macs_per_output_pixel": counts.macs_per_output_pixel,
        "extra": {
            "params_per_stage": counts.params.per_stage,
            "macs_per_stage": counts.macs_per_stage,
            "other_ops": counts.other_ops,
            "train_flops_by_op": counts.train_flops_by_op,
            "train_flops_scope": TRAIN_SCOPE,
            "flops_per_output_pixel": 2 * counts.macs_per_output_pixel,
            "crosscheck": counts.crosscheck.to_dict(),
            "crosscheck_text": counts.crosscheck.describe(),
        },
    }


def timing_values(timing: Timing, counts: Counts, case: Case, threads: int) -> dict:
    """The record's timing and throughput fields (``extra`` entries included)."""
    seconds = timing.median_s
    work = counts.flops if case.mode == "infer" else counts.train_flops
    achieved = work * case.batch / seconds
    peak, peak_source = peak_flops(case.device, case.dtype, case.tf32, threads)
    return {
        "latency_ms_median": 1e3 * seconds,
        "latency_ms_p25": 1e3 * timing.p25_s,
        "latency_ms_p75": 1e3 * timing.p75_s,
        "latency_ms_iqr": 1e3 * timing.iqr_s,
        "latency_n": timing.n,
        "images_per_s": case.batch / seconds,
        "output_mpix_per_s": case.batch * counts.output_pixels / seconds / 1e6,
        "achieved_flops_per_s": achieved,
        "peak_flops_per_s": peak,
        "peak_fraction": achieved / peak if peak else None,
        "warmup_s": timing.warmup_s,
        "compile_s": timing.compile_s if case.compile else None,
        "extra": {
            "achieved_flops_scope": ("flops" if case.mode == "infer" else "train_flops")
            + " x batch / median latency (conv FLOPs only)",
            "peak_source": peak_source,
            "timing_method": timing.method(),
            "calls_per_block": timing.calls_per_block,
            "first_call_s": timing.first_call_s,
            "compile_options": COMPILE_OPTIONS[case.mode] if case.compile else None,
        },
    }


def update(record: Record, values: dict) -> None:
    """Set record fields from ``values``, merging its ``extra`` dict rather than replacing it."""
    record.extra.update(values.pop("extra", {}))
    for key, value in values.items():
        setattr(record, key, value)


def measure_module(
    model: nn.Module, case: Case, in_channels: int | None = None, counts: Counts | None = None
) -> Record:
    """Measure any network for ``case`` (``case.variant`` only names it in the record).

    ``counts``: the network's `count` at this input size, if the caller already has it.
    """
    check_case(case)
    start = time.perf_counter()
    threads = case.threads or env.cpu_count()
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = model.to(case.device)
        channels = in_channels or in_channels_of(model)
        if counts is None:
            counts = count(model, (1, channels, case.input_size, case.input_size), device=case.device)
        record = Record.for_case(case, **counts_values(counts))
        record.threads = threads
        if hasattr(getattr(model, "cfg", None), "to_dict"):
            record.config = model.cfg.to_dict()
        if case.mode in ("infer", "train"):
            with backend_flags(case):
                step = build_step(model, case, channels)
                warmup = warmup_calls(case.device, case.compile)
                timing = time_call(step.run, threads, case.min_run_time_s, label=case.label, warmup_calls=warmup)
            update(record, timing_values(timing, counts, case, threads))
            update(record, memory_values(step, case, channels))
        record.env = env.fingerprint(case.device)
    finally:
        torch.set_num_threads(saved_threads)
    record.timestamp = env.now()
    record.duration_s = time.perf_counter() - start
    return record
