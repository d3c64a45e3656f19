"""`unet-bench history RESULTS...`: a metric across runs, in commit or time order, each point with its interval."""

from __future__ import annotations

import argparse

from unet_bench.cli.compare import RESULTS_HELP, print_notes
from unet_bench.cli.paths import default_in_current_folder, output_file, shorten
from unet_bench.errors import BenchError

ORDERS = ("commit", "time")  # as unet_bench.analysis.history.ORDERS (that module imports pandas)


FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
DEFAULT_OUT = "history.png"


def cmd_history(args: argparse.Namespace) -> int:
    out = output_file(args.out or DEFAULT_OUT, "--out", FIGURE_SUFFIXES, DEFAULT_OUT)
    from unet_bench.analysis.history import history, history_text, plot_history
    from unet_bench.analysis.results import load

    frame = load(args.results)
    result = history(frame, args.metric, args.order, args.repo)
    if args.out is None:  # named before anything is written (after the inputs are known good: a refusal is one line)
        default_in_current_folder(out, "the figure")
    print_notes([*frame.attrs.get("notes", []), *result.notes])
    print(history_text(result), end="")
    if out.is_symlink():  # made a link while the history was computed
        raise BenchError(f"--out {shorten(out)} is a symbolic link; unet-bench never writes through a link")
    print(f"wrote {plot_history(result, out)}")
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
    his.add_argument("--out", default=None, metavar="FILE",
                     help=f"the figure (.png, .svg or .pdf; DIR/ writes DIR/{DEFAULT_OUT}; default ./{DEFAULT_OUT}, "
                          "named on stderr first)")
    his.set_defaults(func=cmd_history)
