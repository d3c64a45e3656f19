"""`measure_profile(case)`: the record of mode ``profile``: per-layer profiles and energy of the inference
forward and of the training step, with the counts and both ceilings.

Each step is first timed without the profiler (`timing.time_call`, the step time the profile is checked
against), then profiled (`step_profile.profile_step`), then run for its energy (`energy.step_energy`). The record
keeps both in its ``profile`` and ``energy`` groups (``profile_by_step``, ``energy_by_step``); energy
per image and per output
megapixel (inference) and per training step are record fields when the hardware has a counter.
"""

from __future__ import annotations

import dataclasses

import torch

from unet_bench.errors import BenchError
from unet_bench.measure import env
from unet_bench.measure.bandwidth import measure_bandwidth
from unet_bench.measure.counts import Counts, count
from unet_bench.measure.energy import Energy, step_energy
from unet_bench.measure.fields import counts_values
from unet_bench.measure.network import build_model, network_input_shape
from unet_bench.measure.outcome import begin, finish
from unet_bench.measure.peaks import Ceiling, ceiling_key, measure_ceiling
from unet_bench.measure.step_profile import PROFILED_STEPS, Profile, profile_step
from unet_bench.measure.steps import backend_flags, build_step
from unet_bench.measure.timing import time_call, warmup_calls
from unet_bench.record import Case, Record

PROFILE_STEPS = ("infer", "train")  # what a suite's mode="profile" case profiles


def energy_values(energy: dict[str, Energy], batch: int, output_pixels: int) -> dict:
    """The record's energy fields from the measured steps (None where a step was not measured or had no counter)."""
    infer, train = energy.get("infer"), energy.get("train")
    per_image = infer.joules_per_call / batch if infer and infer.available else None
    return {
        "energy_j_per_image": per_image,
        "energy_j_per_output_mpix": per_image / (output_pixels / 1e6) if per_image is not None else None,
        "energy_j_per_train_step": train.joules_per_call if train and train.available else None,
        "energy_method": next(iter(energy.values())).method if energy else "",
    }


def measure_profile(case: Case, counts: Counts | None = None, ceiling: Ceiling | None = None,
                    steps: tuple[str, ...] = PROFILE_STEPS, profiled_steps: int = PROFILED_STEPS,
                    energy: bool = True) -> Record:
    """Profile ``case``'s network for each of ``steps`` (infer, train); see the module docstring."""
    if case.compile:
        raise BenchError("a profile runs the eager network (its layers are what it reports); drop compile")
    started = begin()
    model = build_model(case)
    threads = case.threads or env.cpu_count()
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = model.to(case.device)
        channels = model.cfg.in_channels
        if counts is None:
            counts = count(model, network_input_shape(model, case.size), device=case.device)
        ceiling = ceiling or measure_ceiling(*ceiling_key(case))
        bandwidth = measure_bandwidth(case.device, threads)
        profiles: dict[str, Profile] = {}
        energies: dict[str, Energy] = {}
        for mode in steps:
            step_case = dataclasses.replace(case, mode=mode)
            with backend_flags(step_case):
                step = build_step(model, step_case, channels, compiled=False)
                warmups = warmup_calls(case.device, False, mode == "train")
                timing = time_call(step.run, threads, case.min_run_time_s, warmups, case.device)
                profiles[mode] = profile_step(step, mode, case.device, timing.median_s, ceiling, bandwidth,
                                              profiled_steps)
                if energy:
                    energies[mode] = step_energy(step.run, case.device)
        record = Record.for_case(case, **counts_values(counts))
        record.set(threads_used=threads, config=model.cfg.to_dict(), peak_flops_per_s=ceiling.flops_per_s,
                   profile_by_step={m: p.to_dict() for m, p in profiles.items()},
                   energy_by_step={m: e.to_dict() for m, e in energies.items()},
                   bandwidth=bandwidth.to_dict(), extra={"peak_source": ceiling.source},
                   **energy_values(energies, case.batch, counts.output_pixels))
        return finish(record, started, case.device)
    finally:
        torch.set_num_threads(saved_threads)
