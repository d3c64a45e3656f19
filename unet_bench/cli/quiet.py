"""What the command line keeps off the terminal: other libraries' notices that tell a user nothing about
their command. Only the CLI installs these filters (the library API leaves Python's warnings alone);
``unet-bench --verbose COMMAND`` shows everything.

Each filter says why it is there. Anything not listed still reaches stderr, as one line per warning.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator

EXTRAS = r"(monai|segmentation_models_pytorch|timm|torchvision|dynamic_network_architectures|fvcore|iopath|ptflops|" \
         r"thop|torchinfo|calflops|transformers|accelerate|huggingface_hub|submitit)(\..*)?$"

# (action, message regex, category, module regex): the arguments of `warnings.filterwarnings`
FILTERS: list[tuple[str, str, type[Warning], str]] = [
    # torch deprecates torch.jit.* in favour of torch.compile; fvcore and the extras still call it. Nothing the
    # user can change, and the count does not depend on it.
    ("ignore", r"`torch\.jit\.[A-Za-z_]+` is deprecated", Warning, ""),
    ("ignore", r".*torch\.jit\.(script|trace|interface).* deprecated", Warning, ""),
    # torch looks for a CUDA toolkit when cpp_extension is imported (through an extra); on a CPU machine there
    # is none, which is the normal case here, and a CUDA case says itself when CUDA is missing.
    ("ignore", r"No CUDA runtime is found", UserWarning, ""),
    # the extras' deprecation notices about their own APIs (timm's layer moves, monai's arguments): ours to
    # follow when we upgrade them, not the user's.
    ("ignore", r"", FutureWarning, EXTRAS),
    ("ignore", r"", DeprecationWarning, EXTRAS),
    # a library asked to build a zero-width layer: the refusal that follows names the argument.
    ("ignore", r"Initializing zero-element tensors is a no-op", UserWarning, ""),
    # torch's CUDA probe on a machine without a driver: the device check reports it in one line.
    ("ignore", r".*(gpuGetDeviceCount|CUDA initialization|cudaGetDeviceCount).*", UserWarning, ""),
]

# Lines that compiled code (torch's profiler, kineto) prints straight onto file descriptor 2, around every
# profiled step: the profiler starting and stopping and its stages, and kineto's failed GPU probe on a CPU
# machine. They cannot be filtered as warnings; `native_stderr_filtered` drops them.
NATIVE_NOISE = re.compile(rb"^(USDT|STAGE):\d{4}-\d\d-\d\d [^\]]*\] |^.*gpuGetDeviceCount failed")
_PREFIXES = (b"USDT:", b"STAGE:")


def install() -> None:
    """Add the filters to the warnings filters in force (call inside `warnings.catch_warnings`)."""
    for action, message, category, module in FILTERS:
        warnings.filterwarnings(action, message=message, category=category, module=module)


_END = b"\x00unet-bench: end of this command's stderr\x00\n"  # one write, atomic in a pipe


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """File descriptor 2 through a pipe that drops `NATIVE_NOISE` lines and passes everything else on at once
    (the progress bar's partial lines too). Child processes inherit it, so the suite's case processes are
    filtered alike. Where descriptor 2 cannot be redirected, nothing changes.

    On the way out, descriptor 2 is put back and a marker written into the pipe: once the reader has passed
    on everything before the marker, the command goes on. A child that outlives the command (a process
    pool's server) still holds the pipe; the reader keeps passing its lines on until it lets go."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        read_end, own = os.pipe()
        os.dup2(own, 2)
    except (OSError, ValueError):
        yield
        return
    done = threading.Event()
    reader = threading.Thread(target=_forward, args=(read_end, saved, done), daemon=True, name="stderr-filter")
    reader.start()
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(saved, 2)
        with contextlib.suppress(OSError):
            os.write(own, _END)
        os.close(own)
        done.wait(timeout=10.0)


def _forward(read_end: int, out: int, done: threading.Event) -> None:
    pending = b""
    try:
        while chunk := os.read(read_end, 65536):
            pending += chunk
            if _END in pending:  # everything the command wrote is here: let it go on
                before, _, pending = pending.partition(_END)
                _pass_on(out, before, final=True)
                done.set()
            pending = _pass_on(out, pending)
        if pending and not NATIVE_NOISE.match(pending):
            _write_all(out, pending)
    except OSError:
        pass
    finally:
        done.set()
        os.close(read_end)
        os.close(out)  # the copy of descriptor 2 made for this reader: nobody else writes to it


def _pass_on(out: int, data: bytes, final: bool = False) -> bytes:
    """Write the complete lines of ``data`` but the noise, and a partial line unless it may still become
    noise; return what is held back."""
    *lines, pending = data.split(b"\n")
    kept = b"".join(line + b"\n" for line in lines if not NATIVE_NOISE.match(line))
    if pending and (final or not any(prefix.startswith(pending[: len(prefix)]) for prefix in _PREFIXES)):
        kept, pending = kept + pending, b""  # a partial line (a progress bar): at once
    if kept:
        _write_all(out, kept)
    return pending


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
