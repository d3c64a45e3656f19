"""Memory: saved-for-backward bytes counted exactly, model state bytes, measured and predicted peaks."""

import pytest
import torch
from torch import nn

from unet_bench.measure import classify_failure, measure
from unet_bench.measure.memory import PEAK_METHODS, count_saved, peak_cpu, state_bytes, tensor_bytes
from unet_bench.models import create_model
from unet_bench.record import Case

FP32 = 4


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
    record = measure(case)
    params = record.params * FP32
    assert record.param_bytes == record.grad_bytes == record.optimizer_bytes == params
    largest = record.extra["largest_saved_bytes"]
    # the largest saved tensor is the first conv's output: batch 2 x 4 channels x 186 x 186
    assert largest == 2 * 4 * 186 * 186 * FP32
    assert record.predicted_peak_bytes == 3 * params + record.saved_activation_bytes + 2 * largest
    assert record.peak_mem_method == PEAK_METHODS["cpu"]
    assert record.peak_mem_bytes >= 2 * params + 2 * 188 * 188 * FP32  # at least weights, momentum, input
    assert record.peak_mem_ratio == pytest.approx(record.peak_mem_bytes / record.predicted_peak_bytes)
    assert 0.5 < record.peak_mem_ratio < 2.0


def test_cpu_peak_of_inference_sees_the_activations():
    """At batch 8 the activations dwarf the weights: the measured peak must see them."""
    model = create_model("paper", base_width=4)
    case = Case("paper", mode="infer", batch=8, input_size=188)
    peak = peak_cpu(model, case, in_channels=1)
    first_conv_output = 8 * 4 * 186 * 186 * FP32  # two such maps are alive at the first ReLU -> conv
    assert 2 * first_conv_output < peak < 20 * first_conv_output


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
    assert record.peak_mem_method == PEAK_METHODS["cuda"]
    assert record.peak_mem_bytes > record.saved_activation_bytes
    assert 0.5 < record.peak_mem_ratio < 2.0
