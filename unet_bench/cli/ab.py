"""`unet-bench ab FILE --old ENV --new ENV`: two code versions timed in alternation on this machine, compared
round by round (`unet_bench.suite.alternate`), with an optional regression gate."""

from __future__ import annotations

import argparse
import sys

from unet_bench.cli.compare import _metrics, gate, print_notes


def cmd_ab(args: argparse.Namespace) -> int:
    from unet_bench.suite.alternate import Environment, run_alternated
    from unet_bench.suite.spec import load_spec

    threshold = None
    if args.fail_on_regression is not None:
        from unet_bench.analysis.regression import parse_threshold

        threshold = parse_threshold(args.fail_on_regression)
    old, new = Environment.parse(args.old), Environment.parse(args.new)
    spec = load_spec(args.file, device=args.device)
    out = args.out or f"results/{spec.name}-ab"
    dirs = run_alternated(spec, old, new, out, timeout_s=args.timeout, log=lambda line: print(line, flush=True))
    from unet_bench.analysis.compare import compare
    from unet_bench.analysis.results import load
    from unet_bench.analysis.tables import render

    frame = load([dirs["old"], dirs["new"]])
    comparison = compare(frame, str(dirs["old"]), _metrics(args.metrics) or ["latency_ms_median"])
    print_notes([*frame.attrs.get("notes", []), *comparison.notes])
    sys.stdout.write(render(comparison))
    return 0 if threshold is None else gate(comparison, threshold)


def register(subparsers: argparse._SubParsersAction) -> None:
    ab = subparsers.add_parser(
        "ab", help="two code versions timed in alternation on this machine, compared round by round",
        description="Runs each timed case of FILE in fresh processes of the two environments, old and new "
                    "back to back, alternating the order, and compares them round by round: a drift of the "
                    "machine falls on both alike. An environment is a Python interpreter or a checkout.",
    )
    ab.add_argument("file", metavar="FILE", help="experiment file (TOML); its infer and train cases are timed")
    ab.add_argument("--old", required=True, metavar="ENV", help="the reference: a Python interpreter or a checkout")
    ab.add_argument("--new", required=True, metavar="ENV", help="the version under test: interpreter or checkout")
    ab.add_argument("--out", default=None, metavar="DIR",
                    help="where OUT/old and OUT/new go (default results/<suite>-ab)")
    ab.add_argument("--device", default=None, help="run every case on this device (cpu | cuda)")
    ab.add_argument("--metrics", action="append", default=None, metavar="M[,M...]",
                    help="columns to compare (default latency_ms_median)")
    ab.add_argument("--timeout", type=float, default=None, metavar="S", help="seconds one process may take")
    ab.add_argument("--fail-on-regression", metavar="PCT", default=None,
                    help="exit 1 when a row is worse than PCT (e.g. 5%%) and real by the verdict rule")
    ab.set_defaults(func=cmd_ab)
