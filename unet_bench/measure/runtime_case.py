"""An inference case on a deployment runtime: export, check against eager torch, time, memory.

1. **Export** the case's network (`onnx_export`) into the results folder's ``models/`` (a temporary
   folder for a single ``unet-bench time``); int8 quantizes it (`quantize`). The export is timed and its
   graph counted per op type. One network at one input shape is exported once per run: the other
   runtimes and repeats load the same file (their ``export_s`` is null; ``extra.export`` says so).
2. **Load** it in the runtime (`runtimes`). A network that does not export, quantize or load is the
   result ``unsupported`` with the library's message in one line (`UnsupportedError`).
3. **Check**: the runtime's output on a seeded input against eager torch's in fp32 on the same input; the
   largest absolute error, and relative to the largest output value. Beyond `TOLERANCE` for the case's
   precision the record says ``output_mismatch``: its speed is not the speed of the same function.
4. **Time** the runtime's forward by the protocol every torch case follows (`timing.time_call`: warm-up
   apart, fixed budget of blocks, the control after each block); a suite pairs it in the same process
   with the same variant under torch eager (``Case.reference``), so the runtime/torch ratio is measured
   side by side.
5. **Memory**: the process's peak resident set over one more call (the runtime allocates outside torch,
   so torch's allocator trace cannot see it), stated as such in ``peak_mem_method``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from unet_bench.errors import BenchError
from unet_bench.measure import env
from unet_bench.measure.control import control_step, describe
from unet_bench.measure.counts import Counts, count
from unet_bench.measure.fields import control_values, counts_values, paired_values, timing_values
from unet_bench.measure.network import build_model, check_case, network_input_shape
from unet_bench.measure.onnx_export import EXPORTER, OPSET, export_onnx, op_census
from unet_bench.measure.outcome import begin, finish
from unet_bench.measure.peaks import Ceiling, ceiling_key, measure_ceiling
from unet_bench.measure.quantize import CALIBRATION_IMAGES, calibration_batches, quantization_method, quantize_int8
from unet_bench.measure.runtimes import Session, load
from unet_bench.measure.steps import build_step
from unet_bench.measure.timing import WARMUP_CALLS, time_call
from unet_bench.record import Case, Record

# Bound on max |runtime - torch| / max |torch| per precision. fp32: kernels that sum in another order differ
# by rounding (~1e-6 relative over a UNet's depth; 3e-5 with InstanceNorm); 1e-4 leaves room for that and
# catches any real difference. int8: 8-bit activations through the paper network's 23 layers reach 0.1-0.15
# of the output range on its initial weights; 0.25 catches a graph that computes something else (errors
# of the order of the range) without flagging quantization itself.
TOLERANCE = {"fp32": 1e-4, "int8": 0.25}
INPUT_SEED = 0
WEIGHT_SEED = 0  # the network's initial weights: an exported file is shared by the cases of one network
MODELS_DIR = "models"  # inside a results folder
PEAK_RSS_METHOD = ("peak resident set of the whole process over one forward after the timed ones (Linux "
                   "VmHWM after clearing it): the runtime's buffers and weights, and everything else the "
                   "process holds (torch, the eager network it was exported from)")


def measure_runtime(case: Case, counts: Counts | None = None, ceiling: Ceiling | None = None,
                    models_dir: Path | None = None) -> Record:
    """Measure an inference ``case`` whose runtime is not torch (see the module docstring).

    ``models_dir``: where the exported file is kept (``<results>/models``); None exports into a temporary
    folder that is removed afterwards.
    """
    check_case(case)
    started = begin()
    threads = case.threads or env.cpu_count()
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with _models_folder(models_dir) as folder:
            record = _measure(case, counts, ceiling, folder, threads, kept=models_dir is not None)
        return finish(record, started, case.device)
    finally:
        torch.set_num_threads(saved_threads)


@contextlib.contextmanager
def _models_folder(models_dir: Path | None) -> Iterator[Path]:
    if models_dir is not None:
        if models_dir.is_symlink():  # the results folder's rule: nothing is written through a link
            raise BenchError(f"{models_dir} is a symbolic link; exported networks are written into a real folder "
                             "inside the results folder: remove the link")
        yield models_dir
        return
    with tempfile.TemporaryDirectory(prefix="unet-bench-") as folder:
        yield Path(folder)


def _measure(case: Case, counts: Counts | None, ceiling: Ceiling | None, folder: Path, threads: int,
             kept: bool) -> Record:
    with torch.random.fork_rng():  # the same weights in every process and run: one exported file serves all
        torch.manual_seed(WEIGHT_SEED)
        model = build_model(case).to(case.device).eval()
    shape = network_input_shape(model, case.size, case.batch)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(INPUT_SEED)).to(case.device)
    if counts is None:
        counts = count(model, network_input_shape(model, case.size), device=case.device)
    record = Record.for_case(case, **counts_values(counts))
    record.threads_used = threads
    record.config = model.cfg.to_dict() if hasattr(getattr(model, "cfg", None), "to_dict") else {}
    path, seconds = model_file(model, x, case, folder)
    session = load(case.runtime, path, case.device, threads, case.dtype)
    xn = x.cpu().numpy()
    with torch.inference_mode():
        expected = model(x).float().cpu().numpy()
    record.set(**check_values(session.run(xn), expected, case.dtype))
    record.set(runtime_version=session.version, exporter=EXPORTER, opset=OPSET,
               provider=session.provider, provider_options=session.options, export_s=seconds,
               model_file=f"{MODELS_DIR}/{path.name}" if kept else None, model_bytes=path.stat().st_size,
               op_census=op_census(path),
               quantization=quantization_method(shape[0] * CALIBRATION_IMAGES) if case.dtype == "int8" else None)
    if seconds is None:
        record.extra["export"] = "the file an earlier case of this run exported for the same network and input"
    reference = _reference(case)

    def run() -> object:
        return session.run(xn)

    timing = time_call(run, threads, case.min_run_time_s, WARMUP_CALLS, case.device,
                       control=control_step(case.device), reference=reference)
    record.set(**control_values(timing, describe(case.device, threads)))
    if case.reference is not None:
        record.set(**paired_values(timing, case.reference), paired_reference_runtime=case.reference.runtime)
    del reference
    if case.memory:
        record.set(**peak_rss_values(session, xn))
    ceiling = ceiling or measure_ceiling(*ceiling_key(case))
    record.set(**timing_values(timing, counts, case, ceiling))
    if case.dtype == "int8":  # int8 kernels have other ceilings than the fp32 ones measured
        record.set(peak_flops_per_s=None, peak_fraction=None,
                   extra={"peak_source": "none: int8 kernels are not read against fp32 ceilings"})
    record.extra["runtime_scope"] = (f"{case.runtime} {session.version} ({session.provider}); the network "
                                     f"exported once, then run on a NumPy input of shape {list(shape)}")
    return record


def network_key(case: Case) -> str:
    """The exported file's name: one network at one input shape is one graph, whichever runtime loads it
    and whichever repeat asks, so a run exports (and quantizes) it once."""
    data = {"variant": case.variant, "overrides": case.overrides_dict(), "size": case.size, "batch": case.batch}
    return f"{case.variant}-{hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]}"


def model_file(model: torch.nn.Module, x: torch.Tensor, case: Case, folder: Path) -> tuple[Path, float | None]:
    """The ONNX file ``case`` runs (int8: quantized) in ``folder``, exported here unless an earlier case
    left it there; with the seconds its export (and quantization) took here, None when it was found."""
    fp32 = folder / f"{network_key(case)}.onnx"
    seconds = None if fp32.exists() else export_onnx(model, x, fp32)
    if case.dtype != "int8":
        return fp32, seconds
    int8 = fp32.with_suffix(".int8.onnx")
    if not int8.exists():
        start = time.perf_counter()
        quantize_int8(fp32, int8, calibration_batches(tuple(x.shape)))
        seconds = (seconds or 0.0) + time.perf_counter() - start
    return int8, seconds


def _reference(case: Case) -> Callable[[], object] | None:
    """The torch step of ``case.reference`` (its twin under eager torch, in a suite), or None."""
    if case.reference is None:
        return None
    model = build_model(case.reference)
    return build_step(model, case.reference, network_input_shape(model, case.reference.size)[1]).run


def check_values(actual: np.ndarray, expected: np.ndarray, precision: str) -> dict:
    """The record's check fields: how far the runtime's output is from eager torch's, and whether that is
    beyond the precision's tolerance."""
    if actual.shape != expected.shape:
        return {"max_abs_error": None, "max_rel_error": None, "error_tolerance": TOLERANCE[precision],
                "output_mismatch": True,
                "extra": {"check": f"output shape {list(actual.shape)} != torch's {list(expected.shape)}"}}
    abs_error = float(np.max(np.abs(actual.astype(np.float64) - expected)))
    scale = float(np.max(np.abs(expected)))
    rel_error = abs_error / scale if scale > 0 else abs_error
    return {"max_abs_error": abs_error, "max_rel_error": rel_error, "error_tolerance": TOLERANCE[precision],
            "output_mismatch": bool(rel_error > TOLERANCE[precision]),
            "extra": {"check": f"runtime vs eager torch fp32, one seeded input (seed {INPUT_SEED}); "
                               "relative to max |torch output|"}}


def peak_rss_values(session: Session, x: np.ndarray) -> dict:
    """Peak resident memory of the process over one call (Linux); the method says why when unavailable."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
        session.run(x)
        status = Path("/proc/self/status").read_text()
    except OSError as error:
        return {"peak_mem_method": f"unavailable: {error}"}
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return {"peak_mem_bytes": kib * 1024, "peak_mem_method": PEAK_RSS_METHOD}
