"""The record fields each measurement fills: counts, timing and throughput, set on a `Record` by name (`Record.set`)."""

from __future__ import annotations

import numpy as np

from unet_bench.measure.counts import TRAIN_SCOPE, Counts
from unet_bench.measure.peaks import Ceiling
from unet_bench.measure.steps import COMPILE_OPTIONS
from unet_bench.measure.timing import Timing
from unet_bench.record import Case


def counts_values(counts: Counts) -> dict:
    """The record fields (and ``extra`` entries) that the counts fill."""
    return {
        "output_size": counts.output_shape[2],  # the first side (the only one, for a square or a cube)
        "output_shape": list(counts.output_shape[2:]) if len(set(counts.output_shape[2:])) > 1 else None,
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


def timing_values(timing: Timing, counts: Counts, case: Case, ceiling: Ceiling) -> dict:
    """The record's timing and throughput fields (``extra`` entries included).

    Latency is per call; throughput, output pixels per second and achieved FLOP/s come from back-to-back
    calls (the same blocks on CPU). The fraction of peak is bounded by 1 (`Ceiling.bound`).
    """
    seconds = timing.median_s
    work = counts.flops if case.mode == "infer" else counts.train_flops
    achieved = work * case.batch / timing.throughput_s
    peak, fraction, peak_source = ceiling.bound(achieved)
    output_mpix = case.batch * counts.output_pixels / 1e6
    cuda = case.device == "cuda"
    return {
        "latency_ms_median": 1e3 * seconds,
        "latency_ms_p25": 1e3 * timing.p25_s,
        "latency_ms_p75": 1e3 * timing.p75_s,
        "latency_ms_iqr": 1e3 * timing.iqr_s,
        "latency_n": timing.n,
        "latency_ms_per_output_mpix": 1e3 * seconds / output_mpix,
        "images_per_s": case.batch / timing.throughput_s,
        "output_mpix_per_s": output_mpix / timing.throughput_s,
        "achieved_flops_per_s": achieved,
        "peak_flops_per_s": peak,
        "peak_fraction": fraction,
        "warmup_s": timing.warmup_s,
        "compile_s": timing.compile_s if case.compile else None,
        "extra": {
            "achieved_flops_scope": ("flops" if case.mode == "infer" else "train_flops")
            + " x batch / seconds per call back to back (conv FLOPs only)",
            "peak_source": peak_source,
            **ceiling.extra(),
            "timing_method": timing.method(),
            "latency_scope": "per call, the device synchronised before and after each call" if cuda
            else "per call (CPU calls are synchronous)",
            "throughput_scope": "back-to-back calls, synchronised at block ends" if cuda
            else "back-to-back calls: the latency blocks",
            "block_times_s": timing.latency.times_s,
            "calls_per_block": timing.calls_per_block,
            "block_minor_faults": timing.latency.faults,  # pages first touched during each block
            **({"throughput_block_times_s": timing.throughput.times_s,
                "throughput_calls_per_block": timing.throughput.calls_per_block} if cuda else {}),
            "first_call_s": timing.first_call_s,
            "compile_options": COMPILE_OPTIONS[case.mode] if case.compile else None,
        },
    }


def control_values(timing: Timing, control_method: str) -> dict:
    """The control's fields: its per-call time in this process, the case's latency as a multiple of it, and
    how much it moved while the process timed (`unet_bench.measure.control`)."""
    if timing.control is None:
        return {}
    per_call = timing.control.per_call()
    median = float(np.median(per_call))
    return {
        "control_ms_median": 1e3 * median,
        "control_ms_p25": 1e3 * float(np.percentile(per_call, 25)),
        "control_ms_p75": 1e3 * float(np.percentile(per_call, 75)),
        "latency_per_control": timing.median_s / median,
        "control_drift": timing.control_drift,
        "control_block_ms": [1e3 * t for t in timing.control.times_s],
        "extra": {"control_method": control_method, "control_calls_per_block": timing.control.calls_per_block},
    }


def paired_values(timing: Timing, reference: Case) -> dict:
    """The paired fields: the case against ``reference``, timed in alternation in the same process."""
    if timing.reference is None:
        return {}
    return {
        "paired_reference": reference.variant,
        "paired_ratio": timing.paired_ratio,
        "paired_ratios": timing.paired_ratios,
        "paired_ref_ms_median": 1e3 * timing.reference.median_s,
        "extra": {"paired_reference_case": reference.to_dict(),
                  "paired_ref_calls_per_block": timing.reference.calls_per_block,
                  "paired_ref_block_times_s": timing.reference.times_s,
                  "paired_ref_block_minor_faults": timing.reference.faults},
    }

