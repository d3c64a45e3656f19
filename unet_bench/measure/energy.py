"""Energy of a step, from the hardware's own energy counter, or the reason there is none: never a guess.

* CUDA: NVML's total-energy counter (millijoules since the driver loaded; Volta and newer) read before
  and after a run of back-to-back steps, less the idle power sampled just before (NVML power readings over
  `IDLE_S`) times the run's duration: the energy the work added. ``nvidia-ml-py`` (the ``energy`` extra)
  is imported only here, only when asked.
* CPU: RAPL package counters through ``/sys/class/powercap`` where readable (summed over packages; the
  counter wraps at ``max_energy_range_uj``). The package counts every process on it: on a shared machine
  the figure includes the other processes' work, and the record says so.
* Anything else: ``available = False`` and the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

POWERCAP = Path("/sys/class/powercap")
IDLE_S = 1.0  # idle power sampled over this long before the run
IDLE_SAMPLES = 10
RUN_S = 2.0  # at least this long of back-to-back steps: NVML's counter updates every few tens of ms


@dataclass
class Energy:
    """Joules per call of a step, and how they were measured (or why they could not be)."""

    available: bool
    method: str  # how, or why not
    joules_per_call: float | None = None  # the work's energy: total less idle power x duration
    total_joules: float | None = None  # counter difference over the run
    idle_watts: float | None = None
    calls: int | None = None
    seconds: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def unavailable(reason: str) -> Energy:
    return Energy(False, f"not available: {reason}")


def _run(fn: Callable[[], object], sync: Callable[[], None], min_s: float) -> tuple[int, float]:
    """Back-to-back calls of ``fn`` for at least ``min_s`` seconds: (calls, seconds)."""
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        sync()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_s:
            return calls, elapsed


# --- CUDA: NVML ----------------------------------------------------------------------------------------


def nvml_energy(fn: Callable[[], object], device_index: int = 0, run_s: float = RUN_S) -> Energy:
    """Energy per call of ``fn`` on GPU ``device_index`` from NVML's total-energy counter, idle subtracted."""
    try:
        import pynvml
    except ImportError:
        return unavailable("nvidia-ml-py is not installed (pip install 'unet-bench[energy]')")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return unavailable(f"NVML did not start ({error})")
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except pynvml.NVMLError as error:
            return unavailable(f"this GPU has no NVML total-energy counter ({error})")
        torch.cuda.synchronize()
        watts = []
        for _ in range(IDLE_SAMPLES):
            watts.append(pynvml.nvmlDeviceGetPowerUsage(handle) / 1e3)
            time.sleep(IDLE_S / IDLE_SAMPLES)
        idle = sum(watts) / len(watts)
        start = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        calls, seconds = _run(fn, torch.cuda.synchronize, run_s)
        total = (pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) - start) / 1e3
        method = (f"NVML total-energy counter (nvmlDeviceGetTotalEnergyConsumption, mJ) over {calls} back-to-back "
                  f"calls ({seconds:.2f} s), less idle power {idle:.1f} W (mean of {IDLE_SAMPLES} "
                  f"nvmlDeviceGetPowerUsage samples over {IDLE_S:g} s just before) x duration; GPU {device_index}")
        return Energy(True, method, (total - idle * seconds) / calls, total, idle, calls, seconds)
    finally:
        pynvml.nvmlShutdown()


# --- CPU: RAPL -----------------------------------------------------------------------------------------


def rapl_packages(root: Path = POWERCAP) -> tuple[list[Path], str]:
    """The readable RAPL package domains under ``root``, or [] and why there are none."""
    if not root.is_dir():
        return [], f"{root} does not exist (no powercap driver: a VM, a container or not Linux)"
    domains = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
    if not domains:
        return [], f"{root} has no RAPL package domain (intel-rapl:N)"
    unreadable = [p for p in domains if not _readable(p / "energy_uj")]
    if unreadable:
        return [], f"{unreadable[0] / 'energy_uj'} is not readable (root only since Linux 5.10)"
    return domains, ""


def _readable(path: Path) -> bool:
    try:
        int(path.read_text())
    except (OSError, ValueError):
        return False
    return True


def _joules(domains: list[Path]) -> list[int]:
    return [int((d / "energy_uj").read_text()) for d in domains]


def rapl_energy(fn: Callable[[], object], run_s: float = RUN_S, root: Path = POWERCAP) -> Energy:
    """Energy per call of ``fn`` from the RAPL package counters, idle power (same counters) subtracted."""
    domains, why = rapl_packages(root)
    if not domains:
        return unavailable(why)
    ranges = [int((d / "max_energy_range_uj").read_text()) if _readable(d / "max_energy_range_uj") else 2**63
              for d in domains]

    def delta(before: list[int], after: list[int]) -> float:
        return sum((b - a) % r for a, b, r in zip(before, after, ranges, strict=True)) / 1e6

    first, t0 = _joules(domains), time.perf_counter()
    time.sleep(IDLE_S)
    idle = delta(first, _joules(domains)) / (time.perf_counter() - t0)
    start = _joules(domains)
    calls, seconds = _run(fn, lambda: None, run_s)
    total = delta(start, _joules(domains))
    method = (f"RAPL package energy ({', '.join(d.name for d in domains)}) over {calls} back-to-back calls "
              f"({seconds:.2f} s), less idle power {idle:.1f} W (same counters over {IDLE_S:g} s just before) x "
              "duration; the package counts every process on it")
    return Energy(True, method, (total - idle * seconds) / calls, total, idle, calls, seconds)


def step_energy(fn: Callable[[], object], device: str) -> Energy:
    """Energy per call of ``fn`` on ``device`` by the method that device offers (module docstring)."""
    if device == "cuda":
        return nvml_energy(fn, torch.cuda.current_device())
    return rapl_energy(fn)
