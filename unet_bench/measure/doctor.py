"""Is this machine fit to measure on? What a measurement here will be up against, the way ``pyperf system
show`` tells it for Python benchmarks: load and CPU steal now, the frequency governor and turbo where the
kernel shows them, threads, the torch build, which optional libraries are installed, and the control
workload's spread over a short A/A (`control_aa`), from which the smallest change a paired row can show
follows. `smoke` runs one tiny case of every mode on every device here.
"""

from __future__ import annotations

import importlib.util
import math
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats as sstats

from unet_bench.measure import env
from unet_bench.measure.case import measure
from unet_bench.measure.control import control_step, describe
from unet_bench.record import MODES, Case

TURBO = (Path("/sys/devices/system/cpu/intel_pstate/no_turbo"), Path("/sys/devices/system/cpu/cpufreq/boost"))
EXTRAS = {  # extra: the modules it installs
    "external": ("monai", "segmentation_models_pytorch", "dynamic_network_architectures"),
    "counters": ("ptflops", "thop", "torchinfo", "calflops"),
    "cluster": ("submitit",),
    "energy": ("pynvml",),
    "runtimes": ("onnx", "onnxruntime", "openvino"),
}
AA_SECONDS = 10.0
AA_REPEATS = 3  # processes a paired row typically has: the MDE is stated for this many


def turbo() -> str:
    """'on' / 'off' where the kernel says, else 'not readable'."""
    no_turbo, boost = (env._read(p) for p in TURBO)
    if no_turbo is not None:
        return "off" if no_turbo == "1" else "on"
    if boost is not None:
        return "on" if boost == "1" else "off"
    return "not readable"


def installed() -> dict[str, dict[str, bool]]:
    return {extra: {m: importlib.util.find_spec(m) is not None for m in modules} for extra, modules in EXTRAS.items()}


@dataclass
class AA:
    """A/A of the control: blocks alternately labelled A and B in A B B A quartets, each quartet one ratio."""

    seconds: float
    blocks: int
    block_spread: float  # IQR / median of the blocks
    quartet_sd: float  # standard deviation of the log quartet ratios
    paired_mde: float  # smallest change a paired row of AA_REPEATS processes could show, if a process were a quartet


def control_aa(device: str = "cpu", seconds: float = AA_SECONDS, block_s: float = 0.05) -> AA:
    """Time the control for ``seconds`` on every core and read its spread (class docstring)."""
    run = control_step(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    run()
    sync()
    start = time.perf_counter()
    run()
    sync()
    calls = max(1, math.ceil(block_s / max(time.perf_counter() - start, 1e-9)))
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) % 4 or len(times) < 8:
        began = time.perf_counter()
        for _ in range(calls):
            run()
        sync()
        times.append(time.perf_counter() - began)
    logs = np.log(np.asarray(times))
    quartets = logs.reshape(-1, 4)
    ratios = quartets[:, 0] + quartets[:, 3] - quartets[:, 1] - quartets[:, 2]  # A B B A: log(A·A / B·B)
    sd = float(np.std(ratios / 2, ddof=1))
    t = float(sstats.t.ppf(0.975, AA_REPEATS - 1))
    p25, p50, p75 = np.percentile(times, [25, 50, 75])
    return AA(seconds, len(times), float((p75 - p25) / p50), sd, math.expm1(t * sd / math.sqrt(AA_REPEATS)))


def system(device: str = "cpu", aa_seconds: float = AA_SECONDS) -> dict[str, Any]:
    """What a measurement on this machine is up against (module docstring), as plain data."""
    before, steal = env.load_before()
    facts = env.fingerprint(device)
    return {
        "cpu": facts["cpu"], "cpu_cores": facts["cpu_cores"], "loadavg": before.loadavg, "cpu_steal": steal,
        "governor": facts["cpu_governor"] or "not readable", "turbo": turbo(), "torch_threads": facts["torch_threads"],
        "transparent_hugepages": facts["transparent_hugepages"] or "not readable",
        "torch": facts["torch"], "cuda": torch.version.cuda, "cudnn": facts["cudnn"],
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available() else [],
        "speed_env": facts["speed_env"], "extras": installed(),
        "control": describe(device, torch.get_num_threads()),
        "control_aa": asdict(control_aa(device, aa_seconds)) if aa_seconds > 0 else None,
    }


def smoke_cases(device: str) -> list[Case]:
    """One tiny case of every mode: a 2-level, 4-wide paper network at its smallest useful size."""
    small = (("base_width", 4), ("depth", 2))
    cases = []
    for mode in MODES:
        extra: dict[str, Any] = {"steps": 4, "seeds": 2} if mode == "quality" else {}
        if mode == "train-ddp":
            extra = {"world_sizes": (1,)}
        cases.append(Case("paper", small, mode=mode, device=device, input_size=60, min_run_time_s=0.05,
                          threads=1 if mode == "train-ddp" else None, **extra))
    return cases


def smoke(devices: list[str]) -> list[dict[str, Any]]:
    """Each smoke case measured here: ``ok`` with its wall time, or the error's last line."""
    results = []
    for device in devices:
        for case in smoke_cases(device):
            started = time.perf_counter()
            try:
                record = measure(case)
                status, why = record.status, record.message
            except Exception as error:  # noqa: BLE001 - what failed is the answer
                status = "failed"
                why = f"{type(error).__name__}: {error}".splitlines()[0] or traceback.format_exc().splitlines()[-1]
            results.append({"mode": case.mode, "device": device, "status": status, "message": why,
                            "seconds": round(time.perf_counter() - started, 2)})
    return results
