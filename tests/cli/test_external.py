"""Other libraries' networks and the FLOP counters from the command line (a real process, real exit codes)."""

import json
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
        assert "24,430,242" in smp and "33, 34, ... (any size" in smp  # resnet34 encoder, 1 channel in, 2 classes


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


@pytest.mark.skipif(not installed("smp:Unet"), reason='needs pip install -e ".[external]"')
@pytest.mark.parametrize("args, message", [
    (["--size", "1"], "input height 1 is not valid for this UNet (valid sizes are 33, 34, 35, ... every 1); the "
                      "nearest valid size is 33"),
    (["--size", "7"], "the nearest valid size is 33"),  # a 1-px bottleneck: batch norm cannot train on it
    (["--size", "64", "--set", "classes=0"], "smp:Unet: classes=0 is not valid; it must be a whole number >= 1"),
    (["--size", "64", "--set", "in_channels=-1"], "in_channels=-1 is not valid"),
    (["--size", "64", "--set", "decoder_channels=(0,0,0,0,0)"], "smp:Unet takes no input size up to 4096 px with "
                                                               "these arguments (at 4096 px the library says: "),
    (["--size", "64", "--set", "encoder_depth=9"], "smp:Unet refused its arguments: ResNetEncoder depth"),
])
def test_what_the_library_refuses_is_one_line_up_front(capsys, args, message):
    from unet_bench.cli import main

    assert main(["count", "smp:Unet", *args, "--counters"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1 and not captured.out


def test_quality_trains_another_librarys_network_at_its_own_size_rule(capsys, tmp_path):
    """MONAI's BasicUNet on the same task, loss and validation as our variants, from its own initialisation."""
    from unet_bench.cli import main
    from unet_bench.suite.spec import load_spec

    args = ["quality", "monai:BasicUNet", "--set", "features=(4,4,4,4,4,4)", "--seeds", "1", "--steps", "2",
            "--tile-out", "40", "--threads", "1", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["train_steps"] == 2 and out["curve_steps"] == [1, 2]
    assert out["extra"]["init"] == "library"
    assert out["extra"]["tile_in"] == out["extra"]["tile_out"] == 40  # any size from 32
    assert 0 <= out["dice_mean"] <= 1
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\ndescription = "d"\nvariants = ["monai:UNet"]\nmodes = ["quality"]\nsizes = [60]\n'
                    'size_rule = "nearest-output"\n')
    (planned,) = load_spec(path).planned
    case = planned.case
    assert case.mode == "quality" and case.input_size == 64  # a multiple of its strides' product, 16
