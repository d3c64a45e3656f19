"""`unet-bench run FILE`: the main job — run an experiment file's cases unattended, or list them."""

from __future__ import annotations

import argparse
from pathlib import Path

from unet_bench.errors import BenchError
from unet_bench.record import DEVICES
from unet_bench.suite.checks import MEMORY_LIMIT_GB, TIMEOUT_S, as_argument


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
    """The smallest Dice difference this run's seeds can tell apart, in one line."""
    from unet_bench.analysis.compare import compare
    from unet_bench.analysis.results import load
    from unet_bench.analysis.tables import seed_noise_line

    try:
        noise = compare(load([out_dir]), metrics=["dice_mean"]).seed_noise
    except BenchError as error:
        return f"no Dice spread to report: {error}"
    return "\n".join(seed_noise_line(source, *found) for source, found in noise.items())


def cmd_run(args: argparse.Namespace) -> int:
    from unet_bench.suite.spec import load_spec

    spec = load_spec(args.file, device=args.device, cpu_memory_limit_gb=args.cpu_memory_limit)
    if args.retry_oom and not args.resume:
        raise BenchError("--retry-oom goes with --resume (it runs again the cases a run recorded 'oom')")
    from unet_bench.suite import runner  # torch and the measurement code, once the file is known good
    from unet_bench.suite.resume import done_in_folder
    from unet_bench.suite.store import prepare_dir
    from unet_bench.suite.summary import describe

    out_dir = runner.results_dir(spec, args.out)
    if args.dry_run:
        print_plan(spec, done_in_folder(spec, out_dir, args.retry_oom) if args.resume else {})
        print(f"# results would go to {out_dir}/results.jsonl")
        return 0
    reasons = {runner.unavailable(p.case) for p in spec.planned}
    if None not in reasons:
        raise BenchError(f"no case of {spec.name} can run on this machine: {'; '.join(sorted(reasons))}")
    prepare_dir(out_dir)
    cost = _duration(spec.cost_s)
    print(f"{spec.name}: {len(spec.planned)} cases -> {out_dir}/results.jsonl (predicted ~{cost})")
    summary = runner.run_suite(spec, out_dir, resume=args.resume, retry_oom=args.retry_oom, timeout_s=args.timeout)
    print(describe(summary))
    if any(p.case.mode == "quality" for p in spec.planned) and summary.written["ok"]:
        print(_seed_noise(out_dir))
    if not summary.interrupted:
        print(f"next: unet-bench compare {out_dir}  ·  unet-bench report {out_dir}")
    return summary.exit_code


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
    run.add_argument("--cpu-memory-limit", type=as_argument(MEMORY_LIMIT_GB, float), default=None, metavar="GB",
                     help="resident-memory (peak RSS) limit of each CPU case's process, in GiB (going over "
                          "stops the case and records 'oom')")
    run.add_argument("--timeout", type=as_argument(TIMEOUT_S, float), default=None, metavar="S",
                     help="stop a case after S seconds and record it as an error")
    run.set_defaults(func=cmd_run)
