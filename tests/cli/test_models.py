"""`unet-bench models` and `unet-bench sizes`, run as a user would (a real process, real exit codes)."""

import subprocess
import sys

import pytest

from unet_bench import list_models


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unet_bench", *args], capture_output=True, text=True, timeout=120)


def test_models_lists_every_variant_with_its_change_and_parameters():
    result = run("models")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 + len(list_models())
    paper = next(line for line in lines if line.startswith("paper "))
    assert "31,030,658" in paper
    bilinear = next(line for line in lines if line.startswith("bilinear "))
    assert "upsample=bilinear" in bilinear and "28,941,698" in bilinear


def test_sizes_lists_valid_inputs_and_outputs():
    result = run("sizes", "paper", "--min", "180", "--max", "240")
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if not line.startswith("#")] == [
        "188 -> 4",
        "204 -> 20",
        "220 -> 36",
        "236 -> 52",
    ]
    near = run("sizes", "paper", "--near", "570")
    assert near.stdout.splitlines()[1:] == ["556 -> 372", "572 -> 388"]
    deeper = run("sizes", "paper", "--set", "depth=3", "--near", "96")
    assert deeper.stdout.splitlines()[1:] == ["92 -> 4", "100 -> 12"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["sizes", "unet"], "unknown variant 'unet'; valid variants are"),
        (["sizes", "paper", "--set", "width=3"], "unknown config key 'width'"),
        (["sizes", "paper", "--set", "depth=three"], "depth takes a int"),
        (["sizes", "paper", "--near", "abc"], "argument --near: 'abc' is not an integer"),
        (["sizes", "paper", "--min", "10", "--max", "100"], "no valid input size in [10, 100]"),
        (["models", "zzz*"], "no variant matches"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr
