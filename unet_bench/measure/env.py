"""The environment fingerprint every record carries: enough to tell whether two numbers are comparable.

Besides versions and hardware it holds what changes speed: threads, the threading-runtime, allocator and
oneDNN variables in force, the CPU's clock and governor and ISA, and the machine's load (1-minute load
average and the fraction of CPU time the hypervisor stole) before and after the measurement.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

import unet_bench

# Environment variables that change speed: OpenMP and MKL threading, glibc's allocator, oneDNN, torch.
SPEED_VARIABLE_PREFIXES = ("OMP_", "MKL_", "KMP_", "GOMP_", "MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD", "DNNL_",
                           "ONEDNN_", "PYTORCH_", "TORCHINDUCTOR_", "CUDA_", "CUBLAS_")
# CPU flags that decide the vector and matrix units a kernel can use (a subset of /proc/cpuinfo's).
ISA_FLAGS = ("avx", "fma", "avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16", "amx_int8")
STEAL_WINDOW_S = 0.1  # /proc/stat window for the steal fraction as a measurement starts
GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
MAX_FREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
TRANSPARENT_HUGEPAGES = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def cpu_count() -> int:
    """Cores this process may run on (the default thread count of every measurement)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def cpuinfo() -> dict[str, str]:
    """The first processor's entries of /proc/cpuinfo (empty where there is none)."""
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo on Linux, else what platform knows)."""
    return cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The `ISA_FLAGS` this CPU has."""
    flags = set(cpuinfo().get("flags", "").split())
    return [flag for flag in ISA_FLAGS if flag in flags]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpu_clock_ghz() -> tuple[float | None, str]:
    """(clock in GHz, where it was read): cpufreq's maximum where readable, else /proc/cpuinfo's "cpu MHz"."""
    khz = _read(MAX_FREQ)
    if khz:
        return int(khz) / 1e6, "cpufreq cpuinfo_max_freq"
    mhz = cpuinfo().get("cpu MHz")
    return (float(mhz) / 1e3, "/proc/cpuinfo cpu MHz (turbo may run faster)") if mhz else (None, "not readable")


def speed_variables() -> dict[str, str]:
    """The environment variables in force that change speed (`SPEED_VARIABLE_PREFIXES`)."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(SPEED_VARIABLE_PREFIXES)}


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str | None]:
    """oneDNN and MKL versions as torch was built with them (from ``torch.__config__.show()``)."""
    config = torch.__config__.show()
    onednn = re.search(r"(?:MKL-DNN|oneDNN) v([\w.]+)", config)
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", config)
    backend = re.search(r"ATen parallel backend: (.+)", torch.__config__.parallel_info())
    return {"onednn": onednn and onednn.group(1), "mkl": mkl and mkl.group(1),
            "parallel_backend": backend and backend.group(1).strip()}


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The project's git commit, with ``-dirty`` when the tree has changes; None outside a checkout."""
    root = Path(unet_bench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def transparent_hugepages() -> str | None:
    """The kernel's transparent-huge-page policy (``always``, ``madvise`` or ``never``); None where unreadable.

    It decides what a training step's allocations cost: glibc's allocator asks for no huge pages, so
    under ``madvise`` or ``never`` every 4 KiB page it takes back from the system is a page fault (tens of
    thousands a step at the default suite's tiles), and how many a step takes moves with the heap's state.
    """
    found = re.search(r"\[(\w+)\]", _read(TRANSPARENT_HUGEPAGES) or "")
    return found.group(1) if found else None


def device_name(device: str) -> str:
    """The accelerator's name for ``cuda``, the CPU model for ``cpu``."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    return cpu_model()


def now() -> str:
    """ISO 8601 UTC timestamp, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Load:
    """The machine's load at one moment: the 1-minute load average and /proc/stat's CPU time counters."""

    loadavg: float | None
    ticks: tuple[int, ...] | None  # user nice system idle iowait irq softirq steal, all CPUs


def load_sample() -> Load:
    try:
        loadavg: float | None = os.getloadavg()[0]
    except OSError:
        loadavg = None
    line = _read(Path("/proc/stat"))
    fields = line.splitlines()[0].split() if line else []
    ticks = tuple(int(v) for v in fields[1:9]) if len(fields) >= 9 and fields[0] == "cpu" else None
    return Load(loadavg, ticks)


def steal_fraction(first: Load, last: Load) -> float | None:
    """Fraction of all CPU time between two samples that the hypervisor gave to other guests (steal)."""
    if first.ticks is None or last.ticks is None:
        return None
    total = sum(last.ticks) - sum(first.ticks)
    return (last.ticks[7] - first.ticks[7]) / total if total > 0 else None


def load_before() -> tuple[Load, float | None]:
    """A load sample as a measurement starts, and the steal fraction over the `STEAL_WINDOW_S` before it."""
    first = load_sample()
    time.sleep(STEAL_WINDOW_S)
    last = load_sample()
    return last, steal_fraction(first, last)


def load_values(before: Load, steal_before: float | None) -> dict[str, Any]:
    """The load entries of a finished measurement's environment: before (`load_before`) and now."""
    after = load_sample()
    return {
        "loadavg_before": before.loadavg,
        "loadavg_after": after.loadavg,
        "cpu_steal_before": steal_before,
        "cpu_steal_after": steal_fraction(before, after),
        "cpu_steal_method": f"/proc/stat steal / all CPU time; before: over {STEAL_WINDOW_S:g} s as the "
        "measurement starts; after: from its start to its end",
    }


def fingerprint(device: str = "cpu") -> dict[str, Any]:
    """Versions, hardware, threads, speed-changing variables and global flags at the time of the call."""
    clock, clock_source = cpu_clock_ghz()
    env: dict[str, Any] = {
        "unet_bench": unet_bench.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        **library_versions(),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_cores": cpu_count(),
        "cpu_isa": cpu_flags(),
        "cpu_ghz": clock,
        "cpu_ghz_source": clock_source,
        "cpu_governor": _read(GOVERNOR),
        "transparent_hugepages": transparent_hugepages(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "speed_env": speed_variables(),
        "mkldnn": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "device": device,
        "device_name": device_name(device),
        "timestamp": now(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        env.update(
            cuda=torch.version.cuda,
            gpu_memory_bytes=props.total_memory,
            gpu_capability=f"{props.major}.{props.minor}",
            cudnn_benchmark=torch.backends.cudnn.benchmark,
            cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
            matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
        )
    return env
