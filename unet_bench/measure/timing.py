"""Latency of one step with its noise: warm-up apart, a fixed time budget of timed blocks, median and IQR.

Fixed budget: blocks of back-to-back calls (how many per block, from the last warm-up call) run until
``min_run_time`` seconds of timed calls are spent, at least `MIN_BLOCKS` and at most `MAX_BLOCKS` blocks.
Nothing looks at the spread (stopping once the IQR looks small reports a spread biased low), and a call
slower than the budget is timed `MIN_BLOCKS` times: a small budget means few calls. A verdict between two
cases comes from independent repeats (fresh processes); the blocks of one measurement give its median
and a within-process spread, and are kept raw. Threads are set for the calls (warm-up included).

On CUDA, latency is per call (the device synchronised before and after each call, so launch and queueing
are included, as a user waiting on one call sees them); throughput comes from blocks of back-to-back
calls, synchronised at block ends. On CPU every call is synchronous: the blocks give both.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.benchmark.utils.common import set_torch_threads

from unet_bench.record import DEFAULT_MIN_RUN_TIME_S

MIN_BLOCKS = 3  # timed blocks (CUDA: timed calls of each kind), whatever the budget
MAX_BLOCKS = 100  # beyond this, blocks grow longer rather than more numerous (the record keeps them all)
MIN_BLOCK_S = 0.01  # back-to-back calls per block so that a block lasts this long: the clock's cost vanishes
WARMUP_CALLS = 2  # the first builds oneDNN primitives / autotunes / compiles, the second settles caches
EAGER_CPU_WARMUP_CALLS = 1  # eager on CPU nothing is compiled or tuned: one call, as torch.utils.benchmark does


def warmup_calls(device: str, compiled: bool) -> int:
    """Warm-up calls before timing: one for eager CPU, two where compiling or autotuning happens."""
    return EAGER_CPU_WARMUP_CALLS if device == "cpu" and not compiled else WARMUP_CALLS


def calls_per_block(per_call_s: float, budget_s: float) -> int:
    """Back-to-back calls in one block: enough for `MIN_BLOCK_S`, and for the budget in `MAX_BLOCKS` blocks."""
    per_call_s = max(per_call_s, 1e-9)
    return max(1, math.ceil(MIN_BLOCK_S / per_call_s), math.ceil(budget_s / (MAX_BLOCKS * per_call_s)))


@dataclass
class Blocks:
    """Timed blocks of back-to-back calls: the wall time of each block, and how many calls each holds."""

    times_s: list[float]
    calls_per_block: int

    def per_call(self) -> np.ndarray:
        return np.asarray(self.times_s) / self.calls_per_block

    @property
    def n(self) -> int:
        return len(self.times_s)

    @property
    def median_s(self) -> float:
        return float(np.median(self.per_call()))


@dataclass
class Timing:
    """A timed step: per-call latency blocks, throughput blocks (the same ones on CPU) and the warm-up."""

    latency: Blocks
    throughput: Blocks
    threads: int
    warmup_s: float  # all warm-up calls (first call included), excluded from the statistics
    first_call_s: float  # the first call alone: compilation / autotuning happen here
    warmup_calls: int = WARMUP_CALLS
    device: str = "cpu"
    min_run_time_s: float = DEFAULT_MIN_RUN_TIME_S

    @property
    def median_s(self) -> float:
        """Median latency of one call."""
        return self.latency.median_s

    @property
    def p25_s(self) -> float:
        return float(np.percentile(self.latency.per_call(), 25))

    @property
    def p75_s(self) -> float:
        return float(np.percentile(self.latency.per_call(), 75))

    @property
    def iqr_s(self) -> float:
        return self.p75_s - self.p25_s

    @property
    def n(self) -> int:
        """Timed latency blocks behind the median."""
        return self.latency.n

    @property
    def calls_per_block(self) -> int:
        return self.latency.calls_per_block

    @property
    def throughput_s(self) -> float:
        """Seconds per call when calls run back to back (median over the throughput blocks)."""
        return self.throughput.median_s

    @property
    def compile_s(self) -> float:
        """First-call time beyond a steady call: the cost of compiling (or autotuning) once."""
        return max(self.first_call_s - self.median_s, 0.0)

    def method(self) -> str:
        """How this timing was taken, in words, for the record and the report."""
        text = (
            f"fixed budget on {self.threads} threads: {self.warmup_calls} warm-up call(s) excluded, then timed "
            f"blocks until min_run_time={self.min_run_time_s:g} s is spent (at least {MIN_BLOCKS}, at most "
            f"{MAX_BLOCKS} blocks; no stop on the spread; garbage collector off while timing); "
        )
        if self.device == "cuda":
            return text + (
                "latency: single calls, the device synchronised before and after each (wall clock); "
                "throughput: blocks of back-to-back calls, synchronised at block ends; median and IQR over calls "
                "/ blocks (how many: latency_n, extra.calls_per_block, extra.throughput_block_times_s)"
            )
        return text + (
            "blocks of back-to-back calls; per-call time = block time / calls; median and IQR over blocks "
            "(how many: latency_n, extra.calls_per_block; raw: extra.block_times_s)"
        )


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """The garbage collector off for the timed calls, as ``timeit`` and ``torch.utils.benchmark`` do."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run_blocks(fn: Callable[[], object], calls: int, sync: Callable[[], None], budget_s: float = 0.0,
                blocks: int = MIN_BLOCKS) -> Blocks:
    """Blocks of ``calls`` calls until ``budget_s`` is spent: at least ``blocks``, at most `MAX_BLOCKS`."""
    times: list[float] = []
    while len(times) < blocks or (sum(times) < budget_s and len(times) < MAX_BLOCKS):
        sync()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        times.append(time.perf_counter() - start)
    return Blocks(times, calls)


def _no_sync() -> None:
    pass


def time_call(
    fn: Callable[[], object], threads: int, min_run_time: float = DEFAULT_MIN_RUN_TIME_S,
    warmup_calls: int = WARMUP_CALLS, device: str = "cpu",
) -> Timing:
    """Time ``fn`` on ``threads`` threads: warm-up calls, then timed blocks on a fixed budget (module docstring).

    ``min_run_time`` is the budget of the timed calls (CUDA: half for latency, half for throughput); a call
    slower than it is still timed `MIN_BLOCKS` times. At least one warm-up call runs: it sizes the blocks.
    """
    sync = torch.cuda.synchronize if device == "cuda" else _no_sync
    with set_torch_threads(threads):
        warm = _run_blocks(fn, 1, sync, blocks=max(warmup_calls, 1)).times_s
        with _quiet_gc():
            if device == "cuda":
                latency = _run_blocks(fn, 1, sync, min_run_time / 2)
                throughput = _run_blocks(fn, calls_per_block(latency.median_s, min_run_time / 2), sync,
                                         min_run_time / 2)
            else:
                latency = throughput = _run_blocks(fn, calls_per_block(warm[-1], min_run_time), sync, min_run_time)
    return Timing(latency, throughput, threads, warmup_s=sum(warm), first_call_s=warm[0],
                  warmup_calls=max(warmup_calls, 1), device=device, min_run_time_s=min_run_time)
