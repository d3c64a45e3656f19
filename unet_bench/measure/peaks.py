"""Device ceilings, to say what fraction of the hardware a network uses: a fraction that never exceeds 1.

A ceiling is measured once per run for each device, precision and thread count (the suite runner does it
in a process of its own; `unet-bench time` in its own process) as the best rate of a few compute-bound
kernels: GEMMs of several sizes (cache-resident ones included), a skinny GEMM shaped like a convolution's
im2col product, and channels_last 3x3 convolutions, each on the case's threads and precision. Beside it:

* CPU: the nominal FMA peak where the ISA and the clock can be read (recorded, not used: the clock read
  is not the turbo clock, and the number of FMA ports is assumed).
* GPU: the dense (no structured sparsity) datasheet peak per math mode, matched by the exact name
  ``torch.cuda.get_device_name()`` returns; the ceiling is the higher of it and the measured kernels.

A network that runs faster than every kernel shows that the kernels were not the ceiling: its own rate
becomes the ceiling (fraction 1) and the source says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from unet_bench.measure import env
from unet_bench.measure.timing import time_call
from unet_bench.record import Case, Record

T = 1e12
H100_SXM = {"fp32": 67 * T, "tf32": 495 * T, "bf16": 989 * T, "fp16": 989 * T}
A100 = {"fp32": 19.5 * T, "tf32": 156 * T, "bf16": 312 * T, "fp16": 312 * T}
V100_SXM2 = {"fp32": 15.7 * T, "fp16": 125 * T}
V100_PCIE = {"fp32": 14 * T, "fp16": 112 * T}
# torch.cuda.get_device_name() → (datasheet name, {math mode: dense FLOP/s}). Exact names only: "L4" is not
# "L40S", "H200" is not "GH200". GPUs without TF32 units (V100, T4) run a TF32 request in fp32.
GPU_PEAKS: dict[str, tuple[str, dict[str, float]]] = {
    "NVIDIA H100 80GB HBM3": ("H100 SXM", H100_SXM),
    "NVIDIA H100 PCIe": ("H100 PCIe", {"fp32": 51 * T, "tf32": 378 * T, "bf16": 756 * T, "fp16": 756 * T}),
    "NVIDIA H100 NVL": ("H100 NVL", {"fp32": 60 * T, "tf32": 418 * T, "bf16": 835 * T, "fp16": 835 * T}),
    # an H200 NVL reports the same name as the SXM board; the higher (SXM) peaks keep the fraction a bound
    "NVIDIA H200": ("H200 SXM", H100_SXM),
    "NVIDIA GH200 480GB": ("GH200", H100_SXM),
    "NVIDIA A100-SXM4-40GB": ("A100 SXM", A100),
    "NVIDIA A100-SXM4-80GB": ("A100 SXM", A100),
    "NVIDIA A100-PCIE-40GB": ("A100 PCIe", A100),
    "NVIDIA A100 80GB PCIe": ("A100 PCIe", A100),
    "NVIDIA L40S": ("L40S", {"fp32": 91.6 * T, "tf32": 183 * T, "bf16": 362 * T, "fp16": 362 * T}),
    "NVIDIA L40": ("L40", {"fp32": 90.5 * T, "tf32": 90.5 * T, "bf16": 181 * T, "fp16": 181 * T}),
    "NVIDIA L4": ("L4", {"fp32": 30.3 * T, "tf32": 60 * T, "bf16": 121 * T, "fp16": 121 * T}),
    "NVIDIA A10": ("A10", {"fp32": 31.2 * T, "tf32": 62.5 * T, "bf16": 125 * T, "fp16": 125 * T}),
    "Tesla V100-SXM2-16GB": ("V100 SXM2", V100_SXM2),
    "Tesla V100-SXM2-32GB": ("V100 SXM2", V100_SXM2),
    "Tesla V100-PCIE-16GB": ("V100 PCIe", V100_PCIE),
    "Tesla V100-PCIE-32GB": ("V100 PCIe", V100_PCIE),
    "Tesla T4": ("T4", {"fp32": 8.1 * T, "fp16": 65 * T}),
}
# Nominal dense FLOP/cycle of one core by precision: the first unit in each list that the CPU's flags show.
# Vector units: two FMA ports per core assumed (true of recent Xeons; some parts have one).
AMX = "AMX tile unit"
FMA2 = "two FMA ports assumed"
CPU_FLOP_PER_CYCLE: dict[str, list[tuple[str, int, str]]] = {
    "fp32": [("avx512f", 64, FMA2), ("fma", 32, FMA2)],
    "bf16": [("amx_bf16", 1024, AMX), ("avx512_bf16", 128, FMA2), ("avx512f", 64, FMA2), ("fma", 32, FMA2)],
    "fp16": [("amx_fp16", 1024, AMX), ("avx512_fp16", 128, FMA2), ("avx512f", 64, FMA2), ("fma", 32, FMA2)],
}
TORCH_DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU_GEMM_SIZES = (2048, 1024, 512)  # 2048² ran as fast as 4096² on a 2-core Xeon, in an eighth of the time
CUDA_GEMM_SIZES = (8192, 4096)
# A 3x3 convolution of C channels at H² output, as one GEMM (im2col: H² x 9C by 9C x C), and as a
# channels_last convolution: the network's own kind of work at shapes oneDNN / cuDNN run well.
CONV_SHAPES = ((64, 128), (256, 64))
KERNEL_RUN_TIME_S = 0.2  # timing budget of each kernel
KERNEL_WARMUP_CALLS = 2
RUN_WHERE = "measured once per run in a process of its own"  # the suite's ceilings (`ceiling_record`)


def math_mode(dtype: str, tf32: bool) -> str:
    """The tensor-core math a case runs: fp32 convs use TF32 on CUDA when it is allowed."""
    return "tf32" if dtype == "fp32" and tf32 else dtype


def gpu_peak(name: str, mode: str) -> tuple[float | None, str]:
    """(datasheet peak FLOP/s, where it comes from) for an exact GPU name and math mode; (None, why) if none."""
    if name not in GPU_PEAKS:
        return None, f"no datasheet peak known for {name!r}"
    label, peaks = GPU_PEAKS[name]
    if mode == "tf32" and "tf32" not in peaks:
        return peaks["fp32"], f"{label} datasheet, dense fp32 (no TF32 units)"
    if mode not in peaks:
        return None, f"no {mode} datasheet peak for {label}"
    return peaks[mode], f"{label} datasheet, dense {mode}"


def cpu_nominal_peak(mode: str, threads: int, flags: list[str], ghz: float | None,
                     clock_source: str) -> tuple[float | None, str]:
    """(nominal FMA peak FLOP/s, how it was computed) on ``threads`` cores; None where ISA or clock is unknown."""
    unit = next((unit for unit in CPU_FLOP_PER_CYCLE.get(mode, []) if unit[0] in flags), None)
    if unit is None or not ghz:
        return None, "ISA or clock not readable"
    flag, flop, note = unit
    return flop * threads * ghz * 1e9, (f"{flag}: {flop} FLOP/cycle/core ({note}) x {threads} cores x "
                                       f"{ghz:.2f} GHz ({clock_source})")


@dataclass
class Ceiling:
    """The compute ceiling of one device, math mode and thread count, and how it was found."""

    device: str
    mode: str
    threads: int
    flops_per_s: float | None
    source: str
    kernels: dict[str, float] = field(default_factory=dict)  # measured kernel → its best FLOP/s
    nominal_flops_per_s: float | None = None  # CPU: FMA peak; GPU: datasheet
    nominal_source: str = ""

    def bound(self, achieved: float) -> tuple[float | None, float | None, str]:
        """(ceiling, fraction of it, source) for a rate ``achieved``: a ceiling below it becomes ``achieved``."""
        if not self.flops_per_s:
            return None, None, self.source
        if achieved > self.flops_per_s:
            return achieved, 1.0, (f"network exceeded the kernels ({self.flops_per_s / 1e9:,.1f} GFLOP/s, "
                                   f"{self.source}); ceiling = best observed (this network)")
        return self.flops_per_s, achieved / self.flops_per_s, self.source

    def extra(self) -> dict:
        """The record's ``extra`` entries that say where the ceiling comes from."""
        return {"peak_kernels_flops_per_s": self.kernels, "peak_nominal_flops_per_s": self.nominal_flops_per_s,
                "peak_nominal_source": self.nominal_source}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def ceiling_key(case: Case) -> tuple[str, str, int]:
    """(device, math mode, threads): what a ceiling depends on. Cases with one key share one ceiling."""
    dtype = "fp32" if case.dtype == "int8" else case.dtype  # int8 is read against the fp32 ceiling
    mode = math_mode(dtype, case.tf32) if case.device == "cuda" else dtype
    return case.device, mode, case.threads or env.cpu_count()


@contextlib.contextmanager
def _tf32(device: str, mode: str) -> Iterator[None]:
    """CUDA: TF32 on for mode tf32 and off otherwise, for the kernels; restored after."""
    if device != "cuda":
        yield
        return
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.allow_tf32 = matmul.allow_tf32 = mode == "tf32"
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved


def kernels(device: str, mode: str) -> dict[str, tuple[float, Callable[[], Callable[[], object]]]]:
    """name → (FLOPs of one call, a function that allocates the operands and returns the call)."""
    dtype = TORCH_DTYPES[mode]

    def gemm(m: int, k: int, n: int) -> Callable[[], Callable[[], object]]:
        def make() -> Callable[[], object]:
            a = torch.randn(m, k, device=device).to(dtype)
            b = torch.randn(k, n, device=device).to(dtype)
            return lambda: torch.mm(a, b)
        return make

    def conv(channels: int, size: int) -> Callable[[], Callable[[], object]]:
        def make() -> Callable[[], object]:
            cl = torch.channels_last
            x = torch.randn(1, channels, size + 2, size + 2, device=device).to(dtype).contiguous(memory_format=cl)
            w = torch.randn(channels, channels, 3, 3, device=device).to(dtype).contiguous(memory_format=cl)
            return lambda: F.conv2d(x, w)
        return make

    found = {f"gemm {s}x{s}x{s}": (2.0 * s**3, gemm(s, s, s))
             for s in (CUDA_GEMM_SIZES if device == "cuda" else CPU_GEMM_SIZES)}
    for channels, size in CONV_SHAPES:
        flops = 2.0 * size * size * 9 * channels * channels
        found[f"im2col gemm {size * size}x{9 * channels}x{channels}"] = (flops, gemm(size**2, 9 * channels, channels))
        found[f"conv3x3 channels_last {channels}ch {size}x{size}"] = (flops, conv(channels, size))
    return found


def best_rate(flops: float, call: Callable[[], object], threads: int, device: str) -> float:
    """FLOP/s of a kernel's fastest block of back-to-back calls (a ceiling wants the best, not the typical)."""
    timing = time_call(call, threads, KERNEL_RUN_TIME_S, KERNEL_WARMUP_CALLS, device)
    return flops / float(timing.throughput.per_call().min())


@functools.lru_cache(maxsize=16)
def measure_ceiling(device: str, mode: str, threads: int, where: str = "measured in this process") -> Ceiling:
    """The ceiling for (device, math mode, threads): the best of `kernels`, with the nominal peak beside it."""
    with _tf32(device, mode), torch.no_grad():
        rates = {name: best_rate(flops, make(), threads, device)
                 for name, (flops, make) in kernels(device, mode).items()}
    best = max(rates, key=rates.__getitem__)
    source = f"best of {len(rates)} kernels ({best}), {mode}, {threads} threads, {where}"
    if device == "cuda":
        nominal, nominal_source = gpu_peak(torch.cuda.get_device_name(), mode)
        if nominal and nominal >= rates[best]:
            source = f"{nominal_source} (the measured kernels reached {rates[best] / 1e12:,.1f} TFLOP/s, {where})"
    else:
        clock, clock_source = env.cpu_clock_ghz()
        nominal, nominal_source = cpu_nominal_peak(mode, threads, env.cpu_flags(), clock, clock_source)
    ceiling = max(rates[best], nominal or 0.0) if device == "cuda" else rates[best]
    return Ceiling(device, mode, threads, ceiling, source, rates, nominal, nominal_source)


def ceiling_record(case: Case) -> Record:
    """The ceiling of ``case``'s `ceiling_key` as a record (in ``extra["ceiling"]``).

    The suite runner measures each ceiling this way, in a process of its own, and hands it to every case
    with that key.
    """
    ceiling = measure_ceiling(*ceiling_key(case), where=RUN_WHERE)
    return Record.for_case(case, peak_flops_per_s=ceiling.flops_per_s, extra={"ceiling": ceiling.to_dict()})
