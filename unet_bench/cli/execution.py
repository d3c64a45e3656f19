"""The execution flags: how a measured step runs (mode, device, precision, layout, compile, the CUDA
flags, threads and the timing budget).

Each flag is declared here once, with its help and its validation, and every command that times,
profiles or trains adds the ones it takes (`add_execution_arguments`) and reads them back as one typed
`Execution`, so that ``time`` and ``profile`` cannot drift apart on what a flag means.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from unet_bench.errors import BenchError
from unet_bench.record import DEFAULT_MIN_RUN_TIME_S, DEVICES, DTYPES, RUNTIMES
from unet_bench.suite.checks import MIN_RUN_TIME_S, as_argument, threads

STEP_MODES = ("infer", "train")

# flag -> argparse's keywords; each flag's value lands in the attribute argparse derives from its name
DECLARATIONS: dict[str, dict[str, Any]] = {
    "--device": {"choices": DEVICES, "default": "cpu", "help": "where the step runs (default cpu)"},
    "--mode": {"choices": STEP_MODES, "default": "infer",
               "help": "infer: forward under inference_mode; train: forward, loss, backward, SGD step"},
    "--dtype": {"choices": DTYPES, "default": "fp32",
                "help": "bf16 / fp16 run under autocast; int8 on a deployment runtime (--runtime)"},
    "--runtime": {"choices": RUNTIMES, "default": "torch",
                  "help": "where inference runs: torch (eager) or the network exported to ONNX and run by "
                          "onnxruntime or openvino (pip install \"unet-bench[runtimes]\")"},
    "--channels-last": {"action": "store_true", "help": "channels_last memory format"},
    "--compile": {"action": "store_true", "help": "torch.compile (compile time reported apart)"},
    "--no-tf32": {"action": "store_true", "help": "CUDA: IEEE fp32 instead of TF32"},
    "--cudnn-benchmark": {"action": "store_true", "help": "CUDA: cudnn.benchmark autotuning"},
    "--threads": {"type": as_argument(threads), "default": None, "metavar": "T",
                  "help": "intra-op threads (default: every core this process may use)"},
    "--min-run-time": {"type": as_argument(MIN_RUN_TIME_S, float), "default": DEFAULT_MIN_RUN_TIME_S,
                       "metavar": "S", "help": "seconds of timed calls, at least 3 calls (profile: of the step "
                       f"unprofiled, before it is profiled) (default {DEFAULT_MIN_RUN_TIME_S:g})"},
}
TIMED = tuple(DECLARATIONS)  # `time`
PROFILED = tuple(flag for flag in DECLARATIONS if flag not in ("--compile", "--cudnn-benchmark"))  # eager only
TRAINED = ("--device", "--threads")  # `quality`


def dest(flag: str) -> str:
    """The attribute argparse stores ``flag`` under."""
    return flag.removeprefix("--").replace("-", "_")


def add_execution_arguments(parser: argparse.ArgumentParser, flags: Sequence[str] = TIMED) -> None:
    """Add ``flags`` (of `DECLARATIONS`) to ``parser``; the others read as their defaults, so that
    `Execution.from_args` finds every field whatever the command takes."""
    for flag in flags:
        parser.add_argument(flag, **DECLARATIONS[flag])
    parser.set_defaults(**{dest(flag): DECLARATIONS[flag].get("default", False)
                           for flag in DECLARATIONS if flag not in flags})


@dataclass(frozen=True)
class Execution:
    """The execution flags of one command line (defaults: what a command without them measures)."""

    mode: str = "infer"
    device: str = "cpu"
    dtype: str = "fp32"
    runtime: str = "torch"
    channels_last: bool = False
    compile: bool = False
    tf32: bool = True
    cudnn_benchmark: bool = False
    threads: int | None = None
    min_run_time_s: float = DEFAULT_MIN_RUN_TIME_S

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Execution:
        """The flags of a parser built with `add_execution_arguments`."""
        return cls(mode=args.mode, device=args.device, dtype=args.dtype, runtime=args.runtime,
                   channels_last=args.channels_last,
                   compile=args.compile, tf32=not args.no_tf32, cudnn_benchmark=args.cudnn_benchmark,
                   threads=args.threads, min_run_time_s=args.min_run_time)

    def check(self) -> None:
        """Refuse a CUDA-only flag off CUDA, in one line (rather than let it change nothing)."""
        if self.device != "cuda" and (not self.tf32 or self.cudnn_benchmark):
            flag = "--no-tf32" if not self.tf32 else "--cudnn-benchmark"
            raise BenchError(f"{flag} applies to CUDA only; add --device cuda or drop it")

    def case_fields(self) -> dict[str, Any]:
        """The fields of a `Case` these flags set (its mode apart: a command names the case's mode)."""
        return {"device": self.device, "dtype": self.dtype, "runtime": self.runtime,
                "channels_last": self.channels_last,
                "compile": self.compile, "tf32": self.tf32, "cudnn_benchmark": self.cudnn_benchmark,
                "threads": self.threads, "min_run_time_s": self.min_run_time_s}
