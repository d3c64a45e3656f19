"""Other libraries' networks: built by their own code at a tiny size, with provenance and size rules."""

import importlib.metadata

import pytest
import torch

from unet_bench.errors import BenchError, InvalidInputSizeError
from unet_bench.models import create_model, external, geometry, get_config
from unet_bench.suite.spec import load_spec

TINY = {
    "monai:BasicUNet": dict(features=(2, 2, 4, 4, 8, 2)),
    "monai:UNet": dict(channels=(2, 4, 8), strides=(2, 2), num_res_units=1),
    "monai:DynUNet": dict(kernel_size=(3, 3, 3), strides=(1, 2, 2), upsample_kernel_size=(2, 2), filters=(2, 4, 8)),
    "smp:Unet": dict(encoder_name="resnet18", encoder_depth=3, decoder_channels=(8, 4, 4)),
    "nnunet:PlainConvUNet": dict(n_stages=3, features_per_stage=(2, 4, 8), strides=(1, 2, 2)),
}
# The library's own rule: period of the valid sizes at these arguments.
PERIODS = {"monai:BasicUNet": 1, "monai:UNet": 4, "monai:DynUNet": 4, "smp:Unet": 1, "nnunet:PlainConvUNet": 4}


def need(name: str) -> None:
    """Skip where the extra is not installed (a plain importorskip would import smp before the torchvision fix)."""
    if external.library_version(external.get_adapter(name)) is None:
        pytest.skip(f'{name} needs pip install -e ".[external]"')


@pytest.mark.parametrize("name", list(TINY))
def test_each_external_network_builds_runs_and_says_where_it_came_from(name):
    need(name)
    cfg = get_config(name, **TINY[name])
    first, period = geometry.progression(cfg)
    assert period == PERIODS[name]
    size = first + 2 * period
    model = create_model(name, **TINY[name]).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, size, size))
    assert out.shape == (1, 2, size, size)
    assert geometry.output_size(cfg, size) == size
    record = model.cfg.to_dict()
    adapter = external.get_adapter(name)
    assert record["library_version"] == importlib.metadata.version(adapter.package)
    assert record["network"] == name and record["in_channels"] == 1 and record["num_classes"] == 2
    assert record["padding"] == record["upsample"] == record["skip"] == "n/a"  # not guessed
    # the first valid size really is the first: the multiple below it does not run (or is 0)
    assert first == period or not external._runs(external._meta_model(cfg), 1, first - period)


def test_sizes_off_the_stride_product_are_refused_naming_the_nearest():
    need("nnunet:PlainConvUNet")
    cfg = get_config("nnunet:PlainConvUNet", **TINY["nnunet:PlainConvUNet"])
    assert geometry.progression(cfg) == (8, 4)  # instance norm needs more than 1 px at the bottleneck (8 / 4)
    with pytest.raises(InvalidInputSizeError, match="nearest valid sizes are 68 and 72"):
        geometry.check_input_size(cfg, 70, 70)


def test_smp_follows_its_own_flag_for_divisible_inputs():
    need("smp:Unet")
    cfg = get_config("smp:Unet", **TINY["smp:Unet"])
    model = external._meta_model(cfg)
    # any size, from the first whose training forward runs: batch norm needs more than 1 px at the bottleneck
    assert model.requires_divisible_input_shape is False and geometry.progression(cfg) == (9, 1)
    model.requires_divisible_input_shape = True  # what smp's other decoders declare
    assert external._smp_period(cfg.arguments(), model) == model.encoder.output_stride == 8


def test_bad_arguments_and_names_are_one_line_errors():
    need("monai:BasicUNet")
    with pytest.raises(BenchError, match="takes no argument 'bogus'; valid arguments are .*'features'"):
        get_config("monai:BasicUNet", bogus=1)
    with pytest.raises(BenchError, match="unknown external network 'monai:Nope'; valid ones are 'monai:BasicUNet'"):
        get_config("monai:Nope")
    with pytest.raises(BenchError, match="spatial_dims=3 is not valid"):
        get_config("monai:BasicUNet", spatial_dims=3)


def test_smp_never_downloads_weights():
    need("smp:Unet")
    with pytest.raises(BenchError, match="would download weights"):
        get_config("smp:Unet", encoder_weights="imagenet")


def test_a_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setattr(external, "library_version", lambda adapter: None)
    with pytest.raises(BenchError, match=r'pip install -e "\.\[external\]"'):
        create_model("nnunet:PlainConvUNet")


def test_experiment_files_take_external_networks_with_their_arguments(tmp_path):
    need("monai:BasicUNet")
    path = tmp_path / "ext.toml"
    path.write_text('name = "ext"\ndescription = "d"\nvariants = ["padded", "monai:BasicUNet"]\nsizes = [32]\n'
                    'size_rule = "common-output"\nset = {base_width = 2}\n'
                    '[overrides."monai:BasicUNet"]\nfeatures = [2, 2, 4, 4, 8, 2]\n'.replace(
                        'set = {base_width = 2}\n', ''))
    cases = [p.case for p in load_spec(path).planned]
    basic = next(c for c in cases if c.variant == "monai:BasicUNet")
    assert basic.input_size == 32 and basic.overrides == (("features", (2, 2, 4, 4, 8, 2)),)
    assert next(c for c in cases if c.variant == "padded").input_size == 32
    path.write_text(path.read_text().replace("features", "featurez"))
    with pytest.raises(BenchError, match="takes no argument 'featurez'"):
        load_spec(path)


def test_importing_a_library_leaves_the_environment_as_it_was(monkeypatch):
    need("monai:BasicUNet")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    import sys

    for module in [m for m in sys.modules if m == "monai" or m.startswith("monai.")]:
        monkeypatch.delitem(sys.modules, module)  # a fresh import: MONAI sets CUBLAS_WORKSPACE_CONFIG then
    create_model("monai:BasicUNet", **TINY["monai:BasicUNet"])
    assert "CUBLAS_WORKSPACE_CONFIG" not in __import__("os").environ
