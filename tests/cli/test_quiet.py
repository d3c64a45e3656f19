"""Library notices that say nothing about the command stay off stderr in the CLI (not in the library API);
``--verbose`` shows them. A failed write of the output is one line on stderr; SIGTERM ends a run like Ctrl-C,
keeping every finished record, with status 143."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

import unet_bench.cli.models as models_command
from unet_bench.cli import main

NOISE = [
    ("`torch.jit.script` is deprecated. Please switch to `torch.compile` or `torch.export`.", DeprecationWarning,
     "torch.jit._script"),
    ("`torch.jit.interface` is deprecated. Please use `torch.compile` instead.", FutureWarning, "torch.jit"),
    ("No CUDA runtime is found, using CUDA_HOME='/usr/local/cuda'", UserWarning, "torch.utils.cpp_extension"),
    ("Importing from timm.models.layers is deprecated, please import via timm.layers", FutureWarning, "timm.x"),
    ("monai.networks.nets.x is deprecated", FutureWarning, "monai.networks"),
]


def noisy(args):
    for message, category, module in NOISE:
        warnings.warn_explicit(message, category, "lib.py", 1, module=module)
    warnings.warn_explicit("this one says something", UserWarning, "lib.py", 1, module="unet_bench.x")
    print("listed")
    return 0


@pytest.mark.parametrize("verbose", [False, True])
def test_noise_is_left_out_unless_verbose(monkeypatch, capsys, verbose):
    monkeypatch.setattr(models_command, "cmd_models", noisy)
    assert main(["--verbose", "models"] if verbose else ["models"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "listed\n"
    lines = captured.err.splitlines()
    assert "unet-bench: warning: this one says something" in lines
    assert len(lines) == (1 + len(NOISE) if verbose else 1), lines


def test_the_library_api_keeps_pythons_filters():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(["models", "zzz"])  # the CLI's filters go with its call
        warnings.warn_explicit(NOISE[0][0], FutureWarning, "lib.py", 1, module="timm.x")
    assert len(caught) == 1


def test_native_profiler_lines_are_dropped_and_the_rest_kept():
    code = textwrap.dedent("""
        import os, sys
        from unet_bench.cli.quiet import native_stderr_filtered
        with native_stderr_filtered():
            os.write(2, b"USDT:2026-12-03 08:34:10 7045:7045 SyncActivityProfilerHandler.cpp:52] profiler_start\\n")
            os.write(2, b"STAGE:2026-12-03 08:34:10 7045:7045 SyncActivityProfilerHandler.cpp:51] Completed\\n")
            os.write(2, b"[W kineto] gpuGetDeviceCount failed with code 35\\n")
            os.write(2, b" 50%|#####     | progress")
            os.write(2, b"\\nkept line\\n")
            sys.stderr.write("python line\\n")
        os.write(2, b"after\\n")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == b" 50%|#####     | progress\nkept line\npython line\nafter\n"


def test_a_failed_output_write_is_one_line_on_stderr():
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "unet_bench", "models"], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == "unet-bench models: error: cannot write the output: No space left on device\n"


EXPERIMENT = """name = "sig"
description = "SIGTERM during a run"
variants = ["paper", "padded", "bilinear", "additive", "nearest", "batchnorm"]
size_rule = "nearest-input"
sizes = [44]
set = { depth = 2, base_width = 2 }
"""


def test_sigterm_ends_a_run_like_ctrl_c_with_status_143(tmp_path):
    (tmp_path / "x.toml").write_text(EXPERIMENT)
    results = tmp_path / "out" / "results.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "unet_bench", "run", "x.toml", "--out", "out"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (results.exists() and results.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted:" in out and "finish the rest with --resume" in out
    assert err.splitlines()[-1] == "unet-bench run: stopped by SIGTERM; every finished record is kept"
    lines = results.read_text().splitlines()
    assert 1 <= len(lines) < 6 and all(line.startswith("{") and line.endswith("}") for line in lines)


def test_sigterm_outside_a_run_is_one_line_and_143(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "unet_bench", "time", "paper", "--size", "572", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8 if os.cpu_count() and os.cpu_count() > 2 else 12)  # torch imported, the command under way
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and err.splitlines()[-1] == "unet-bench time: stopped by SIGTERM", err
