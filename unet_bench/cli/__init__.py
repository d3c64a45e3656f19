"""The `unet-bench` command: one sub-command module per job, all sharing one error policy.

Any mistake in what the user asked for (a `BenchError`, or a bad argument) prints one line on stderr and
exits with status 2, without a traceback. Each module in `COMMANDS` is one command, named after it: it
adds its parser with ``register(subparsers)`` and points it at a function ``(args) -> int``, which imports
what it uses (torch, pandas, matplotlib) only when it runs, so that ``--help`` and a usage error answer
at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Sequence

from unet_bench.cli import ab, compare, count, doctor, history, models, quality, quiet, report, run, sizes, stop, time
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
    parser.add_argument("--verbose", action="store_true",
                        help="show every warning and library notice (by default those that say nothing about "
                             "the command are left out: see unet_bench/cli/quiet.py)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    subparsers.required = True
    for module in COMMANDS:
        module.register(subparsers)
    return parser


NATIVE_NOISY = {"time", "profile", "run", "ab", "doctor"}  # commands that run torch's profiler (or its cases)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = stop.install()
    try:
        with warnings.catch_warnings(), contextlib.ExitStack() as stack:
            warnings.showwarning = _one_line_warning
            if args.verbose:
                warnings.simplefilter("default")  # every warning once per place, deprecations included
            else:
                quiet.install()
                if args.command in NATIVE_NOISY:
                    stack.enter_context(quiet.native_stderr_filtered())
            status = args.func(args)
            sys.stdout.flush()  # a full disk or a closed pipe is reported here, not lost at exit
    except BenchError as error:
        sys.stderr.write(f"unet-bench {args.command}: error: {one_line(error)}\n")
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: the reader has all it wants
        _drop_stdout()
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return _interrupted(args.command)
    except OSError as error:  # writing the output failed (a full disk): say so where it can still be read
        if error.filename is not None:
            raise
        _drop_stdout()
        sys.stderr.write(f"unet-bench {args.command}: error: cannot write the output: {error.strerror or error}\n")
        return 1
    finally:
        stop.restore(previous)
    if status == 130 and stop.terminated:  # `run` kept its records and said it was interrupted
        sys.stderr.write(f"unet-bench {args.command}: stopped by SIGTERM; every finished record is kept\n")
        return stop.SIGTERM_STATUS
    return status


def _interrupted(command: str) -> int:
    if stop.terminated:
        sys.stderr.write(f"unet-bench {command}: stopped by SIGTERM\n")
        return stop.SIGTERM_STATUS
    sys.stderr.write(f"unet-bench {command}: interrupted\n")
    return 130


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail a second time."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _one_line_warning(message: Warning | str, category: type, filename: str, lineno: int, file: object = None,
                      line: str | None = None) -> None:
    """A warning is one line on stderr, like an error: what is wrong and what it means."""
    sys.stderr.write(f"unet-bench: warning: {message}\n")
