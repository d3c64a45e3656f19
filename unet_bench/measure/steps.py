"""What one iteration of a case runs: an inference forward or a full training step, with the case's options.

Timing and memory measure the same callable, so a latency and a peak always describe the same work.
Options: dtype (bf16 / fp16 via autocast, fp16 training with a GradScaler as real training does),
channels_last (model and input), ``torch.compile`` (with `COMPILE_OPTIONS`), and on CUDA the TF32 and
cudnn.benchmark flags.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch._inductor.config as inductor_config
import torch.nn.functional as F
from torch import nn

from unet_bench.measure.counts import meta_copy
from unet_bench.measure.network import spatial_dims_of
from unet_bench.models.geometry import input_shape
from unet_bench.record import Case

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# Inductor options per mode. Inference freezes the weights into the graph (constant folding, prepacked
# oneDNN weights, fused conv+ReLU): torch's recommended CPU inference setting; training cannot.
COMPILE_OPTIONS: dict[str, dict[str, bool]] = {"infer": {"freezing": True}, "train": {}}
# The paper's optimizer (SGD, momentum 0.99); its state is one buffer per parameter.
LEARNING_RATE = 0.01
MOMENTUM = 0.99


@dataclass
class Step:
    """One iteration of a case, ready to call, and what it runs on."""

    run: Callable[[], object]
    model: nn.Module  # the eager model (the compiled wrapper, if any, shares its parameters)
    x: torch.Tensor
    optimizer: torch.optim.Optimizer | None  # None for inference
    output_size: tuple[int, ...]  # one size per spatial axis
    target: torch.Tensor | None = None  # training labels

    def live_tensors(self) -> list[torch.Tensor]:
        """Tensors a step keeps between calls: parameters, gradients, optimizer state, input, labels."""
        params = list(self.model.parameters())
        state = [v for s in (self.optimizer.state.values() if self.optimizer else ()) for v in s.values()]
        return [
            *params, *(p.grad for p in params if p.grad is not None),
            *(v for v in state if isinstance(v, torch.Tensor)), self.x,
            *([self.target] if self.target is not None else []),
        ]


@contextlib.contextmanager
def backend_flags(case: Case) -> Iterator[None]:
    """Set the CUDA TF32 and cudnn.benchmark flags of ``case`` for the block, then restore them."""
    if case.device != "cuda":
        yield
        return
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark)
    cudnn.allow_tf32 = matmul.allow_tf32 = case.tf32
    cudnn.benchmark = case.cudnn_benchmark
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark = saved


def autocast(case: Case) -> contextlib.AbstractContextManager:
    """Autocast to the case's low-precision dtype, or nothing for fp32."""
    if case.dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=case.device, dtype=AUTOCAST_DTYPES[case.dtype])


def compile_model(model: nn.Module, mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile(model)`` that compiles (on its first call) with the inductor options of ``mode``.

    The options are patched around each call: inductor reads them when it compiles, which is lazily at the
    first call (``torch.compile(options=...)`` does not reach the freezing pass in torch 2.13).
    """
    compiled = torch.compile(model)

    def call(x: torch.Tensor) -> torch.Tensor:
        with inductor_config.patch(COMPILE_OPTIONS[mode]):
            return compiled(x)

    return call


def memory_format(dims: int) -> torch.memory_format:
    """The channels-last layout of a ``dims``-D network's tensors (torch names the 3-D one apart)."""
    return torch.channels_last_3d if dims == 3 else torch.channels_last


def make_input(case: Case, in_channels: int, dims: int = 2) -> torch.Tensor:
    x = torch.randn(input_shape(case.size, in_channels, dims, case.batch), device=case.device)
    return x.contiguous(memory_format=memory_format(dims)) if case.channels_last else x


def build_step(model: nn.Module, case: Case, in_channels: int, compiled: bool | None = None) -> Step:
    """The callable one iteration of ``case`` runs (``compiled`` overrides ``case.compile``).

    ``infer``: eval mode, ``torch.inference_mode``, forward only. ``train``: train mode, forward,
    cross-entropy loss, backward, SGD step (gradients set to None before each step, torch's default).
    """
    model = model.to(case.device)
    dims = spatial_dims_of(model)
    if case.channels_last:
        model = model.to(memory_format=memory_format(dims))
    x = make_input(case, in_channels, dims)
    with torch.no_grad():  # output shape and classes from a meta copy: no compute
        probe = meta_copy(model).eval()(torch.zeros((1, *x.shape[1:]), device="meta"))
    output_size = tuple(probe.shape[2:])
    net = compile_model(model, case.mode) if (case.compile if compiled is None else compiled) else model
    if case.mode == "infer":
        model.eval()

        def run() -> torch.Tensor:
            with torch.inference_mode(), autocast(case):
                return net(x)

        return Step(run, model, x, None, output_size)

    model.train()
    target = torch.randint(0, probe.shape[1], (case.batch, *output_size), device=case.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    scaler = torch.amp.GradScaler(case.device) if case.dtype == "fp16" else None

    def run() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with autocast(case):
            loss = F.cross_entropy(net(x).float(), target)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        return loss

    return Step(run, model, x, optimizer, output_size, target)
