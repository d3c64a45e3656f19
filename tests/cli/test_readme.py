"""README's console examples of the cheap commands (models, sizes, count) print exactly what README shows."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
CHECKED = ("models", "sizes", "count")


def console_examples() -> list[tuple[str, list[str]]]:
    """(command line, expected output lines) for each README example of a checked command with output."""
    examples = []
    for block in re.findall(r"```console\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, *output = chunk.rstrip("\n").split("\n")
            output = [line for line in output if not re.match(r"\s+#", line)]  # a comment's continuation
            args = shlex.split(command, comments=True)
            if args[:1] == ["unet-bench"] and args[1] in CHECKED and output:
                examples.append((command, output))
    return examples


def test_readme_shows_each_cheap_command_with_its_output():
    shown = {shlex.split(command)[1] for command, _ in console_examples()}
    assert shown == set(CHECKED)


@pytest.mark.parametrize("command, expected", console_examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_readme_console_example_prints_what_readme_shows(command, expected):
    args = shlex.split(command, comments=True)[1:]
    result = subprocess.run([sys.executable, "-m", "unet_bench", *args], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert [line.rstrip() for line in result.stdout.splitlines()] == [line.rstrip() for line in expected]
