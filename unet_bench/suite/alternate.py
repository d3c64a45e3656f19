"""Two code versions on one machine, in alternation: each case timed in fresh processes of two environments,
old and new back to back, round after round (how a regression is bisected).

An environment is a Python interpreter (``/path/to/venv/bin/python``) or a checkout (a folder holding the
``unet_bench`` package: its own ``.venv/bin/python`` if it has one, else this interpreter with the
checkout first on ``PYTHONPATH``). Each process runs that environment's ``python -m unet_bench time ...
--json`` (a plain process, as a user times a network; every version of the command answers it), so each
version measures with its own code. Within a round the order alternates (old new, new old, ...), so a
drift of the machine over the rounds falls on both sides alike; `unet_bench.analysis` then pairs the two
sides round by round (``extra.ab_round``, ``extra.ab_run``). Records go to ``OUT/old/results.jsonl`` and
``OUT/new/results.jsonl`` as each process ends.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from unet_bench.errors import BenchError
from unet_bench.measure.outcome import failed
from unet_bench.record import Case, Record
from unet_bench.suite.spec import Spec
from unet_bench.suite.store import RESULTS_FILE, ResultsWriter, prepare_dir

TIMED_MODES = ("infer", "train")
SIDES = ("old", "new")


@dataclass(frozen=True)
class Environment:
    """How to start a process of one code version: the interpreter and the ``PYTHONPATH`` it needs."""

    python: str
    path: str | None = None  # a checkout to put first on PYTHONPATH

    @classmethod
    def parse(cls, text: str) -> Environment:
        """A Python interpreter or a checkout; anything else is refused in one line."""
        where = Path(text)
        if where.is_dir():
            if not (where / "unet_bench" / "__init__.py").exists():
                raise BenchError(f"{text} is not a checkout of unet-bench (no unet_bench/__init__.py in it); "
                                 "give a checkout or a Python interpreter")
            venv = where / ".venv" / "bin" / "python"
            return cls(str(venv) if venv.exists() else sys.executable, str(where.resolve()))
        if where.is_file() and os.access(where, os.X_OK):
            return cls(str(where))
        raise BenchError(f"{text} is neither a checkout of unet-bench nor a Python interpreter")

    def command(self, case: Case) -> list[str]:
        return [self.python, "-m", "unet_bench", "time", *time_arguments(case)]

    def cwd(self) -> str:
        """Where the process starts: ``python -m`` puts its working folder first on ``sys.path``, so a
        process started in another checkout would import that checkout's package instead of this one's."""
        return self.path or os.path.dirname(os.path.abspath(self.python))

    def environ(self) -> dict[str, str]:
        environ = dict(os.environ)
        if self.path:
            environ["PYTHONPATH"] = os.pathsep.join([self.path, *filter(None, [environ.get("PYTHONPATH")])])
        return environ


def time_arguments(case: Case) -> list[str]:
    """The `unet-bench time` command line of a timed case."""
    args = [case.variant, "--size", case.size_text, "--mode", case.mode, "--batch", str(case.batch),
            "--device", case.device, "--dtype", case.dtype, "--min-run-time", f"{case.min_run_time_s:g}", "--json"]
    args += ["--channels-last"] * case.channels_last + ["--compile"] * case.compile
    if case.device == "cuda":
        args += ["--no-tf32"] * (not case.tf32) + ["--cudnn-benchmark"] * case.cudnn_benchmark
    args += ["--threads", str(case.threads)] if case.threads else []
    for key, value in case.overrides:
        args += ["--set", f"{key}={value}"]
    return args


def timed_cases(spec: Spec) -> list[Case]:
    """The experiment's infer and train cases, in run order, each timed alone (no in-process reference)."""
    cases = [p.case for p in spec.planned if p.case.mode in TIMED_MODES and not p.max_batch]
    if not cases:
        raise BenchError(f"{spec.name} has no infer or train case to time; ab alternates timed cases only")
    return [Case.from_dict({**c.to_dict(), "reference": None}) for c in cases]


def run_one(environment: Environment, case: Case, timeout_s: float | None) -> Record:
    """One process of ``environment`` timing ``case``; a failure is a record that says why."""
    try:
        done = subprocess.run(environment.command(case), capture_output=True, text=True, timeout=timeout_s,
                              env=environment.environ(), cwd=environment.cwd(), check=False)
    except subprocess.TimeoutExpired:
        return failed(case, "error", f"timed out after {timeout_s:g} s")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return failed(case, "error", f"{environment.python}: {last}")
    return Record.from_dict(json.loads(done.stdout))


def run_alternated(spec: Spec, old: Environment, new: Environment, out_dir: str | Path,
                   timeout_s: float | None = None, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Time every timed case of ``spec`` in both environments, alternating (module docstring)."""
    out = prepare_dir(out_dir)
    dirs = {side: prepare_dir(out / side) for side in SIDES}
    if any((d / RESULTS_FILE).exists() for d in dirs.values()):
        raise BenchError(f"{out} already holds an ab run; give another --out")
    run_id = uuid.uuid4().hex[:12]
    envs = dict(zip(SIDES, (old, new), strict=True))
    writers = {side: ResultsWriter(dirs[side] / RESULTS_FILE) for side in SIDES}
    try:
        for index, case in enumerate(timed_cases(spec)):
            for side in SIDES if index % 2 == 0 else SIDES[::-1]:
                record = run_one(envs[side], case, timeout_s)
                record.suite = spec.name
                record.case = dataclasses.replace(record.case, repeat=case.repeat,
                                                  requested_size=case.requested_size, size_rule=case.size_rule)
                record.case_id = record.case.case_id
                record.extra.update(ab_run=run_id, ab_round=case.repeat, ab_env=side,
                                    ab_python=envs[side].python, ab_path=envs[side].path)
                writers[side].append(record.to_dict())
                shown = f"{record.get('latency_ms_median'):,.1f} ms" if record.status == "ok" else record.message
                log(f"{side:<4} {record.status:<6} {case.label}  {shown}")
    finally:
        for writer in writers.values():
            writer.close()
    return dirs
