"""`unet-bench profile`: the per-kind and top-layer tables, the roofline file, one JSON record, one-line errors."""

import subprocess
import sys

import pytest
import torch

from tests.cli.test_front_door import PROBE

TINY = ["--set", "base_width=2", "--set", "depth=2", "--size", "44", "--threads", "1", "--min-run-time", "0.05",
        "--steps", "1"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unet_bench", "profile", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.skipif(torch.cuda.is_available(), reason="energy is measured where a GPU is")
def test_text_names_what_each_number_covers_and_draws_the_roofline(tmp_path):
    plot = tmp_path / "roofline.png"
    proc = run("nearest", *TINY, "--mode", "train", "--plot", str(plot))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "train on" in out and "by kind of op" in out and "top 10 layers by time" in out
    assert "interpolation" in out and "optimizer" in out and "compute ceiling" in out and "GB/s" in out
    assert "energy          not available: " in out
    assert f"roofline        {plot}" in out and plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["--plot", "roofline.txt"], "name a .png or .svg file"),
    (["--plot", "no-such-folder/roofline.png"], "does not exist"),
    (["--steps", "0"], "give a whole number from 1 to 100"),
    (["--no-tf32"], "--no-tf32 applies to CUDA only"),
])
def test_bad_input_is_one_line(args, message):
    proc = run("paper", "--size", "44", "--set", "depth=2", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1 and not proc.stdout


def test_bad_size_is_one_line():
    proc = run("paper", "--size", "45", "--set", "depth=2")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "45" in proc.stderr


def test_help_loads_no_heavy_library():
    result = subprocess.run([sys.executable, "-c", PROBE, "profile", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.split() == ["0"], result.stderr
