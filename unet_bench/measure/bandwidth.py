"""Memory bandwidth, measured in the process that profiles: the second ceiling of a roofline.

A large copy (``dst.copy_(src)``: each byte read once and written once) on the case's device and
threads, best of a few blocks: a ceiling wants the best, not the typical. The arrays are far larger than
any cache, so the rate is the memory's, not a cache's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from unet_bench.measure.timing import time_call

CPU_COPY_BYTES = 256 * 2**20  # per array: far beyond the last-level cache of any CPU this runs on
CUDA_COPY_BYTES = 1024 * 2**20  # beyond an H100's 50 MiB L2
RUN_TIME_S = 0.3
WARMUP_CALLS = 2


@dataclass(frozen=True)
class Bandwidth:
    """Bytes per second of a large copy on one device and thread count, and how it was measured."""

    device: str
    threads: int
    bytes_per_s: float
    source: str

    def to_dict(self) -> dict:
        return {"device": self.device, "threads": self.threads, "bytes_per_s": self.bytes_per_s,
                "source": self.source}


@functools.lru_cache(maxsize=8)
def measure_bandwidth(device: str, threads: int, array_bytes: int | None = None) -> Bandwidth:
    """Best copy rate on ``device`` with ``threads`` threads (read + write bytes over the fastest call)."""
    size = array_bytes or (CUDA_COPY_BYTES if device == "cuda" else CPU_COPY_BYTES)
    src = torch.ones(size // 4, device=device)
    dst = torch.empty_like(src)
    timing = time_call(lambda: dst.copy_(src), threads, RUN_TIME_S, WARMUP_CALLS, device)
    best_s = float(timing.throughput.per_call().min())
    moved = 2 * src.numel() * src.element_size()
    source = (f"best call of a {size / 2**20:,.0f} MiB fp32 copy (read + write = {moved / 2**20:,.0f} MiB), "
              f"{threads} threads, {timing.latency.n} blocks, measured in this process")
    return Bandwidth(device, threads, moved / best_s, source)
