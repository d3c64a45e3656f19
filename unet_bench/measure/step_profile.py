"""Where a step's time goes: per layer and per kind of op, with FLOPs, bytes and the two roofline ceilings.

Time comes from torch's profiler over a few warm steps: each top-level op (an op no other op called), each
backward node and each optimizer call is one unit, timed inclusively (CPU time on CPU, kernel time on
CUDA) and given to a layer (`unet_bench.measure.layers`). Forward units take the innermost ``layer::``
scope around them; a backward node takes the layer of the forward op with its autograd sequence number.
What the units leave of the step's wall time is the profiler's and Python's time between ops, reported
as its own line. FLOPs and bytes per layer come from `layers.count_layers` (the same FlopCounterMode
counts as the record's ``flops`` / ``train_flops``) and fvcore's interpolation and norm counts; the
ceilings are the compute ceiling (`peaks.measure_ceiling`) and a copy bandwidth measured here.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from unet_bench.kinds import BETWEEN_OPS, NETWORK, OPTIMIZER, STEP, by_kind
from unet_bench.measure.bandwidth import Bandwidth
from unet_bench.measure.counts import MAC_OPS, fvcore_analysis
from unet_bench.measure.layers import SCOPE_PREFIX, LayerCounts, LayerScopes, count_layers, layer_kind
from unet_bench.measure.peaks import Ceiling
from unet_bench.measure.steps import Step

PROFILED_STEPS = 3
BACKWARD_PREFIX = "autograd::engine::evaluate_function: "
OPTIMIZER_PREFIX = "Optimizer."
FLOPS_SCOPE = ("FLOPs of convolutions and transposed convolutions (torch FlopCounterMode, forward and, for a "
               "training step, backward: the record's flops / train_flops), plus fvcore's forward count of "
               "interpolation and norms; no FLOPs counted for pooling, activations, concat, loss or optimizer")
BYTES_SCOPE = ("compulsory bytes: every tensor each op reads (inputs, weights apart) or writes (outputs that "
               "are not views) counted once, on a meta copy at fp32 sizes; caches and re-reads not modelled")


@dataclass
class LayerRow:
    """One layer (or a module's own ops of one kind) in one profiled step, per batch."""

    layer: str
    kind: str
    time_s: float
    share: float  # of the profiled step's wall time
    flops: int
    input_bytes: int
    weight_bytes: int
    output_bytes: int

    @property
    def bytes(self) -> int:
        return self.input_bytes + self.weight_bytes + self.output_bytes

    @property
    def intensity(self) -> float | None:
        """FLOPs per byte moved (None where nothing was counted)."""
        return self.flops / self.bytes if self.flops and self.bytes else None

    @property
    def flops_per_s(self) -> float | None:
        return self.flops / self.time_s if self.flops and self.time_s > 0 else None

    @property
    def bytes_per_s(self) -> float | None:
        return self.bytes / self.time_s if self.bytes and self.time_s > 0 else None

    def to_dict(self) -> dict:
        return {**asdict(self), "bytes": self.bytes, "intensity": self.intensity, "flops_per_s": self.flops_per_s,
                "bytes_per_s": self.bytes_per_s}


@dataclass
class Profile:
    """The profile of one step (inference forward or training step) of one network."""

    step: str  # infer | train
    device: str
    batch: int
    steps: int  # profiled steps the times are averaged over
    step_s: float  # median step time without the profiler (timed blocks)
    profiled_step_s: float  # wall time of one step under the profiler and its scopes
    rows: list[LayerRow]
    compute_ceiling: float | None  # FLOP/s
    compute_source: str
    bandwidth: float  # bytes/s
    bandwidth_source: str
    time_source: str
    flops_scope: str = FLOPS_SCOPE
    bytes_scope: str = BYTES_SCOPE

    @property
    def ops_s(self) -> float:
        """Time of every profiled unit of one step (the step less the time between ops)."""
        return sum(row.time_s for row in self.rows if row.layer != BETWEEN_OPS)

    def top(self, n: int = 10) -> list[LayerRow]:
        """The ``n`` costliest layers by time (the between-ops line left out)."""
        return sorted((r for r in self.rows if r.layer != BETWEEN_OPS), key=lambda r: -r.time_s)[:n]

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k != "rows"}
        rows = [row.to_dict() for row in self.rows]
        return {**data, "rows": rows, "by_kind": by_kind(rows), "ops_s": self.ops_s}


def attribute(events: list, kinds: dict[str, str | None], device: str) -> dict[tuple[str, str], float]:
    """Seconds per (layer, kind) of the profiled units in ``events`` (torch profiler `FunctionEvent` s)."""
    units: list[tuple[object, str | None, str]] = []  # (event, layer or None for backward, op name)
    seq_layer: dict[int, str] = {}

    def visit(event, layer: str) -> None:  # noqa: ANN001
        name = event.name
        if name.startswith(SCOPE_PREFIX):
            for child in event.cpu_children:
                visit(child, name.removeprefix(SCOPE_PREFIX))
        elif name.startswith(OPTIMIZER_PREFIX):
            units.append((event, OPTIMIZER, name))
        elif name.startswith(BACKWARD_PREFIX):
            units.append((event, None, name.removeprefix(BACKWARD_PREFIX)))
        elif name.startswith("aten::"):
            units.append((event, layer, name))
            stack = [event]
            while stack:
                op = stack.pop()
                if op.sequence_nr >= 0:
                    seq_layer.setdefault(op.sequence_nr, layer)
                stack.extend(op.cpu_children)
        else:  # ProfilerStep#, user scopes: look inside
            for child in event.cpu_children:
                visit(child, layer)

    for event in events:
        if event.cpu_parent is None:
            visit(event, STEP)
    known = sorted(seq_layer)
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    for event, layer, name in units:
        if layer is None:
            layer = _creator(event.sequence_nr, known, seq_layer)
        micros = event.device_time_total if device == "cuda" else event.cpu_time_total
        seconds[(layer, layer_kind(layer, name, kinds))] += micros * 1e-6
    return seconds


def _creator(seq: int, known: list[int], seq_layer: dict[int, str]) -> str:
    """The layer whose forward made the autograd node ``seq``: the op with that sequence number, else (nodes
    made without an op of their own, as an in-place op on a view makes) the last op before it."""
    if seq < 0:
        return STEP  # gradient accumulation into the parameters
    if seq in seq_layer:
        return seq_layer[seq]
    before = bisect.bisect_right(known, seq) - 1
    return seq_layer[known[before]] if before >= 0 else STEP


def other_flops_by_layer(model: nn.Module, x: torch.Tensor, kinds: dict[str, str | None]) -> dict:
    """fvcore's forward count of its non-MAC ops (interpolation, norms) per (layer, kind), in its units."""
    analysis = fvcore_analysis(model, x[:1])
    found: dict[tuple[str, str], int] = defaultdict(int)
    for name, ops in analysis.by_module_and_operator().items():
        if kinds.get(name or NETWORK, "") is None:
            continue  # a module with children: its leaves carry its counts
        for op, n in ops.items():
            if op not in MAC_OPS and n:
                found[(name or NETWORK, layer_kind(name or NETWORK, op, kinds))] += int(n) * x.shape[0]
    return found


def profile_step(step: Step, mode: str, device: str, step_s: float, ceiling: Ceiling, bandwidth: Bandwidth,
                 steps: int = PROFILED_STEPS) -> Profile:
    """Profile ``steps`` warm calls of ``step`` (``mode``: infer | train) with layer scopes.

    ``step_s``: the step's median time without the profiler, timed by the caller.
    """
    model, batch = step.model, step.x.shape[0]
    counts: LayerCounts = count_layers(model, tuple(step.x.shape), train=mode == "train")
    if mode == "infer":
        for key, n in other_flops_by_layer(model, step.x, counts.kinds).items():
            counts.at(*key).other_flops += n
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with LayerScopes(model):
        step.run()  # warm with the scopes on
        sync()
        with profile(activities=activities) as prof:
            t0 = time.perf_counter()
            for _ in range(steps):
                step.run()
            sync()
            wall = (time.perf_counter() - t0) / steps
        seconds = attribute(list(prof.events()), counts.kinds, device)
    profiled = {key: s / steps for key, s in seconds.items()}
    rows = []
    for key in dict.fromkeys([*counts.rows, *profiled]):
        count = counts.rows.get(key)
        t = profiled.get(key, 0.0)
        rows.append(LayerRow(key[0], key[1], t, t / wall, (count.flops + count.other_flops) if count else 0,
                             count.input_bytes if count else 0, count.weight_bytes if count else 0,
                             count.output_bytes if count else 0))
    ops = sum(r.time_s for r in rows)
    rows.append(LayerRow(BETWEEN_OPS, BETWEEN_OPS, max(wall - ops, 0.0), max(wall - ops, 0.0) / wall, 0, 0, 0, 0))
    time_source = (f"torch.profiler over {steps} warm steps, {'CUDA kernel' if device == 'cuda' else 'CPU'} time "
                   "of each top-level op, backward node and optimizer call, inclusive; per step")
    return Profile(mode, device, batch, steps, step_s, wall, rows, ceiling.flops_per_s, ceiling.source,
                   bandwidth.bytes_per_s, bandwidth.source, time_source)
