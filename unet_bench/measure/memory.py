"""Memory of a step: what autograd keeps for backward and model state (counted), and the peak (measured).

* Saved-for-backward bytes are counted exactly with ``torch.autograd.graph.saved_tensors_hooks``: every
  tensor autograd packs, deduplicated by storage (an in-place ReLU and the next conv save the same
  storage once), parameters and buffers left out (they are model state, counted apart).
* The peak is measured: on CUDA ``max_memory_allocated`` after ``reset_peak_memory_stats``; on CPU
  (``tracemalloc`` cannot see torch's allocations) in a fresh child process, as the tensors live after a
  warm-up step plus the growth of peak RSS over the next step, with glibc's mmap threshold fixed so that
  freed tensors leave RSS at once. Code pages and thread arenas loaded by the first step are not tensors,
  so they are left out, as on CUDA. ``PEAK_METHODS`` says which method, in the record.
* The predicted training peak is parameters + gradients + optimizer state + saved tensors + two buffers
  the size of the largest saved tensor (a gradient in and out during backward).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import unet_bench
from unet_bench.measure.env import cpu_count
from unet_bench.measure.steps import Step, backend_flags, build_step
from unet_bench.record import Case

PEAK_METHODS = {
    "cuda": "cuda max_memory_allocated over one step after warm-up (reset_peak_memory_stats); includes "
    "parameters, optimizer state and input",
    "cpu": "fresh child process: tensors live after a warm-up step (parameters, gradients, optimizer state, "
    "input; counted) + growth of peak RSS (VmHWM) over the next step (MALLOC_MMAP_THRESHOLD_=65536 so that "
    "freed tensors leave RSS at once)",
    "cpu-in-process": "this case's own fresh process (the suite runner's, started with "
    "MALLOC_MMAP_THRESHOLD_=65536 so that freed tensors leave RSS at once): tensors live after the warm-up "
    "and timed steps (parameters, gradients, optimizer state, input; counted) + growth of peak RSS (VmHWM) "
    "over one more step",
}
MMAP_THRESHOLD = "65536"
# glibc reads the variable once, at start-up: only a process started with it returns freed tensors to the
# OS at once, and only there is RSS growth over one step an honest peak without a child process.
MALLOC_RETURNS_FREED = os.environ.get("MALLOC_MMAP_THRESHOLD_") == MMAP_THRESHOLD
CHILD_TIMEOUT_S = 1800


@dataclass
class SavedBytes:
    """Tensors autograd saved for backward, deduplicated by storage."""

    total: int = 0
    largest: int = 0
    tensors: int = 0  # distinct storages


@contextlib.contextmanager
def count_saved(exclude: Iterable[torch.Tensor] = ()) -> Iterator[SavedBytes]:
    """Count the bytes autograd saves inside the block (storages of ``exclude`` left out)."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: set[int] = set()
    saved = SavedBytes()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key not in skip and key not in seen and storage.nbytes():
            seen.add(key)
            saved.total += storage.nbytes()
            saved.largest = max(saved.largest, storage.nbytes())
            saved.tensors += 1
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield saved


def saved_for_backward(model: nn.Module, case: Case, in_channels: int) -> SavedBytes:
    """Bytes one eager training step of ``case`` saves for backward (batch included)."""
    step = build_step(model, case, in_channels, compiled=False)
    with backend_flags(case), count_saved([*model.parameters(), *model.buffers()]) as saved:
        step.run()
    return saved


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of distinct storages (a tensor and its views count once)."""
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, int]:
    """Parameter, gradient and optimizer-state bytes as they are now (call after a training step)."""
    params = list(model.parameters())
    optimizer_state = [v for state in (optimizer.state.values() if optimizer else ()) for v in state.values()]
    return {
        "param_bytes": tensor_bytes(params),
        "grad_bytes": tensor_bytes(p.grad for p in params if p.grad is not None),
        "optimizer_bytes": tensor_bytes(v for v in optimizer_state if isinstance(v, torch.Tensor)),
    }


def predict_train_peak(state: dict[str, int], saved: SavedBytes) -> int:
    """Peak of a training step from the counts (see the module docstring for the formula)."""
    model_state = state["param_bytes"] + state["grad_bytes"] + state["optimizer_bytes"]
    return model_state + saved.total + 2 * saved.largest


def memory_values(step: Step, case: Case, in_channels: int) -> dict:
    """The record's memory fields for a warmed-up ``step`` of ``case`` (``extra`` entries included)."""
    values: dict = {"extra": {}}
    state = state_bytes(step.model, step.optimizer)
    values["param_bytes"] = state["param_bytes"]
    if case.mode == "train":
        saved = saved_for_backward(step.model, case, in_channels)
        values.update(state, saved_activation_bytes=saved.total)
        values["predicted_peak_bytes"] = predict_train_peak(state, saved)
        values["extra"].update(saved_tensors=saved.tensors, largest_saved_bytes=saved.largest)
    try:
        with backend_flags(case):
            if case.device == "cuda":
                peak, method = peak_cuda(step), "cuda"
            elif MALLOC_RETURNS_FREED:
                peak, method = peak_rss_growth(step)["peak_bytes"], "cpu-in-process"
            else:
                peak, method = peak_cpu(step.model, case, in_channels), "cpu"
    except Exception as error:  # noqa: BLE001 - a failed peak must not lose the timing already measured
        values["peak_mem_method"] = f"unavailable: {type(error).__name__}: {error}"
        return values
    values["peak_mem_bytes"] = peak
    values["peak_mem_method"] = PEAK_METHODS[method]
    if values.get("predicted_peak_bytes"):
        values["peak_mem_ratio"] = peak / values["predicted_peak_bytes"]
    return values


# --- measured peak -------------------------------------------------------------------------------------


def peak_cuda(step: Step) -> int:
    """Largest allocation total during one call of an already warmed-up ``step``."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step.run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def peak_cpu(model: nn.Module, case: Case, in_channels: int) -> int:
    """Peak RSS growth of one step of ``case`` in a fresh process (Linux). Raises if it cannot be measured."""
    if not Path("/proc/self/clear_refs").exists():
        raise OSError("peak RSS needs Linux /proc")
    package_root = str(Path(unet_bench.__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD,
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    }
    with tempfile.TemporaryDirectory(prefix="unet-bench-peak-") as tmp:
        path = Path(tmp) / "model.pt"
        torch.save(model, path)
        code = "import sys; from unet_bench.measure.memory import child_main; child_main(sys.argv[1:])"
        args = [sys.executable, "-c", code, str(path), json.dumps(case.to_dict()), str(in_channels)]
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
        error = MemoryError if proc.returncode in (-9, 137) else RuntimeError  # killed: out of memory
        raise error(f"peak-memory child process failed: {lines[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_bytes"]


def child_main(argv: list[str]) -> None:
    """In the child: load the model, warm up one step, then live tensors + RSS growth over one more step."""
    path, case_json, in_channels = argv
    data = json.loads(case_json)
    case = Case(**{**data, "overrides": tuple(sorted(data["overrides"].items()))})
    torch.set_num_threads(case.threads or cpu_count())
    step = build_step(torch.load(path, weights_only=False), case, int(in_channels))
    step.run()
    print(json.dumps(peak_rss_growth(step)))


def peak_rss_growth(step: Step) -> dict[str, int]:
    """Tensors live after a warmed-up ``step`` + growth of peak RSS over one more call (Linux)."""
    live = tensor_bytes(step.live_tensors())
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS now
    before = _status_kib("VmRSS")
    step.run()
    growth = (_status_kib("VmHWM") - before) * 1024
    return {"peak_bytes": live + growth, "live_bytes": live, "growth_bytes": growth}
