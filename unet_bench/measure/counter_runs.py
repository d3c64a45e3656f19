"""Every FLOP counter that is installed, run beside our exact count per op type.

The counters disagree in three ways: MACs versus FLOPs, where a transposed convolution is counted (on its
input grid, where each input value meets the kernel once, or on its output grid, as if it were a
convolution: x stride² too many), and which ops they count at all. So each counter's figure is broken down
by op type here, to be set against ours and each cause named in words by the analysis
(`unet_bench.analysis.causes`, `unet_bench.analysis.reconciliation`); what it reads is the plain data of
`unet_bench.counter_figures`.

Our count (`reference`) walks the forward on the ``meta`` device at the level of torch's operators and
counts FLOPs by the textbook formula, per image:

- convolution: 2 per multiply-accumulate (the project's MACs x 2; the bias add is element-wise);
- transposed convolution: 2 per multiply-accumulate, on the input grid (each input value x C_out/g x k²);
- interpolation: bilinear 7 per output value (4 multiplies, 3 adds), nearest 0 (a copy);
- normalisation: 2 per value with running statistics (scale and shift), 8 when it computes them (mean 1,
  variance 3, normalise 2, affine 2) as instance and group norm do;
- pooling: max k²−1 comparisons per output value, average k²;
- element-wise: 1 per output value (activations, skip additions, bias adds);
- other: matrix products 2 per multiply-accumulate; copies, crops and concatenation 0.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import io
import math
import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from unet_bench.counter_figures import (
    CATEGORIES,
    CONV,
    ELEMENTWISE,
    INTERP,
    NORM,
    NOT_INSTALLED,
    OTHER,
    POOL,
    TRANSPOSED,
    Counter,
    Reconciliation,
    Reference,
)
from unet_bench.measure.counts import eval_mode, fvcore_analysis, meta_copy
from unet_bench.measure.network import network_input_shape
from unet_bench.models.external import _torchvision_without_kernels, unchanged_environment
from unet_bench.models.registry import create_model

REPORT_NETWORKS = ("paper", "bilinear", "additive")
REPORT_SIZE = 572  # the paper's tile

_ARITHMETIC_OPS = {"add", "sub", "mul", "div", "rsub", "neg", "where"}
_ACTIVATION_OPS = {"relu", "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "elu", "hardtanh", "threshold", "clamp",
                   "clamp_min", "exp", "prelu"}
_MATMUL_OPS = {"mm", "addmm", "bmm", "baddbmm"}


class _Tally(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.flops = dict.fromkeys(CATEGORIES, 0)
        self.values = dict.fromkeys(CATEGORIES, 0)
        self.bias_adds = {CONV: 0, TRANSPOSED: 0}
        self.activations = self.arithmetic = 0
        self.output_grid = 0

    def add(self, category: str, flops: int, values: int) -> None:
        self.flops[category] += int(flops)
        self.values[category] += int(values)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__.strip("_").removesuffix("_")
        first = out[0] if isinstance(out, (tuple, list)) else out
        n = first.numel() if isinstance(first, torch.Tensor) else 0
        if name == "convolution":
            x, w, bias, transposed, groups = args[0], args[1], args[2], args[6], args[8]
            k = math.prod(w.shape[2:])
            if transposed:  # weight (C_in, C_out/g, k...): each input value meets C_out/g x k weights
                self.add(TRANSPOSED, 2 * x.numel() * w.shape[1] * k, n)
                self.output_grid += 2 * n * (w.shape[0] // groups) * k
            else:
                self.add(CONV, 2 * n * w.shape[1] * k, n)
            if bias is not None:
                self.bias_adds[TRANSPOSED if transposed else CONV] += n
                self.add(ELEMENTWISE, n, n)
        elif name.startswith("upsample"):
            self.add(INTERP, 7 * n if "linear" in name else 0, n)
        elif "batch_norm" in name or name in ("native_group_norm", "native_layer_norm"):
            running = "no_training" in name or (name == "native_batch_norm" and not args[5])
            self.add(NORM, (2 if running else 8) * n, n)
        elif "pool" in name:
            kernel = args[1] if len(args) > 1 and not name.startswith("adaptive") else None
            k = math.prod(kernel) if isinstance(kernel, (list, tuple)) else 1
            per = k - 1 if "max" in name else k
            self.add(POOL, per * n if kernel else args[0].numel(), n)
        elif name in _ARITHMETIC_OPS:
            self.arithmetic += n
            self.add(ELEMENTWISE, n, n)
        elif name in _ACTIVATION_OPS:
            self.activations += n
            self.add(ELEMENTWISE, n, n)
        elif name in _MATMUL_OPS:
            a, b = args[-2], args[-1]
            self.add(OTHER, 2 * math.prod(a.shape) * b.shape[-1], n)
        return out


def reference(model: nn.Module, input_shape: tuple[int, ...]) -> Reference:
    """Our exact FLOPs per op type for one inference forward (on a meta copy: no compute)."""
    meta = meta_copy(model)
    tally = _Tally()
    with eval_mode(meta), torch.no_grad(), tally:
        meta(torch.zeros(input_shape, device="meta"))
    return Reference(tally.flops, tally.values, tally.bias_adds, tally.activations, tally.arithmetic,
                     tally.output_grid)


def module_category(module: nn.Module) -> str:
    """The op type of a leaf layer, for counters that report per layer."""
    conv = nn.modules.conv
    if isinstance(module, conv._ConvTransposeNd):
        return TRANSPOSED
    if isinstance(module, conv._ConvNd):
        return CONV
    if isinstance(module, (nn.Upsample,)):
        return INTERP
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
        return NORM
    pooling = nn.modules.pooling
    if isinstance(module, (pooling._MaxPoolNd, pooling._AvgPoolNd, pooling._AdaptiveAvgPoolNd,
                           pooling._AdaptiveMaxPoolNd)):
        return POOL
    if isinstance(module, (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.ELU,
                           nn.ReLU6, nn.Hardtanh, nn.Dropout)):
        return ELEMENTWISE
    return OTHER


def by_layer(model: nn.Module, per_layer: dict[str, float], total: float) -> dict[str, int]:
    """Leaf layers' figures summed per op type; what no leaf layer holds (a functional op in a forward,
    such as a skip addition) goes to ``other``."""
    modules = dict(model.named_modules())
    out = dict.fromkeys(CATEGORIES, 0)
    for name, value in per_layer.items():
        module = modules.get(name)
        if module is not None and not list(module.children()):
            out[module_category(module)] += int(value)
    out[OTHER] += int(total) - sum(out.values())
    return out


# --- the counters ----------------------------------------------------------------------------------------
# Each other library is imported inside its runner: they are optional (the ``counters`` extra), and one that
# is missing is listed as not installed rather than stopping the others.


def _fvcore(model: nn.Module, x: torch.Tensor) -> Counter:
    analysis = fvcore_analysis(model, x)
    by_module = analysis.by_module_and_operator()
    modules = dict(model.named_modules())
    out = dict.fromkeys(CATEGORIES, 0)
    op_types = {"conv": CONV, "upsample_bilinear2d": INTERP, "upsample_nearest2d": INTERP,
                "batch_norm": NORM, "group_norm": NORM, "instance_norm": NORM, "layer_norm": NORM,
                "adaptive_avg_pool2d": POOL}
    for name, ops in by_module.items():
        module = modules.get(name)
        if module is None:
            continue
        children = [f"{name}.{c}" if name else c for c, _ in module.named_children()]
        for op, n in ops.items():
            direct = n - sum(by_module.get(c, {}).get(op, 0) for c in children)
            if direct:
                leaf = not children
                out[module_category(module) if leaf else op_types.get(op, OTHER)] += int(direct)
    return Counter("fvcore", "MACs", int(analysis.total()), out)


def _flop_counter_mode(model: nn.Module, x: torch.Tensor) -> Counter:
    meta = meta_copy(model)
    counter = FlopCounterMode(display=False)
    with eval_mode(meta), torch.no_grad(), counter:
        meta(torch.zeros(x.shape, device="meta"))
    counts = counter.get_flop_counts()
    root = type(meta).__name__
    per_layer = {name.removeprefix(root).removeprefix("."): sum(ops.values()) for name, ops in counts.items()
                 if name not in ("Global", root)}
    total = sum(counts["Global"].values())
    return Counter("torch FlopCounterMode", "FLOPs", int(total), by_layer(meta, per_layer, total))


def _ptflops(model: nn.Module, x: torch.Tensor) -> Counter:
    """ptflops' own pipeline (its `get_model_complexity_info`, step by step), reading each layer's count."""
    from ptflops import pytorch_engine as engine

    counted = engine.add_flops_counting_methods(model)
    counted.start_flops_count(ost=io.StringIO(), verbose=False, ignore_list=[])
    functional: list[float] = []
    tensor_ops: list[float] = []
    engine.patch_functional(functional)
    engine.patch_tensor_ops(tensor_ops)
    try:
        counted(x)
        per_layer = {name: m.__flops__ for name, m in model.named_modules() if hasattr(m, "__flops__")}
        total = counted.compute_average_flops_cost()[0] + sum(functional) + sum(tensor_ops)
    finally:
        counted.stop_flops_count()
        engine.unpatch_functional()
        engine.unpatch_tensor_ops()
    return Counter("ptflops", "MACs", int(total), by_layer(model, per_layer, total))


def _thop(model: nn.Module, x: torch.Tensor) -> Counter:
    import thop

    total, _, layers = thop.profile(model, inputs=(x,), verbose=False, ret_layer_info=True)

    def flatten(prefix: str, tree: dict) -> dict[str, float]:
        out = {}
        for name, (ops, _, children) in tree.items():
            full = f"{prefix}{name}"
            out[full] = ops
            out.update(flatten(full + ".", children))
        return out

    return Counter("thop", "MACs", int(total), by_layer(model, flatten("", layers), total))


def _torchinfo(model: nn.Module, x: torch.Tensor) -> Counter:
    import torchinfo

    summary = torchinfo.summary(model, input_data=x, verbose=0, device=x.device)
    names = {id(m): n for n, m in model.named_modules()}
    per_layer = {names[id(layer.module)]: layer.macs for layer in summary.summary_list
                 if layer.is_leaf_layer and id(layer.module) in names}
    return Counter("torchinfo", "MACs", int(summary.total_mult_adds),
                   by_layer(model, per_layer, summary.total_mult_adds))


def _calflops(model: nn.Module, x: torch.Tensor) -> Counter:
    """calflops' own pipeline (its `calculate_flops`, step by step), reading each layer's count."""
    from calflops.calculate_pipline import CalFlopsPipline

    pipeline = CalFlopsPipline(model=model, include_backPropagation=False, compute_bp_factor=2.0)
    pipeline.start_flops_calculate(ignore_list=None)
    try:
        model(x)
        per_layer = {name: m.__flops__ for name, m in model.named_modules()}
        total = pipeline.get_total_flops()
    finally:
        pipeline.end_flops_calculate()
    return Counter("calflops", "FLOPs", int(total), by_layer(model, per_layer, total))


# name, distribution (for "installed" and the version), how to run it
COUNTERS: tuple[tuple[str, str, Callable[[nn.Module, torch.Tensor], Counter]], ...] = (
    ("fvcore", "fvcore", _fvcore),
    ("torch FlopCounterMode", "torch", _flop_counter_mode),
    ("ptflops", "ptflops", _ptflops),
    ("thop", "thop", _thop),
    ("torchinfo", "torchinfo", _torchinfo),
    ("calflops", "calflops", _calflops),
)


def run_counters(model: nn.Module, input_shape: tuple[int, ...]) -> Reconciliation:
    """Our count and every installed counter on ``model`` at ``input_shape`` (batch 1), inference forward.

    A counter that is not installed (or cannot import: calflops needs transformers) is listed as such; one
    that fails on this network is listed with its one-line error; neither stops the others.
    """
    with unchanged_environment():
        _torchvision_without_kernels()  # ptflops, calflops and thop's imports reach torchvision
    result = Reconciliation(reference(model, input_shape), input_shape=tuple(input_shape))
    x = torch.zeros(input_shape)
    for name, package, run in COUNTERS:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            result.counters.append(Counter(name, "-", status=NOT_INSTALLED))
            continue
        try:
            with eval_mode(model), torch.no_grad(), warnings.catch_warnings(), unchanged_environment(), \
                    contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                counter = run(copy.deepcopy(model), x)  # some counters leave buffers or hooks behind
        except ImportError as error:
            counter = Counter(name, "-", status=f"{NOT_INSTALLED} ({error.name or error} missing)")
        except Exception as error:  # a third-party counter's failure on this network, kept as one line
            first = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
            counter = Counter(name, "-", status=f"failed: {first}")
        counter.version = version
        result.counters.append(counter)
    return result


def report_reconciliations(networks: tuple[str, ...] = REPORT_NETWORKS, size: int | tuple[int, ...] = REPORT_SIZE,
                           **overrides: object) -> list[tuple[str, Reconciliation]]:
    """The reconciliation of each network at ``size`` (config ``overrides`` on top), titled, for the report."""
    out = []
    for name in networks:
        model = create_model(name, **overrides)
        result = run_counters(model, network_input_shape(model, size))
        out.append((f"{name} at {result.sides_text}", result))
    return out
