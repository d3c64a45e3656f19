"""Constructed records of networks run on several runtimes: a suite's exported cases cannot be measured in
a unit test (no runtime is installed here), so the analysis tests write the records such a suite writes.

Each exported case is timed in its own processes against the same variant under torch eager (its
``Case.reference``), as a suite does; torch cases other than the baseline variant against ``paper``.
"""

from __future__ import annotations

import json
from pathlib import Path

from unet_bench.record import Case, Record

INPUT, OUTPUT = 572, 388  # a valid-convolution network's input and output sides
OP_CENSUS = {"Conv": 23, "ConvTranspose": 4, "Concat": 4, "Relu": 18, "MaxPool": 4, "Slice": 8}


def case(variant: str, runtime: str = "torch", repeat: int = 0, overrides: tuple = (),
         reference: Case | None = None, dtype: str = "fp32") -> Case:
    return Case(variant, overrides, mode="infer", input_size=INPUT, requested_size=INPUT, size_rule="input",
                runtime=runtime, repeat=repeat, threads=1, reference=reference, dtype=dtype)


def timed(variant: str, runtime: str, latencies_ms: list[float], ratios: list[float] | None = None,
          overrides: tuple = (), mismatch: bool = False, dtype: str = "fp32") -> list[Record]:
    """One record per repeat with these latencies; ``ratios``: the in-process paired ratios against the
    reference a suite gives the case (the torch twin for an exported case, ``paper`` for a torch one)."""
    out = []
    for repeat, latency in enumerate(latencies_ms):
        twin = case(variant, repeat=repeat, overrides=overrides)
        reference = twin if runtime != "torch" else case("paper", repeat=repeat) if ratios else None
        record = Record.for_case(case(variant, runtime, repeat, overrides, reference, dtype), suite="runtimes",
                                 output_size=OUTPUT, latency_ms_median=latency, latency_ms_p25=latency * 0.99,
                                 latency_ms_p75=latency * 1.01, latency_n=20, threads_used=1)
        if ratios:
            record.set(paired_reference=reference.variant, paired_ratio=ratios[repeat],
                       paired_reference_runtime="torch" if runtime != "torch" else None,
                       paired_ref_ms_median=latency / ratios[repeat])
        if runtime != "torch":
            record.set(runtime_version="1.20.0", exporter="torch.onnx.export (dynamo=False)", opset=17,
                       provider="CPUExecutionProvider", export_s=2.5 + repeat * 0.1, model_bytes=124_000_000,
                       op_census=OP_CENSUS, max_abs_error=0.3 if mismatch else 2e-6,
                       max_rel_error=0.25 if mismatch else 1e-6, error_tolerance=1e-4, output_mismatch=mismatch)
        out.append(record)
    return out


def unsupported(variant: str, runtime: str, message: str) -> Record:
    return Record.for_case(case(variant, runtime, reference=case(variant)), status="unsupported", message=message,
                           suite="runtimes")


def write(directory: Path, records: list[Record]) -> Path:
    """A results directory holding ``records``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.jsonl").write_text("".join(json.dumps(r.to_dict(), default=str) + "\n" for r in records))
    return directory


def two_runtimes() -> list[Record]:
    """paper and bilinear under torch and onnxruntime, 3 repeats each: onnxruntime runs paper about 20 %
    faster than torch in process; its bilinear output differs from torch's (and looks twice as fast)."""
    return [*timed("paper", "torch", [100.0, 104.0, 98.0]),
            *timed("bilinear", "torch", [90.0, 95.0, 88.0], ratios=[0.90, 0.91, 0.89]),
            *timed("paper", "onnxruntime", [81.0, 84.0, 78.0], ratios=[0.80, 0.81, 0.79]),
            *timed("bilinear", "onnxruntime", [46.0, 48.0, 44.0], ratios=[0.50, 0.51, 0.49], mismatch=True)]
