"""Deployment runtimes: an exported ONNX file loaded into ONNX Runtime or OpenVINO, ready to call.

Each runtime is set up the way its documentation tells a deployer to set it up for low latency on one
request, and every option that changes speed is recorded (`Session.options`), so two records never
differ silently:

* **onnxruntime**: one ``InferenceSession`` with every graph optimisation on (``ORT_ENABLE_ALL``: constant
  folding, Conv+ReLU and other fusions, layout transforms), sequential execution, ``intra_op_num_threads``
  = the case's threads and one inter-op thread. CPU: the CPU execution provider; CUDA: TensorRT's, else
  CUDA's, where the installed package has them (the CPU wheel has neither).
* **openvino**: ``Core.compile_model`` on CPU with the LATENCY performance hint, ``INFERENCE_NUM_THREADS``
  = the case's threads, and fp32 inference precision for an fp32 case (OpenVINO would otherwise run fp32
  graphs in bf16 on CPUs that have it, which is another precision, not another runtime).

A call runs one forward on a NumPy input and returns the output, allocated by the runtime, as a user's
serving loop does.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unet_bench.errors import BenchError, UnsupportedError, first_line

EXTRA = 'pip install "unet-bench[runtimes]"'
MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


@dataclass
class Session:
    """A loaded model: ``run(x)`` computes one forward; what it runs on and with which options."""

    run: Callable[[np.ndarray], np.ndarray]
    version: str
    provider: str
    options: dict[str, Any] = field(default_factory=dict)


def require(runtime: str) -> Any:
    """The runtime's Python module, or one line naming the extra that installs it."""
    try:
        return importlib.import_module(MODULES[runtime])
    except ImportError as error:
        raise BenchError(f"runtime {runtime!r} is not installed ({first_line(error)}); install the extra: "
                         f"{EXTRA}") from error


def load(runtime: str, path: Path, device: str, threads: int, precision: str) -> Session:
    """``path`` loaded into ``runtime`` on ``device``; `UnsupportedError` if the runtime refuses it."""
    module = require(runtime)
    try:
        return LOADERS[runtime](module, path, device, threads, precision)
    except (BenchError, ImportError):
        raise
    except Exception as error:  # noqa: BLE001 - a graph the runtime cannot load is the result "unsupported"
        raise UnsupportedError(f"{runtime} cannot load the exported network: {first_line(error)}") from error


def _onnxruntime(ort: Any, path: Path, device: str, threads: int, precision: str) -> Session:
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        offered = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider")
                   if p in ort.get_available_providers()]
        if not offered:
            raise UnsupportedError(f"onnxruntime {ort.__version__} has no CUDA or TensorRT execution provider "
                                   f"here (providers: {', '.join(ort.get_available_providers())}); install "
                                   "onnxruntime-gpu for device cuda")
        providers = offered[:1]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings would reach the user's terminal
    session = ort.InferenceSession(str(path), options, providers=providers)
    name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    return Session(run, ort.__version__, session.get_providers()[0], {
        "graph_optimization_level": "ORT_ENABLE_ALL", "execution_mode": "ORT_SEQUENTIAL",
        "intra_op_num_threads": threads, "inter_op_num_threads": 1})


def _openvino(ov: Any, path: Path, device: str, threads: int, precision: str) -> Session:
    if device != "cpu":
        raise UnsupportedError("openvino runs on device cpu here; use runtime onnxruntime for cuda")
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    if precision == "fp32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()

    def run(x: np.ndarray) -> np.ndarray:
        request.infer({0: x})
        return request.get_output_tensor(0).data  # a view of the request's buffer, reused by the next call

    return Session(run, ov.__version__, "CPU", {key: str(value) for key, value in config.items()})


LOADERS: dict[str, Callable[[Any, Path, str, int, str], Session]] = {"onnxruntime": _onnxruntime,
                                                                     "openvino": _openvino}
