"""How every measurement ends: a finished record (environment, timestamp, duration) or a failure record.

One place for both, so a record from ``unet-bench time``, a suite case, a quality case or a crashed
process carries the same context in the same keys.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from unet_bench.errors import UnsupportedError, first_line
from unet_bench.measure import env
from unet_bench.models.registry import get_config
from unet_bench.record import Case, Record

OOM_MARKERS = ("out of memory", "not enough memory", "can't allocate memory", "cannot allocate memory", "bad_alloc")


@dataclass
class Started:
    """When a measurement began, and what the machine's load was then (None: not sampled)."""

    t0: float = field(default_factory=time.perf_counter)
    load: env.Load | None = None
    steal: float | None = None  # stolen fraction of CPU time just before the start


def begin() -> Started:
    """Start a measurement: the clock, and a load sample (`env.load_before`, ~0.1 s) to compare at its end."""
    t0 = time.perf_counter()
    load, steal = env.load_before()
    return Started(t0, load, steal)


def finish(record: Record, started: Started, device: str) -> Record:
    """Stamp ``record`` with the environment (load before and after included), its end and its duration."""
    record.env = env.fingerprint(device)
    if started.load is not None:
        record.env.update(env.load_values(started.load, started.steal))
    record.timestamp = env.now()
    record.duration_s = time.perf_counter() - started.t0
    return record


def classify_failure(exc: BaseException) -> tuple[str, str]:
    """``(status, message)`` for a failed measurement: ``unsupported`` for a network a runtime cannot take,
    ``oom`` for any out-of-memory error, else ``error``.

    The message is one line: the exception's type and the first line of its text.
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, UnsupportedError):
        return "unsupported", text
    message = first_line(exc)
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return "oom", message
    if isinstance(exc, RuntimeError) and any(marker in text.lower() for marker in OOM_MARKERS):
        return "oom", message
    return "error", message


def failed(case: Case, status: str, message: str, started: Started | None = None,
           environment: dict | None = None) -> Record:
    """A record for a case that produced no measurement, with its full config and the host's environment.

    ``environment``: the fingerprint taken where the case ran (a case process that failed), else this
    process's, without device details (a skipped or crashed case may name a device this process never
    touched).
    """
    if environment is None:
        environment = {k: v for k, v in env.fingerprint("cpu").items() if k not in ("device", "device_name")}
    record = Record.for_case(case, status=status, message=message,
                             config=get_config(case.variant, **case.overrides_dict()).to_dict(),
                             env=environment, timestamp=env.now())
    if started is not None:
        record.duration_s = time.perf_counter() - started.t0
    return record
