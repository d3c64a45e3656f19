"""Suites as jobs through submitit's local executor, shards, and many processes appending to one results
file. Cases are tiny (base_width 4, counts only); the stand-in measure function runs inside a job's case
process (imported from this module by name)."""

import functools
import multiprocessing
import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.records import flat_records
from unet_bench import BenchError
from unet_bench.cli import main
from unet_bench.measure import measure
from unet_bench.record import Case, Record
from unet_bench.suite.executors import JobOptions, describe_jobs, plan_jobs, run_on_executor
from unet_bench.suite.shard import parse_shard, shard_spec, share
from unet_bench.suite.store import RESULTS_FILE, ResultsWriter, read_records

from .test_runner import tiny_spec

pytest.importorskip("submitit")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def kill_job_once(marker: str, case: Case) -> Record:
    """The real measure, except that the first time it meets 'padded' it kills the whole job it runs in
    (SIGKILL, as a scheduler or the out-of-memory killer would), leaving ``marker`` behind."""
    if case.variant == "padded" and not os.path.exists(marker):
        Path(marker).touch()
        pid = os.getppid()  # the case's fork server; above it, the job's process
        while pid > 1 and b"submitit" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            pid = _parent(pid)
        os.kill(pid, signal.SIGKILL)
        time.sleep(60)
    return measure(case)


def test_local_jobs_with_a_killed_job_and_a_resume_record_every_case_once(tmp_path):
    spec = tiny_spec(tmp_path)
    out, marker = tmp_path / "out", str(tmp_path / "killed")
    options = JobOptions("local", time_limit_min=5, cases_per_job=2, jobs_at_once=2)  # paper, padded | additive
    lines: list[str] = []
    first = run_on_executor(spec, out, options, measure_fn=functools.partial(kill_job_once, marker),
                            log=lines.append)
    assert os.path.exists(marker)
    assert first.written == {"ok": 2, "error": 1} and first.exit_code == 1
    records = flat_records(out / RESULTS_FILE)
    lost = [r for r in records if r["status"] == "error"]
    assert [r["variant"] for r in lost] == ["padded"]
    assert "its job 1" in lost[0]["message"] and "recorded nothing for it" in lost[0]["message"]
    assert lost[0]["suite"] == "tiny" and lost[0]["case_id"] == spec.planned[1].case.case_id
    assert sum("case(s) recorded as error" in line for line in lines) == 1

    lines.clear()
    again = run_on_executor(spec, out, options, resume=True, measure_fn=functools.partial(kill_job_once, marker),
                            log=lines.append)
    assert again.written == {"ok": 1} and again.already_done == 2 and again.exit_code == 0
    assert [line.split(" (")[0] for line in lines if line.startswith("job ")] == ["job 1/1"]  # only the missing one
    records = flat_records(out / RESULTS_FILE)
    ok = Counter(r["case_id"] for r in records if r["status"] == "ok")
    assert ok == {p.case.case_id: 1 for p in spec.planned}  # every case recorded ok exactly once
    assert len(records) == 4  # and the killed job's case once more, as the error it was
    assert not list(out.glob(".lock*"))


def test_a_folder_with_records_needs_resume_and_the_dry_run_lists_the_jobs(tmp_path):
    spec = tiny_spec(tmp_path)
    jobs = plan_jobs(spec, {spec.planned[0].case.case_id: "ok"}, cases_per_job=2)
    assert [len(job.planned) for job in jobs] == [2]
    lines = describe_jobs(spec, jobs, JobOptions("slurm", partition="gpu", cases_per_job=2))
    assert lines[1].split() == ["job", "1", "cases", "2,", "3", f"~{round(jobs[0].cost_s)}", "s"]
    assert "partition gpu" in lines[0] and "0 GPU(s) per job" in lines[0]
    out = tmp_path / "out"
    out.mkdir()
    with ResultsWriter(out / RESULTS_FILE) as writer:
        writer.append({"case_id": "x", "suite": "tiny", "status": "ok"})
    with pytest.raises(BenchError, match="already holds 1 records; add --resume"):
        run_on_executor(spec, out, JobOptions("local"))
    if shutil.which("srun") is None:  # no SLURM here: one line, not submitit's traceback
        with pytest.raises(BenchError, match='--executor slurm cannot be used here: Could not detect "srun"'):
            run_on_executor(spec, tmp_path / "elsewhere", JobOptions("slurm"))


def test_shards_are_disjoint_deterministic_and_cover_the_suite(tmp_path):
    spec = tiny_spec(tmp_path, 'repeats = 3\n')
    ids = [p.case.case_id for p in spec.planned]
    shares = [[p.case.case_id for p in shard_spec(spec, i, 4).planned] for i in range(1, 5)]
    assert sorted(sum(shares, [])) == sorted(ids) and [len(s) for s in shares] == [3, 2, 2, 2]
    assert shares[0] == [ids[0], ids[4], ids[8]]
    assert share("abcdefg", 2, 3) == ["b", "e"]
    assert parse_shard("2/4") == (2, 4)
    for text, why in (("0/4", "I must be in"), ("5/4", "I must be in"), ("1/0", "N must be in"), ("a/b", "I/N")):
        with pytest.raises(BenchError, match=why):
            parse_shard(text)


def test_two_shards_write_one_folder_and_bad_shards_are_one_line(tmp_path, capsys):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_spec(tmp_path).path.read_text())
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--shard", "1/2"]) == 0
    assert main(["run", str(path), "--out", str(out), "--shard", "2/2"]) == 0  # not refused: other cases
    records = flat_records(out / RESULTS_FILE)
    assert [r["variant"] for r in records] == ["paper", "additive", "padded"]
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(out), "--shard", "3/2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "I must be in [1, 2]" in err
    assert main(["run", str(path), "--partition", "gpu"]) == 2
    assert "--partition goes with --executor local or slurm" in capsys.readouterr().err
    assert main(["run", str(path), "--executor", "slurm", "--cases-per-job", "2", "--shard", "1/1", "--dry-run"]) == 0
    out_lines = capsys.readouterr().out.splitlines()
    assert out_lines[-4].startswith("# 2 job(s); executor slurm: 2 case(s) per job, 0 GPU(s) per job, time limit 60")
    assert out_lines[-3].split()[:5] == ["job", "1", "cases", "1,", "2"] and out_lines[-2].split()[:4] == \
        ["job", "2", "cases", "3"]
    with pytest.raises(SystemExit) as stopped:
        main(["run", str(path), "--executor", "pbs"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --executor: invalid choice: 'pbs'" in err


def _append_many(path: str, writer_id: int, count: int) -> None:
    with ResultsWriter(path) as writer:
        for i in range(count):
            writer.append({"writer": writer_id, "i": i, "pad": "x" * (5000 + 37 * i)})


def test_processes_appending_at_once_never_tear_a_line(tmp_path):
    path = tmp_path / RESULTS_FILE
    _append_many(str(path), -1, 1)
    context = multiprocessing.get_context("fork")  # the writers touch no torch state
    writers = [context.Process(target=_append_many, args=(str(path), w, 150)) for w in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join()
    back = read_records(path)
    assert back.partial_line_bytes == 0
    assert Counter(r["writer"] for r in back.records) == {-1: 1, 0: 150, 1: 150, 2: 150, 3: 150}
    for w in range(4):
        assert [r["i"] for r in back.records if r["writer"] == w] == list(range(150))


def test_an_append_after_a_writer_died_mid_line_cuts_its_partial_line(tmp_path):
    path = tmp_path / RESULTS_FILE
    with ResultsWriter(path) as first, ResultsWriter(path) as second:  # both opened on a good file
        first.append({"n": 1})
        with open(path, "ab") as raw:
            raw.write(b'{"n": 2, "cut')  # a writer killed mid-line
        second.append({"n": 3})
    assert [r["n"] for r in read_records(path).records] == [1, 3]
