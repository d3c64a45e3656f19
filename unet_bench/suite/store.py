"""A results directory on disk: ``results.jsonl`` appended durably, read back tolerantly, and a lock.

Only the runner writes here (everything below it returns records). One record per line, each line
flushed and fsynced before the next case starts, so a run killed at any moment loses at most the line it
was writing; reading tolerates exactly that (a partial last line) and reports it. Several processes may
append to one file at once (the jobs of a suite on a cluster): each line is written under an exclusive
lock on the file (flock, which NFS emulates with a byte-range lock), so no line is torn or interleaved.

Both files are opened without following a symbolic link and refused unless they are regular files of
one link: a results folder that was shared, copied or unpacked may carry links, and writing through one
would change a file outside the folder. Nothing here truncates a file that holds no record of its own.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unet_bench.errors import BenchError

RESULTS_FILE = "results.jsonl"
LOCK_FILE = ".lock"
_MOVE_IT = "move it away, or write to another directory with --out"


class WriteError(Exception):
    """A record could not be written (disk full, permissions changed mid-run): the run stops there."""


@dataclass
class ReadBack:
    """What a results file holds: its records, and the partial last line left out (if any)."""

    records: list[dict[str, Any]]
    partial_line_bytes: int = 0  # bytes of a last line cut short by a kill mid-write, left out
    good_bytes: int = 0  # length of the file up to the end of its last complete line
    ends_with_newline: bool = True  # False when the last record lacks its newline


def read_records(path: str | Path) -> ReadBack:
    """Every record of a ``results.jsonl``; a partial last line is left out and counted, never fatal.

    A line that is not a JSON object anywhere else is a corrupt file, refused naming the line; so is a
    path that is not a regular file (a folder, a pipe) or cannot be read.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a pipe must not block the open
    except FileNotFoundError:
        return ReadBack([])
    except OSError as error:
        raise BenchError(f"{path}: cannot read it: {error.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BenchError(f"{path} is not a regular file; a results file is one")
        return _parse_records(path, _read_all(fd))
    except OSError as error:
        raise BenchError(f"{path}: cannot read it: {error.strerror}") from None
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_records(path: Path, data: bytes) -> ReadBack:
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
        return ReadBack(records, good_bytes=len(data), ends_with_newline=False)
    return ReadBack(records, good_bytes=good)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def prepare_dir(directory: str | Path, kind: str = "results") -> Path:
    """Create an output folder (and its parents), or refuse in one line when it cannot be written: before a
    run or a report starts, not after its first case or figure. ``kind`` names it in the message."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise BenchError(f"{directory} is a file, not a folder; give --out a folder (it is created if missing)") \
            from None
    except OSError as error:
        raise BenchError(f"{directory}: cannot create the {kind} folder: {error.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise BenchError(f"{directory} is not writable; give --out a folder you can write to")
    return directory


def _open_own(path: Path, flags: int, what: str) -> int:
    """Open (or create) a file this tool writes: never through a symbolic link, only a regular file
    with no other hard link (writing would change that other name's content too)."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise BenchError(f"{path} is a symbolic link; {what} is never written through a link: "
                             f"{_MOVE_IT}") from None
        if error.errno in (errno.EISDIR, errno.ENXIO, errno.ENODEV):
            raise BenchError(f"{path} is not a regular file, so it cannot be {what}: {_MOVE_IT}") from None
        raise BenchError(f"{path}: cannot write it: {error.strerror}") from None
    info = os.fstat(fd)
    problem = ("is not a regular file" if not stat.S_ISREG(info.st_mode)
               else f"has {info.st_nlink - 1} other hard link(s)" if info.st_nlink > 1 else None)
    if problem:
        os.close(fd)
        raise BenchError(f"{path} {problem}, so it cannot be {what}: {_MOVE_IT}")
    return fd


class ResultsWriter:
    """Appends records to ``results.jsonl``, each on disk (flushed and fsynced) before `append` returns.

    ``back`` is what the file held when opened. A partial last line (a run killed mid-write) is cut off,
    and a missing final newline added, only when a record is appended, and only in a file that holds
    records: a file holding bytes but no record was not written by this tool and is refused. Each append
    holds an exclusive lock on the file, so writers in several processes never tear each other's lines.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fd = _open_own(self.path, os.O_RDWR | os.O_APPEND, "the results file")
        try:
            self.back = _parse_records(self.path, _read_all(self.fd))
        except (BenchError, OSError) as error:
            os.close(self.fd)
            if isinstance(error, OSError):
                raise BenchError(f"{self.path}: cannot read it: {error.strerror}") from None
            raise
        if self.back.partial_line_bytes and not self.back.records:
            os.close(self.fd)
            raise BenchError(f"{self.path} holds no record, only {self.back.partial_line_bytes} bytes that are "
                             f"not one; it is not a results file of this tool: {_MOVE_IT}")

    def _end_on_a_line(self) -> None:
        """Make the file end where a line ends, so the next record starts a line of its own. Read at each
        append, under the lock: another process may have appended since this one opened the file, and a
        partial last line then is one whose writer died mid-line (a live writer holds the lock)."""
        size = os.fstat(self.fd).st_size
        if size == 0 or os.pread(self.fd, 1, size - 1) == b"\n":
            return
        start = _last_line_start(self.fd, size)
        if _parse(os.pread(self.fd, size - start, start)) is None:
            os.ftruncate(self.fd, start)
        else:  # a complete record that lacks its newline
            os.write(self.fd, b"\n")

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, default=str) + "\n").encode()
        # Ctrl-C (or SIGTERM) waits until the line is whole and on disk
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)  # other processes appending to the same file wait
            try:
                self._end_on_a_line()
                view = memoryview(line)
                while view:
                    view = view[os.write(self.fd, view):]
                os.fsync(self.fd)
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        except OSError as error:
            raise WriteError(f"cannot write {self.path}: {error.strerror}") from None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _last_line_start(fd: int, size: int, chunk: int = 1 << 16) -> int:
    """Offset just past the last newline of the file's first ``size`` bytes (0 if it has none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        found = os.pread(fd, end - start, start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        end = start
    return 0


@contextmanager
def locked(directory: str | Path, name: str = LOCK_FILE) -> Iterator[None]:
    """Hold ``directory``'s lock for the duration, or refuse at once if another live run holds it.

    ``name``: the lock file; one share of a suite (a shard) locks its own, so that the shares of one suite
    can write one folder at once.

    An flock: the kernel releases it when its process dies however it dies, so a lock left by a killed run
    is never in the way (its file is reused, then removed when this run ends). A lock file that holds
    anything but a pid was not written by this tool and is refused, not overwritten.
    """
    path = Path(directory) / name
    while True:
        fd = _open_own(path, os.O_RDWR, "a lock file")
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
            if os.fstat(fd).st_ino == os.lstat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        left = os.read(fd, 64)
        if left.strip() and not left.strip().isdigit():
            raise BenchError(f"{path} holds something other than a run's pid; it is not a lock of this tool: "
                             f"{_MOVE_IT}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _read_pid(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return int(os.read(fd, 64).strip())
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
