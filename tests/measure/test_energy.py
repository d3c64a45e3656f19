"""Energy is measured by a hardware counter or recorded as not available, with the reason: never guessed."""

import pytest
import torch

from unet_bench.measure.energy import nvml_energy, rapl_energy, rapl_packages, step_energy


def test_no_powercap_says_why(tmp_path):
    energy = rapl_energy(lambda: None, run_s=0.01, root=tmp_path / "powercap")
    assert not energy.available and energy.joules_per_call is None
    assert energy.method.startswith("not available: ") and "does not exist" in energy.method


def test_unreadable_rapl_counter_says_why(tmp_path):
    (tmp_path / "intel-rapl:0" / "energy_uj").mkdir(parents=True)  # a folder where the counter should be
    assert rapl_packages(tmp_path) == ([], f"{tmp_path / 'intel-rapl:0' / 'energy_uj'} is not readable "
                                           "(root only since Linux 5.10)")


def test_rapl_counters_are_read_and_idle_subtracted(tmp_path):
    """A counter that does not move: total 0 J, idle 0 W, so 0 J per call, from the counters, not a guess."""
    domain = tmp_path / "intel-rapl:0"
    domain.mkdir()
    (domain / "energy_uj").write_text("123456\n")
    (domain / "max_energy_range_uj").write_text("262143328850\n")
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-domain (core): not a package, not summed
    energy = rapl_energy(lambda: None, run_s=0.01, root=tmp_path)
    assert energy.available and energy.calls >= 1
    assert energy.total_joules == 0 and energy.idle_watts == 0 and energy.joules_per_call == 0
    assert "(intel-rapl:0)" in energy.method and "intel-rapl:0:0" not in energy.method


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: NVML measures for real")
def test_nvml_without_a_gpu_says_why():
    energy = nvml_energy(lambda: None, run_s=0.01)
    assert not energy.available and energy.joules_per_call is None
    assert ("nvidia-ml-py is not installed" in energy.method or "NVML did not start" in energy.method)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_nvml_measures_a_gpu_step():
    a = torch.randn(4096, 4096, device="cuda")
    energy = step_energy(lambda: a @ a, "cuda")
    assert energy.available, energy.method
    assert energy.joules_per_call > 0 and energy.idle_watts > 0 and "NVML" in energy.method
