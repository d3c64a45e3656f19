"""Timing: the statistics, the thread count, and a record whose throughput fields agree with its latency."""

import time

import pytest
import torch

from unet_bench.errors import BenchError
from unet_bench.measure import env, measure
from unet_bench.measure.peaks import gpu_peak, math_mode
from unet_bench.measure.timing import MIN_BLOCKS, WARMUP_CALLS, time_call
from unet_bench.record import Case

TINY = (("base_width", 4),)


def test_time_call_measures_a_known_duration_on_the_threads_asked():
    threads_seen = []

    def sleep_10ms():
        threads_seen.append(torch.get_num_threads())
        time.sleep(0.01)

    timing = time_call(sleep_10ms, threads=1, min_run_time=0.1)
    assert 0.0099 < timing.p25_s <= timing.median_s <= timing.p75_s < 0.05
    assert timing.iqr_s == pytest.approx(timing.p75_s - timing.p25_s)
    assert timing.n >= MIN_BLOCKS and timing.threads == 1
    assert set(threads_seen) == {1}  # warm-up calls included
    assert timing.warmup_s >= WARMUP_CALLS * 0.01 and timing.first_call_s >= 0.01


def test_first_call_cost_is_reported_apart():
    calls = []

    def slow_first_call():
        time.sleep(0.2 if not calls else 0.005)
        calls.append(1)

    timing = time_call(slow_first_call, threads=1, min_run_time=0.05)
    assert timing.median_s < 0.05  # the slow first call is not in the statistics
    assert timing.compile_s == pytest.approx(timing.first_call_s - timing.median_s)
    assert timing.compile_s > 0.15


def test_infer_record_throughput_follows_from_latency_and_counts():
    case = Case("paper", overrides=TINY, mode="infer", batch=2, input_size=188, min_run_time_s=0.05)
    record = measure(case)
    seconds = record.latency_ms_median / 1e3
    assert record.threads == env.cpu_count() == record.env["torch_threads"]  # every core by default
    assert record.env["torch"] == torch.__version__
    assert record.latency_ms_p25 <= record.latency_ms_median <= record.latency_ms_p75
    assert record.latency_n >= MIN_BLOCKS
    assert record.images_per_s == pytest.approx(2 / seconds)
    assert record.output_mpix_per_s == pytest.approx(2 * 4 * 4 / seconds / 1e6)
    assert record.achieved_flops_per_s == pytest.approx(record.flops * 2 / seconds)
    assert record.peak_fraction == pytest.approx(record.achieved_flops_per_s / record.peak_flops_per_s)
    assert "GEMM" in record.extra["peak_source"] and record.peak_flops_per_s > 1e9
    assert record.warmup_s > 0 and record.compile_s is None
    assert record.tf32 is None and record.cudnn_benchmark is None  # CPU
    assert record.saved_activation_bytes is None and record.predicted_peak_bytes is None  # inference
    assert record.peak_mem_bytes >= record.param_bytes


def test_bf16_channels_last_runs_and_is_recorded():
    case = Case("paper", overrides=TINY, mode="infer", input_size=188, dtype="bf16", channels_last=True,
                min_run_time_s=0.05)
    record = measure(case)
    assert record.dtype == "bf16" and record.channels_last
    assert record.latency_ms_median > 0
    assert "bf16" in record.extra["peak_source"]


def test_gpu_ceilings_by_name_and_math_mode():
    assert math_mode("fp32", tf32=True) == "tf32" and math_mode("fp32", tf32=False) == "fp32"
    assert gpu_peak("NVIDIA H100 80GB HBM3", "bf16")[0] == 989e12
    assert gpu_peak("NVIDIA H100 PCIe", "tf32")[0] == 378e12
    assert gpu_peak("NVIDIA A100-SXM4-80GB", "fp32")[0] == 19.5e12
    assert gpu_peak("Tesla T4", "bf16")[0] is None
    assert gpu_peak("Some Future GPU", "fp32") == (None, "no ceiling known for 'Some Future GPU'")


@pytest.mark.parametrize(
    "change, message",
    [({"mode": "bogus"}, "mode=.bogus. is not valid"), ({"dtype": "fp8"}, "dtype='fp8' is not valid"),
     ({"batch": 0}, "batch=0"), ({"threads": 0}, "threads=0")],
)
def test_cases_that_cannot_be_measured_are_refused(change, message):
    with pytest.raises(BenchError, match=message):
        measure(Case("paper", overrides=TINY, input_size=188, **change))


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_a_gpu_is_a_one_line_error():
    with pytest.raises(BenchError, match="device 'cuda' is not available here"):
        measure(Case("paper", overrides=TINY, mode="infer", device="cuda", input_size=188))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("tf32", [True, False])
def test_cuda_infer_record(tf32):
    case = Case("paper", overrides=(("base_width", 8),), mode="infer", device="cuda", batch=4, input_size=188,
                tf32=tf32, cudnn_benchmark=True, min_run_time_s=0.1)
    before = torch.backends.cudnn.allow_tf32
    record = measure(case)
    assert torch.backends.cudnn.allow_tf32 == before  # flags restored
    assert record.tf32 is tf32 and record.cudnn_benchmark is True
    assert record.env["cuda"] == torch.version.cuda
    assert record.env["device_name"] == torch.cuda.get_device_name()
    assert record.latency_n >= MIN_BLOCKS
    if record.peak_flops_per_s is not None:
        assert record.peak_fraction == pytest.approx(record.achieved_flops_per_s / record.peak_flops_per_s)
