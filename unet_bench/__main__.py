"""The ``unet-bench`` entry point (``python -m unet_bench`` too): Ctrl-C while the command line is still
loading its modules ends with one line and status 130, like Ctrl-C at any later moment."""

import os
import sys


def main() -> int:
    try:
        from unet_bench.cli import main as run

        return run()
    except KeyboardInterrupt:
        sys.stderr.write("unet-bench: interrupted\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)  # at once: nothing has started, and an interrupted import can make the exit a SIGINT


if __name__ == "__main__":
    sys.exit(main())
