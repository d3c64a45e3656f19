"""The environment a record carries: versions, what changes speed, and the machine's load around a measurement."""

import os

import pytest
import torch

from unet_bench.measure import env
from unet_bench.measure.outcome import begin, finish
from unet_bench.record import Case, Record


def test_environment_fingerprint():
    fingerprint = env.fingerprint("cpu")
    assert fingerprint["torch"] == torch.__version__
    assert fingerprint["cpu_cores"] == env.cpu_count() >= 1
    assert fingerprint["cpu"] and fingerprint["device_name"] == fingerprint["cpu"]
    assert fingerprint["git_commit"] is None or len(fingerprint["git_commit"].split("-")[0]) == 40
    assert fingerprint["timestamp"].endswith("+00:00")
    assert fingerprint["torch_threads"] == torch.get_num_threads()
    assert set(fingerprint["cpu_isa"]) <= set(env.ISA_FLAGS)
    if torch.backends.mkldnn.is_available():  # the version torch reports it was built with
        assert f"v{fingerprint['onednn']}" in torch.__config__.show()
    if not torch.backends.cudnn.is_available():
        assert fingerprint["cudnn"] is None


def test_speed_variables_are_the_ones_in_force(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("KMP_AFFINITY", "compact")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    monkeypatch.setenv("UNRELATED_SETTING", "1")
    found = env.fingerprint("cpu")["speed_env"]
    assert found["OMP_NUM_THREADS"] == "3" and found["KMP_AFFINITY"] == "compact"
    assert found["MALLOC_ARENA_MAX"] == "2"
    assert "UNRELATED_SETTING" not in found and "PATH" not in found


@pytest.mark.parametrize("text, policy", [("always [madvise] never\n", "madvise"), ("[always] madvise never", "always"),
                                          ("", None)])
def test_the_huge_page_policy_is_the_one_the_kernel_marks(tmp_path, monkeypatch, text, policy):
    path = tmp_path / "enabled"
    path.write_text(text)
    monkeypatch.setattr(env, "TRANSPARENT_HUGEPAGES", path)
    assert env.transparent_hugepages() == policy
    assert env.fingerprint("cpu")["transparent_hugepages"] == policy
    monkeypatch.setattr(env, "TRANSPARENT_HUGEPAGES", tmp_path / "missing")
    assert env.transparent_hugepages() is None


def test_steal_fraction_counts_stolen_ticks_among_all():
    # user nice system idle iowait irq softirq steal
    first = env.Load(0.5, (100, 0, 50, 800, 0, 0, 0, 50))
    last = env.Load(0.7, (200, 0, 100, 1500, 0, 0, 0, 200))  # 1000 ticks passed, 150 of them stolen
    assert env.steal_fraction(first, last) == pytest.approx(0.15)
    assert env.steal_fraction(first, first) is None  # no time passed
    assert env.steal_fraction(env.Load(None, None), last) is None  # /proc/stat not readable


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc")
def test_a_finished_record_carries_the_load_before_and_after():
    started = begin()
    sum(range(10**6))  # some work between the samples
    record = finish(Record(Case("paper", mode="infer")), started, "cpu")
    for key in ("loadavg_before", "loadavg_after", "cpu_steal_before", "cpu_steal_after"):
        assert isinstance(record.env[key], float), key
    assert 0 <= record.env["cpu_steal_before"] <= 1 and 0 <= record.env["cpu_steal_after"] <= 1
    assert record.env["loadavg_before"] == started.load.loadavg
    assert record.duration_s >= env.STEAL_WINDOW_S
