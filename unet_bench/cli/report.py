"""`unet-bench report RESULTS...`: a self-contained HTML report and the same in Markdown, with figures."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from unet_bench.cli.compare import BASELINE_HELP, PER_IMAGE_HELP, RESULTS_HELP, print_notes
from unet_bench.cli.paths import default_in_current_folder, output_folder, probe_folder


def cmd_report(args: argparse.Namespace) -> int:
    out = None
    if args.out is not None:
        out = output_folder(args.out, "--out")
        existing = next(p for p in (out.absolute(), *out.absolute().parents) if os.path.lexists(p))
        if existing.is_dir():  # the folder, or the one it will be created in, takes a new file
            probe_folder(existing, "--out")  # before anything is loaded or drawn
    else:
        if all(os.path.exists(source) for source in args.results):  # else the load refuses, in one line
            first = Path(args.results[0])
            default = (first if first.is_dir() else first.parent) / "report"
            default_in_current_folder(default, "the report (report.html, report.md, figures/)")
    from unet_bench.analysis.report import write_report

    counters = []
    if args.counters:  # measured here, then written by the report as data
        from unet_bench.measure.counter_runs import report_reconciliations

        counters = report_reconciliations()
    html_path, md_path, notes = write_report(args.results, out, args.baseline, args.per_image, counters)
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
