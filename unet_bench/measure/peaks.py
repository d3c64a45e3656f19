"""Device ceilings, to say what fraction of the hardware a network uses.

GPUs: the dense (no structured sparsity) peak FLOP/s from NVIDIA's datasheets, per math mode. CPUs have
no trustworthy datasheet number (clocks, AVX-512 licences and neighbours all change it), so the ceiling
is measured: a large GEMM in the same process, on the same threads, cached for the process.
"""

from __future__ import annotations

import functools

import torch
from torch.utils.benchmark import Timer

T = 1e12
# (substring of torch.cuda.get_device_name(), ceiling name, {math mode: dense FLOP/s}); first match wins.
GPU_PEAKS: list[tuple[str, str, dict[str, float]]] = [
    ("H100 PCIe", "H100 PCIe", {"fp32": 51.2 * T, "tf32": 378 * T, "bf16": 756 * T, "fp16": 756 * T}),
    ("H100 NVL", "H100 NVL", {"fp32": 60 * T, "tf32": 418 * T, "bf16": 835 * T, "fp16": 835 * T}),
    ("H100", "H100 SXM", {"fp32": 67 * T, "tf32": 495 * T, "bf16": 989 * T, "fp16": 989 * T}),
    ("H200", "H200 SXM", {"fp32": 67 * T, "tf32": 495 * T, "bf16": 989 * T, "fp16": 989 * T}),
    ("A100", "A100", {"fp32": 19.5 * T, "tf32": 156 * T, "bf16": 312 * T, "fp16": 312 * T}),
    ("L4", "L4", {"fp32": 30.3 * T, "tf32": 60 * T, "bf16": 121 * T, "fp16": 121 * T}),
    ("V100-PCIE", "V100 PCIe", {"fp32": 14 * T, "fp16": 112 * T}),
    ("V100", "V100 SXM2", {"fp32": 15.7 * T, "fp16": 125 * T}),
    ("T4", "T4", {"fp32": 8.1 * T, "fp16": 65 * T}),
]

GEMM_SIZE = 4096  # large enough that a 2-core CPU runs at its GEMM ceiling (~0.5-1 s per product)
# The ceiling written into every record: a 2048² GEMM reached the same GFLOP/s as 4096² here (within noise)
# in a fifth of the time, and the runner measures it again in every case's fresh process.
RECORD_GEMM_SIZE = 2048
CPU_GEMM_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def math_mode(dtype: str, tf32: bool) -> str:
    """The tensor-core math a case runs: fp32 convs use TF32 on CUDA when it is allowed."""
    return "tf32" if dtype == "fp32" and tf32 else dtype


def gpu_peak(name: str, mode: str) -> tuple[float | None, str]:
    """(peak FLOP/s, where it comes from) for a GPU name and math mode; (None, why) if unknown."""
    for pattern, label, peaks in GPU_PEAKS:
        if pattern in name:
            if mode in peaks:
                return peaks[mode], f"{label} datasheet, dense {mode}"
            return None, f"no {mode} peak for {label}"
    return None, f"no ceiling known for {name!r}"


@functools.lru_cache(maxsize=8)
def cpu_gemm_peak(
    threads: int, dtype: str = "fp32", size: int = GEMM_SIZE, min_run_time: float = 2.0
) -> float:
    """Measured FLOP/s of a ``size``² GEMM on ``threads`` threads (median of repeated blocks), cached."""
    kind = CPU_GEMM_DTYPES[dtype]
    a = torch.randn(size, size).to(kind)
    b = torch.randn(size, size).to(kind)
    timer = Timer("torch.mm(a, b)", globals={"torch": torch, "a": a, "b": b}, num_threads=threads)
    return 2 * size**3 / timer.blocked_autorange(min_run_time=min_run_time).median


def peak_flops(device: str, dtype: str, tf32: bool, threads: int) -> tuple[float | None, str]:
    """(ceiling FLOP/s, its source) for a case's device and precision."""
    if device == "cuda":
        return gpu_peak(torch.cuda.get_device_name(), math_mode(dtype, tf32))
    peak = cpu_gemm_peak(threads, dtype, size=RECORD_GEMM_SIZE, min_run_time=0.5)
    return peak, f"measured {RECORD_GEMM_SIZE}x{RECORD_GEMM_SIZE} {dtype} GEMM, {threads} threads, this process"
