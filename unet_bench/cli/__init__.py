"""The `unet-bench` command: one sub-command module per job, all sharing one error policy.

Any mistake in what the user asked for (a `BenchError`, or a bad argument) prints one line on stderr and
exits with status 2, without a traceback. Each module in `COMMANDS` is one command, named after it: it
adds its parser with ``register(subparsers)`` and points it at a function ``(args) -> int``, which imports
what it uses (torch, pandas, matplotlib) only when it runs, so that ``--help`` and a usage error answer
at once.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from unet_bench.cli import ab, compare, count, doctor, history, models, quality, report, run, sizes, time
from unet_bench.cli import profile as profile_command
from unet_bench.cli.paths import one_line
from unet_bench.errors import BenchError

COMMANDS = [models, sizes, count, time, run, compare, report, quality, profile_command, history, ab, doctor]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {one_line(message)} (see '{self.prog} --help')\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="unet-bench",
        description="The original UNet and its variants: what each design choice costs and buys.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    subparsers.required = True
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return args.func(args)
    except BenchError as error:
        sys.stderr.write(f"unet-bench {args.command}: error: {one_line(error)}\n")
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: the reader has all it wants
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        sys.stderr.write(f"unet-bench {args.command}: interrupted\n")
        return 130


def _one_line_warning(message: Warning | str, category: type, filename: str, lineno: int, file: object = None,
                      line: str | None = None) -> None:
    """A warning is one line on stderr, like an error: what is wrong and what it means."""
    sys.stderr.write(f"unet-bench: warning: {message}\n")
