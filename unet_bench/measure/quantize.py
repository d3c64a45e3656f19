"""int8: the exported network statically quantized by ONNX Runtime, calibrated on training images.

Static quantization (``onnxruntime.quantization.quantize_static``) fixes every activation's scale ahead
of time from calibration data, so the deployed graph runs int8 kernels without measuring ranges per call
(dynamic quantization covers only MatMul-like ops and leaves a UNet's convolutions in fp32). QDQ format
(QuantizeLinear/DequantizeLinear pairs around each op) is the one both ONNX Runtime and OpenVINO read:
OpenVINO runs the same file as int8. Weights are quantized per channel (signed int8), activations per
tensor (unsigned int8), ranges by MinMax over the calibration images.

Calibration images come from the **training** split of the seeded synthetic cell task
(`unet_bench.quality.synthetic.synthetic_task`), rendered at the case's input size: never the validation
images a quality comparison scores, so the calibration cannot tune itself to them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from unet_bench.errors import BenchError, UnsupportedError, first_line
from unet_bench.measure.onnx_export import quiet
from unet_bench.quality.synthetic import synthetic_task

CALIBRATION_IMAGES = 8
CALIBRATION_SEED = 0  # the synthetic task's seed; its training split is calibrated on


def calibration_batches(shape: tuple[int, ...], images: int = CALIBRATION_IMAGES,
                        seed: int = CALIBRATION_SEED) -> list[np.ndarray]:
    """Inputs of ``shape`` (batch, channels, height, width) made of the synthetic task's training images,
    each channel the same image (the task has one)."""
    if len(shape) != 4 or shape[2] != shape[3]:
        raise BenchError(f"int8 calibration takes square 2-D inputs; this network's input is {shape}")
    batch, channels, side = shape[0], shape[1], shape[2]
    train = synthetic_task(seed, n_train=images * batch, n_val=1, size=side).train.images
    stacked = np.stack(train).astype(np.float32)[:, None].repeat(channels, axis=1)
    return [stacked[i * batch:(i + 1) * batch] for i in range(images)]


def quantization_method(images: int) -> dict[str, Any]:
    """What `quantize_int8` does, for the record."""
    return {"method": "onnxruntime quantize_static, MinMax calibration", "format": "QDQ",
            "weights": "int8 per channel", "activations": "uint8 per tensor", "calibration_images": images,
            "calibration_source": f"synthetic cell task seed {CALIBRATION_SEED}, training split"}


def quantize_int8(fp32_path: Path, out_path: Path, batches: list[np.ndarray]) -> None:
    """Write the int8 QDQ model of ``fp32_path`` to ``out_path`` (whole or not at all)."""
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as error:
        raise BenchError(f"int8 needs onnxruntime's quantization tools ({first_line(error)}); install the "
                         'extra: pip install "unet-bench[runtimes]"') from error

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.inputs: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.inputs, None)
            return None if x is None else {"image": x}

    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".quantize-") as work:
        prepared, quantized = Path(work) / "prepared.onnx", Path(work) / "int8.onnx"
        try:
            with quiet():
                quant_pre_process(str(fp32_path), str(prepared))
                quantize_static(str(prepared), str(quantized), Reader(), quant_format=QuantFormat.QDQ,
                                per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                                calibrate_method=CalibrationMethod.MinMax)
        except Exception as error:  # noqa: BLE001 - a graph the quantizer cannot take is "unsupported" in int8
            raise UnsupportedError(f"int8 static quantization failed: {first_line(error)}") from error
        os.replace(quantized, out_path)
