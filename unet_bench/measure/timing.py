"""Latency of one step with its noise: warm-up apart, repeated blocks, median and IQR, threads set.

Built on ``torch.utils.benchmark.Timer`` (which synchronises CUDA around each block) with the thread count
passed explicitly: its default is one thread, which would time a different machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch.utils.benchmark import Timer
from torch.utils.benchmark.utils.common import set_torch_threads
from torch.utils.benchmark.utils.timer import timer as bench_timer

from unet_bench.record import DEFAULT_MIN_RUN_TIME_S

MIN_BLOCKS = 4  # adaptive_autorange's minimum number of timed blocks
IQR_THRESHOLD = 0.05  # stop once IQR / median is below this (after min_run_time)
WARMUP_CALLS = 2  # the first builds oneDNN primitives / autotunes / compiles, the second settles caches
EAGER_CPU_WARMUP_CALLS = 1  # eager on CPU nothing is compiled or tuned: one call, as torch.utils.benchmark does


def warmup_calls(device: str, compiled: bool) -> int:
    """Warm-up calls before timing: one for eager CPU, two where compiling or autotuning happens."""
    return EAGER_CPU_WARMUP_CALLS if device == "cpu" and not compiled else WARMUP_CALLS


@dataclass
class Timing:
    median_s: float  # per call
    p25_s: float
    p75_s: float
    n: int  # timed blocks
    calls_per_block: int
    threads: int
    warmup_s: float  # all warm-up calls (first call included), excluded from the statistics
    first_call_s: float  # the first call alone: compilation / autotuning happen here
    warmup_calls: int = WARMUP_CALLS

    @property
    def iqr_s(self) -> float:
        return self.p75_s - self.p25_s

    def method(self) -> str:
        """How this timing was taken, in words, for the record and the report."""
        return (
            f"torch.utils.benchmark Timer.adaptive_autorange on {self.threads} threads: {self.warmup_calls} warm-up "
            f"calls excluded, at least {MIN_BLOCKS} timed blocks (until IQR/median < {IQR_THRESHOLD}), "
            "accelerator synchronised per block; median and IQR of the blocks"
        )

    @property
    def compile_s(self) -> float:
        """First-call time beyond a steady call: the cost of compiling (or autotuning) once."""
        return max(self.first_call_s - self.median_s, 0.0)


def time_call(
    fn: Callable[[], object], threads: int, min_run_time: float = DEFAULT_MIN_RUN_TIME_S, label: str = "",
    warmup_calls: int = WARMUP_CALLS,
) -> Timing:
    """Time ``fn`` on ``threads`` threads: warm-up calls first, then at least `MIN_BLOCKS` blocks.

    Stops when IQR/median < `IQR_THRESHOLD` after ``min_run_time`` seconds, or after
    max(4 x min_run_time, 6 calls) — whichever comes first, never before `MIN_BLOCKS` blocks.
    """
    timer = Timer("fn()", globals={"fn": fn}, num_threads=threads, label=label)
    warm = []
    with set_torch_threads(threads):
        for _ in range(warmup_calls):
            start = bench_timer()  # synchronises the accelerator, like the Timer's blocks
            fn()
            warm.append(bench_timer() - start)
    max_run_time = max(4 * min_run_time, 6 * warm[-1])  # noise is reported (IQR), not waited out
    measurement = timer.adaptive_autorange(
        threshold=IQR_THRESHOLD, min_run_time=min_run_time, max_run_time=max_run_time
    )
    p25, median, p75 = np.percentile(measurement.times, [25, 50, 75])
    return Timing(
        median_s=float(median), p25_s=float(p25), p75_s=float(p75), n=len(measurement.times),
        calls_per_block=measurement.number_per_run, threads=threads, warmup_s=sum(warm), first_call_s=warm[0],
        warmup_calls=warmup_calls,
    )
