"""Which layer and which kind of op each piece of a step belongs to, and the FLOPs and bytes of each.

A *layer* is the innermost module an op runs in (``ups.0.up``); ops a module runs itself, outside its
children (the crop and concatenation of a decoder level), belong to that module; ops outside the network
(the loss) to ``(step)``, the optimizer to ``(optimizer)``. Backward ops belong to the layer whose forward
op made their autograd node. The *kind* is the module's type for a leaf module, else the op's name.

`LayerScopes` marks layers for torch's profiler (a ``record_function`` scope per module call) and tags
autograd nodes with their layer; `count_layers` runs one step on a ``meta`` copy under torch's
``FlopCounterMode`` (the counter `unet_bench.measure.counts` uses, so its totals are the record's
``flops`` / ``train_flops``) and adds, per (layer, kind), the compulsory bytes: each tensor an op reads
(inputs, weights apart) or writes (outputs that are not views), once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from unet_bench.kinds import NETWORK, OPTIMIZER, STEP
from unet_bench.measure.counts import meta_copy
from unet_bench.measure.steps import LEARNING_RATE, MOMENTUM

SCOPE_PREFIX = "layer::"
MODULE_KINDS: tuple[tuple[type, str], ...] = (
    (nn.modules.conv._ConvTransposeNd, "transposed conv"), (nn.modules.conv._ConvNd, "conv"),
    (nn.modules.pooling._MaxPoolNd, "pooling"), (nn.modules.pooling._AvgPoolNd, "pooling"),
    (nn.Upsample, "interpolation"), (nn.PixelShuffle, "interpolation"),
    (nn.modules.batchnorm._NormBase, "norm"), (nn.GroupNorm, "norm"), (nn.LayerNorm, "norm"),
    (nn.ReLU, "activation"), (nn.LeakyReLU, "activation"), (nn.GELU, "activation"),
)
# Op or autograd-node name fragments (lower case) -> kind, first match wins; for ops outside leaf modules.
OP_KINDS: tuple[tuple[str, str], ...] = (
    ("conv_transpose", "transposed conv"), ("conv", "conv"), ("pool", "pooling"), ("upsample", "interpolation"),
    ("pixel_shuffle", "interpolation"), ("norm", "norm"), ("relu", "activation"), ("gelu", "activation"),
    ("threshold", "activation"), ("cat", "concat or add"), ("add", "concat or add"), ("slice", "crop"),
    ("narrow", "crop"), ("cross_entropy", "loss"), ("log_softmax", "loss"), ("logsoftmax", "loss"),
    ("nll_loss", "loss"), ("nllloss", "loss"), ("optimizer", "optimizer"),
)
FREE_OPS = ("empty", "empty_like", "empty_strided", "detach", "_to_copy_meta")  # allocate or alias: no traffic


def module_kind(module: nn.Module) -> str | None:
    """The kind of a leaf module by its type (None: not a leaf, or a type without a kind)."""
    if next(module.children(), None) is not None:
        return None
    return next((kind for cls, kind in MODULE_KINDS if isinstance(module, cls)), "other")


def op_kind(name: str) -> str:
    """The kind of an op (``aten::cat``, ``aten.cat.default``) or autograd node (``CatBackward0``) by name."""
    lower = name.lower()
    return next((kind for fragment, kind in OP_KINDS if fragment in lower), "other")


def layer_kind(layer: str, name: str, kinds: dict[str, str | None]) -> str:
    """The kind of an op named ``name`` in ``layer``: the layer's module type, else the op's name."""
    return kinds.get(layer) or op_kind(name)


def leaf_kinds(model: nn.Module) -> dict[str, str | None]:
    """Layer name -> kind for every module of ``model`` (None for modules with children)."""
    kinds: dict[str, str | None] = {name or NETWORK: module_kind(module) for name, module in model.named_modules()}
    return {**kinds, STEP: None, OPTIMIZER: "optimizer"}


class LayerScopes:
    """While entered: each module call of ``model`` is a profiler scope ``layer::NAME``, and each autograd
    node its forward creates is tagged ``metadata["layer"] = NAME`` (the innermost module wins)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.handles: list = []
        self.open: dict[int, list] = defaultdict(list)

    def __enter__(self) -> LayerScopes:
        for name, module in self.model.named_modules():
            label = name or NETWORK
            self.handles.append(module.register_forward_pre_hook(self._pre(label)))
            self.handles.append(module.register_forward_hook(self._post(label)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _pre(self, label: str):
        def hook(module: nn.Module, inputs: object) -> None:
            scope = torch.autograd.profiler.record_function(SCOPE_PREFIX + label)
            scope.__enter__()
            self.open[id(module)].append(scope)
        return hook

    def _post(self, label: str):
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            self.open[id(module)].pop().__exit__(None, None, None)
            tag_nodes(output, label)
        return hook


def tag_nodes(output: object, label: str) -> None:
    """Tag the untagged autograd nodes behind ``output`` (those this module call created) with ``label``."""
    tensors = output if isinstance(output, (tuple, list)) else [output]
    stack = [t.grad_fn for t in tensors if isinstance(t, torch.Tensor) and t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or "layer" in node.metadata or node.name() == "torch::autograd::AccumulateGrad":
            continue
        node.metadata["layer"] = label
        stack.extend(next_node for next_node, _ in node.next_functions)


@dataclass
class LayerCount:
    """What one (layer, kind) does in one step, per batch: FLOPs and compulsory bytes."""

    flops: int = 0  # FlopCounterMode's FLOPs (convolutions and transposed convolutions, forward + backward)
    other_flops: int = 0  # fvcore's count of interpolation and norms, forward (see counts.OTHER_SCOPE)
    input_bytes: int = 0  # activations (and gradients) read
    weight_bytes: int = 0  # parameters read
    output_bytes: int = 0  # tensors written (not views)

    @property
    def bytes(self) -> int:
        return self.input_bytes + self.weight_bytes + self.output_bytes


@dataclass
class LayerCounts:
    """`LayerCount` per (layer, kind), and the network's layer kinds."""

    rows: dict[tuple[str, str], LayerCount] = field(default_factory=dict)
    kinds: dict[str, str | None] = field(default_factory=dict)

    def at(self, layer: str, kind: str) -> LayerCount:
        return self.rows.setdefault((layer, kind), LayerCount())


def _tensors(value: object) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class _ByteCounter(TorchDispatchMode):
    """Per op: FlopCounterMode's FLOPs (read as the change of its total) and the bytes the op moves."""

    def __init__(self, counts: LayerCounts, flops: FlopCounterMode, params: set[int], where: list[str]) -> None:
        super().__init__()
        self.counts, self.flops, self.params, self.where = counts, flops, params, where
        self.forward: list[str] = []  # stack of open module calls (forward)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        before = self.flops.get_total_flops()
        out = func(*args, **(kwargs or {}))
        name = func.__name__.split(".")[0]
        node = torch._C._current_autograd_node()
        if node is not None:  # backward: the layer its forward op tagged
            layer = node.metadata.get("layer", STEP)
            name = node.name()
        else:
            layer = self.forward[-1] if self.forward else self.where[-1]
        row = self.counts.at(layer, layer_kind(layer, name, self.counts.kinds))
        row.flops += self.flops.get_total_flops() - before
        if func.is_view or name in FREE_OPS:
            return out
        for t in _tensors((args, kwargs)):
            if id(t) in self.params:
                row.weight_bytes += _nbytes(t)
            else:
                row.input_bytes += _nbytes(t)
        row.output_bytes += sum(_nbytes(t) for t in _tensors(out))
        return out


def count_layers(model: nn.Module, input_shape: tuple[int, ...], train: bool) -> LayerCounts:
    """FLOPs and bytes per (layer, kind) of one inference forward or training step (forward, cross-entropy,
    backward, SGD with momentum), on a ``meta`` copy of ``model`` (shapes only: no compute)."""
    meta = meta_copy(model)
    counts = LayerCounts(kinds=leaf_kinds(meta))
    params = {id(p) for p in meta.parameters()}
    where = [STEP]
    flops = FlopCounterMode(display=False)
    counter = _ByteCounter(counts, flops, params, where)
    hooks = []
    for name, module in meta.named_modules():
        label = name or NETWORK
        hooks.append(module.register_forward_pre_hook(lambda m, i, label=label: counter.forward.append(label)))
        hooks.append(module.register_forward_hook(lambda m, i, o, label=label: _leave(counter.forward, o, label)))
    x = torch.zeros(input_shape, device="meta")
    try:
        if not train:
            meta.eval()
            with torch.no_grad(), flops, counter:
                meta(x)
            return counts
        meta.train()
        optimizer = torch.optim.SGD(meta.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
        for _ in range(2):  # the second step has the momentum buffers every later step has
            counts.rows.clear()
            optimizer.zero_grad(set_to_none=True)
            with flops, counter:
                out = meta(x)
                target = torch.zeros((out.shape[0], *out.shape[2:]), dtype=torch.long, device="meta")
                F.cross_entropy(out, target).backward()
                where.append(OPTIMIZER)
                optimizer.step()
                where.pop()
        return counts
    finally:
        for hook in hooks:
            hook.remove()


def _leave(stack: list[str], output: object, label: str) -> None:
    stack.pop()
    tag_nodes(output, label)

