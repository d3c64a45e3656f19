"""The runner: each case in its own process, every record on disk at once, failures recorded, one run per
directory. Cases are tiny (base_width 4, the smallest sizes); the stand-in measure functions below run in
the child process like the real one (the child imports them from this module by name)."""

import dataclasses
import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.records import flat, flat_records
from unet_bench import BenchError, create_model
from unet_bench.measure import measure
from unet_bench.record import Case, Record
from unet_bench.suite import runner
from unet_bench.suite.progress import describe
from unet_bench.suite.resume import done_in_folder
from unet_bench.suite.runner import run_isolated, run_suite
from unet_bench.suite.spec import load_spec
from unet_bench.suite.store import LOCK_FILE, RESULTS_FILE, ResultsWriter, locked, read_records

TINY = """
name = "tiny"
description = "tiny networks at their smallest sizes"
variants = ["paper", "padded", "additive"]
modes = ["counts"]
sizes = [4]
size_rule = "nearest-output"
set = {base_width = 4}
"""


def tiny_spec(tmp_path: Path, extra: str = "", text: str = TINY):
    path = tmp_path / "tiny.toml"
    path.write_text(text + extra)
    return load_spec(path)


def run(spec, out, **kwargs):
    return run_suite(spec, out, progress=False, log=lambda line: None, **kwargs)


# --- stand-ins for measure, run in the child process --------------------------------------------------


def failing_measure(case: Case) -> Record:
    """The real measure, except that some cases fail in each of the ways a case can fail."""
    if case.variant == "padded":
        raise ValueError("a forced failure")
    if case.variant == "additive":
        os.kill(os.getpid(), signal.SIGSEGV)
    if case.variant == "no-skip":
        os._exit(3)
    if case.variant == "bilinear":
        raise MemoryError()
    return measure(case)


def memory_hungry_measure(case: Case) -> Record:
    """The real measure, after holding 1 GiB of resident memory for a minute (padded), touching 1 GiB for an
    instant (additive), or reserving 2 GiB never touched (no-skip: address space only, no resident memory)."""
    block = None
    if case.variant == "padded":
        block = torch.ones(2**28)
        time.sleep(60)
    elif case.variant == "additive":
        block = torch.ones(2**28)
    elif case.variant == "no-skip":
        block = torch.empty(2**29)
    del block
    return measure(case)


def interrupting_measure(runner_pid: int, case: Case) -> Record:
    """Presses Ctrl-C on the runner in the middle of the third case."""
    if case.variant == "additive":
        os.kill(runner_pid, signal.SIGINT)
        time.sleep(60)
    return measure(case)


def sleeping_measure(case: Case) -> Record:
    time.sleep(60)
    return measure(case)


def malloc_environ() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key.startswith("MALLOC_")}


def measure_noting_malloc_environ(case: Case) -> Record:
    """The real measure, plus the glibc allocator variables the case's process ran under."""
    record = measure(case)
    record.extra["malloc_environ"] = malloc_environ()
    return record


def oom_above_five(case: Case) -> Record:
    """A device that fits batches up to 5: larger ones raise the way an allocator does."""
    if case.batch > 5:
        raise RuntimeError(f"CUDA out of memory. Tried to allocate {case.batch} GiB")
    return Record.for_case(case, macs=1)


# --- tests ---------------------------------------------------------------------------------------------


def test_tiny_experiment_runs_end_to_end(tmp_path):
    spec = tiny_spec(tmp_path)
    summary = run(spec, tmp_path / "out")
    assert summary.exit_code == 0 and summary.written == {"ok": 3}
    records = flat_records(tmp_path / "out" / RESULTS_FILE)
    assert [r["case_id"] for r in records] == [p.case.case_id for p in spec.planned]
    paper = records[0]
    assert paper["status"] == "ok" and paper["suite"] == "tiny" and paper["timestamp"]
    assert (paper["input_size"], paper["output_size"]) == (188, 4)
    assert paper["config"]["base_width"] == 4 and paper["overrides"] == {"base_width": 4}
    assert paper["params"] == sum(p.numel() for p in create_model("paper", base_width=4).parameters())
    assert paper["macs"] > 0
    assert records[1]["input_size"] == 16 and records[1]["output_size"] == 16  # padded: same size out
    assert not (tmp_path / "out" / LOCK_FILE).exists()


def test_failed_and_crashed_cases_are_recorded_and_the_rest_still_run(tmp_path):
    variants = ["paper", "padded", "additive", "no-skip", "bilinear", "nearest"]
    names = ", ".join(f'"{v}"' for v in variants)
    spec = tiny_spec(tmp_path, text=TINY.replace('"paper", "padded", "additive"', names))
    summary = run(spec, tmp_path / "out", measure_fn=failing_measure)
    records = {r["variant"]: r for r in flat_records(tmp_path / "out" / RESULTS_FILE)}
    assert [records[v]["status"] for v in variants] == ["ok", "error", "error", "error", "oom", "ok"]
    assert records["padded"]["message"] == "ValueError: a forced failure"
    assert "Traceback" in records["padded"]["extra"]["traceback"]
    assert records["additive"]["message"].startswith("the case's process was killed by SIGSEGV")
    assert records["no-skip"]["message"] == "the case's process exited with status 3 without a result"
    assert records["no-skip"]["config"]["skip"] == "none"  # a crash still records the full config
    assert summary.exit_code == 1 and summary.written == {"ok": 2, "error": 3, "oom": 1}


def test_ctrl_c_stops_the_case_in_flight_and_keeps_the_finished_ones(tmp_path):
    # Ctrl-C as a user's shell delivers it: Python's own handler, the signal not blocked (an earlier test
    # in the same pytest process may have left either changed)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    spec = tiny_spec(tmp_path, text=TINY.replace('"additive"', '"additive", "no-skip"'))
    start = time.monotonic()
    summary = run(spec, tmp_path / "out", measure_fn=functools.partial(interrupting_measure, os.getpid()))
    assert time.monotonic() - start < 30  # the sleeping case was stopped, not waited for
    assert summary.interrupted and summary.exit_code == 130 and summary.written == {"ok": 2}
    records = read_records(tmp_path / "out" / RESULTS_FILE)
    assert [flat(r)["variant"] for r in records.records] == ["paper", "padded"] and not records.partial_line_bytes
    assert describe(summary).splitlines() == [
        f"interrupted: 2 ok written to {tmp_path / 'out' / RESULTS_FILE}",
        f"every finished case is on disk; finish the rest with --resume --out {tmp_path / 'out'}"]
    assert not (tmp_path / "out" / LOCK_FILE).exists()


OVER_LIMIT = r"the case's process went over the CPU memory limit: peak resident memory (\d\.\d\d) GiB > 0.9 GiB \({}\)"


def test_cpu_memory_limit_caps_resident_memory_and_the_suite_goes_on(tmp_path):
    """Resident memory past the limit is an oom, stopped at once; address space that is never touched is not
    memory; the cases after an oom still run."""
    spec = tiny_spec(tmp_path, "cpu_memory_limit_gb = 0.9", TINY.replace('"additive"', '"no-skip"'))
    start = time.monotonic()
    summary = run(spec, tmp_path / "out", measure_fn=memory_hungry_measure)
    assert time.monotonic() - start < 40  # the case holding 1 GiB for a minute was stopped
    records = flat_records(tmp_path / "out" / RESULTS_FILE)
    assert [(r["variant"], r["status"]) for r in records] == [("paper", "ok"), ("padded", "oom"), ("no-skip", "ok")]
    assert summary.written == {"oom": 1, "ok": 2} and summary.exit_code == 0
    match = re.fullmatch(OVER_LIMIT.format("it was stopped"), records[1]["message"])
    assert match and 0.9 <= float(match[1]) < 2  # printed to two decimals: just over 0.9 reads 0.90
    assert records[1]["extra"]["cpu_memory_limit_gb"] == 0.9


def test_a_brief_excess_between_two_reads_is_found_when_the_case_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "POLL_S", 600.0)  # no read while the case runs: only the final check sees it
    case = dataclasses.replace(tiny_spec(tmp_path).planned[0].case, variant="additive")
    record = run_isolated(case, memory_hungry_measure, memory_limit_gb=0.9)
    match = re.fullmatch(OVER_LIMIT.format("found when it ended"), record.message)
    assert record.status == "oom" and match and 1 < float(match[1]) < 2


def test_a_suite_case_is_measured_as_unet_bench_time_measures_it():
    """Same process set-up, same timing method, same peak-memory method: nothing is set in the suite's case
    process that a plain `python` running `unet-bench time` would not have (the glibc allocator included)."""
    case = Case("paper", overrides=(("base_width", 4),), mode="train", input_size=188, min_run_time_s=0.05)
    suite = run_isolated(case, measure_noting_malloc_environ)
    command = [sys.executable, "-m", "unet_bench", "time", "paper", "--set", "base_width=4", "--size", "188",
               "--mode", "train", "--min-run-time", "0.05", "--json"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    alone = Record.from_dict(json.loads(proc.stdout))
    assert suite.status == alone.status == "ok"
    assert suite.extra.pop("malloc_environ") == malloc_environ()  # the run's own, none added
    assert suite.env.get("speed_env") == alone.env.get("speed_env")  # variables that change speed, if recorded
    assert suite.extra["timing_method"] == alone.extra["timing_method"]
    assert suite.columns()["threads"] == alone.columns()["threads"]
    assert suite.get("peak_mem_method") == alone.get("peak_mem_method")
    assert suite.extra["saved_bytes_method"] == alone.extra["saved_bytes_method"]
    for record in (suite, alone):
        assert "MALLOC_" not in json.dumps(record.to_dict()) or malloc_environ()


def test_timeout_stops_a_hung_case(tmp_path):
    record = run_isolated(tiny_spec(tmp_path).planned[0].case, sleeping_measure, timeout_s=0.5)
    assert record.status == "error" and record.message == "timed out after 0.5 s (the case was stopped)"


def test_resume_skips_ok_cases_and_reruns_the_rest(tmp_path):
    out = tmp_path / "out"
    spec = tiny_spec(tmp_path)
    with ResultsWriter(out.mkdir() or out / RESULTS_FILE) as writer:  # a run that got one case done
        writer.append(Record.for_case(spec.planned[0].case, status="ok", macs=5, suite="tiny").to_dict())
        writer.append(Record.for_case(spec.planned[1].case, status="error", message="earlier", suite="tiny").to_dict())
    with pytest.raises(BenchError, match="already holds 2 records; add --resume"):
        run(spec, out)
    summary = run(spec, out, resume=True)
    assert summary.already_done == 1 and summary.written == {"ok": 2}
    records = flat_records(out / RESULTS_FILE)
    assert [(r["case_id"], r["status"]) for r in records] == [
        (spec.planned[0].case.case_id, "ok"), (spec.planned[1].case.case_id, "error"),
        (spec.planned[1].case.case_id, "ok"), (spec.planned[2].case.case_id, "ok")]
    assert done_in_folder(spec, out) == {p.case.case_id: "ok" for p in spec.planned}


def test_partial_last_line_is_left_out_reported_and_repaired(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    spec = tiny_spec(tmp_path)
    first = Record.for_case(spec.planned[0].case, status="ok", macs=5, suite="tiny").to_dict()
    with ResultsWriter(out / RESULTS_FILE) as writer:
        writer.append(first)
    with (out / RESULTS_FILE).open("ab") as file:  # a kill in the middle of writing the second line
        file.write(b'{"variant": "padded", "mode": "co')
    back = read_records(out / RESULTS_FILE)
    assert back.records == [first] and back.partial_line_bytes == 33
    lines = []
    summary = run_suite(spec, out, resume=True, progress=False, log=lines.append)
    assert summary.partial_line_bytes == 33 and "left out a partial last line (33 bytes" in lines[0]
    back = read_records(out / RESULTS_FILE)
    assert back.partial_line_bytes == 0 and [r["status"] for r in back.records] == ["ok"] * 3


def test_a_corrupt_line_before_the_last_is_refused_naming_it(tmp_path):
    path = tmp_path / RESULTS_FILE
    path.write_text('{"a": 1}\nnot json\n{"b": 2}\n')
    with pytest.raises(BenchError, match="results.jsonl: line 2 is not a JSON record"):
        read_records(path)


def test_lock_refuses_a_second_run_and_a_dead_runs_lock_is_taken_over(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    spec = tiny_spec(tmp_path)
    with locked(out):
        with pytest.raises(BenchError, match=rf"out is in use by another run \(pid {os.getpid()}\)"):
            run(spec, out)
    (out / LOCK_FILE).write_text("999999\n")  # left by a run killed with SIGKILL: no process holds it
    assert run(spec, out).written == {"ok": 3}
    assert not (out / LOCK_FILE).exists()


def test_max_batch_search_doubles_then_bisects_and_records_every_probe(tmp_path):
    path = tmp_path / "search.toml"
    path.write_text(TINY.replace('"paper", "padded", "additive"', '"paper"').replace('modes = ["counts"]', """
modes = ["infer"]
max_batch_search = true
max_batch = 100
cpu_memory_limit_gb = 16"""))
    spec = load_spec(path)
    out = tmp_path / "out"
    summary = run(spec, out, measure_fn=oom_above_five)
    probes = [(r["batch"], r["status"]) for r in flat_records(out / RESULTS_FILE)]
    assert probes == [(1, "ok"), (2, "ok"), (4, "ok"), (8, "oom"), (6, "oom"), (5, "ok")]
    assert [(s.fits, s.fails, s.stopped) for s in summary.searches] == [(5, 6, None)]
    assert summary.searches[0].describe(100) == (
        "max batch paper[base_width=4] infer cpu 188px fp32 #0: 5 fits, 6 does not")
    again = run(spec, out, resume=True, measure_fn=oom_above_five)  # every probe is known: nothing reruns
    assert again.written == {} and [(s.fits, s.fails) for s in again.searches] == [(5, 6)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what happens where CUDA is missing")
def test_cases_this_machine_cannot_run_are_recorded_as_skipped(tmp_path):
    text = TINY.replace('"paper", "padded", "additive"', '"paper"')
    spec = tiny_spec(tmp_path, text=text.replace('modes = ["counts"]', 'modes = ["counts"]\ndevices = ["cpu", "cuda"]'))
    run(spec, tmp_path / "out")
    records = flat_records(tmp_path / "out" / RESULTS_FILE)
    assert [(r["mode"], r["device"], r["status"]) for r in records] == [
        ("counts", "cpu", "ok"), ("counts", "cuda", "skipped")]
    assert records[1]["message"] == "device 'cuda' is not available on this machine"


def test_a_case_over_its_memory_floor_is_recorded_oom_with_the_estimate_and_not_run(tmp_path):
    spec = tiny_spec(tmp_path, extra="cpu_memory_limit_gb = 0.0001\n", text=TINY.replace(', "additive"', ""))
    summary = run(spec, tmp_path / "out", measure_fn=sleeping_measure)  # a case that ran would take 60 s
    records = flat_records(tmp_path / "out" / RESULTS_FILE)
    assert summary.written == {"oom": 2} and [r["status"] for r in records] == ["oom", "oom"]
    assert records[0]["message"] == ("not run: it needs at least 1.0 MiB (parameters and its largest feature "
                                     "map), more than the CPU memory limit of 0.0001 GiB")


def padded_runs_out_of_memory(case: Case) -> Record:
    """The padded network runs out of memory the way a C++ allocation does; the others are counted."""
    if case.variant == "padded":
        raise RuntimeError("std::bad_alloc")
    return Record.for_case(case, macs=1)


def test_resume_keeps_oom_cases_unless_asked_and_never_records_the_same_oom_twice(tmp_path):
    spec = tiny_spec(tmp_path, extra="cpu_memory_limit_gb = 16\n")
    out = tmp_path / "out"
    first = run(spec, out, measure_fn=padded_runs_out_of_memory)
    assert first.written == {"ok": 2, "oom": 1}  # std::bad_alloc is out of memory, not an error
    assert "oom cases stay recorded on --resume; --resume --retry-oom runs them again" in describe(first)
    lines = []
    again = run_suite(spec, out, resume=True, measure_fn=padded_runs_out_of_memory, progress=False,
                      log=lines.append)
    assert again.written == {} and again.already_done == 3
    assert lines == ["resuming: 3 of 3 cases already recorded (2 ok, 1 oom; --retry-oom runs the oom ones again)"]
    retried = run(spec, out, resume=True, retry_oom=True, measure_fn=padded_runs_out_of_memory)
    assert retried.written == {} and retried.oom_again == 1 and retried.exit_code == 0
    records = flat_records(out / RESULTS_FILE)
    assert [(r["variant"], r["status"]) for r in records] == [("paper", "ok"), ("padded", "oom"), ("additive", "ok")]

    raised = tiny_spec(tmp_path, extra="cpu_memory_limit_gb = 32\n")  # a higher limit: the retry is news
    assert run(raised, out, resume=True, retry_oom=True, measure_fn=padded_runs_out_of_memory).written == {"oom": 1}
    assert [r["extra"].get("cpu_memory_limit_gb") for r in flat_records(out / RESULTS_FILE)
            if r["status"] == "oom"] == [16, 32]


def test_resume_refuses_a_folder_of_another_suite(tmp_path):
    out = tmp_path / "out"
    run(tiny_spec(tmp_path), out, measure_fn=oom_above_five)
    other = tiny_spec(tmp_path, text=TINY.replace('name = "tiny"', 'name = "other"'))
    with pytest.raises(BenchError, match=r"results.jsonl holds records of suite 'tiny', not of 'other'; resume it "
                                         "with that experiment file, or write to another directory with --out"):
        run(other, out, resume=True)
    assert len(flat_records(out / RESULTS_FILE)) == 3
