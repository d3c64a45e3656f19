"""User-facing errors.

Anything a user can get wrong (a variant name, a config key, an input size, an experiment file) raises a
subclass of :class:`BenchError`. Its message is one line that says what was wrong and what would be
valid; the CLI prints exactly that line and exits with status 2, never a traceback.
"""

from __future__ import annotations


class BenchError(ValueError):
    """A mistake in what the user asked for, with a one-line message naming the valid choices."""


class InvalidInputSizeError(BenchError):
    """An input size the network cannot take (raised before any convolution runs)."""


class UnsupportedError(BenchError):
    """A network that does not export to, or load in, a deployment runtime: a result (status
    ``unsupported``), not a crash."""


def first_line(error: BaseException) -> str:
    """``Type: first line of its message``: what a record or an error line says of an exception."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def choices(values) -> str:
    """Format the valid choices for an error message: ``'a', 'b', 'c'``."""
    return ", ".join(repr(v) for v in values)
