"""Parameters, MACs and FLOPs, counted (never estimated) with two independent counters.

fvcore (primary) traces the network with ``torch.jit.trace`` on real tensors and counts **one per
multiply-accumulate**; torch's ``FlopCounterMode`` (cross-check) runs on the ``meta`` device, costs no
compute and counts **two per MAC**. Both leave pooling, crop, concatenation and activations at zero.
fvcore also counts interpolation and normalisation (in its own per-element units); ``FlopCounterMode``
does not, so those ops are reported apart (``other_ops``) and left out of the comparison. Any other
disagreement is reported in ``Crosscheck``, never hidden. Counts are per image (batch 1): every op
counted here is linear in the batch.
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fvcore.nn import FlopCountAnalysis, flop_count_table
from fvcore.nn.jit_handles import elementwise_flop_counter
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from unet_bench.models.unet import UNet

# fvcore operator names (after its handles) that are multiply-accumulates of a weight: MACs proper.
MAC_OPS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum")
# fvcore ops that FlopCounterMode does not count: left out of the comparison, reported apart.
FVCORE_ONLY_OPS = (
    "batch_norm", "group_norm", "layer_norm", "instance_norm", "upsample_nearest2d", "upsample_bilinear2d",
    "adaptive_avg_pool2d", "grid_sampler", "upsample_nearest3d", "upsample_trilinear3d", "adaptive_avg_pool3d",
)

MACS_SCOPE = (
    "convolutions and transposed convolutions (incl. the 1x1 head and 1x1 up-sampling convs), forward, "
    "per image; fvcore, 1 MAC = 2 FLOPs; not pooling, crop, concat, activations, dropout, "
    "interpolation or norms (those are other_flops)"
)
# fvcore has rules for 2-D interpolation only; these are their 3-D twins (a trilinear value blends 8).
HANDLES_3D = {
    "aten::upsample_nearest3d": elementwise_flop_counter(0, 1),
    "aten::upsample_trilinear3d": elementwise_flop_counter(0, 8),
}
OTHER_SCOPE = (
    "fvcore's count of interpolation and normalisation ops (bilinear: 4 per output element, trilinear: 8, "
    "nearest: 1, "
    "batch norm: 1 per element in eval, group norm: 5, instance norm: 5); zero for the paper network"
)
TRAIN_SCOPE = (
    "forward + backward of convolutions (FlopCounterMode over one training step, per image; "
    "the first conv computes no input gradient); not the loss, activations, pooling or optimizer step"
)


@dataclass
class ParamCounts:
    total: int
    trainable: int
    per_stage: dict[str, int]  # stage name -> parameters, in network order; sums to total


@dataclass
class Crosscheck:
    """fvcore versus FlopCounterMode on the ops both count."""

    fvcore_flops: int  # 2 x fvcore's count over the ops FlopCounterMode also counts
    flop_counter_flops: int
    fvcore_only: dict[str, int]  # ops only fvcore counts (fvcore units), left out of the comparison

    @property
    def agree(self) -> bool:
        return self.fvcore_flops == self.flop_counter_flops

    def describe(self) -> str:
        if self.agree:
            text = f"fvcore and torch FlopCounterMode agree exactly ({self.flop_counter_flops:,} FLOPs)"
        else:
            text = (
                f"fvcore and torch FlopCounterMode DISAGREE: {self.fvcore_flops:,} vs "
                f"{self.flop_counter_flops:,} FLOPs on the ops both count"
            )
        if self.fvcore_only:
            only = ", ".join(f"{op} {n:,}" for op, n in self.fvcore_only.items())
            text += f"; only fvcore counts {only}"
        return text

    def to_dict(self) -> dict:
        return {
            "fvcore_flops": self.fvcore_flops, "flop_counter_flops": self.flop_counter_flops,
            "fvcore_only": self.fvcore_only, "agree": self.agree,
        }


@dataclass
class Counts:
    """Everything counted for one network at one input shape, per image."""

    input_shape: tuple[int, ...]  # (1, C, H, W), or (1, C, D, H, W) for a 3-D network
    output_shape: tuple[int, ...]
    params: ParamCounts
    macs: int  # MAC ops (convs, ...), fvcore
    other_ops: dict[str, int]  # fvcore's non-MAC ops (interpolation, norms), fvcore units
    macs_per_stage: dict[str, int]
    train_flops: int  # forward + backward, FlopCounterMode
    train_flops_by_op: dict[str, int]
    crosscheck: Crosscheck
    scope: str = MACS_SCOPE
    analysis: FlopCountAnalysis | None = field(default=None, repr=False)  # for `layer_table`

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def other_flops(self) -> int:
        return sum(self.other_ops.values())

    @property
    def output_pixels(self) -> int:
        """Pixels (voxels, in 3-D) of one output map: the product of its spatial sides."""
        return math.prod(self.output_shape[2:])

    @property
    def macs_per_output_pixel(self) -> float:
        return self.macs / self.output_pixels


# --- stages -------------------------------------------------------------------------------------------


def stage_prefixes(model: nn.Module) -> dict[str, str]:
    """Module-name prefix -> stage name, in network order.

    For a `UNet`: ``stem`` is encoder level 0, ``downs.i`` encoder level i+1 except the last, which is the
    bottleneck; ``ups.i`` is the decoder level at the resolution of encoder level depth-1-i (so encoderN
    and decoderN share a resolution); then the head. Any other module: its top-level children.
    """
    if isinstance(model, UNet):
        depth = model.cfg.depth
        stages = {"stem": "encoder0"}
        stages.update({f"downs.{i}": f"encoder{i + 1}" for i in range(depth - 1)})
        stages[f"downs.{depth - 1}"] = "bottleneck"
        stages["dropout"] = "bottleneck"
        stages.update({f"ups.{i}": f"decoder{depth - 1 - i}" for i in range(depth)})
        stages["head"] = "head"
        return stages
    return {name: name for name, _ in model.named_children()}


def _stage_of(name: str, prefixes: dict[str, str]) -> str:
    for prefix, stage in prefixes.items():
        if name == prefix or name.startswith(prefix + "."):
            return stage
    return "other"


def _by_stage(values: dict[str, int], prefixes: dict[str, str]) -> dict[str, int]:
    stages = dict.fromkeys(prefixes.values(), 0)
    for name, value in values.items():
        stage = _stage_of(name, prefixes)
        stages[stage] = stages.get(stage, 0) + value
    return stages


def param_counts(model: nn.Module) -> ParamCounts:
    """Total, trainable and per-stage parameter counts (works on a ``meta`` model)."""
    named = dict(model.named_parameters())
    per_stage = _by_stage({name: p.numel() for name, p in named.items()}, stage_prefixes(model))
    return ParamCounts(
        total=sum(p.numel() for p in named.values()),
        trainable=sum(p.numel() for p in named.values() if p.requires_grad),
        per_stage=per_stage,
    )


# --- fvcore (primary) ----------------------------------------------------------------------------------


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Count the inference forward (dropout off, norms on running stats), then restore the mode."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def fvcore_analysis(model: nn.Module, x: torch.Tensor) -> FlopCountAnalysis:
    """fvcore's analysis of the inference forward on ``x`` (a real tensor: fvcore traces with jit)."""
    with eval_mode(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about shape checks turned into constants
        analysis = FlopCountAnalysis(model, x).set_op_handle(**HANDLES_3D)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analysis.total()  # run the trace now, inside eval/no_grad
    return analysis


def layer_table(analysis: FlopCountAnalysis, max_depth: int = 3) -> str:
    """fvcore's per-layer table: parameters and MACs (fvcore's "flops") for each module."""
    return flop_count_table(analysis, max_depth=max_depth)


# --- FlopCounterMode (cross-check, train step) -----------------------------------------------------------


def meta_copy(model: nn.Module) -> nn.Module:
    """The same network on the ``meta`` device: shapes only, so counting costs no compute or memory."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return copy.deepcopy(model).to("meta")


def flop_counter_counts(model: nn.Module, input_shape: tuple[int, ...], train: bool) -> dict[str, int]:
    """FlopCounterMode's FLOPs by aten op for a forward (eval) or a training step (forward + loss + backward).

    ``model`` should be on the ``meta`` device (see `meta_copy`).
    """
    device = next(model.parameters()).device
    x = torch.zeros(input_shape, device=device)
    counter = FlopCounterMode(display=False)
    if train:
        model.train()
        with counter:
            out = model(x)
            target = torch.zeros((out.shape[0], *out.shape[2:]), dtype=torch.long, device=device)
            F.cross_entropy(out, target).backward()
    else:
        with eval_mode(model), torch.no_grad(), counter:
            model(x)
    return {str(op).removeprefix("aten."): int(n) for op, n in counter.get_flop_counts()["Global"].items()}


# --- everything ---------------------------------------------------------------------------------------


def count(model: nn.Module, input_shape: tuple[int, ...], device: str | torch.device = "cpu") -> Counts:
    """Count parameters, forward MACs (fvcore), training-step FLOPs and the cross-check, per image.

    ``input_shape`` is (1, C, H, W), or (1, C, D, H, W). fvcore runs one real forward on ``device`` (no grad); the
    FlopCounterMode counts run on a ``meta`` copy.
    """
    if input_shape[0] != 1:
        raise ValueError(f"count per image: input_shape must have batch 1, got {input_shape}")
    meta = meta_copy(model)
    forward = flop_counter_counts(meta, input_shape, train=False)  # first: refuses a bad size at no cost
    train = flop_counter_counts(meta, input_shape, train=True)
    with torch.no_grad(), eval_mode(meta):
        output_shape = tuple(meta(torch.zeros(input_shape, device="meta")).shape)
    x = torch.zeros(input_shape, device=device, dtype=next(model.parameters()).dtype)
    analysis = fvcore_analysis(model, x)
    by_op = {op: int(n) for op, n in analysis.by_operator().items()}
    macs = sum(n for op, n in by_op.items() if op in MAC_OPS)
    other = {op: n for op, n in by_op.items() if op not in MAC_OPS}
    prefixes = stage_prefixes(model)
    modules = {name: int(n) for name, n in analysis.by_module().items() if name in prefixes}
    comparable = sum(n for op, n in by_op.items() if op not in FVCORE_ONLY_OPS)
    crosscheck = Crosscheck(
        fvcore_flops=2 * comparable,
        flop_counter_flops=sum(forward.values()),
        fvcore_only={op: n for op, n in by_op.items() if op in FVCORE_ONLY_OPS},
    )
    return Counts(
        input_shape=tuple(input_shape),
        output_shape=output_shape,
        params=param_counts(model),
        macs=macs,
        other_ops=other,
        macs_per_stage=_by_stage(modules, prefixes),
        train_flops=sum(train.values()),
        train_flops_by_op=train,
        crosscheck=crosscheck,
        analysis=analysis,
    )
