"""The least memory a network needs at a size: its parameters plus the largest map one level keeps.

A floor, not a prediction (a real forward holds the skips, a training step far more): a case over it
cannot fit, so it is refused (or recorded ``oom``) with this figure before anything is allocated, rather
than failing inside torch. The parameters are counted on the meta device: no memory, milliseconds.
Torch is imported inside the functions that need it: the command line checks a case before it loads torch.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from unet_bench.errors import BenchError
from unet_bench.models.config import UNetConfig
from unet_bench.models.geometry import largest_feature_map
from unet_bench.models.registry import build_network, get_config

if TYPE_CHECKING:
    from unet_bench.record import Case

GIB = 2**30


@functools.lru_cache(maxsize=256)
def parameter_count(cfg: UNetConfig) -> int:
    import torch

    with torch.device("meta"):
        return sum(p.numel() for p in build_network(cfg).parameters())


def memory_floor_bytes(cfg: UNetConfig, size: int | tuple[int, ...], batch: int = 1, dtype: str = "fp32") -> int:
    """fp32 parameters plus ``batch`` images' largest feature map (2 bytes a value under bf16/fp16 autocast)."""
    value_bytes = 2 if dtype in ("bf16", "fp16") else 4
    return 4 * parameter_count(cfg) + value_bytes * batch * largest_feature_map(cfg, size)


def memory_ceiling(device: str, limit_gb: float | None = None) -> tuple[int | None, str]:
    """The most memory a case may use on ``device`` and what sets it (None where unknown)."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return None, "no GPU"
        total = torch.cuda.get_device_properties(0).total_memory
        return total, f"the GPU's {_human(total)}"
    ceiling = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    what = f"this machine's {_human(ceiling)} of memory"
    try:
        cgroup = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if cgroup.isdigit() and int(cgroup) < ceiling:
            ceiling, what = int(cgroup), f"this container's {_human(int(cgroup))} memory limit"
    except OSError:
        pass
    if limit_gb is not None and limit_gb * GIB < ceiling:
        ceiling, what = int(limit_gb * GIB), f"the CPU memory limit of {limit_gb:g} GiB"
    return ceiling, what


def why_it_cannot_fit(cfg: UNetConfig, size: int | tuple[int, ...], batch: int, dtype: str, device: str,
                      limit_gb: float | None = None) -> str | None:
    """Why a case cannot fit in memory (its floor is over the ceiling), or None if it may."""
    floor = memory_floor_bytes(cfg, size, batch, dtype)
    ceiling, what = memory_ceiling(device, limit_gb)
    if ceiling is None or floor <= ceiling:
        return None
    return f"it needs at least {_human(floor)} (parameters and its largest feature map), more than {what}"


def why_case_cannot_fit(case: Case, cpu_limit_gb: float | None = None) -> str | None:
    """`why_it_cannot_fit` for a case (``cpu_limit_gb`` counts on CPU only); None for a case that is not
    valid either (whatever measures it meets that error and reports it)."""
    try:
        cfg = get_config(case.variant, **case.overrides_dict())
        return why_it_cannot_fit(cfg, case.size, case.batch, case.dtype, case.device,
                                 cpu_limit_gb if case.device == "cpu" else None)
    except BenchError:
        return None


def world_sizes_problem(device: str, world_sizes: tuple[int, ...], threads: int | None) -> str | None:
    """Why ``world_sizes`` cannot run here, or None: on CPU more ranks (x ``threads``) than usable cores, on
    CUDA more ranks than GPUs (one each). Without CUDA there is nothing to check: such a case is skipped."""
    largest = max(world_sizes, default=1)
    if device == "cuda":
        import torch

        gpus = torch.cuda.device_count()
        if torch.cuda.is_available() and largest > gpus:
            return f"world_sizes up to {largest} need {largest} GPUs (one per rank), and {gpus} are visible"
        return None
    cores, per = len(os.sched_getaffinity(0)), threads or 1
    if largest * per > cores:
        ranks = f"{largest} ranks x {per} threads" if threads else f"{largest} ranks"
        return f"world_sizes up to {largest} need {largest * per} cores ({ranks}), and {cores} are usable here"
    return None


def _human(n: int) -> str:
    return f"{n / GIB:,.1f} GiB" if n >= GIB else f"{n / 2**20:,.1f} MiB"
