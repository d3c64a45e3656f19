"""`unet-bench report RESULTS...`: a self-contained HTML report and the same in Markdown, with figures."""

from __future__ import annotations

import argparse

from unet_bench.cli.compare import BASELINE_HELP, PER_IMAGE_HELP, RESULTS_HELP, print_notes


def cmd_report(args: argparse.Namespace) -> int:
    from unet_bench.analysis.report import write_report

    counters = []
    if args.counters:  # measured here, then written by the report as data
        from unet_bench.measure.counter_runs import report_reconciliations

        counters = report_reconciliations()
    html_path, md_path, notes = write_report(args.results, args.out, args.baseline, args.per_image, counters)
    print_notes(notes)
    print(f"wrote {html_path}")
    print(f"wrote {md_path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    rep = subparsers.add_parser(
        "report", help="a self-contained HTML report (and Markdown) with tables and figures",
        description="Write report.html (figures embedded), report.md and figures/*.png|svg.",
    )
    rep.add_argument("results", nargs="+", metavar="RESULTS", help=RESULTS_HELP)
    rep.add_argument("--out", default=None, metavar="DIR", help="where to write (default: RESULTS/report)")
    rep.add_argument("--baseline", default=None, help=BASELINE_HELP)
    rep.add_argument("--per-image", action="store_true", help=PER_IMAGE_HELP)
    rep.add_argument("--counters", action="store_true",
                     help="add every installed FLOP counter beside our exact count for the paper, bilinear and "
                          "additive networks at 572 (about a minute on CPU)")
    rep.set_defaults(func=cmd_report)
