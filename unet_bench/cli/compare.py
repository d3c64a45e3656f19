"""`unet-bench compare RESULTS...`: the ablation table, each variant against a baseline, with verdicts."""

from __future__ import annotations

import argparse
import sys

from unet_bench.analysis.formats import BY, FORMATS
from unet_bench.errors import BenchError

RESULTS_HELP = "results directories (each with a results.jsonl), results.jsonl or pytest-benchmark .json files"
PER_IMAGE_HELP = ("latency, MACs and throughput per image even where the compared outputs differ in size "
                  "(default there: per output pixel)")
BASELINE_HELP = ("what to compare against: a variant (default 'paper' for one results directory) or one "
                 "of the RESULTS (default: the first, when several are given); with --by runtime, a runtime "
                 "(default torch)")


def print_notes(notes: list[str]) -> None:
    """Lines worth seeing even when stdout goes to a file: partial lines left out, pairing, load."""
    for note in notes:
        sys.stderr.write(f"note: {note}\n")


def _metrics(text: list[str] | None) -> list[str] | None:
    """``--metrics a,b --metrics c`` → ``[a, b, c]``."""
    if not text:
        return None
    names = [name.strip() for item in text for name in item.split(",") if name.strip()]
    if not names:
        raise BenchError("--metrics is empty; name at least one metric, e.g. --metrics latency_ms_median")
    return names


def cmd_compare(args: argparse.Namespace) -> int:
    from unet_bench.analysis.compare import compare
    from unet_bench.analysis.results import load
    from unet_bench.analysis.tables import render

    threshold = None
    if args.fail_on_regression is not None:
        from unet_bench.analysis.regression import parse_threshold

        threshold = parse_threshold(args.fail_on_regression)
    frame = load(args.results)
    comparison = compare(frame, args.baseline, _metrics(args.metrics), per_image=args.per_image, by=args.by)
    if threshold is not None and not comparison.by_source:
        raise BenchError("--fail-on-regression compares a new run with an old one: give two different results "
                         "directories, OLD then NEW (and no variant as --baseline)")
    print_notes([*frame.attrs.get("notes", []), *comparison.notes])
    sys.stdout.write(render(comparison, args.format))
    return 0 if threshold is None else gate(comparison, threshold)


def gate(comparison, threshold: float) -> int:
    """--fail-on-regression: the offending rows on stderr and status 1, else a line saying what passed."""
    from unet_bench.analysis.regression import blind_rows, regressions

    found = regressions(comparison, threshold)
    for regression in found:
        sys.stderr.write(f"regression: {regression.describe(threshold)}\n")
    blind = blind_rows(comparison)
    unjudged = f"; {blind} row(s) had too few repeats for a verdict" if blind else ""
    if found:
        sys.stderr.write(f"{len(found)} regression(s) worse than {threshold:.1%} and real by the verdict rule"
                         f"{unjudged}\n")
        return 1
    sys.stderr.write(f"no regression worse than {threshold:.1%}: every change is within noise, smaller or "
                     f"better{unjudged}\n")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    cmp = subparsers.add_parser(
        "compare", help="the ablation table: each variant against a baseline, with verdicts",
        description="Each variant against the baseline at the same grid point of the same results, or two "
                    "results directories against each other (before/after, CPU vs GPU). Each change comes "
                    "with a 95 %% confidence interval over independent repeats; it is real only when the "
                    "interval excludes zero (3 repeats or more a side).",
    )
    cmp.add_argument("results", nargs="+", metavar="RESULTS", help=RESULTS_HELP)
    cmp.add_argument("--baseline", default=None, help=BASELINE_HELP)
    cmp.add_argument("--by", choices=BY, default="variant",
                     help="variant: each variant against the baseline variant (default); runtime: each row against "
                          "the same variant at the same grid point and setting under the baseline runtime (latency "
                          "per output pixel, error against eager torch, export time and model size by default)")
    cmp.add_argument("--metrics", action="append", default=None, metavar="M[,M...]",
                     help="columns to compare, shown as named (default: params, macs, peak_mem_bytes, "
                          "latency_ms_median, dice_mean where measured, per output pixel where the compared "
                          "outputs differ), e.g. --metrics macs,latency_ms_per_output_mpix")
    cmp.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    cmp.add_argument("--per-image", action="store_true", help=PER_IMAGE_HELP)
    cmp.add_argument("--fail-on-regression", metavar="PCT", default=None,
                     help="exit 1 when a row is worse than PCT (e.g. 5%%) and the change is real by the verdict "
                          "rule, printing those rows on stderr; 0 when every change is within noise or better")
    cmp.set_defaults(func=cmd_compare)
