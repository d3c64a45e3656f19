"""A suite can run mode "profile": each record holds the inference and training profiles and the energy (or
why there is none); compare shows it, and the report gains the per-kind tables and the paper's roofline."""

import torch

from tests.records import flat_records
from unet_bench.analysis.report import write_report
from unet_bench.suite.runner import run_suite
from unet_bench.suite.spec import load_spec
from unet_bench.suite.store import RESULTS_FILE

SPEC = """
name = "profile"
description = "two tiny profiled networks"
variants = ["paper", "instancenorm"]
modes = ["profile"]
sizes = [4]
size_rule = "nearest-output"
threads = [1]
min_run_time_s = 0.05
set = {base_width = 2, depth = 2}
"""


def test_profile_suite_records_and_report(tmp_path):
    path = tmp_path / "profile.toml"
    path.write_text(SPEC)
    summary = run_suite(load_spec(path), tmp_path / "out", progress=False, log=lambda line: None)
    assert summary.exit_code == 0 and summary.written == {"ok": 2}
    records = flat_records(tmp_path / "out" / RESULTS_FILE)
    for record in records:
        assert set(record["profile_by_step"]) == {"infer", "train"}
        infer, train = record["profile_by_step"]["infer"], record["profile_by_step"]["train"]
        assert sum(r["flops"] for r in infer["rows"]) == record["flops"] + record["other_flops"]
        assert sum(r["flops"] for r in train["rows"]) == record["train_flops"]
        assert "measured once per run in a process of its own" in infer["compute_source"]
        if not torch.cuda.is_available():
            assert record["energy_j_per_image"] is None and record["energy_method"].startswith("not available: ")
    norm = next(r for r in records if r["variant"] == "instancenorm")["profile_by_step"]["infer"]["by_kind"]
    assert norm["norm"]["time_s"] > 0
    html, markdown, _ = write_report([tmp_path / "out"], tmp_path / "report")
    text = markdown.read_text()
    assert "Where the time goes: inference forward" in text and "Where the time goes: training step" in text
    assert "Roofline: paper infer" in text and "Roofline: paper train" in text
    assert (tmp_path / "report" / "figures" / "roofline_paper_infer_44_cpu.png").stat().st_size > 10_000
    assert "instancenorm" in text.split("Where the time goes: inference forward")[1]
