"""`unet-bench count` and `unet-bench time`: one JSON object with --json, readable text, one-line errors."""

import json
import subprocess
import sys

import pytest
import torch

TINY = ["--set", "base_width=4", "--size", "188"]


def run(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "unet_bench", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def paper_params(w: int) -> int:
    """Parameters of the paper network at base width w, from its layer list."""
    conv3 = lambda cin, cout: 9 * cin * cout + cout  # noqa: E731
    widths = [w * 2**i for i in range(5)]
    total = conv3(1, w) + conv3(w, w)
    total += sum(conv3(a, b) + conv3(b, b) for a, b in zip(widths, widths[1:], strict=False))
    total += sum(4 * c * (c // 2) + c // 2 + conv3(c, c // 2) + conv3(c // 2, c // 2) for c in widths[:0:-1])
    return total + w * 2 + 2


def test_count_json_is_one_record():
    proc = run("count", "paper", *TINY, "--batch", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)  # exactly one JSON object: anything else fails to parse
    assert record["variant"] == "paper" and record["mode"] == "counts"
    assert (record["input_size"], record["output_size"], record["batch"]) == (188, 4, 3)
    assert paper_params(64) == 31_030_658
    assert record["params"] == paper_params(4)
    assert record["flops"] == 2 * record["macs"] > 0
    assert record["config"]["base_width"] == 4 and record["overrides"] == {"base_width": 4}
    assert record["extra"]["crosscheck"]["agree"]


def counter_total(text: str, name: str) -> tuple[str, int]:
    """A counter's unit and total in the first table of `count --counters` (its rows hold no colon)."""
    row = next(line for line in text.splitlines() if line.startswith(f"{name} ") and ":" not in line)
    *_, unit, total, _ratio = row.split()
    return unit, int(total.replace(",", ""))


def test_count_counters_of_a_3d_network_count_the_shape_it_runs_at():
    shape = ["count", "3d", "--set", "base_width=2", "--size", "92x92x100"]
    proc = run(*shape, "--counters")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("3d: 1x3x92x92x100 -> ")
    record = json.loads(run(*shape, "--json").stdout)
    assert counter_total(proc.stdout, "torch FlopCounterMode") == ("FLOPs", record["flops"])
    other = sum(record["extra"]["other_ops"].values())  # fvcore counts the norms too
    assert counter_total(proc.stdout, "fvcore") == ("MACs", record["macs"] + other)
    assert counter_total(proc.stdout, "ours (exact)")[1] > record["flops"]  # and norms, pooling, element-wise


def test_count_text_says_what_is_counted():
    proc = run("count", "bilinear", *TINY, "--layers", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "covers: convolutions and transposed convolutions" in out
    assert "upsample_bilinear2d" in out and "only fvcore counts upsample_bilinear2d" in out
    assert "bottleneck" in out and "decoder0" in out
    assert "| model" in out and "| downs" in out  # fvcore's per-layer table


def test_time_json_is_one_record_with_timing_and_memory():
    proc = run("time", "paper", *TINY, "--mode", "train", "--min-run-time", "0.05", "--threads", "1",
               "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["mode"] == "train" and record["threads"] == 1
    measured = (
        "latency_ms_median", "latency_ms_iqr", "images_per_s", "achieved_flops_per_s", "peak_mem_bytes",
        "saved_activation_bytes", "predicted_peak_bytes", "macs", "flops", "params",
    )
    for key in measured:
        assert record[key] > 0, key


@pytest.mark.parametrize(
    "args, message",
    [
        (["count", "paper", "--size", "570"], "input height 570 is not valid"),
        (["time", "paper", "--size", "190"], "the nearest valid sizes are 188 and 204"),
        (["count", "nope", "--size", "572"], "unknown variant 'nope'"),
        (["count", "paper", "--size", "572", "--set", "depht=3"], "unknown config key 'depht'"),
        (["time", "paper", "--size", "188", "--dtype", "fp8"], "invalid choice: 'fp8'"),
    ],
)
def test_bad_requests_are_one_line_and_exit_2(args, message):
    proc = run(*args)
    assert proc.returncode == 2
    assert proc.stdout == "" and message in proc.stderr and proc.stderr.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_a_gpu_is_one_line_and_exit_2():
    proc = run("time", "paper", *TINY, "--device", "cuda")
    assert proc.returncode == 2
    assert proc.stderr.startswith("unet-bench time: error: device 'cuda' is not available here")
    assert proc.stderr.count("\n") == 1
