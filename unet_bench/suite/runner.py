"""Run a suite unattended: one case at a time, each in a process of its own, every record on disk at once.

Isolation: each case runs in a fresh process forked from a server process that imported torch and
unet_bench once (multiprocessing's ``forkserver``). A case that crashes its process, runs out of memory
or hangs past a time limit is recorded (``error`` / ``oom``) and the suite goes on; nothing earlier cases
left is in its process and nothing is set for it (it runs as `unet-bench time` would); and starting one
costs a fork (~0.1 s), not a torch import (~2 s). POSIX only (a fork server; flock).

Files: only this module (through `unet_bench.suite.store`) writes. Each finished case is appended to
``results.jsonl`` and fsynced before the next one starts; Ctrl-C (or SIGTERM) stops the case in flight
and keeps everything finished; ``resume`` skips the cases already recorded ``ok``. A directory is
written by one run at a time (a lock).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import math
import multiprocessing
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from unet_bench.errors import BenchError
from unet_bench.measure import count_case, env, measure
from unet_bench.measure.counts import Counts
from unet_bench.measure.outcome import Started, classify_failure, failed
from unet_bench.measure.peaks import Ceiling, ceiling_key, ceiling_record
from unet_bench.measure.runtime_case import MODELS_DIR
from unet_bench.models.footprint import why_case_cannot_fit
from unet_bench.record import MODES, Case, Record
from unet_bench.suite.grid import Planned
from unet_bench.suite.progress import BatchSearch, Summary, case_line
from unet_bench.suite.resume import done_cases, oom_limits, refuse_unless_resuming, resuming_line
from unet_bench.suite.spec import Spec
from unet_bench.suite.store import LOCK_FILE, RESULTS_FILE, ResultsWriter, WriteError, locked, prepare_dir

POLL_S = 0.05  # how often the parent reads a CPU case's resident memory when a limit is set
WAKE_S = 0.5  # otherwise the longest the parent sleeps between looks for Ctrl-C (twice a second, next to nothing)
OVER_LIMIT = "the case's process went over the CPU memory limit: peak resident memory {:.2f} GiB > {:g} GiB ({})"


def unavailable(case: Case) -> str | None:
    """Why ``case`` cannot run on this machine at all (recorded as ``skipped``), or None."""
    if case.mode not in MODES:
        return f"mode {case.mode!r} is not available in this version of unet-bench"
    if case.device == "cuda":
        if not torch.cuda.is_available():  # asks the driver; creates no CUDA context in this process
            return "device 'cuda' is not available on this machine"
    return None


# --- one case in a child process -----------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _context() -> multiprocessing.context.BaseContext:
    """The fork server every case's process comes from, loaded once with what cases need (`_preload`)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["unet_bench.suite.preload", "unet_bench.suite.runner"])
    return context


def _die_with_parent() -> None:
    """Linux: have the kernel kill this child when its parent (the fork server) dies with the run."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def peak_resident_bytes(pid: int | str = "self") -> int | None:
    """Peak resident memory (VmHWM) of a process so far; None if unreadable (not Linux, or the process ended)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) * 1024 for line in lines if line.startswith("VmHWM:")), None)


def _child(conn: Connection, measure_fn: Callable[[Case], Record], case: Case) -> None:
    """Child process: measure one case and send back its record, or how it failed, and its peak RSS."""
    _die_with_parent()
    try:
        try:
            message = ("done", measure_fn(case).to_dict())
        except Exception as exc:  # noqa: BLE001 - any failure is a result to record
            status, text = classify_failure(exc)
            message = ("failed", status, text, traceback.format_exc(), _environment(case))
        conn.send((message, peak_resident_bytes()))
    except (KeyboardInterrupt, BrokenPipeError):  # Ctrl-C reaches the whole process group; the parent
        pass  # stops the run and records nothing for this case


def _environment(case: Case) -> dict[str, Any]:
    try:
        return env.fingerprint(case.device)
    except Exception:  # noqa: BLE001 - the environment is a courtesy on a failure record
        return {}


def _wait(receiver: Connection, process: multiprocessing.process.BaseProcess, limit: int | None,
          timeout_s: float | None) -> tuple[str, int | None]:
    """Wait for the child's message or its end: ``("ready", None)``, ``("timeout", None)``, or ``("over",
    peak)`` once its peak resident memory is past ``limit`` (read every `POLL_S`)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        # never an unbounded wait: Ctrl-C may land on another thread of this process (torch's, a stderr
        # filter's), and only a wait that returns lets the main thread act on it
        waits = [t for t in (POLL_S if limit else WAKE_S, deadline and max(deadline - time.monotonic(), 0.0))
                 if t is not None]
        if wait([receiver, process.sentinel], timeout=min(waits, default=None)):
            return "ready", None
        peak = peak_resident_bytes(process.pid) if limit else None
        if peak is not None and peak > limit:
            return "over", peak
        if deadline is not None and time.monotonic() >= deadline:
            return "timeout", None


def run_isolated(
    case: Case,
    measure_fn: Callable[[Case], Record] = measure,
    memory_limit_gb: float | None = None,
    timeout_s: float | None = None,
) -> Record:
    """Measure ``case`` in a child process; a crash, a timeout or a raised error comes back as a record.

    ``memory_limit_gb`` caps the peak resident memory of a CPU case's process (torch's libraries included,
    not compile workers): read every `POLL_S` (past it, the case is stopped) and once more at its end, so
    that going over is an ``oom`` result, not a machine in swap. CUDA cases are not limited here.
    """
    limit = int(memory_limit_gb * 2**30) if memory_limit_gb and case.device == "cpu" else None
    if limit and peak_resident_bytes() is None:
        raise BenchError("a CPU memory limit needs Linux's /proc/PID/status to read a process's resident memory")
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, measure_fn, case), daemon=True)
    started = Started()  # the clock only: the case's own process samples the load
    reply = None
    try:
        process.start()
        sender.close()
        state, peak = _wait(receiver, process, limit, timeout_s)
        if state == "over":
            return failed(case, "oom", OVER_LIMIT.format(peak / 2**30, limit / 2**30, "it was stopped"), started)
        if receiver.poll():
            with suppress(EOFError):  # the case's process ended without a reply
                reply = receiver.recv()
        if reply is None and state == "timeout":
            return failed(case, "error", f"timed out after {timeout_s:g} s (the case was stopped)", started)
    finally:  # however this ends (Ctrl-C included), no case process outlives it
        if process.pid is not None:
            if process.is_alive():
                process.kill()
            process.join()
        sender.close()
        receiver.close()
    if reply is None:
        return failed(case, "error", _crash_message(process.exitcode, limit), started)
    message, peak = reply
    if limit and peak is not None and peak > limit:
        return failed(case, "oom", OVER_LIMIT.format(peak / 2**30, limit / 2**30, "found when it ended"), started)
    if message[0] == "done":
        return Record.from_dict(message[1])
    _, status, text, trace, environment = message
    record = failed(case, status, text, started, environment)
    record.extra["traceback"] = trace
    return record


def _crash_message(exitcode: int | None, limit: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        why = f"the case's process was killed by {name}"
        if name == "SIGKILL":
            why += " (the kernel's out-of-memory killer, or a kill from outside)"
    else:
        why = f"the case's process exited with status {exitcode} without a result"
    if limit is not None:
        why += f"; it ran under a CPU resident-memory limit of {limit / 2**30:g} GiB"
    return why


# --- the suite -----------------------------------------------------------------------------------------


def results_dir(spec: Spec, out: str | Path | None = None) -> Path:
    """Where a suite writes: ``out``, or ``results/<suite name>`` under the current directory."""
    return Path(out) if out is not None else Path("results") / spec.name


def run_suite(
    spec: Spec,
    out_dir: str | Path,
    resume: bool = False,
    retry_oom: bool = False,
    measure_fn: Callable[[Case], Record] | None = None,
    timeout_s: float | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    share: str | None = None,
) -> Summary:
    """Run every case of ``spec`` not yet done, appending each record to ``out_dir/results.jsonl``.

    ``resume``: skip the cases already recorded ok (and oom, unless ``retry_oom``); a case retried that
    runs out of memory again under the same limit is not recorded twice.

    ``measure_fn``: None measures each case with `unet_bench.measure.measure`, counting each network
    and size once in this process and handing the counts to every case and repeat that needs them; any
    other function must be importable by name (it is sent to the child process). ``progress``: True
    shows the bar, None shows it on a terminal only. ``log`` gets one line per finished case and notes
    (default: printed above the bar, flushed, so that a log file follows the run).

    ``share``: None when this run is the folder's only writer; else the lock file of this share of the
    suite (a shard, a cluster job), which may write the folder while other shares do, and whose folder
    may hold records of the suite's other cases (only records of its own cases need ``resume``).
    """
    log = log or _say
    out_dir = prepare_dir(out_dir)
    summary = Summary(out_dir)
    with locked(out_dir, share or LOCK_FILE), _sigterm_as_interrupt(), \
            ResultsWriter(out_dir / RESULTS_FILE) as writer:
        back = writer.back
        refuse_unless_resuming(spec, back.records, writer.path, resume, shared=share is not None)
        if back.partial_line_bytes:
            summary.partial_line_bytes = back.partial_line_bytes
            log(f"{out_dir / RESULTS_FILE}: left out a partial last line ({back.partial_line_bytes} bytes, "
                "from a run killed mid-write); its case runs again")
        known = done_cases(spec, back.records, writer.path, retry_oom)
        todo = [p for p in spec.planned if p.max_batch or p.case.case_id not in known]
        summary.already_done = len(spec.planned) - len(todo)
        if summary.already_done:
            log(resuming_line(spec, known, summary.already_done))
        with _bar(todo, progress) as bar:
            suite = _Suite(spec, writer, known, oom_limits(back.records), summary, measure_fn, timeout_s, bar, log)
            try:
                for planned in todo:
                    suite.run(planned)
                    bar.update(planned.cost_s)
            except KeyboardInterrupt:
                summary.interrupted = True
            except WriteError as error:
                summary.stopped = str(error)
    return summary


class _Suite:
    """State of one run: where records go, what is known, and how each case is run."""

    def __init__(self, spec: Spec, writer: ResultsWriter, known: dict[str, str],
                 oom_limits: dict[str, float | None], summary: Summary,
                 measure_fn: Callable[[Case], Record] | None, timeout_s: float | None, bar: tqdm,
                 log: Callable[[str], None]) -> None:
        self.spec, self.writer, self.known, self.summary = spec, writer, known, summary
        self.oom_limits = oom_limits  # case_id → memory limit of its oom record on disk
        self.measure_fn, self.timeout_s, self.bar, self.log = measure_fn, timeout_s, bar, log
        self.ceilings: dict[tuple, Ceiling | None] = {}  # measured once per run, by `ceiling_key`
        self.counts: dict[tuple, Counts | None] = {}  # counted once per run, by network and size

    def run(self, planned: Planned) -> None:
        if planned.max_batch:
            search = self.search_max_batch(planned.case, planned.max_batch)
            self.summary.searches.append(search)
            self.log(search.describe(planned.max_batch))
        else:
            self.measure(planned.case)

    def measure(self, case: Case) -> str:
        """Run one case, record it, and return its status."""
        self.bar.set_description_str(case.label)
        reason = unavailable(case)
        too_big = None if reason else why_case_cannot_fit(case, self.spec.cpu_memory_limit_gb)
        if reason:
            record = failed(case, "skipped", reason)
        elif too_big:
            record = failed(case, "oom", f"not run: {too_big}")
        else:
            record = run_isolated(case, self.measure_for(case), self.spec.cpu_memory_limit_gb, self.timeout_s)
        record.suite = self.spec.name
        record.timestamp = record.timestamp or env.now()
        if self.spec.cpu_memory_limit_gb and case.device == "cpu":
            record.extra["cpu_memory_limit_gb"] = self.spec.cpu_memory_limit_gb
        limit = record.extra.get("cpu_memory_limit_gb")
        if record.status == "oom" and case.case_id in self.oom_limits and self.oom_limits[case.case_id] == limit:
            self.summary.oom_again += 1
            self.log(f"oom     {case.label}: out of memory again under the same limit (already recorded)")
            self.known[case.case_id] = "oom"
            return "oom"
        self.writer.append(record.to_dict())
        self.known[case.case_id] = record.status
        self.summary.written[record.status] += 1
        self.log(case_line(case, record))
        return record.status

    def measure_for(self, case: Case) -> Callable[[Case], Record]:
        """What measures ``case`` in its process: the run's own function if one was given, else `measure`
        with what this run measures once and shares: the network's counts and the ceiling; an exported
        network is kept in the results folder's ``models/``."""
        if self.measure_fn is not None:
            return self.measure_fn
        return functools.partial(measure, counts=self.counts_for(case), ceiling=self.ceiling_for(case),
                                 models_dir=self.writer.path.parent / MODELS_DIR)

    def counts_for(self, case: Case) -> Counts | None:
        """The counts of ``case``'s network and size, counted once per run (None if counting fails: the
        case's own process then meets the same error and records it)."""
        key = (case.variant, case.overrides, case.size)
        if key not in self.counts:
            try:
                self.counts[key] = count_case(case)
            except Exception:  # noqa: BLE001 - recorded by the case itself
                self.counts[key] = None
        return self.counts[key]

    def ceiling_for(self, case: Case) -> Ceiling | None:
        """The ceiling of a timed case's device, precision and threads, measured at the first case of its
        key, in a process of its own like a case (the fork server runs no tensor op)."""
        if case.mode not in ("infer", "train", "profile"):
            return None
        key = ceiling_key(case)
        if key not in self.ceilings:
            record = run_isolated(case, ceiling_record, self.spec.cpu_memory_limit_gb, self.timeout_s)
            ceiling = self.ceilings[key] = Ceiling(**record.extra["ceiling"]) if record.status == "ok" else None
            self.log(f"ceiling {ceiling.flops_per_s / 1e9:,.1f} GFLOP/s: {ceiling.source}" if ceiling else
                     f"ceiling {key}: {record.message}; each case measures its own")
        return self.ceilings[key]

    def search_max_batch(self, case: Case, max_batch: int) -> BatchSearch:
        """Largest batch ≤ ``max_batch`` that runs without OOM: double from 1 until one fails, then bisect.

        Each probe is a case recorded like any other; an ``oom`` is a result here, so a probe already
        recorded ok or oom (earlier in this run, or in the run being resumed) is not run again.
        """
        fits, fails = 0, None
        batch = 1
        while True:
            probe = dataclasses.replace(case, batch=batch)
            status = self.known.get(probe.case_id) or self.measure(probe)
            if status == "ok":
                fits = batch
            elif status == "oom":
                fails = batch
            else:  # an error or a skip says nothing about memory
                return BatchSearch(case, fits, fails, f"batch {batch} ended '{status}'")
            if fails is None:
                if fits >= max_batch:
                    return BatchSearch(case, fits, None)
                batch = min(2 * fits, max_batch)
            elif fails - fits <= 1:
                return BatchSearch(case, fits, fails)
            else:
                batch = (fits + fails) // 2


def _say(line: str) -> None:
    """Print a line above the progress bar, flushed (a log file sees each case as it ends)."""
    tqdm.write(line)
    sys.stdout.flush()


@contextmanager
def _bar(todo: list[Planned], progress: bool | None) -> Iterator[tqdm]:
    """A progress bar over predicted seconds, so its ETA weighs a slow case more than a quick one."""
    total = sum(p.cost_s for p in todo)
    bar = tqdm(total=math.ceil(total), disable=None if progress is None else not progress, file=sys.stderr,
               bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed} elapsed, ETA {remaining}",
               dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM (a scheduler's or `timeout`'s stop) end a run as gracefully as Ctrl-C does."""
    def interrupt(signum: int, frame: object) -> None:
        if callable(previous):  # the command line's handler: it notes that SIGTERM (not Ctrl-C) stopped it
            previous(signum, frame)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
