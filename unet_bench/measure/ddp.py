"""Data-parallel training throughput (mode ``train-ddp``): DistributedDataParallel steps on 1, 2, ... ranks.

For each of the case's ``world_sizes`` in turn, that many ranks join a torch.distributed process group
(gloo on CPU, nccl on CUDA, one GPU per rank) and train the case's network with DistributedDataParallel:
the ``train`` step (SGD with momentum, cross-entropy), ``batch`` images per rank, so the global batch
grows with the ranks (weak scaling, as data-parallel training is used). Rank 0 is the case's own process;
the others are fresh Python processes (a case's process may not fork children of its own).

Timing: warm-up steps apart, then timed blocks of back-to-back steps, the ranks held in step by a barrier
at each block's ends; the number and size of the blocks come from rank 0's warm-up and the time budget
(`timing.calls_per_block`, at least `timing.MIN_BLOCKS` blocks), and are broadcast so every rank runs the
same steps. Images/s = ranks x batch / median step time. Scaling efficiency = images/s per rank at N ranks
over images/s per rank at 1 rank (the smallest world size measured, if 1 is not among them): 1.0 is
perfect scaling. The communicated gradient bytes are counted, not computed: a DDP communication hook adds
up the bytes of every gradient bucket a rank all-reduces, divided by the steps (a bigger network shows up
as more communication). On CPU each rank gets ``threads`` threads (default: the cores divided evenly
among the ranks, so one rank runs on every core and the efficiency mixes rank and thread scaling; set
``threads`` for ranks alone), and ranks x threads may not exceed the cores.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

from unet_bench.errors import BenchError
from unet_bench.measure import env
from unet_bench.measure.counts import Counts, count
from unet_bench.measure.fields import counts_values
from unet_bench.measure.outcome import begin, finish
from unet_bench.measure.peaks import Ceiling
from unet_bench.measure.steps import LEARNING_RATE, MOMENTUM, autocast, make_input
from unet_bench.measure.timing import MAX_BLOCKS, MIN_BLOCKS, _run_blocks, calls_per_block, warmup_calls
from unet_bench.models.footprint import world_sizes_problem
from unet_bench.models.geometry import check_input_size, input_shape, output_size
from unet_bench.models.registry import get_config
from unet_bench.models.unet import UNet
from unet_bench.record import DEFAULT_WORLD_SIZES, Case, Record

RANK_TIMEOUT_S = 600  # a collective waiting this long on a rank that died fails instead of hanging
SETTLE_S = 0.2  # for gloo's worker thread to drop the last collective before the group is freed (`_train`)


def measure_ddp(case: Case, counts: Counts | None = None, ceiling: Ceiling | None = None) -> Record:
    """Measure ``case`` (mode ``train-ddp``) at each of its world sizes (module docstring)."""
    started = begin()
    world_sizes = case.world_sizes or DEFAULT_WORLD_SIZES
    problem = world_sizes_problem(case.device, world_sizes, case.threads)
    if problem:
        raise BenchError(problem)
    cfg = get_config(case.variant, **case.overrides_dict())
    check_input_size(cfg, case.input_size, case.input_size)
    if counts is None:
        counts = count(UNet(cfg), input_shape(case.size, cfg.in_channels, cfg.spatial_dims))
    runs = {size: _run_world(case, size) for size in world_sizes}
    base = min(world_sizes)
    per_rank = {size: run["images_per_s"] / size for size, run in runs.items()}
    for size, run in runs.items():
        run["scaling_efficiency"] = per_rank[size] / per_rank[base]
    top = runs[max(world_sizes)]
    record = Record.for_case(case, **counts_values(counts))
    record.config = cfg.to_dict()
    step_ms = [t * 1e3 for t in top["step_times_s"]]
    p25, p75 = (float(v) for v in np.percentile(step_ms, [25, 75]))
    record.set(
        latency_ms_median=top["step_s_median"] * 1e3, latency_ms_p25=p25, latency_ms_p75=p75,
        latency_ms_iqr=p75 - p25, latency_n=len(step_ms), images_per_s=top["images_per_s"],
        threads_used=top["threads_per_rank"], world_size=max(world_sizes),
        scaling_efficiency=top["scaling_efficiency"], comm_grad_bytes=top["comm_grad_bytes"],
        ddp_by_world_size={str(size): run for size, run in runs.items()},
    )
    record.extra.update(
        ddp_backend=_backend(case.device),
        ddp_efficiency_against=base, ddp_global_batch={str(s): s * case.batch for s in world_sizes},
        ddp_method=("DistributedDataParallel training steps, batch images per rank; per world size: warm-up "
                    "apart, then timed blocks of back-to-back steps with a barrier at block ends; median step "
                    "time; comm_grad_bytes counted by a communication hook on the all-reduced gradient buckets"),
    )
    return finish(record, started, case.device)


def _backend(device: str) -> str:
    return "nccl" if device == "cuda" else "gloo"


def _run_world(case: Case, world_size: int) -> dict[str, Any]:
    """One world size: ranks 1.. as fresh processes, rank 0 here; rank 0's measurements."""
    with tempfile.TemporaryDirectory(prefix="unet-bench-ddp-") as folder:
        store = Path(folder) / "store"
        logs = [Path(folder) / f"rank{rank}.log" for rank in range(world_size)]
        others = []
        for rank in range(1, world_size):
            with logs[rank].open("wb") as log:
                others.append(subprocess.Popen(
                    [sys.executable, "-m", __spec__.name, json.dumps(case.to_dict()), str(world_size), str(rank),
                     str(store)], stdout=log, stderr=subprocess.STDOUT, env=_rank_environment()))
        try:
            result = run_rank(case, world_size, 0, store)
        except Exception as error:
            for process in others:
                process.kill()
            raise RuntimeError(f"rank 0 of {world_size}: {error}{_rank_failures(others, logs)}") from error
        failures = _rank_failures(others, logs, wait_s=RANK_TIMEOUT_S)
        if failures:
            raise RuntimeError(f"world size {world_size}:{failures}")
        return result


def _rank_environment() -> dict[str, str]:
    """This environment, with this copy of unet_bench first on the path (a test may run from a checkout)."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


def _rank_failures(others: list[subprocess.Popen], logs: list[Path], wait_s: float = 5.0) -> str:
    """'; rank 1 exited 1: <last line of its output>' for each other rank that failed."""
    text = ""
    for rank, process in enumerate(others, start=1):
        try:
            code = process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        if code:
            lines = logs[rank].read_text(errors="replace").strip().splitlines()
            text += f"; rank {rank} exited {code}: {lines[-1] if lines else 'no output'}"
    return text


def _counting_allreduce(state, bucket):  # unannotated: DDP checks a hook's annotations against its own types
    """DDP's own all-reduce of a gradient bucket (a `dist.GradBucket`), counting the bytes it sends into
    ``state["bytes"]``."""
    buffer = bucket.buffer()
    state["bytes"] += buffer.numel() * buffer.element_size()
    return default_hooks.allreduce_hook(None, bucket)


def run_rank(case: Case, world_size: int, rank: int, store: Path) -> dict[str, Any]:
    """Train on one rank of ``world_size`` (rendezvous through the file ``store``); what rank 0 measured."""
    threads = case.threads or max(1, env.cpu_count() // world_size)
    torch.set_num_threads(threads)
    dist.init_process_group(_backend(case.device), init_method=store.as_uri(), rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=RANK_TIMEOUT_S))
    try:
        return _train(case, world_size, rank, threads)
    finally:
        time.sleep(SETTLE_S)  # an error's traceback may still hold the network: let gloo settle (see `_train`)
        dist.destroy_process_group()


def _train(case: Case, world_size: int, rank: int, threads: int) -> dict[str, Any]:
    """The warm-up and timed steps of one rank, in a process group already joined.

    The network and its DDP wrapper are freed when this returns, and with them the gloo process group's
    last reference but the registry's. gloo's worker thread drops each finished collective on its own, and
    that takes the GIL; freeing the group while it does deadlocks (the freeing holds the GIL and joins that
    thread). So the last collective is given `SETTLE_S` to be dropped before anything is freed.
    """
    cuda = case.device == "cuda"
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    cfg = get_config(case.variant, **case.overrides_dict())
    torch.manual_seed(0)  # the same initial weights on every rank, as DDP's broadcast would make them
    model = UNet(cfg).to(device)
    if case.channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = DistributedDataParallel(model, device_ids=[rank] if cuda else None)
    sent = {"bytes": 0}
    net.register_comm_hook(sent, _counting_allreduce)
    x = make_input(case, cfg.in_channels).to(device)
    out = output_size(cfg, case.input_size)
    target = torch.randint(0, cfg.num_classes, (case.batch, out, out), device=device)
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(case):
            loss = F.cross_entropy(net(x).float(), target)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)
        dist.barrier()

    warm = _run_blocks(step, 1, sync, blocks=warmup_calls(case.device, False, train=True)).times_s
    plan = torch.zeros(2, dtype=torch.int64, device=device)
    if rank == 0:
        calls = calls_per_block(warm[-1], case.min_run_time_s)
        blocks = min(MAX_BLOCKS, max(MIN_BLOCKS, math.ceil(case.min_run_time_s / (calls * warm[-1]))))
        plan[0], plan[1] = calls, blocks
    dist.broadcast(plan, src=0)
    calls, blocks = int(plan[0]), int(plan[1])
    sent["bytes"] = 0
    timed = _run_blocks(step, calls, sync, blocks=blocks)
    step_s = timed.median_s
    time.sleep(SETTLE_S)  # see the docstring: before `net` is freed
    return {"world_size": world_size, "threads_per_rank": threads, "calls_per_block": calls,
            "step_times_s": timed.per_call().tolist(), "step_s_median": step_s,
            "images_per_s": world_size * case.batch / step_s, "warmup_s": sum(warm),
            "comm_grad_bytes": sent["bytes"] // (calls * blocks)}


if __name__ == "__main__":  # one rank > 0 of a world started by `_run_world`
    case_json, size, rank_text, store_path = sys.argv[1:5]
    run_rank(Case.from_dict(json.loads(case_json)), int(size), int(rank_text), Path(store_path))
