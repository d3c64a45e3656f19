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

**Control and pairs.** With a ``control`` (`unet_bench.measure.control`), each of the case's blocks is
followed by a block of the control, so the record says how fast the machine was while the case ran and
whether that moved. With a ``reference`` (the baseline network, resident in the same process on its own
input), the two alternate in A B B A quartets, a control block after each pair, after warm-ups that
alternate too (A B, A B for a training step: the first switch from one network to the other, which costs
a training step a burst of page faults here, happens before timing): the case's time over the reference's
in adjacent blocks is the **paired ratio**. A change of the machine's speed that is slow
against a quartet (load that comes and goes over seconds, clock and thermal drift) slows both sides of a
pair alike and cancels in the ratio; A B B A cancels a linear drift within the quartet exactly. It does
not cancel what changes faster than a block, or what affects the two networks unequally (a neighbour
that evicts one network's working set from the cache more than the other's); those stay in the spread
of the ratios, which is why the interval is still taken over processes.

**Page faults.** Each block also records the minor page faults the process took during it (`getrusage`,
read around the block; nothing runs beside the calls). A training step whose allocator has handed memory
back to the system pays a fault for every page it touches again, and how many it pays moves between steps
and between the two networks of a pair: the counts tell that noise apart from the machine's.
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

try:
    import resource
except ImportError:  # Windows has no getrusage: blocks carry no page-fault counts there
    resource = None

from unet_bench.record import DEFAULT_MIN_RUN_TIME_S

MIN_BLOCKS = 3  # timed blocks (CUDA: timed calls of each kind), whatever the budget
MAX_BLOCKS = 100  # beyond this, blocks grow longer rather than more numerous (the record keeps them all)
MIN_BLOCK_S = 0.01  # back-to-back calls per block so that a block lasts this long: the clock's cost vanishes
WARMUP_CALLS = 2  # the first builds oneDNN primitives / autotunes / compiles, the second settles caches
EAGER_CPU_WARMUP_CALLS = 1  # eager on CPU nothing is compiled or tuned: one call, as torch.utils.benchmark does
MIN_QUARTETS = 1  # paired: A B B A quartets, whatever the budget (two blocks of each side)
CONTROL_SHARE = 0.1  # a control block lasts about this share of the case's block (at least MIN_BLOCK_S)


def warmup_calls(device: str, compiled: bool, train: bool = False) -> int:
    """Warm-up calls before timing: one for eager CPU inference, two where compiling or autotuning happens,
    and two for a training step: its first call creates the optimizer's state, and the allocator settles
    only after the second (paired with another network, the first timed step took 25 k more page faults
    than the later ones here, and the first pair of each process read 5-10 % high)."""
    return EAGER_CPU_WARMUP_CALLS if device == "cpu" and not compiled and not train else WARMUP_CALLS


def calls_per_block(per_call_s: float, budget_s: float) -> int:
    """Back-to-back calls in one block: enough for `MIN_BLOCK_S`, and for the budget in `MAX_BLOCKS` blocks."""
    per_call_s = max(per_call_s, 1e-9)
    return max(1, math.ceil(MIN_BLOCK_S / per_call_s), math.ceil(budget_s / (MAX_BLOCKS * per_call_s)))


@dataclass
class Blocks:
    """Timed blocks of back-to-back calls: the wall time of each block, how many calls each holds, and the
    minor page faults the process took during each (None where the platform does not count them)."""

    times_s: list[float]
    calls_per_block: int
    faults: list[int] | None = None

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
    control: Blocks | None = None  # the control's blocks, one after each of the case's (or each pair)
    reference: Blocks | None = None  # the reference's blocks, paired in order with the case's

    @property
    def paired_ratios(self) -> list[float]:
        """The case's per-call time over the reference's, block by block in A B B A order."""
        if self.reference is None:
            return []
        return [float(a / b) for a, b in zip(self.latency.per_call(), self.reference.per_call(), strict=True)]

    @property
    def paired_ratio(self) -> float | None:
        """Geometric mean of the paired ratios: the case against the reference in this process."""
        ratios = self.paired_ratios
        return float(np.exp(np.mean(np.log(ratios)))) if ratios else None

    @property
    def control_drift(self) -> float | None:
        """The control's relative change from the first to the last third of its blocks (geometric means):
        how much the machine's speed moved while this process timed."""
        if self.control is None or self.control.n < 2:
            return None
        logs = np.log(self.control.per_call())
        third = max(1, len(logs) // 3)
        return float(np.expm1(logs[-third:].mean() - logs[:third].mean()))

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
        if self.reference is not None:
            least = f"at least {MIN_QUARTETS} A B B A quartet(s) of the case (A) and its reference (B)"
            warm = f"{self.warmup_calls} warm-up call(s) of each side, alternated A B, excluded"
        else:
            least = f"at least {MIN_BLOCKS}"
            warm = f"{self.warmup_calls} warm-up call(s) excluded"
        text = (
            f"fixed budget on {self.threads} threads: {warm}, then timed "
            f"blocks until min_run_time={self.min_run_time_s:g} s is spent ({least}, at most "
            f"{MAX_BLOCKS} blocks; no stop on the spread; garbage collector off while timing); "
        )
        if self.control is not None:
            text += ("a block of the control workload after each " + ("pair" if self.reference else "block")
                     + " (extra.control_method); ")
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
    timed = _Timed()
    while timed.n < blocks or (sum(timed.times) < budget_s and timed.n < MAX_BLOCKS):
        timed.add(fn, calls, sync)
    return timed.blocks(calls)


class _Timed:
    """The blocks of one side as they are timed: wall times and the page faults taken during each."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.faults: list[int] = []

    @property
    def n(self) -> int:
        return len(self.times)

    def add(self, fn: Callable[[], object], calls: int, sync: Callable[[], None]) -> None:
        before = minor_faults()
        self.times.append(_block(fn, calls, sync))
        after = minor_faults()
        if before is not None and after is not None:
            self.faults.append(after - before)

    def blocks(self, calls: int) -> Blocks:
        return Blocks(self.times, calls, self.faults if len(self.faults) == self.n else None)


def minor_faults() -> int | None:
    """Minor page faults of this process so far (all its threads): each is a page the kernel maps (and
    zeroes) on first touch, which is where a step's time goes when the allocator has handed memory back to
    the system and takes it again. None where the platform has no ``getrusage``."""
    return None if resource is None else resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _block(fn: Callable[[], object], calls: int, sync: Callable[[], None]) -> float:
    sync()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    return time.perf_counter() - start


def _alternated(cycle: list[tuple[str, Callable[[], object], int]], sync: Callable[[], None], budget_s: float,
                cycles: int) -> dict[str, Blocks]:
    """Repeat ``cycle`` (blocks of (name, fn, calls)) until the timed sides (all but ``control``) have spent
    ``budget_s``: at least ``cycles`` times, and no more than `MAX_BLOCKS` blocks of any side."""
    timed = {name: _Timed() for name, _, _ in cycle}
    per_cycle = max(sum(1 for name, _, _ in cycle if name == "case"), 1)
    done = 0
    while done < cycles or (sum(sum(t.times) for n, t in timed.items() if n != "control") < budget_s
                            and (done + 1) * per_cycle <= MAX_BLOCKS):
        for name, fn, calls in cycle:
            timed[name].add(fn, calls, sync)
        done += 1
    return {name: timed[name].blocks(calls) for name, _, calls in dict((c[0], c) for c in cycle).values()}


def _no_sync() -> None:
    pass


def time_call(
    fn: Callable[[], object], threads: int, min_run_time: float = DEFAULT_MIN_RUN_TIME_S,
    warmup_calls: int = WARMUP_CALLS, device: str = "cpu", control: Callable[[], object] | None = None,
    reference: Callable[[], object] | None = None,
) -> Timing:
    """Time ``fn`` on ``threads`` threads: warm-up calls, then timed blocks on a fixed budget (module docstring).

    ``min_run_time`` is the budget of the timed calls (CUDA: half for latency, half for throughput; with a
    ``reference``, of both sides together); a call slower than it is still timed `MIN_BLOCKS` times (with
    a reference: `MIN_QUARTETS` quartets). At least one warm-up call runs: it sizes the blocks. ``control``:
    a block of it after each block (pair) of the timed calls; ``reference``: paired with ``fn`` in A B B A
    quartets, its warm-up calls alternated with ``fn``'s (A B A B).
    """
    sync = torch.cuda.synchronize if device == "cuda" else _no_sync
    warmups = max(warmup_calls, 1)
    with set_torch_threads(threads):
        if reference is None:
            warm = _run_blocks(fn, 1, sync, blocks=warmups).times_s
        else:  # A B A B: the first switch between the networks is not timed
            warmed = _alternated([("case", fn, 1), ("reference", reference, 1)], sync, 0.0, warmups)
            warm, warm_ref = warmed["case"].times_s, warmed["reference"].times_s
        cuda = device == "cuda"
        budget = min_run_time / 2 if cuda else min_run_time
        calls = 1 if cuda else calls_per_block(warm[-1], budget)
        cycle: list[tuple[str, Callable[[], object], int]] = [("case", fn, calls)]
        if reference is not None:
            ref_calls = 1 if cuda else calls_per_block(warm_ref[-1], budget)
            cycle = [("case", fn, calls), ("reference", reference, ref_calls)]
        if control is not None:
            control_s = _block(control, 1, sync)  # its warm-up call sizes its blocks
            block_s = max(MIN_BLOCK_S, CONTROL_SHARE * calls * warm[-1])
            cycle.append(("control", control, max(1, math.ceil(block_s / max(control_s, 1e-9)))))
        if reference is not None:  # A B (control) B A (control)
            cycle = cycle + [cycle[1], cycle[0], *cycle[2:]]
        with _quiet_gc():
            blocks = _alternated(cycle, sync, budget, MIN_QUARTETS if reference else MIN_BLOCKS)
            latency = throughput = blocks["case"]
            if cuda:
                throughput = _run_blocks(fn, calls_per_block(latency.median_s, budget), sync, budget)
    return Timing(latency, throughput, threads, warmup_s=sum(warm), first_call_s=warm[0],
                  warmup_calls=warmups, device=device, min_run_time_s=min_run_time,
                  control=blocks.get("control"), reference=blocks.get("reference"))
