"""The command line answers help and mistakes without loading torch, pandas or matplotlib: each command
imports what it uses only when it runs."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "pandas", "matplotlib", "scipy", "fvcore")
PROBE = """
import contextlib, io, sys
from unet_bench.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        status = main(sys.argv[1:])
    except SystemExit as exit:
        status = exit.code
print(status, *sorted(m for m in {heavy} if m in sys.modules))
""".replace("{heavy}", repr(HEAVY))


@pytest.mark.parametrize("args, status", [
    (["--help"], 0),
    (["run", "--help"], 0),
    (["bogus"], 2),
    (["sizes", "no-such-variant"], 2),
    (["compare"], 2),
    (["run", "no-such-file.toml"], 2),
    (["time", "paper", "--size", "572", "--min-run-time", "inf"], 2),
])
def test_help_and_mistakes_load_no_heavy_library(args, status):
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == [str(status)], result.stderr


INTERRUPTED_IMPORT = """
import sys
from unet_bench.__main__ import main

class Interrupt:  # Ctrl-C pressed while the command modules import
    def find_spec(self, name, path=None, target=None):
        if name == "unet_bench.cli.run":
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
sys.exit(main())
"""


def test_ctrl_c_while_the_command_line_loads_is_one_line_and_exit_130():
    result = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT, "run", "x.toml"], capture_output=True,
                            text=True, timeout=60)
    assert (result.returncode, result.stderr, result.stdout) == (130, "unet-bench: interrupted\n", "")
