"""The environment fingerprint every record carries: enough to tell whether two numbers are comparable."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

import unet_bench


def cpu_count() -> int:
    """Cores this process may run on (the default thread count of every measurement)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo on Linux, else what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


def device_name(device: str) -> str:
    """The accelerator's name for ``cuda``, the CPU model for ``cpu``."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    return cpu_model()


def now() -> str:
    """ISO 8601 UTC timestamp, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fingerprint(device: str = "cpu") -> dict[str, Any]:
    """Versions, hardware, threads and global flags at the time of the call."""
    env: dict[str, Any] = {
        "unet_bench": unet_bench.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_cores": cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
        "device": device,
        "device_name": device_name(device),
        "timestamp": now(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        env.update(
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            gpu_memory_bytes=props.total_memory,
            gpu_capability=f"{props.major}.{props.minor}",
            cudnn_benchmark=torch.backends.cudnn.benchmark,
            cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
            matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
        )
    return env
