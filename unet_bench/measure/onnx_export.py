"""A network exported to ONNX: the file, how long the export took, and what the graph holds.

The exporter is torch's own, ``torch.onnx.export(dynamo=True)``: it traces the network with
``torch.export`` (the graph PyTorch itself maintains and optimises) and is the exporter torch recommends
and keeps; the TorchScript-based one is deprecated and warns on every call. The graph is exported at
the case's exact input shape (no dynamic axes: a deployed UNet serves one tile size, and a fixed shape
lets each runtime plan its memory and kernels once). The export prints progress and library warnings;
both are kept out of the user's output and the first line of a failure becomes the record's message.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from unet_bench.errors import UnsupportedError, first_line

OPSET = 18  # the dynamo exporter's own default opset in torch 2.13 (Resize, GroupNormalization, ...)
EXPORTER = f"torch.onnx.export(dynamo=True, opset_version={OPSET}, static shapes), torch {torch.__version__}"
# What a reader wants to see first in a UNet's graph; every other op type is counted under its own name.
CENSUS_FIRST = ("Conv", "ConvTranspose", "Resize", "Concat", "Add", "Relu", "MaxPool", "InstanceNormalization",
                "BatchNormalization", "GroupNormalization", "Sigmoid", "Mul", "Slice",
                "QuantizeLinear", "DequantizeLinear")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The exporter's and the quantizer's progress lines, warnings and log records kept from the user's
    terminal (their failures still raise, and become the record's message)."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(model: nn.Module, x: torch.Tensor, path: Path) -> float:
    """Export ``model`` (in eval mode) at ``x``'s shape to ``path`` (whole or not at all: cases that share
    a results folder may export the same file); the seconds it took. `UnsupportedError` if it cannot be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{os.getpid()}.{path.name}")
    model = model.eval()
    start = time.perf_counter()
    try:
        with quiet():
            torch.onnx.export(model, (x,), str(partial), dynamo=True, opset_version=OPSET, external_data=False,
                              input_names=["image"], output_names=["logits"])
    except Exception as error:  # noqa: BLE001 - any exporter failure is the result "unsupported"
        partial.unlink(missing_ok=True)
        raise UnsupportedError(f"ONNX export failed: {first_line(error)}") from error
    seconds = time.perf_counter() - start
    os.replace(partial, path)
    return seconds


def op_census(path: Path) -> dict[str, int]:
    """Nodes per op type of an ONNX graph (subgraphs included), the usual UNet ops first."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    counts: Counter[str] = Counter()
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            counts[node.op_type] += 1
            graphs.extend(attr.g for attr in node.attribute if attr.HasField("g"))
    first = {op: counts.pop(op) for op in CENSUS_FIRST if op in counts}
    return {**first, **dict(sorted(counts.items()))}
