"""Suites spread over jobs: a cluster's scheduler (SLURM) or local processes, through submitit.

We write no scheduler. The suite's cases are cut into jobs of ``cases_per_job`` cases in run order; each
job runs its cases through the same in-process runner as ``unet-bench run`` (each case in a process of its
own inside the job) and appends every record to the suite's one ``results.jsonl`` as it finishes. Jobs
append at the same time safely: the store writes each line under a lock on the file. The submitting
command holds the folder's lock, waits for the jobs, and records every case of a job that died, timed out
or was stopped before recording it as a crashed case (`outcome.failed`, status ``error``, saying which job
and how it ended), so nothing silently goes missing. ``--resume`` submits only the cases not yet recorded
``ok`` (or ``oom``).

``local`` runs the jobs as local processes (a few at a time: timings on one machine must not share its
cores), the path CI tests; ``slurm`` submits them as one job array. submitit keeps each job's log under
``DIR/.jobs``. submitit is an optional dependency (the ``cluster`` extra).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unet_bench.errors import BenchError
from unet_bench.measure.outcome import failed
from unet_bench.record import Case, Record
from unet_bench.suite.progress import Summary, case_line
from unet_bench.suite.resume import done_cases, refuse_unless_resuming, resuming_line
from unet_bench.suite.runner import run_suite
from unet_bench.suite.spec import Spec
from unet_bench.suite.store import LOCK_FILE, RESULTS_FILE, ResultsWriter, locked, prepare_dir, read_records

JOBS_FOLDER = ".jobs"
DEFAULT_TIME_LIMIT_MIN = 60


@dataclass(frozen=True)
class JobOptions:
    """How a suite is cut into jobs and what each job asks the scheduler for."""

    executor: str = "local"  # local | slurm
    partition: str | None = None  # SLURM partition (None: the cluster's default)
    gpus_per_job: int | None = None  # None: 1 when the suite has a CUDA case, else 0
    time_limit_min: int = DEFAULT_TIME_LIMIT_MIN  # a job past it is stopped; its unrecorded cases: error
    cases_per_job: int = 1
    jobs_at_once: int | None = None  # None: 1 for local (cases must not share cores), every job for slurm

    def gpus(self, spec: Spec) -> int:
        if self.gpus_per_job is not None:
            return self.gpus_per_job
        return int(any(p.case.device == "cuda" for p in spec.planned))

    def describe(self, spec: Spec) -> str:
        at_once = self.jobs_at_once or (1 if self.executor == "local" else "all")
        return (f"executor {self.executor}: {self.cases_per_job} case(s) per job, {self.gpus(spec)} GPU(s) per job, "
                f"time limit {self.time_limit_min:g} min, partition {self.partition or '(default)'}, "
                f"{at_once} job(s) at once")


def plan_jobs(spec: Spec, done: dict[str, str], cases_per_job: int) -> list[Spec]:
    """The jobs for the cases not ``done``: each a share of ``spec``, in run order."""
    todo = [p for p in spec.planned if p.max_batch or p.case.case_id not in done]
    return [dataclasses.replace(spec, planned=tuple(todo[i:i + cases_per_job]))
            for i in range(0, len(todo), cases_per_job)]


def describe_jobs(spec: Spec, jobs: list[Spec], options: JobOptions) -> list[str]:
    """``--dry-run``: one line per job with its cases (their positions in the suite's run order)."""
    position = {id(p): i for i, p in enumerate(spec.planned, start=1)}
    lines = [f"# {len(jobs)} job(s); {options.describe(spec)}"]
    for number, job in enumerate(jobs, start=1):
        cases = ", ".join(str(position[id(p)]) for p in job.planned)
        lines.append(f"job {number:4d}  cases {cases}  ~{round(job.cost_s)} s")
    return lines


def make_executor(options: JobOptions, folder: Path, spec: Spec) -> Any:
    """A submitit executor for ``options``; one line when submitit is missing."""
    try:
        import submitit
    except ImportError:
        raise BenchError(f"--executor {options.executor} needs submitit: pip install 'unet-bench[cluster]'") \
            from None
    try:  # no srun here, a parameter this version does not take: one line
        executor = submitit.AutoExecutor(folder=folder, cluster=options.executor)
    except Exception as error:  # noqa: BLE001
        raise BenchError(f"--executor {options.executor} cannot be used here: {_first_line(error)}") from None
    parameters: dict[str, Any] = {"timeout_min": options.time_limit_min, "gpus_per_node": options.gpus(spec),
                                  "tasks_per_node": 1, "nodes": 1, "name": f"unet-bench-{spec.name}"}
    if options.executor == "slurm":
        if options.partition:
            parameters["slurm_partition"] = options.partition
        if options.jobs_at_once:
            parameters["slurm_array_parallelism"] = options.jobs_at_once
    executor.update_parameters(**parameters)
    return executor


def run_job(spec: Spec, out_dir: Path, lock: str, retry_oom: bool, measure_fn: Callable[[Case], Record] | None,
            timeout_s: float | None) -> Summary:
    """What one job runs: its cases through the in-process runner, into the suite's folder, under its own
    lock file ``lock`` (the submitting command holds the folder's)."""
    return run_suite(spec, out_dir, resume=True, retry_oom=retry_oom, measure_fn=measure_fn, timeout_s=timeout_s,
                     progress=False, share=lock)


def run_on_executor(
    spec: Spec,
    out_dir: str | Path,
    options: JobOptions,
    resume: bool = False,
    retry_oom: bool = False,
    measure_fn: Callable[[Case], Record] | None = None,
    timeout_s: float | None = None,
    log: Callable[[str], None] = print,
    share: str | None = None,
) -> Summary:
    """Run ``spec``'s cases not yet done as jobs of ``options.executor``; wait for them; return what they did.

    ``measure_fn`` and ``share`` as for `run_suite` (``measure_fn`` importable by name: it is sent to the jobs).
    """
    out_dir = prepare_dir(out_dir)
    summary = Summary(out_dir)
    with locked(out_dir, share or LOCK_FILE):
        with ResultsWriter(out_dir / RESULTS_FILE) as writer:
            records = writer.back.records
        refuse_unless_resuming(spec, records, out_dir / RESULTS_FILE, resume, shared=share is not None)
        known = done_cases(spec, records, out_dir / RESULTS_FILE, retry_oom)
        jobs = plan_jobs(spec, known, options.cases_per_job)
        summary.already_done = len(spec.planned) - sum(len(job.planned) for job in jobs)
        if summary.already_done:
            log(resuming_line(spec, known, summary.already_done))
        executor = make_executor(options, out_dir / JOBS_FOLDER, spec)
        at_once = options.jobs_at_once or (1 if options.executor == "local" else len(jobs)) or 1
        try:
            for start in range(0, len(jobs), at_once):
                wave = list(range(start, min(start + at_once, len(jobs))))
                _run_wave(executor, jobs, wave, out_dir, share or LOCK_FILE, retry_oom, measure_fn, timeout_s,
                          summary, log)
        except KeyboardInterrupt:
            summary.interrupted = True
    return summary


def _run_wave(executor: Any, jobs: list[Spec], wave: list[int], out_dir: Path, lock: str, retry_oom: bool,
              measure_fn: Callable[[Case], Record] | None, timeout_s: float | None, summary: Summary,
              log: Callable[[str], None]) -> None:
    """Submit the jobs ``wave`` (indexes into ``jobs``) as one array, wait for each, and account for it."""
    before = Counter(r.get("case_id") for r in read_records(out_dir / RESULTS_FILE).records)
    n = len(wave)
    try:
        submitted = executor.map_array(run_job, [jobs[i] for i in wave], [out_dir] * n,
                                       [f"{lock}.job-{i + 1}" for i in wave], [retry_oom] * n, [measure_fn] * n,
                                       [timeout_s] * n)
    except Exception as error:  # noqa: BLE001 - sbatch missing, a refused submission: one line
        raise BenchError(f"cannot submit jobs to {executor.cluster}: {_first_line(error)}") from None
    try:
        for index, job in zip(wave, submitted, strict=True):
            log(f"job {index + 1}/{len(jobs)} ({executor.cluster} id {job.job_id}): {len(jobs[index].planned)} case(s)")
            ended = _wait(job)
            result = ended if isinstance(ended, Summary) else None
            if result is not None:
                _merge(summary, result)
            if result is None or result.interrupted or result.stopped:
                how = ended if isinstance(ended, str) else "it was stopped before its last case (time limit?)"
                _record_lost(jobs[index], index + 1, job.job_id, how, out_dir, before, log)
                (out_dir / f"{lock}.job-{index + 1}").unlink(missing_ok=True)  # left by a job killed holding it
            summary.written.update(_log_new(jobs[index], out_dir, before, log))
    except KeyboardInterrupt:
        for job in submitted:
            job.cancel(check=False)
        raise


def _wait(job: Any) -> Summary | str:
    """The job's summary, or how it ended without one: killed (no result, submitit's first line says how),
    or failed with a traceback (its last line says why; a time limit reads 'timed-out and not
    checkpointable')."""
    from submitit.core.utils import FailedJobError

    try:
        return job.result()
    except FailedJobError as error:  # the traceback, then a rule and where the logs are
        lines = [line for line in str(error).rsplit("\n-----", 1)[0].splitlines() if line.strip()]
        why = lines[-1].strip()[:300] if lines else type(error).__name__
        return f"it failed: {why} (log: {job.paths.stderr})"
    except Exception as error:  # noqa: BLE001 - a job that died or was killed
        return f"it ended without a result (state {job.state}): {_first_line(error)}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def _merge(summary: Summary, job: Summary) -> None:
    """What a job's own summary adds (its records are counted from the file: a killed job returns none)."""
    summary.oom_again += job.oom_again
    summary.searches += job.searches
    summary.partial_line_bytes = summary.partial_line_bytes or job.partial_line_bytes
    summary.stopped = summary.stopped or job.stopped


def _record_lost(job: Spec, number: int, job_id: str, how: str, out_dir: Path, before: Counter,
                 log: Callable[[str], None]) -> None:
    """Record each case of a job that ended early and left no record of it: an ``error``, like a crash."""
    after = Counter(r.get("case_id") for r in read_records(out_dir / RESULTS_FILE).records)
    lost = [p.case for p in job.planned if not p.max_batch and after[p.case.case_id] == before[p.case.case_id]]
    with ResultsWriter(out_dir / RESULTS_FILE) as writer:
        for case in lost:
            record = failed(case, "error", f"its job {number} (id {job_id}) recorded nothing for it: {how}")
            record.suite = job.name
            writer.append(record.to_dict())
    log(f"job {number} (id {job_id}): {how}; {len(lost)} case(s) recorded as error (--resume runs them again)")


def _log_new(job: Spec, out_dir: Path, before: Counter, log: Callable[[str], None]) -> Counter:
    """One line per record of the job's cases written since ``before``, as the in-process runner prints
    them; their count by status."""
    cases = {p.case.case_id: p.case for p in job.planned}
    seen: Counter = Counter()
    written: Counter = Counter()
    for data in read_records(out_dir / RESULTS_FILE).records:
        case_id = data.get("case_id")
        seen[case_id] += 1
        if case_id in cases and seen[case_id] > before[case_id]:
            log(case_line(cases[case_id], Record.from_dict(data)))
            written[data.get("status")] += 1
    return written
