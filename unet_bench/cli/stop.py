"""SIGTERM (a scheduler's or `timeout`'s stop) ends a command as Ctrl-C does: what is finished is kept, a line
says so, and the exit status is 143 (128 + SIGTERM) instead of 130."""

from __future__ import annotations

import signal

SIGTERM_STATUS = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives; everything that handles Ctrl-C handles it."""


terminated = False


def _on_sigterm(signum: int, frame: object) -> None:
    global terminated
    terminated = True
    raise Terminated


def install() -> object:
    """Handle SIGTERM from now on; returns the handler it replaced (None off the main thread)."""
    global terminated
    terminated = False
    try:
        return signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (a test calling main from a thread): leave signals alone
        return None


def restore(previous: object) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
