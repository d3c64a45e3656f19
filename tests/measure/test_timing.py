"""Timing: a fixed budget (few calls when calls are slow, no stop on the spread), the thread count, and a
record whose throughput fields agree with its latency."""

import time

import numpy as np
import pytest
import torch

from unet_bench.errors import BenchError
from unet_bench.measure import env, measure
from unet_bench.measure.timing import MAX_BLOCKS, MIN_BLOCK_S, MIN_BLOCKS, WARMUP_CALLS, time_call
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
    assert timing.throughput is timing.latency  # CPU calls are synchronous: the same blocks give both


def test_a_call_slower_than_the_budget_is_timed_the_fewest_times():
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.06)

    timing = time_call(slow, threads=1, min_run_time=0.05, warmup_calls=1)
    assert len(calls) == 1 + MIN_BLOCKS  # one warm-up call, then three timed calls
    assert timing.n == MIN_BLOCKS and timing.calls_per_block == 1
    assert len(timing.latency.times_s) == MIN_BLOCKS and min(timing.latency.times_s) >= 0.06


def test_fast_calls_are_grouped_into_blocks_that_fill_the_budget():
    calls = []

    def fast():
        calls.append(1)
        time.sleep(0.001)

    timing = time_call(fast, threads=1, min_run_time=0.2, warmup_calls=1)
    per_block = timing.calls_per_block
    assert 1 < per_block <= MIN_BLOCK_S / 0.001  # about 10 ms per block, never less than one call
    assert len(calls) == 1 + timing.n * per_block
    assert MIN_BLOCKS < timing.n <= MAX_BLOCKS
    assert sum(timing.latency.times_s) >= 0.2  # the whole budget, no more than one block beyond it
    assert sum(timing.latency.times_s) - max(timing.latency.times_s) < 0.2
    assert timing.median_s == pytest.approx(float(np.median(timing.latency.times_s)) / per_block)


def test_a_noisy_call_is_not_timed_until_its_spread_looks_small():
    durations = iter([0.03] + [0.005, 0.03] * 1000)  # a spread of 6x, never "settled"; a slow warm-up call
    # makes every block one call, so that the spread shows

    timing = time_call(lambda: time.sleep(next(durations)), threads=1, min_run_time=0.3, warmup_calls=1)
    spent = sum(timing.latency.times_s)
    assert 0.3 <= spent < 0.3 + max(timing.latency.times_s)  # stopped by the budget alone
    assert timing.iqr_s / timing.median_s > 0.5  # and the spread is reported as it is


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
    seconds = record.get('latency_ms_median') / 1e3
    assert record.columns()["threads"] == env.cpu_count() == record.env["torch_threads"]  # every core by default
    assert record.env["torch"] == torch.__version__
    assert record.get('latency_ms_p25') <= record.get('latency_ms_median') <= record.get('latency_ms_p75')
    assert record.get('latency_n') >= MIN_BLOCKS
    blocks = np.asarray(record.extra["block_times_s"]) / record.extra["calls_per_block"]
    assert len(blocks) == record.get('latency_n') and float(np.median(blocks)) == pytest.approx(seconds)
    assert record.get("images_per_s") == pytest.approx(2 / seconds)
    assert record.get("output_mpix_per_s") == pytest.approx(2 * 4 * 4 / seconds / 1e6)
    assert record.get("achieved_flops_per_s") == pytest.approx(record.get('flops') * 2 / seconds)
    fraction = record.get("achieved_flops_per_s") / record.get("peak_flops_per_s")
    assert record.get("peak_fraction") == pytest.approx(fraction)
    assert record.get('peak_fraction') <= 1
    assert "kernels" in record.extra["peak_source"] and record.get('peak_flops_per_s') > 1e9
    assert record.extra["timing_method"].startswith("fixed budget")
    assert record.get('warmup_s') > 0 and record.get('compile_s') is None
    assert record.get('tf32') is None and record.get('cudnn_benchmark') is None  # CPU
    assert record.get('saved_activation_bytes') is None and record.get('predicted_peak_bytes') is None  # inference
    assert record.get('peak_mem_bytes') >= record.get('param_bytes')
    for key in ("loadavg_before", "loadavg_after", "cpu_steal_before", "cpu_steal_after"):
        assert key in record.env


def test_bf16_channels_last_runs_and_is_recorded():
    case = Case("paper", overrides=TINY, mode="infer", input_size=188, dtype="bf16", channels_last=True,
                min_run_time_s=0.05)
    record = measure(case)
    assert record.get("dtype") == "bf16" and record.get('channels_last')
    assert record.get('latency_ms_median') > 0
    assert "bf16" in record.extra["peak_source"]


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
def test_cuda_latency_is_per_call_and_throughput_back_to_back():
    x = torch.randn(2048, 2048, device="cuda")
    timing = time_call(lambda: x @ x, threads=1, min_run_time=0.2, device="cuda")
    assert timing.calls_per_block == 1 and timing.n >= MIN_BLOCKS  # one synchronised call per latency sample
    assert timing.throughput.calls_per_block > 1 and timing.throughput is not timing.latency
    assert "synchronised before and after each" in timing.method()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("tf32", [True, False])
def test_cuda_infer_record(tf32):
    case = Case("paper", overrides=(("base_width", 8),), mode="infer", device="cuda", batch=4, input_size=188,
                tf32=tf32, cudnn_benchmark=True, min_run_time_s=0.1)
    before = torch.backends.cudnn.allow_tf32
    record = measure(case)
    assert torch.backends.cudnn.allow_tf32 == before  # flags restored
    assert record.get('tf32') is tf32 and record.get('cudnn_benchmark') is True
    assert record.env["cuda"] == torch.version.cuda
    assert record.env["device_name"] == torch.cuda.get_device_name()
    assert record.get('latency_n') >= MIN_BLOCKS and record.extra["calls_per_block"] == 1
    assert record.extra["throughput_calls_per_block"] >= 1 and "synchronised" in record.extra["latency_scope"]
    assert record.get("images_per_s") == pytest.approx(4 * record.extra["throughput_calls_per_block"] / float(
        np.median(record.extra["throughput_block_times_s"])))
    assert record.get('peak_fraction') <= 1
    fraction = record.get("achieved_flops_per_s") / record.get("peak_flops_per_s")
    assert record.get("peak_fraction") == pytest.approx(fraction)
