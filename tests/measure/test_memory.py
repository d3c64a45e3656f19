"""Memory: saved-for-backward bytes counted exactly, model state bytes, measured and predicted peaks."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from unet_bench.measure import build_model, classify_failure, measure
from unet_bench.measure.memory import PEAK_METHODS, count_saved, memory_values, state_bytes, tensor_bytes
from unet_bench.measure.steps import build_step
from unet_bench.models import create_model
from unet_bench.record import Case

FP32, BF16 = 4, 2
# The reference CPU peak: each case in a fresh process started with glibc's mmap threshold fixed (freed
# tensors leave RSS at once), tensors live after a warm-up step + growth of peak RSS over the next one.
RSS_REFERENCE = """
import json, sys
from pathlib import Path
import torch
from unet_bench.measure.memory import tensor_bytes
from unet_bench.measure.steps import build_step
from unet_bench.models import create_model
from unet_bench.record import Case

def kib(field):
    lines = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith(field + ":"))

peaks = []
for data in json.loads(sys.argv[1]):
    case = Case.from_dict(data)
    torch.set_num_threads(case.threads)
    step = build_step(create_model(case.variant, **case.overrides_dict()), case, 1)
    step.run()
    live = tensor_bytes(step.live_tensors())
    Path("/proc/self/clear_refs").write_text("5")
    before = kib("VmRSS")
    step.run()
    peaks.append(live + (kib("VmHWM") - before) * 1024)
print(json.dumps(peaks))
"""


def memory_of(case: Case) -> dict:
    """The memory fields measure records for ``case``, without the counts and the timing (2 warm-up calls)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(case.threads or threads)
    try:
        step = build_step(build_model(case), case, 1)
        step.run()
        step.run()
        return memory_values(step, case)
    finally:
        torch.set_num_threads(threads)


def test_saved_bytes_of_a_tiny_network_by_hand():
    """conv(1->2, 3x3) -> in-place ReLU -> conv(2->1, 3x3) on 1x1x6x6.

    The first conv saves its input (6x6); the ReLU saves its result (2x4x4), which is also what the second
    conv saves as its input (the same storage, counted once). Weights are parameters: not activations.
    """
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True), nn.Conv2d(2, 1, 3))
    with count_saved(model.parameters()) as saved:
        model(torch.randn(1, 1, 6, 6)).sum()
    assert saved.total == 6 * 6 * FP32 + 2 * 4 * 4 * FP32 == 272
    assert saved.largest == 144 and saved.tensors == 2
    with count_saved() as with_weights:  # nothing excluded: both convs' weights (2x1x3x3, 1x2x3x3) count too
        model(torch.randn(1, 1, 6, 6)).sum()
    assert with_weights.total == 272 + 2 * (2 * 3 * 3 * FP32)


def test_autocast_weight_copies_are_counted_apart_from_activations():
    """The same network as above under bf16 autocast: each conv saves its input and a bf16 copy of its weight.

    Activations are the bf16 cast of the input (6x6) and the ReLU's output (2x4x4): half the fp32 bytes.
    The copies are the two conv weights (18 elements each) in bf16; biases are not saved.
    """
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True), nn.Conv2d(2, 1, 3))
    with count_saved(model.parameters()) as saved, torch.autocast("cpu", dtype=torch.bfloat16):
        model(torch.randn(1, 1, 6, 6)).float().sum()
    assert saved.total == (6 * 6 + 2 * 4 * 4) * BF16 == 272 // 2
    assert saved.weight_copies == (2 * 3 * 3 + 2 * 3 * 3) * BF16 == 72
    assert saved.tensors == 2 and saved.largest == 72


def test_max_pool_saves_its_input_and_int64_indices():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2))
    with count_saved(model.parameters()) as saved:
        model(torch.randn(1, 1, 6, 6)).sum()
    assert saved.total == 6 * 6 * FP32 + 2 * 4 * 4 * FP32 + 2 * 2 * 2 * 8


def test_nothing_is_saved_without_grad():
    model = create_model("paper", base_width=4)
    with torch.no_grad(), count_saved() as saved:
        model(torch.randn(1, 1, 188, 188))
    assert saved.total == 0


def test_state_bytes_after_an_sgd_step():
    model = nn.Conv2d(3, 5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    assert state_bytes(model, optimizer) == {
        "param_bytes": (5 * 3 * 9 + 5) * FP32, "grad_bytes": 0, "optimizer_bytes": 0,
    }
    model(torch.randn(1, 3, 5, 5)).sum().backward()
    optimizer.step()
    n = (5 * 3 * 9 + 5) * FP32
    assert state_bytes(model, optimizer) == {"param_bytes": n, "grad_bytes": n, "optimizer_bytes": n}


def test_tensor_bytes_counts_a_storage_once():
    t = torch.zeros(10, 10)
    assert tensor_bytes([t, t[2:5], t.view(100)]) == 400


def test_train_record_memory_fields_add_up():
    case = Case("paper", overrides=(("base_width", 4),), mode="train", batch=2, input_size=188,
                min_run_time_s=0.05)
    environ = dict(os.environ)
    record = measure(case)
    assert dict(os.environ) == environ  # the memory pass leaves no variable behind
    params = record.get('params') * FP32
    assert record.get("param_bytes") == record.get("grad_bytes") == record.get("optimizer_bytes") == params
    largest = record.extra["largest_saved_bytes"]
    # the largest saved tensor is the first conv's output: batch 2 x 4 channels x 186 x 186
    assert largest == 2 * 4 * 186 * 186 * FP32
    assert record.extra["autocast_weight_copy_bytes"] == 0
    assert record.get("predicted_peak_bytes") == 3 * params + record.get('saved_activation_bytes') + 2 * largest
    assert record.get("peak_mem_method") == PEAK_METHODS["cpu"] and "MALLOC" not in json.dumps(record.to_dict())
    assert record.get('peak_mem_bytes') >= 2 * params + 2 * 188 * 188 * FP32  # at least weights, momentum, input
    ratio = record.get("peak_mem_bytes") / record.get("predicted_peak_bytes")
    assert record.get("peak_mem_ratio") == pytest.approx(ratio)
    assert 0.5 < record.get('peak_mem_ratio') < 2.0


def test_bf16_training_reports_the_weight_copies_apart():
    """Every conv and transposed conv saves a bf16 copy of its weight: 2 bytes per weight, biases not saved.

    The activations are the fp32 ones at about half the bytes (max-pool indices stay int64, the loss fp32):
    with the copies among them they would be 0.63 of fp32's at this size.
    """
    fp32 = Case("paper", overrides=(("base_width", 4),), mode="train", batch=2, input_size=188)
    values = {dtype: memory_of(dataclasses.replace(fp32, dtype=dtype)) for dtype in ("fp32", "bf16")}
    model = create_model("paper", base_width=4)
    weights = sum(p.numel() for name, p in model.named_parameters() if name.endswith("weight"))
    bf16 = values["bf16"]
    assert bf16["extra"]["autocast_weight_copy_bytes"] == weights * BF16
    assert 0.5 < bf16["saved_activation_bytes"] / values["fp32"]["saved_activation_bytes"] < 0.6
    assert bf16["predicted_peak_bytes"] == (3 * bf16["param_bytes"] + bf16["saved_activation_bytes"]
                                            + weights * BF16 + 2 * bf16["extra"]["largest_saved_bytes"])
    assert "eager" in bf16["extra"]["saved_bytes_method"]


def test_cpu_peak_agrees_with_peak_rss_of_a_fresh_process():
    """The in-process allocation trace against the RSS of a fresh process (the older method): the two see the
    same tensors, so they agree within a few percent; the training peak is also near the counted prediction."""
    base = Case("paper", overrides=(("base_width", 8),), batch=2, input_size=252, threads=2)
    cases = [dataclasses.replace(base, mode=mode) for mode in ("infer", "train")]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    proc = subprocess.run([sys.executable, "-c", RSS_REFERENCE, json.dumps([c.to_dict() for c in cases])],
                          env=env, capture_output=True, text=True, timeout=300, check=True)
    reference = json.loads(proc.stdout.strip().splitlines()[-1])
    infer, train = (memory_of(case) for case in cases)
    assert infer["peak_mem_bytes"] == pytest.approx(reference[0], rel=0.05)
    assert train["peak_mem_bytes"] == pytest.approx(reference[1], rel=0.05)
    assert infer["peak_mem_bytes"] > 2 * 2 * 8 * 250 * 250 * FP32  # two first-conv maps alive at once
    assert 0.8 < train["peak_mem_ratio"] < 1.1


def test_compiled_training_memory_is_the_compiled_graphs():
    """Under torch.compile the saved tensors are those of the compiled graph (inductor keeps fewer bytes than
    eager autograd here), the bf16 weight copies are the same as eager's, and the peak is the compiled step's."""
    eager = Case("paper", overrides=(("base_width", 4), ("depth", 2)), mode="train", batch=2, input_size=92,
                 dtype="bf16")
    compiled, eager = memory_of(dataclasses.replace(eager, compile=True)), memory_of(eager)
    assert "compiled model" in compiled["extra"]["saved_bytes_method"]
    assert compiled["saved_activation_bytes"] < eager["saved_activation_bytes"]
    assert compiled["extra"]["autocast_weight_copy_bytes"] == eager["extra"]["autocast_weight_copy_bytes"] > 0
    assert compiled["peak_mem_method"] == PEAK_METHODS["cpu"] and 0.5 < compiled["peak_mem_ratio"] < 2.0


def test_classify_failure():
    try:
        torch.empty(2**60, dtype=torch.uint8)
    except RuntimeError as error:
        status, message = classify_failure(error)
        assert status == "oom" and "\n" not in message and message.startswith("RuntimeError: ")
    else:
        pytest.skip("this machine allocated 1 EiB lazily")
    assert classify_failure(MemoryError())[0] == "oom"
    cuda_oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert classify_failure(cuda_oom) == ("oom", f"OutOfMemoryError: {cuda_oom}")
    assert classify_failure(RuntimeError("Given groups=1, weight of size [64, 1, 3, 3]\nmore")) == (
        "error", "RuntimeError: Given groups=1, weight of size [64, 1, 3, 3]",
    )
    assert classify_failure(ValueError("out of memory"))[0] == "error"  # allocators raise RuntimeError


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_train_peak_is_max_memory_allocated():
    case = Case("paper", overrides=(("base_width", 8),), mode="train", device="cuda", batch=2, input_size=188,
                min_run_time_s=0.05)
    record = measure(case)
    assert record.get("peak_mem_method") == PEAK_METHODS["cuda"]
    assert record.get('peak_mem_bytes') > record.get('saved_activation_bytes')
    assert 0.5 < record.get('peak_mem_ratio') < 2.0
