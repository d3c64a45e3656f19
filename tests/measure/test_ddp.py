"""train-ddp: DistributedDataParallel training on 1 and 2 ranks x 1 thread (gloo on CPU), run as a suite case.
The network is tiny (base_width 4, depth 2, a 60 px tile)."""

import os

from tests.records import flat_records
from unet_bench.cli import main
from unet_bench.models import create_model
from unet_bench.record import Case
from unet_bench.suite.store import RESULTS_FILE

DDP = """
name = "ddp"
description = "data-parallel training of a tiny network"
variants = ["paper"]
modes = ["train-ddp"]
set = {base_width = 4, depth = 2}
sizes = [60]
threads = 1
min_run_time_s = 0.2
"""


def test_two_ranks_train_and_record_throughput_efficiency_and_gradient_bytes(tmp_path):
    (tmp_path / "ddp.toml").write_text(DDP + "world_sizes = [1, 2]\n")
    assert main(["run", str(tmp_path / "ddp.toml"), "--out", str(tmp_path / "out")]) == 0
    [record] = flat_records(tmp_path / "out" / RESULTS_FILE)
    assert record["status"] == "ok", record["message"]
    assert record["mode"] == "train-ddp" and record["world_size"] == 2 and record["threads"] == 1
    assert record["extra"]["ddp_backend"] == "gloo" and record["extra"]["ddp_global_batch"] == {"1": 1, "2": 2}
    one, two = record["ddp_by_world_size"]["1"], record["ddp_by_world_size"]["2"]
    assert one["threads_per_rank"] == two["threads_per_rank"] == 1
    for run in (one, two):  # throughput is the ranks' images over the median step
        assert run["images_per_s"] == run["world_size"] * 1 / run["step_s_median"]
        assert len(run["step_times_s"]) >= 3
    assert one["scaling_efficiency"] == 1.0
    assert two["scaling_efficiency"] == (two["images_per_s"] / 2) / one["images_per_s"]
    assert record["scaling_efficiency"] == two["scaling_efficiency"]
    assert record["images_per_s"] == two["images_per_s"]
    # every gradient is all-reduced once a step, in fp32: the hook counts the network's parameter bytes
    params = sum(p.numel() for p in create_model("paper", base_width=4, depth=2).parameters())
    assert record["params"] == params
    assert one["comm_grad_bytes"] == two["comm_grad_bytes"] == record["comm_grad_bytes"] == 4 * params


def test_more_ranks_than_cores_or_world_sizes_without_train_ddp_are_one_line(tmp_path, capsys):
    too_many = len(os.sched_getaffinity(0)) + 1
    (tmp_path / "big.toml").write_text(DDP + f"world_sizes = [1, {too_many}]\n")
    assert main(["run", str(tmp_path / "big.toml"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"world_sizes: world_sizes up to {too_many} need {too_many} cores" in err
    (tmp_path / "infer.toml").write_text(DDP.replace('"train-ddp"', '"infer"') + "world_sizes = [1]\n")
    assert main(["run", str(tmp_path / "infer.toml"), "--dry-run"]) == 2
    assert 'world_sizes: goes with modes = ["train-ddp"]' in capsys.readouterr().err


def test_world_sizes_leave_other_cases_ids_alone_and_round_trip():
    plain = Case("paper", mode="train")
    assert "world_sizes" not in plain.to_dict()
    ddp = Case("paper", mode="train-ddp", world_sizes=(1, 2))
    assert ddp.to_dict()["world_sizes"] == (1, 2) and Case.from_dict(ddp.to_dict()) == ddp
    assert Case.from_dict({**ddp.to_dict(), "world_sizes": [1, 2]}).case_id == ddp.case_id
    assert ddp.case_id != Case("paper", mode="train-ddp").case_id
    assert "ranks 1,2" in ddp.label
