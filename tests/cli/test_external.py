"""Other libraries' networks and the FLOP counters from the command line (a real process, real exit codes)."""

import subprocess
import sys

import pytest

from unet_bench.models import external


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unet_bench", *args], capture_output=True, text=True, timeout=300)


def installed(name: str) -> bool:
    return external.library_version(external.get_adapter(name)) is not None


def test_models_external_lists_each_network_with_its_library():
    result = run("models", "--external")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["network", "library", "parameters"]
    for name, adapter in external.ADAPTERS.items():
        line = next(line for line in lines if line.startswith(name + " "))
        version = external.library_version(adapter)
        assert (f"{adapter.package} {version}" if version else "not installed") in line
    if installed("smp:Unet"):
        smp = next(line for line in lines if line.startswith("smp:Unet "))
        assert "24,430,242" in smp and "1, 2, ... (any size" in smp  # resnet34 encoder, 1 channel in, 2 classes


@pytest.mark.skipif(not installed("nnunet:PlainConvUNet"), reason='needs pip install -e ".[external]"')
def test_an_invalid_size_is_one_line_naming_the_nearest():
    result = run("count", "nnunet:PlainConvUNet", "--size", "70")  # 5 poolings, instance norm: 64, 96, ...
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "unet-bench count: error: input height 70 is not valid for this UNet (valid sizes are 64, 96, 128, ... "
        "every 32); the nearest valid sizes are 64 and 96"]


@pytest.mark.skipif(not installed("monai:BasicUNet"), reason='needs pip install -e ".[external]"')
def test_count_with_counters_on_an_external_network():
    result = run("count", "monai:BasicUNet", "--size", "32", "--set", "features=(2,2,4,4,8,2)", "--counters")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "monai:BasicUNet: 1x1x32x32 -> 1x2x32x32" in out
    version = external.library_version(external.ADAPTERS["monai:BasicUNet"])
    assert f"monai.networks.nets.BasicUNet from monai {version} (our design factors: n/a)" in out
    table = out[out.index("FLOP counters"):]
    assert "ours (exact)" in table and "torch FlopCounterMode" in table
    for name in ("ptflops", "thop", "torchinfo", "calflops"):
        assert name in table  # with its figures, or "not installed"
    assert "normalisation" in table  # instance norm: a type the conv-only counters leave out
