"""`unet-bench history RESULTS...`: a metric across runs, in commit or time order, each point with its interval."""

from __future__ import annotations

import argparse

from unet_bench.cli.compare import RESULTS_HELP, print_notes

ORDERS = ("commit", "time")  # as unet_bench.analysis.history.ORDERS (that module imports pandas)


def cmd_history(args: argparse.Namespace) -> int:
    from unet_bench.analysis.history import history, history_text, plot_history
    from unet_bench.analysis.results import load

    frame = load(args.results)
    result = history(frame, args.metric, args.order, args.repo)
    print_notes([*frame.attrs.get("notes", []), *result.notes])
    print(history_text(result), end="")
    print(f"wrote {plot_history(result, args.out)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    his = subparsers.add_parser(
        "history", help="a metric across runs (results directories) in commit or time order, with intervals",
        description="Plot one metric of every case across several runs, each results directory one point, "
                    "ordered by the git commit the records carry (this repository's history) or by time. "
                    "Each point carries its interval: 95 %% over repeats, or the timed blocks' p25-p75 for a "
                    "single repeat.",
    )
    his.add_argument("results", nargs="+", metavar="RESULTS", help=RESULTS_HELP)
    his.add_argument("--metric", default="latency_ms_median",
                     help="the column to follow (default latency_ms_median), e.g. images_per_s, peak_mem_bytes")
    his.add_argument("--order", choices=ORDERS, default="commit",
                     help="commit: along this repository's history (default); time: when each run was measured")
    his.add_argument("--repo", default=".", metavar="DIR", help="the git checkout whose history orders commits")
    his.add_argument("--out", default="history.png", metavar="FILE", help="the figure (.png, .svg or .pdf)")
    his.set_defaults(func=cmd_history)
