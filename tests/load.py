"""A competing load started and stopped by a test: a second process spinning one core, the way a busy
neighbour loads a shared machine, so that what the verdicts promise is checked under load on purpose."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager


def _spin() -> None:
    while True:
        pass


@contextmanager
def competing_load() -> Iterator[None]:
    """A process spinning one core for the duration of the block."""
    process = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
    process.start()
    try:
        yield
    finally:
        process.kill()
        process.join()
