"""Another library's network through the whole flow: experiment file, runner, compare and report."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from tests.records import flat
from unet_bench.cli import main
from unet_bench.models import external

EXPERIMENT = """
name = "ext"
description = "our padded network beside MONAI's BasicUNet, tiny"
variants = ["padded", "monai:BasicUNet"]
modes = ["counts"]
sizes = [32]
size_rule = "common-output"
threads = 1

[overrides.padded]
base_width = 2
depth = 2

[overrides."monai:BasicUNet"]
features = [2, 2, 4, 4, 8, 2]
"""


@pytest.mark.skipif(external.library_version(external.ADAPTERS["monai:BasicUNet"]) is None,
                    reason='needs pip install -e ".[external]"')
def test_an_external_network_runs_compares_and_reports_like_a_variant(tmp_path, capsys):
    (tmp_path / "ext.toml").write_text(EXPERIMENT)
    assert main(["run", str(tmp_path / "ext.toml"), "--out", str(tmp_path / "ext")]) == 0
    records = [flat(json.loads(line)) for line in (tmp_path / "ext" / "results.jsonl").read_text().splitlines()]
    basic = next(r for r in records if r["variant"] == "monai:BasicUNet")
    assert basic["status"] == "ok" and basic["input_size"] == basic["output_size"] == 32
    assert basic["config"]["library_version"] == importlib.metadata.version("monai")
    assert basic["config"]["padding"] == "n/a" and basic["config"]["kwargs"]["features"] == [2, 2, 4, 4, 8, 2]
    assert basic["params"] == 2_918 and basic["overrides"] == {"features": [2, 2, 4, 4, 8, 2]}
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "ext"), "--baseline", "padded[base_width=2,depth=2]"]) == 0
    table = capsys.readouterr().out
    assert "monai:BasicUNet[features=2/2/4/4/8/2]" in table
    assert main(["report", str(tmp_path / "ext"), "--baseline", "padded[base_width=2,depth=2]"]) == 0
    markdown = (tmp_path / "ext" / "report" / "report.md").read_text()
    assert f"monai:BasicUNet is monai.networks.nets.BasicUNet from monai {importlib.metadata.version('monai')}" \
        in markdown
