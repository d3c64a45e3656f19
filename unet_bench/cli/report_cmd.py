"""`unet-bench compare` (the ablation table) and `unet-bench report` (HTML + Markdown with figures)."""

from __future__ import annotations

import argparse
import sys

from unet_bench.compare import FORMATS, compare, render
from unet_bench.errors import BenchError
from unet_bench.results import load


def _print_notes(frame) -> None:
    for note in frame.attrs.get("notes", []):
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
    frame = load(args.results)
    _print_notes(frame)
    comparison = compare(frame, args.baseline, _metrics(args.metrics))
    sys.stdout.write(render(comparison, args.format))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from unet_bench.report import write_report  # matplotlib is imported only when a report is asked for

    html_path, md_path = write_report(args.results, args.out, args.baseline)
    print(f"wrote {html_path}")
    print(f"wrote {md_path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    results_help = "results directories (each with a results.jsonl), results.jsonl or pytest-benchmark .json files"
    baseline_help = ("what to compare against: a variant (default 'paper' for one results directory) or one "
                     "of the RESULTS (default: the first, when several are given)")
    cmp = subparsers.add_parser(
        "compare", help="the ablation table: each variant against a baseline, with noise flags",
        description="Each variant against the baseline measured in the same results and setting, or two "
                    "results directories against each other (before/after, CPU vs GPU).",
    )
    cmp.add_argument("results", nargs="+", metavar="RESULTS", help=results_help)
    cmp.add_argument("--baseline", default=None, help=baseline_help)
    cmp.add_argument("--metrics", action="append", default=None, metavar="M[,M...]",
                     help="columns to compare (default: params, macs, peak_mem_bytes, latency_ms_median, "
                          "dice_mean where measured), e.g. --metrics macs,latency_ms_median")
    cmp.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    cmp.set_defaults(func=cmd_compare)

    rep = subparsers.add_parser(
        "report", help="a self-contained HTML report (and Markdown) with tables and figures",
        description="Write report.html (figures embedded), report.md and figures/*.png|svg.",
    )
    rep.add_argument("results", nargs="+", metavar="RESULTS", help=results_help)
    rep.add_argument("--out", default=None, metavar="DIR", help="where to write (default: RESULTS/report)")
    rep.add_argument("--baseline", default=None, help=baseline_help)
    rep.set_defaults(func=cmd_report)
