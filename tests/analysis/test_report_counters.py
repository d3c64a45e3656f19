"""The report's FLOP counter section: every counter beside ours for the paper, bilinear and additive networks."""

from __future__ import annotations

import functools
import shutil

from unet_bench.cli import main
from unet_bench.measure import counter_runs


def test_report_adds_the_counter_tables_when_asked(tiny_results, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(tiny_results, run)
    small = functools.partial(counter_runs.report_reconciliations, size=188, base_width=2)  # 572 takes a minute
    monkeypatch.setattr(counter_runs, "report_reconciliations", small)
    assert main(["report", str(run), "--counters"]) == 0
    markdown = (run / "report" / "report.md").read_text()
    assert "## FLOP counters" in markdown
    for network in ("paper", "bilinear", "additive"):
        assert f"### {network} at 188x188" in markdown
    paper = markdown[markdown.index("### paper at 188x188"):markdown.index("### bilinear at 188x188")]
    assert "| ours (exact)" in paper and "torch FlopCounterMode" in paper
    assert "pooling: not counted" in paper  # a cause, in words
    bilinear = markdown[markdown.index("### bilinear at 188x188"):markdown.index("### additive at 188x188")]
    assert "| interpolation " in bilinear
    assert "FLOP counters" in (run / "report" / "report.html").read_text()
