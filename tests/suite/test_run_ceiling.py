"""The suite measures each compute ceiling once per run, in a process of its own, and hands it to every timed
case that shares its device, precision and threads."""

from tests.records import flat_records
from unet_bench.suite.runner import run_suite
from unet_bench.suite.spec import load_spec
from unet_bench.suite.store import RESULTS_FILE

SPEC = """
name = "ceiling"
description = "two tiny timed networks and a counts case"
variants = ["paper", "additive"]
modes = ["infer", "counts"]
sizes = [4]
size_rule = "nearest-output"
threads = [1]
min_run_time_s = 0.05
set = {base_width = 4}
"""


def test_one_ceiling_per_run_for_every_timed_case(tmp_path):
    path = tmp_path / "ceiling.toml"
    path.write_text(SPEC)
    lines = []
    summary = run_suite(load_spec(path), tmp_path / "out", progress=False, log=lines.append)
    assert summary.exit_code == 0 and summary.written == {"ok": 4}
    assert len([line for line in lines if line.startswith("ceiling")]) == 1  # one key: cpu, fp32, 1 thread
    records = flat_records(tmp_path / "out" / RESULTS_FILE)
    timed = [r for r in records if r["mode"] == "infer"]
    assert len(timed) == 2
    kernels = [r["extra"]["peak_kernels_flops_per_s"] for r in timed]
    assert kernels[0] == kernels[1] and len(kernels[0]) > 3  # the same measurement, not one per case
    for record in timed:
        assert "measured once per run in a process of its own" in record["extra"]["peak_source"]
        assert 0 < record["peak_fraction"] <= 1
    assert all(r["peak_flops_per_s"] is None for r in records if r["mode"] == "counts")
