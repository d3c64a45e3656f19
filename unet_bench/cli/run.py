"""`unet-bench run FILE`: the main job — run an experiment file's cases unattended, or list them."""

from __future__ import annotations

import argparse
from pathlib import Path

from unet_bench.errors import BenchError
from unet_bench.record import DEVICES, RUNTIMES
from unet_bench.suite.checks import MEMORY_LIMIT_GB, TIMEOUT_S, as_argument, integer

EXECUTORS = ("process", "local", "slurm")  # process: today's in-process runner; the others through submitit
GPUS = integer(0, 64, "GPUs a job may ask for")
CASES_PER_JOB = integer(1, 100_000, "the most cases a suite holds, roughly")
TIME_LIMIT_MIN = integer(1, 365 * 24 * 60, "minutes in a year")


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def print_plan(spec, done: dict[str, str]) -> None:
    """--dry-run: every case in run order with its predicted cost (and whether --resume would skip it)."""
    print(f"# {spec.name}: {spec.description}")
    width = max((len(p.case.label) for p in spec.planned), default=0)
    for index, planned in enumerate(spec.planned, start=1):
        note = f"  (max-batch search up to {planned.max_batch})" if planned.max_batch else ""
        if planned.case.case_id in done and not planned.max_batch:
            note += f"  done ({done[planned.case.case_id]})"
        print(f"{index:4d}  {planned.case.label:<{width}}  ~{_duration(planned.cost_s):>6}{note}")
    todo = [p for p in spec.planned if p.max_batch or p.case.case_id not in done]
    extra = f", {spec.duplicates} duplicate cases dropped" if spec.duplicates else ""
    cost = _duration(sum(p.cost_s for p in todo))
    print(f"# {len(spec.planned)} cases{extra}; {len(todo)} to run, predicted ~{cost}"
          " (a rough guess from FLOPs; the progress bar's ETA corrects it as cases finish)")


def _seed_noise(out_dir: Path) -> str:
    """The smallest Dice (and object F1, Rand error) difference this run's seeds can tell apart, in one line."""
    from unet_bench.analysis.compare import available_metrics, compare
    from unet_bench.analysis.results import load
    from unet_bench.analysis.samples import INSTANCE_NOISE
    from unet_bench.analysis.tables import seed_noise_line

    try:
        frame = load([out_dir])
        measured = available_metrics(frame)
        comparison = compare(frame, metrics=[m for m in ("dice_mean", *INSTANCE_NOISE) if m in measured])
    except BenchError as error:
        return f"no Dice spread to report: {error}"
    return "\n".join(seed_noise_line(source, *found, comparison.instance_noise.get(source))
                     for source, found in comparison.seed_noise.items())


def _timing_noise(out_dir: Path) -> str:
    """The smallest latency change this run can tell, unpaired and paired in process, and how far its
    control moved during the run."""
    from unet_bench.analysis.compare import compare
    from unet_bench.analysis.results import load
    from unet_bench.analysis.tables import noise_line, paired_noise_line

    try:
        comparison = compare(load([out_dir]), metrics=["latency_ms_median"])
    except BenchError as error:
        return f"no latency spread to report: {error}"
    lines = [noise_line(source, *found) for source, found in comparison.noise.items()]
    lines += [paired_noise_line(source, *found) for source, found in comparison.paired_noise.items()]
    return "\n".join(lines + comparison.machine)


def cmd_run(args: argparse.Namespace) -> int:
    from unet_bench.suite import shard
    from unet_bench.suite.spec import load_spec

    sharded = shard.parse_shard(args.shard) if args.shard else None  # before the file: a quick one-line error
    spec = load_spec(args.file, device=args.device, cpu_memory_limit_gb=args.cpu_memory_limit, runtime=args.runtime)
    if args.retry_oom and not args.resume:
        raise BenchError("--retry-oom goes with --resume (it runs again the cases a run recorded 'oom')")
    share = shard.lock_name(*sharded) if sharded else None
    if sharded:
        spec = shard.shard_spec(spec, *sharded)
    refuse_a_limit_nothing_fits(spec, "--cpu-memory-limit" if args.cpu_memory_limit is not None
                                else "cpu_memory_limit_gb")
    from unet_bench.suite import runner  # torch and the measurement code, once the file is known good
    from unet_bench.suite.progress import describe
    from unet_bench.suite.resume import done_in_folder
    from unet_bench.suite.store import prepare_dir

    out_dir = runner.results_dir(spec, args.out)
    options = job_options(args)
    if args.dry_run:
        done = done_in_folder(spec, out_dir, args.retry_oom) if args.resume else {}
        print_plan(spec, done)
        if options is not None:
            from unet_bench.suite.executors import describe_jobs, plan_jobs

            print("\n".join(describe_jobs(spec, plan_jobs(spec, done, options.cases_per_job), options)))
        print(f"# results would go to {out_dir}/results.jsonl")
        return 0
    reasons = {runner.unavailable(p.case) for p in spec.planned}
    if None not in reasons:
        raise BenchError(f"no case of {spec.name} can run on this machine: {'; '.join(sorted(reasons))}")
    prepare_dir(out_dir)
    cost = _duration(spec.cost_s)
    print(f"{spec.name}: {len(spec.planned)} cases -> {out_dir}/results.jsonl (predicted ~{cost})")
    if options is None:
        summary = runner.run_suite(spec, out_dir, resume=args.resume, retry_oom=args.retry_oom,
                                   timeout_s=args.timeout, share=share)
    else:
        from unet_bench.suite.executors import run_on_executor

        summary = run_on_executor(spec, out_dir, options, resume=args.resume, retry_oom=args.retry_oom,
                                  timeout_s=args.timeout, share=share)
    print(describe(summary))
    if any(p.case.mode == "quality" for p in spec.planned) and summary.written["ok"]:
        print(_seed_noise(out_dir))
    if any(p.case.mode in ("infer", "train") for p in spec.planned) and summary.written["ok"]:
        print(_timing_noise(out_dir))
    if not summary.interrupted:
        print(f"next: unet-bench compare {out_dir}  ·  unet-bench report {out_dir}")
    return summary.exit_code


PROCESS_FLOOR_GB = 0.25  # a case's own process with torch imported, before any network (about 220 MiB here)


def refuse_a_limit_nothing_fits(spec, flag: str) -> None:
    """Refuse a CPU memory limit under which no CPU case could run (each would be recorded 'oom' unrun):
    below a case process's own floor, or below every CPU case's memory floor. Says why and what would do."""
    limit = spec.cpu_memory_limit_gb
    cases = [p.case for p in spec.planned if p.case.device == "cpu"]
    if limit is None or not cases:
        return
    if limit < PROCESS_FLOOR_GB:
        raise BenchError(f"{flag} {limit:g} GiB is below what any case needs: a case's process takes about "
                         f"{PROCESS_FLOOR_GB:g} GiB with torch imported, before any network; give at least "
                         f"{PROCESS_FLOOR_GB:g}")
    from unet_bench.models.footprint import why_case_cannot_fit

    reasons = []
    for case in cases:
        why = why_case_cannot_fit(case, limit)
        if why is None:
            return
        reasons.append((case.label, why))
    label, why = reasons[0]
    raise BenchError(f"{flag} {limit:g} GiB is below what any case of {spec.name} needs ({label}: {why}); "
                     "raise the limit")


def job_options(args: argparse.Namespace):
    """The executor's options from the command line; None for the default in-process runner."""
    from unet_bench.suite.executors import DEFAULT_TIME_LIMIT_MIN, JobOptions

    flags = {"--partition": args.partition, "--gpus-per-job": args.gpus_per_job, "--time-limit": args.time_limit,
             "--cases-per-job": args.cases_per_job, "--jobs-at-once": args.jobs_at_once}
    if args.executor == "process":
        given = [flag for flag, value in flags.items() if value is not None]
        if given:
            raise BenchError(f"{given[0]} goes with --executor local or slurm (the default runs every case here)")
        return None
    return JobOptions(args.executor, args.partition, args.gpus_per_job,
                      args.time_limit if args.time_limit is not None else DEFAULT_TIME_LIMIT_MIN,
                      args.cases_per_job or 1, args.jobs_at_once)


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run", help="run an experiment file's cases, appending each record to results/<suite>/results.jsonl",
        description="Run every case of an experiment file, one at a time in a process of its own. Each "
        "finished case is appended at once to DIR/results.jsonl; Ctrl-C keeps what is done and --resume "
        "finishes the rest. Exit status: 0 done, 1 some case ended in error, 2 bad input, 130 interrupted.",
    )
    run.add_argument("file", metavar="FILE", help="an experiment file, e.g. experiments/default.toml")
    run.add_argument("--out", metavar="DIR", default=None,
                     help="results directory (default: results/<suite name>)")
    run.add_argument("--resume", action="store_true",
                     help="skip the cases DIR already records as ok (or oom: see --retry-oom)")
    run.add_argument("--retry-oom", action="store_true",
                     help="with --resume: run again the cases recorded oom (after raising --cpu-memory-limit)")
    run.add_argument("--dry-run", action="store_true",
                     help="list the cases and their predicted cost; run nothing")
    run.add_argument("--device", choices=DEVICES, default=None, help="run every case on this device instead")
    run.add_argument("--runtime", choices=RUNTIMES, default=None,
                     help="run every inference case on this runtime instead of the file's runtimes")
    run.add_argument("--cpu-memory-limit", type=as_argument(MEMORY_LIMIT_GB, float), default=None, metavar="GB",
                     help="resident-memory (peak RSS) limit of each CPU case's process, in GiB (going over "
                          "stops the case and records 'oom')")
    run.add_argument("--timeout", type=as_argument(TIMEOUT_S, float), default=None, metavar="S",
                     help="stop a case after S seconds and record it as an error")
    run.add_argument("--shard", metavar="I/N", default=None,
                     help="run share I of N of the cases (1-based, every N-th case from the I-th): for job arrays; "
                          "shares may write one --out folder at once")
    jobs = run.add_argument_group("jobs", "run the cases as jobs through submitit (pip install "
                                  "'unet-bench[cluster]'); the command waits for them")
    jobs.add_argument("--executor", choices=EXECUTORS, default="process",
                      help="process: every case here, one process each (default); local: jobs as local processes; "
                           "slurm: a SLURM job array")
    jobs.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's)")
    jobs.add_argument("--gpus-per-job", type=as_argument(GPUS), default=None, metavar="G",
                      help="GPUs each job asks for (default: 1 when the suite has CUDA cases, else 0)")
    jobs.add_argument("--time-limit", type=as_argument(TIME_LIMIT_MIN), default=None, metavar="MIN",
                      help="minutes a job may run (default 60); a job past it is stopped and its unrecorded "
                           "cases are recorded as errors")
    jobs.add_argument("--cases-per-job", type=as_argument(CASES_PER_JOB), default=None, metavar="N",
                      help="cases each job runs, one after the other (default 1)")
    jobs.add_argument("--jobs-at-once", type=as_argument(CASES_PER_JOB), default=None, metavar="N",
                      help="jobs running at the same time (default: 1 for local, every job for slurm)")
    run.set_defaults(func=cmd_run)
