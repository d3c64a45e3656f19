"""`measure(case) -> Record`: the one way a case is measured, whatever its mode.

``counts``, ``infer`` and ``train`` build the case's network and measure it here (counts, then timing
and memory); ``quality`` trains and scores it (`unet_bench.measure.quality_case`); ``profile`` profiles its
inference forward and training step per layer (`unet_bench.measure.profile_case`). Every record is finished by
`outcome.finish` (environment, timestamp, duration). Failures raise (a `BenchError` for a case that
cannot be valid, an out-of-memory error, ...): the suite files them with `outcome.classify_failure`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from unet_bench.errors import BenchError
from unet_bench.measure import env
from unet_bench.measure.control import control_step, describe
from unet_bench.measure.counts import Counts, count
from unet_bench.measure.ddp import measure_ddp
from unet_bench.measure.fields import control_values, counts_values, paired_values, timing_values
from unet_bench.measure.memory import memory_values
from unet_bench.measure.network import build_model, check_case, in_channels_of, network_input_shape, spatial_dims_of
from unet_bench.measure.outcome import begin, finish
from unet_bench.measure.peaks import Ceiling, ceiling_key, measure_ceiling
from unet_bench.measure.profile_case import measure_profile
from unet_bench.measure.quality_case import measure_quality
from unet_bench.measure.runtime_case import measure_runtime
from unet_bench.measure.runtime_quality import measure_runtime_quality
from unet_bench.measure.steps import backend_flags, build_step
from unet_bench.measure.timing import time_call, warmup_calls
from unet_bench.models.geometry import input_shape
from unet_bench.record import Case, Record


def count_case(case: Case) -> Counts:
    """The counts of ``case``'s network at its input size, per image, without the fvcore trace object.

    A suite counts each network and size once (counting runs one real forward for fvcore) and hands the
    result to every case and repeat that needs it, so that no forward pass is run twice for counting.
    """
    model = build_model(case)
    counts = count(model, network_input_shape(model, case.size))
    return dataclasses.replace(counts, analysis=None)


def measure(case: Case, counts: Counts | None = None, ceiling: Ceiling | None = None,
            models_dir: Path | None = None) -> Record:
    """Measure ``case`` by its mode (see the module docstring); a runtime other than torch by
    `runtime_case.measure_runtime`.

    What a suite measures once per run and hands to every case: ``counts`` (`count_case(case)`) and
    ``ceiling`` (the compute ceiling of the case's `peaks.ceiling_key`). None measures them here.
    ``models_dir``: where a runtime case keeps its exported network (None: not kept).
    """
    check_case(case)
    if case.runtime != "torch" and case.mode == "quality":
        started = begin()
        return finish(measure_runtime_quality(case, counts), started, case.device)
    if case.runtime != "torch":
        return measure_runtime(case, counts, ceiling, models_dir)
    return MEASURES[case.mode](case, counts, ceiling)


def _measure_network(case: Case, counts: Counts | None, ceiling: Ceiling | None) -> Record:
    return measure_module(build_model(case), case, counts=counts, ceiling=ceiling)


def _measure_quality(case: Case, counts: Counts | None, ceiling: Ceiling | None) -> Record:
    started = begin()
    return finish(measure_quality(case, counts), started, case.device)


# Which function measures which mode: every mode of `MODES` has exactly one entry.
MEASURES: dict[str, Callable[[Case, Counts | None, Ceiling | None], Record]] = {
    "counts": _measure_network,
    "infer": _measure_network,
    "train": _measure_network,
    "quality": _measure_quality,
    "profile": measure_profile,
    "train-ddp": measure_ddp,
}


def _reference_step(case: Case) -> Callable[[], object] | None:
    """The step of ``case.reference`` (its own network and input, the same options), or None."""
    if case.reference is None:
        return None
    model = build_model(case.reference)
    return build_step(model, case.reference, in_channels_of(model)).run


def measure_module(
    model: nn.Module, case: Case, in_channels: int | None = None, counts: Counts | None = None,
    ceiling: Ceiling | None = None,
) -> Record:
    """Measure any network for ``case`` in mode counts, infer or train (``case.variant`` only names it).

    ``counts``: the network's `count` at this input size, if the caller already has it; ``ceiling``: as
    for `measure`.
    """
    check_case(case)
    if case.mode not in ("counts", "infer", "train"):
        raise BenchError(f"mode={case.mode!r} needs a registered variant: use measure(case)")
    started = begin()
    threads = case.threads or env.cpu_count()
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = model.to(case.device)
        channels = in_channels or in_channels_of(model)
        if counts is None:
            counts = count(model, input_shape(case.size, channels, spatial_dims_of(model)), device=case.device)
        record = Record.for_case(case, **counts_values(counts))
        record.threads_used = threads
        if hasattr(getattr(model, "cfg", None), "to_dict"):
            record.config = model.cfg.to_dict()
        if case.mode in ("infer", "train"):
            with backend_flags(case):
                step = build_step(model, case, channels)
                reference = _reference_step(case)
                warmup = warmup_calls(case.device, case.compile, case.mode == "train")
                timing = time_call(step.run, threads, case.min_run_time_s, warmup, case.device,
                                   control=control_step(case.device), reference=reference)
            record.set(**control_values(timing, describe(case.device, threads)))
            if case.reference is not None:
                record.set(**paired_values(timing, case.reference))
            del reference  # the memory pass sees the case's network alone
            if case.memory:
                record.set(**memory_values(step, case))
            # the ceiling last: its kernels are not part of the case
            ceiling = ceiling or measure_ceiling(*ceiling_key(case))
            record.set(**timing_values(timing, counts, case, ceiling))
        return finish(record, started, case.device)
    finally:
        torch.set_num_threads(saved_threads)
