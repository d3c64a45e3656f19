"""A results directory on disk: ``results.jsonl`` appended durably, read back tolerantly, and a lock.

Only the runner writes here (everything below it returns records). One record per line, each line
flushed and fsynced before the next case starts, so a run killed at any moment loses at most the line it
was writing; reading tolerates exactly that (a partial last line) and reports it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unet_bench.errors import BenchError

RESULTS_FILE = "results.jsonl"
LOCK_FILE = ".lock"


@dataclass
class ReadBack:
    """What a results file holds: its records, and the partial last line left out (if any)."""

    records: list[dict[str, Any]]
    partial_line_bytes: int = 0  # bytes of a last line cut short by a kill mid-write, left out
    good_bytes: int = 0  # length of the file up to the end of its last complete line


def read_records(path: str | Path) -> ReadBack:
    """Every record of a ``results.jsonl``; a partial last line is left out and counted, never fatal.

    A line that is not a JSON object anywhere else is a corrupt file, refused naming the line.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ReadBack([])
    records: list[dict[str, Any]] = []
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _parse(line)
        if record is None:
            raise BenchError(f"{path}: line {number} is not a JSON record; "
                             "remove or fix that line and try again")
        records.append(record)
    good = len(data) - len(tail)
    if tail.strip():
        record = _parse(tail)
        if record is None:
            return ReadBack(records, partial_line_bytes=len(tail), good_bytes=good)
        records.append(record)  # complete but for its newline
        good = len(data)
    return ReadBack(records, good_bytes=good)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


class ResultsWriter:
    """Appends records to ``results.jsonl``, each on disk (flushed and fsynced) before `append` returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        back = read_records(self.path)
        self.file = self.path.open("ab")
        if back.partial_line_bytes:  # drop the partial line so the next record starts a line of its own
            self.file.truncate(back.good_bytes)
        elif back.good_bytes and not self.path.read_bytes().endswith(b"\n"):
            self.file.write(b"\n")

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, default=str) + "\n").encode()
        # Ctrl-C (or SIGTERM) waits until the line is whole and on disk
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            self.file.write(line)
            self.file.flush()
            os.fsync(self.file.fileno())
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def locked(directory: str | Path) -> Iterator[None]:
    """Hold ``directory``'s lock for the duration, or refuse at once if another live run holds it.

    An flock: the kernel releases it when its process dies however it dies, so a lock left by a killed run
    is never in the way (its file is reused, then removed when this run ends).
    """
    path = Path(directory) / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            owner = _read_pid(path)
            raise BenchError(
                f"{directory} is in use by another run{f' (pid {owner})' if owner else ''}; "
                "wait for it to finish, or write to another directory with --out"
            ) from None
        try:  # the file we locked may have been removed by a run ending meanwhile: then lock the new one
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
