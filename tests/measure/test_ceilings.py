"""Ceilings: the best of measured kernels, the nominal peak beside it, exact GPU names, and a fraction of
peak that never exceeds 1 — not even for a network that is itself a GEMM."""

import pytest
import torch
from torch import nn

from unet_bench.measure import env, measure, measure_module
from unet_bench.measure.peaks import (
    Ceiling,
    ceiling_key,
    ceiling_record,
    cpu_nominal_peak,
    gpu_peak,
    math_mode,
    measure_ceiling,
)
from unet_bench.record import Case


def test_gpu_ceilings_by_exact_name_and_math_mode():
    assert math_mode("fp32", tf32=True) == "tf32" and math_mode("fp32", tf32=False) == "fp32"
    assert gpu_peak("NVIDIA H100 80GB HBM3", "bf16")[0] == 989e12
    assert gpu_peak("NVIDIA H100 PCIe", "tf32")[0] == 378e12
    assert gpu_peak("NVIDIA A100-SXM4-80GB", "fp32")[0] == 19.5e12
    # names that contain another board's name get their own peaks, not the other's
    assert gpu_peak("NVIDIA L4", "bf16")[0] == 121e12 and gpu_peak("NVIDIA L40S", "bf16")[0] == 362e12
    assert gpu_peak("NVIDIA GH200 480GB", "fp32")[1].startswith("GH200")
    assert gpu_peak("NVIDIA H200", "fp32")[1].startswith("H200")
    # a part of a name is no name
    assert gpu_peak("L4", "fp32") == (None, "no datasheet peak known for 'L4'")
    assert gpu_peak("NVIDIA H100", "fp32")[0] is None
    # no TF32 units: a TF32 request runs in fp32; no bf16 units: no datasheet peak
    assert gpu_peak("Tesla V100-SXM2-16GB", "tf32") == (15.7e12, "V100 SXM2 datasheet, dense fp32 (no TF32 units)")
    assert gpu_peak("Tesla T4", "bf16")[0] is None


def test_nominal_cpu_peak_from_isa_and_clock():
    avx512 = ["avx", "fma", "avx2", "avx512f"]
    peak, source = cpu_nominal_peak("fp32", 2, avx512, 2.0, "test clock")
    assert peak == 64 * 2 * 2.0e9 and source.startswith("avx512f: 64 FLOP/cycle/core")
    assert cpu_nominal_peak("fp32", 4, ["avx", "fma", "avx2"], 3.0, "")[0] == 32 * 4 * 3.0e9
    assert cpu_nominal_peak("bf16", 1, [*avx512, "avx512_bf16", "amx_bf16"], 2.0, "")[0] == 1024 * 2.0e9
    assert cpu_nominal_peak("bf16", 1, [*avx512, "avx512_bf16"], 2.0, "")[0] == 128 * 2.0e9
    assert cpu_nominal_peak("fp32", 2, avx512, None, "") == (None, "ISA or clock not readable")
    assert cpu_nominal_peak("fp32", 2, ["sse2"], 2.0, "")[0] is None


def test_a_ceiling_below_the_network_becomes_the_network():
    ceiling = Ceiling("cpu", "fp32", 2, 100e9, "best of 7 kernels")
    assert ceiling.bound(50e9) == (100e9, 0.5, "best of 7 kernels")
    peak, fraction, source = ceiling.bound(120e9)
    assert (peak, fraction) == (120e9, 1.0)
    assert source.startswith("network exceeded the kernels (100.0 GFLOP/s") and "best observed" in source
    assert Ceiling("cuda", "fp32", 1, None, "unknown").bound(1e12) == (None, None, "unknown")


def test_the_cpu_ceiling_is_the_best_measured_kernel():
    threads = env.cpu_count()
    ceiling = measure_ceiling("cpu", "fp32", threads)
    assert ceiling is measure_ceiling("cpu", "fp32", threads)  # once per process
    assert ceiling.flops_per_s == max(ceiling.kernels.values()) > 1e9
    assert any(name.startswith("gemm 512") for name in ceiling.kernels)  # a cache-resident GEMM
    assert any(name.startswith("conv3x3 channels_last") for name in ceiling.kernels)
    best = max(ceiling.kernels, key=ceiling.kernels.get)
    assert ceiling.source.startswith(f"best of {len(ceiling.kernels)} kernels ({best}), fp32, {threads} threads")
    if {"avx512f", "fma"} & set(env.cpu_flags()) and env.cpu_clock_ghz()[0]:
        assert ceiling.nominal_flops_per_s > 0 and "FLOP/cycle/core" in ceiling.nominal_source


def test_the_ceiling_record_carries_what_a_case_needs():
    case = Case("paper", mode="infer", input_size=188, threads=1)
    assert ceiling_key(case) == ("cpu", "fp32", 1)
    record = ceiling_record(case)
    ceiling = Ceiling(**record.extra["ceiling"])
    assert ceiling.threads == 1 and record.get("peak_flops_per_s") == ceiling.flops_per_s
    assert "once per run" in ceiling.source


def test_best_cpu_path_of_a_network_stays_within_its_ceiling():
    case = Case("paper", overrides=(("base_width", 16),), mode="infer", input_size=188, channels_last=True,
                min_run_time_s=0.1)
    record = measure(case)
    assert 0 < record.get('peak_fraction') <= 1
    assert record.get('peak_flops_per_s') >= max(record.extra["peak_kernels_flops_per_s"].values())
    assert record.get('peak_flops_per_s') >= record.get('achieved_flops_per_s')


def test_a_network_that_is_a_gemm_stays_within_its_ceiling():
    """A 1x1 convolution over 32² pixels is a 1024 x 2048 x 2048 GEMM: as fast as the kernels, or faster."""
    gemm = nn.Conv2d(2048, 2048, 1, bias=False)
    case = Case("gemm", mode="infer", input_size=32, channels_last=True, min_run_time_s=0.2)
    record = measure_module(gemm, case)
    assert record.get("flops") == 2 * 32 * 32 * 2048 * 2048
    assert 0 < record.get('peak_fraction') <= 1 and record.get('peak_flops_per_s') >= record.get('achieved_flops_per_s')
    if record.get("peak_fraction") == 1:
        assert record.extra["peak_source"].startswith("network exceeded the kernels")


def test_a_given_ceiling_is_used_as_is():
    ceiling = Ceiling("cpu", "fp32", 1, 1e15, "a ceiling from elsewhere")
    case = Case("paper", overrides=(("base_width", 4),), mode="infer", input_size=188, threads=1,
                min_run_time_s=0.05)
    record = measure(case, ceiling=ceiling)
    assert record.get("peak_flops_per_s") == 1e15 and record.extra["peak_source"] == "a ceiling from elsewhere"
    assert record.get("peak_fraction") == pytest.approx(record.get('achieved_flops_per_s') / 1e15)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", ["tf32", "fp32", "bf16"])
def test_cuda_ceiling_is_datasheet_or_measured(mode):
    ceiling = measure_ceiling("cuda", mode, 1)
    measured = max(ceiling.kernels.values())
    assert ceiling.flops_per_s == max(measured, ceiling.nominal_flops_per_s or 0.0)
    sheet, _ = gpu_peak(torch.cuda.get_device_name(), mode)
    assert ceiling.nominal_flops_per_s == sheet
