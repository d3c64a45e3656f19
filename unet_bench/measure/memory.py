"""Memory of a step: what autograd keeps for backward and model state (counted), and the peak (measured).

Everything here runs after the timed calls, in one more call of the same step (the memory pass): the
timed process is left as a plain ``python`` would be, and the pass describes the very step that was timed,
compiled or not.

* Saved-for-backward bytes are counted exactly with ``torch.autograd.graph.saved_tensors_hooks``: every
  tensor autograd packs, deduplicated by storage (an in-place ReLU and the next conv save the same
  storage once), parameters and buffers left out (they are model state, counted apart). Under autocast the
  low-precision copies of the weights that the convolutions save are counted apart from the activations.
  Under ``torch.compile`` the hooks see what the compiled graph saves (AOTAutograd's saved tensors).
* The peak is measured: on CUDA ``max_memory_allocated`` after ``reset_peak_memory_stats``; on CPU from
  the allocation trace of torch's profiler (``profile_memory``): the tensors live before the call plus the
  largest growth of allocated bytes during it. That is the CPU counterpart of CUDA's figure: every
  allocation through torch's CPU allocator (oneDNN's buffers included), neither glibc's free lists nor code
  pages. Peak RSS would need a fresh process: after the timed calls glibc's heap holds freed blocks that
  one more step may or may not reuse, and RSS growth over it read up to 30 % high for a training step (the
  tests check the trace against a fresh process's RSS). ``PEAK_METHODS`` says which method, in the record.
* The predicted training peak is parameters + gradients + optimizer state + saved tensors (weight copies
  included) + two buffers the size of the largest saved tensor (a gradient in and out during backward).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from unet_bench.measure.steps import Step, backend_flags
from unet_bench.record import Case

PEAK_METHODS = {
    "cuda": "cuda max_memory_allocated over one step after the timed ones (reset_peak_memory_stats); "
    "includes parameters, optimizer state and input",
    "cpu": "torch profiler allocation trace (profile_memory) of one step after the timed ones, same process: "
    "tensors live before it (parameters, optimizer state, input; gradients freed first, as the step does; not "
    "the weights a compiled inference graph froze when it compiled) + the largest growth of bytes allocated "
    "through torch's CPU allocator during it",
}
SAVED_BYTES_METHOD = (
    "saved_tensors_hooks over one step of the {graph} model, deduplicated by storage; parameters and buffers "
    "left out, their autocast copies counted apart (autocast_weight_copy_bytes){note}"
)
COMPILED_COPY_NOTE = "; in the compiled graph a weight copy is a saved tensor with a parameter's shape in another dtype"
# kineto logs two lines per profile unless this is above its highest level when it starts (it reads the
# variable once, at its first profile in a process).
KINETO_QUIET = {"KINETO_LOG_LEVEL": "6"}


@dataclass
class SavedBytes:
    """Tensors autograd saved for backward, deduplicated by storage."""

    total: int = 0  # activations: everything saved but model state and its casts
    largest: int = 0  # the largest activation
    tensors: int = 0  # distinct activation storages
    weight_copies: int = 0  # low-precision copies of parameters (autocast) saved by the layers that use them


@contextlib.contextmanager
def count_saved(exclude: Iterable[torch.Tensor] = (), copies_by_shape: bool = False) -> Iterator[SavedBytes]:
    """Count the bytes autograd saves inside the block (storages of ``exclude`` left out, casts of them apart).

    A cast of an excluded tensor is one whose autograd history is a copy of it (eager autocast). Casts made
    inside a compiled graph have no history: with ``copies_by_shape``, a saved tensor without history that
    has an excluded tensor's shape in another dtype counts as a cast.
    """
    exclude = list(exclude)
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    shapes = {(tuple(t.shape), t.dtype) for t in exclude} if copies_by_shape else set()
    seen: set[int] = set()
    saved = SavedBytes()

    def is_copy(t: torch.Tensor) -> bool:
        fn = t.grad_fn
        if fn is None:
            return any(shape == tuple(t.shape) and dtype != t.dtype for shape, dtype in shapes)
        source = fn.next_functions[0][0] if type(fn).__name__ == "ToCopyBackward0" else None
        variable = getattr(source, "variable", None)
        return variable is not None and variable.untyped_storage().data_ptr() in skip

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key in skip or key in seen or not storage.nbytes():
            return t
        seen.add(key)
        if is_copy(t):
            saved.weight_copies += storage.nbytes()
        else:
            saved.total += storage.nbytes()
            saved.largest = max(saved.largest, storage.nbytes())
            saved.tensors += 1
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield saved


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
    return model_state + saved.total + saved.weight_copies + 2 * saved.largest


def memory_values(step: Step, case: Case) -> dict:
    """The record's memory fields for a warmed-up (timed) ``step`` of ``case`` (``extra`` entries included).

    One more call of the step is the memory pass: it gives the saved-for-backward bytes and the peak. If it
    fails, the peak method says why and the counted model state is all that is recorded.
    """
    values: dict = {"extra": {}}
    model_state = [*step.model.parameters(), *step.model.buffers()]
    try:
        with backend_flags(case), count_saved(model_state, copies_by_shape=case.compile) as saved:
            peak, method = (peak_cuda(step), "cuda") if case.device == "cuda" else (peak_cpu(step), "cpu")
    except Exception as error:  # noqa: BLE001 - a failed pass must not lose the timing already measured
        values["param_bytes"] = state_bytes(step.model, None)["param_bytes"]
        values["peak_mem_method"] = f"unavailable: {type(error).__name__}: {error}"
        return values
    state = state_bytes(step.model, step.optimizer)
    values.update(param_bytes=state["param_bytes"], peak_mem_bytes=peak, peak_mem_method=PEAK_METHODS[method])
    if case.mode == "train":
        values.update(state, saved_activation_bytes=saved.total, predicted_peak_bytes=predict_train_peak(state, saved))
        values["peak_mem_ratio"] = peak / values["predicted_peak_bytes"]
        graph, note = ("compiled", COMPILED_COPY_NOTE) if case.compile else ("eager", "")
        values["extra"].update(
            saved_tensors=saved.tensors, largest_saved_bytes=saved.largest,
            autocast_weight_copy_bytes=saved.weight_copies,
            saved_bytes_method=SAVED_BYTES_METHOD.format(graph=graph, note=note),
        )
    return values


# --- measured peak -------------------------------------------------------------------------------------


def peak_cuda(step: Step) -> int:
    """Largest allocation total during one call of an already warmed-up ``step``."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step.run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()


@contextlib.contextmanager
def _quiet_kineto() -> Iterator[None]:
    """Keep kineto's start/stop log lines off stderr; the environment is restored afterwards."""
    added = {k: v for k, v in KINETO_QUIET.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def peak_cpu(step: Step) -> int:
    """Tensors live before one more call of a warmed-up ``step`` + the most its allocations add during it.

    The gradients are freed first (the step's own first act): blocks allocated before the trace starts are
    freed unseen by it, so freeing them inside would count the new gradients on top of the old ones.
    """
    if step.optimizer is not None:
        step.optimizer.zero_grad(set_to_none=True)
    live = tensor_bytes(step.live_tensors())
    with _quiet_kineto(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as trace:
        step.run()
    events = [e for e in trace.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU]
    allocated = growth = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        allocated += event.nbytes()
        growth = max(growth, allocated)
    return live + growth
