"""Where a command writes: one rule for every file and folder it creates, checked before any work starts.

- A file the tool writes is never reached through a symbolic link: a link there is refused (it could point
  anywhere, e.g. into a copied results folder), and so is anything there that is not a regular file.
- A folder that is a link is followed, and a note on stderr says where it leads.
- A name ending in ``/`` (or naming an existing folder) is a folder: the file goes inside it, under the
  command's own file name (``profile --plot DIR/`` writes ``DIR/roofline.png``).
- The folder must exist and take a new file: it is tried with a file created and removed at once, since
  permission bits say nothing for root and nothing about a read-only mount or ``/proc``.
- Output that goes to the current folder because no path was given is named on stderr before any work.

A write that fails after a measurement keeps the measurement (it is printed first) and says where it is:
see `write_failed`. Nothing here imports torch, pandas or matplotlib.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from unet_bench.errors import BenchError

MAX_SHOWN = 200  # characters of a user's path or name quoted in a message


def shorten(text: object, most: int = MAX_SHOWN) -> str:
    """``text`` as a message quotes it: at most ``most`` characters, the middle cut out and counted."""
    text = str(text)
    if len(text) <= most:
        return text
    keep = (most - 20) // 2
    return f"{text[:keep]}...({len(text) - 2 * keep:,} characters)...{text[-keep:]}"


def one_line(message: object) -> str:
    """A message as the command prints it: on one line, each very long word (a 20,000-character name, a
    pasted path) shortened by `shorten`."""
    text = " ".join(str(message).split("\n")).strip()
    return re.sub(rf"\S{{{MAX_SHOWN + 1},}}", lambda match: shorten(match[0]), text)


def note(message: str) -> None:
    sys.stderr.write(f"note: {message}\n")


def is_folder_text(text: str) -> bool:
    """A trailing slash means a folder, whether or not it exists yet."""
    return text.endswith(("/", os.sep))


def _resolved_folder(folder: Path, flag: str) -> Path:
    """``folder``, refused unless it is an existing folder; a link is followed and said so."""
    shown = shorten(folder)
    if folder.is_symlink():
        target = folder.resolve()
        if not target.is_dir():
            raise BenchError(f"{flag} {shown}: the folder is a symbolic link to {shorten(target)}, which is not "
                             "a folder; name an existing folder")
        note(f"{flag}: {shown} is a symbolic link; writing into {shorten(target)}")
        return target
    if not folder.exists():
        raise BenchError(f"{flag}: folder {shown} does not exist; create it first or name an existing folder")
    if not folder.is_dir():
        raise BenchError(f"{flag}: {shown} is not a folder; name a file inside an existing folder")
    return folder


def probe_folder(folder: Path, flag: str) -> None:
    """Refuse a folder that will not take a new file (read-only, a pseudo file system, no permission)."""
    name = folder / f".unet-bench-write-test-{os.getpid()}"
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise BenchError(f"{flag}: cannot write into {shorten(folder)}: {error.strerror or error}; "
                         "name a folder you can write to") from None
    os.close(fd)
    os.unlink(name)


def output_file(text: str, flag: str, suffixes: Sequence[str], default_name: str, probe: bool = True) -> Path:
    """`_output_file`, with what the file system says of the name (too long, a loop of links) as one line."""
    try:
        return _output_file(text, flag, suffixes, default_name, probe)
    except OSError as error:
        raise BenchError(f"{flag} {shorten(text)}: {error.strerror or error}") from None


def _output_file(text: str, flag: str, suffixes: Sequence[str], default_name: str, probe: bool) -> Path:
    """The file a command will write for ``flag`` (e.g. ``--plot``), checked by the rules above before any
    work: a known suffix, an existing writable folder, never a link or a non-file. ``default_name`` is the
    file's name when ``text`` names a folder. Returns the path to write (the folder's link followed)."""
    if not text or not text.strip():
        raise BenchError(f"{flag}: give a {_alternatives(suffixes)} file name")
    path = Path(text)
    if is_folder_text(text) or (path.is_dir() and not path.is_symlink()):
        folder, name = path, default_name
    else:
        folder, name = path.parent, path.name
    if not name.lower().endswith(tuple(suffixes)):
        raise BenchError(f"{flag} {shorten(text)}: name a {_alternatives(suffixes)} file (or a folder ending in '/')")
    folder = _resolved_folder(folder, flag)
    target = folder / name
    if target.is_symlink():
        raise BenchError(f"{flag} {shorten(target)} is a symbolic link; unet-bench never writes through a link: "
                         "move it away, or name another file")
    if target.exists() and not target.is_file():
        raise BenchError(f"{flag} {shorten(target)} is not a regular file; name a new file or a folder ending "
                         "in '/'")
    if probe:
        probe_folder(folder, flag)
    return target


def _alternatives(values: Sequence[str]) -> str:
    return " or ".join(values) if len(values) < 3 else f"{', '.join(values[:-1])} or {values[-1]}"


def output_folder(text: str, flag: str) -> Path:
    """`_output_folder`, with what the file system says of the name as one line."""
    try:
        return _output_folder(text, flag)
    except OSError as error:
        raise BenchError(f"{flag} {shorten(text)}: {error.strerror or error}") from None


def _output_folder(text: str, flag: str) -> Path:
    """A folder a command writes into (created if missing, with its parents): a link is followed and said
    so; a file there is refused. The folder's own checks (writable, its files) are the writer's."""
    if not text or not text.strip():
        raise BenchError(f"{flag}: give a folder")
    path = Path(text)
    if path.is_symlink():
        return _resolved_folder(path, flag)
    if path.exists() and not path.is_dir():
        raise BenchError(f"{flag} {shorten(text)} is a file, not a folder; give a folder (it is created if missing)")
    return path


def default_in_current_folder(path: Path, what: str) -> None:
    """Say where a default output goes when it is the current folder, before any work."""
    if path.parent == Path("."):
        note(f"{what} goes to {shorten(Path.cwd() / path)} (no --out given)")


def open_output(path: Path):
    """Open ``path`` for writing, never through a link (created if missing, truncated if a regular file)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise BenchError(f"{shorten(path)} is a symbolic link; unet-bench never writes through a link") \
                from None
        raise
    return os.fdopen(fd, "wb")


def write_failed(path: Path, error: OSError, kept: str) -> str:
    """The one line for a write that failed after the work was done: what failed, why, and where the work
    is (``kept``, e.g. 'the profile is printed above')."""
    return f"cannot write {shorten(path)}: {error.strerror or error}; {kept}"
