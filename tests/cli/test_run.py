"""`unet-bench run` as a user runs it: a real process killed with SIGKILL mid-suite, then resumed; the dry
run; malformed experiment files and a held lock refused with one line and exit status 2."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.records import flat, flat_records
from unet_bench.cli import main
from unet_bench.suite.spec import load_spec
from unet_bench.suite.store import RESULTS_FILE, locked, read_records

VARIANTS = ["paper", "padded", "additive", "no-skip", "bilinear", "nearest", "batchnorm", "leaky-relu"]
TINY = f"""
name = "tiny"
description = "tiny networks at their smallest sizes"
variants = {json.dumps(VARIANTS)}
modes = ["counts"]
sizes = [4]
size_rule = "nearest-output"
set = {{base_width = 4}}
"""


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "unet_bench", "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_records(path: Path, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(flat_records(path)) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)


def session_gone(pgid: int, timeout: float = 10) -> bool:
    """True once no process of the killed run's session is left (its fork server and case process die too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_run_killed_mid_suite_keeps_every_finished_case_and_resume_finishes_once(tmp_path):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    out = tmp_path / "out"
    results = out / RESULTS_FILE

    first = start(str(experiment), "--out", str(out))  # SIGKILL mid-suite: no goodbye at all
    wait_for_records(results, 2, first)
    os.kill(first.pid, signal.SIGKILL)  # the runner alone: its fork server and case process must follow
    first.wait(timeout=60)
    assert session_gone(first.pid), "a process of the killed run outlived it"
    killed = read_records(results)
    assert killed.partial_line_bytes == 0 and 2 <= len(killed.records) < len(VARIANTS)
    assert [flat(r)["variant"] for r in killed.records] == VARIANTS[: len(killed.records)]
    assert all(r["status"] == "ok" for r in killed.records)
    with results.open("ab") as file:  # as if the kill had landed in the middle of a write
        file.write(b'{"variant": "nearest", "status": "o')

    second = subprocess.run([sys.executable, "-m", "unet_bench", "run", str(experiment), "--out", str(out),
                             "--resume"], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"resuming: {len(killed.records)} of {len(VARIANTS)} cases already recorded ok" in second.stdout
    assert "left out a partial last line (35 bytes" in second.stdout
    final = read_records(results)
    assert final.partial_line_bytes == 0
    assert [flat(r)["variant"] for r in final.records] == VARIANTS  # each case once, in order: nothing repeated
    assert all(r["status"] == "ok" for r in final.records)
    assert final.records[: len(killed.records)] == killed.records  # what was on disk is untouched


def test_dry_run_lists_cases_with_predicted_cost_and_what_resume_would_skip(tmp_path, capsys):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    out = tmp_path / "out"
    assert main(["run", str(experiment), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "# tiny: tiny networks at their smallest sizes"
    assert lines[1].split()[:2] == ["1", "paper[base_width=4]"] and "~" in lines[1]
    assert lines[-2].startswith(f"# {len(VARIANTS)} cases; {len(VARIANTS)} to run, predicted ~")
    assert lines[-1] == f"# results would go to {out}/results.jsonl"
    assert not out.exists()

    spec = load_spec(experiment)
    out.mkdir()
    done = {"case_id": spec.planned[0].case.case_id, "status": "ok", "suite": "tiny"}
    (out / RESULTS_FILE).write_text(json.dumps(done) + "\n")
    assert main(["run", str(experiment), "--out", str(out), "--dry-run", "--resume"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].endswith("done (ok)") and "done" not in lines[2]
    assert f"{len(VARIANTS) - 1} to run" in lines[-2]


@pytest.mark.parametrize(
    "body, message",
    [
        ('variants = ["paper"]\nbase_width = 4', "x.toml: base_width: unknown key; valid keys are 'name'"),
        ('variants = ["paper"]\nbatches = [1, "2"]',
         "x.toml: batches: '2' is not allowed; it must be an integer in [1, 65536]"),
        ('variants = ["Paper"]', "x.toml: variants: 'Paper' names no registered variant; valid variants are"),
        ('variants = ["paper"]\nsizes = [500]', "x.toml: sizes: 500 is not a valid input size for paper"),
        ('variants = ["paper"]\nsizes = [572', "x.toml: not valid TOML: "),
    ],
)
def test_malformed_files_exit_2_with_one_line(tmp_path, capsys, body, message):
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\ndescription = "d"\n' + body)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("unet-bench run: error: ") and message in err and err.count("\n") == 1


def test_a_real_process_exits_2_without_traceback_and_a_held_lock_refuses(tmp_path, capsys):
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\ndescription = "d"\nvariants = ["paper"]\ncompile = "yes"')
    result = subprocess.run([sys.executable, "-m", "unet_bench", "run", str(path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (f"unet-bench run: error: {path}: compile: 'yes' is not allowed; "
                             "it must be true or false\n")

    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    out = tmp_path / "out"
    out.mkdir()
    with locked(out):
        assert main(["run", str(experiment), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"unet-bench run: error: {out} is in use by another run (pid {os.getpid()}); "
                   "wait for it to finish, or write to another directory with --out\n")


@pytest.mark.parametrize("name", [".lock", RESULTS_FILE])
def test_run_refuses_a_results_folder_whose_lock_or_results_are_symlinks(tmp_path, capsys, name):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    target = tmp_path / "notes.txt"
    target.write_bytes(b"someone's notes, no trailing newline")
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(target)
    assert main(["run", str(experiment), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err == (f"unet-bench run: error: {out / name} is a symbolic link; "
                   f"{'a lock file' if name == '.lock' else 'the results file'} is never written through a link: "
                   "move it away, or write to another directory with --out\n")
    assert target.read_bytes() == b"someone's notes, no trailing newline"
    assert (out / name).is_symlink() and sorted(p.name for p in out.iterdir()) == [name]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks what happens where CUDA is missing")
def test_run_on_cuda_without_a_gpu_exits_2_like_time(tmp_path, capsys):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    assert main(["run", str(experiment), "--out", str(tmp_path / "out"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err == ("unet-bench run: error: no case of tiny can run on this machine: device 'cuda' is not available "
                   "on this machine\n")
    assert not (tmp_path / "out").exists()
    assert main(["run", str(experiment), "--out", str(tmp_path / "out"), "--device", "cuda", "--dry-run"]) == 0


def test_retry_oom_goes_with_resume(tmp_path, capsys):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    assert main(["run", str(experiment), "--retry-oom", "--dry-run"]) == 2
    assert capsys.readouterr().err == ("unet-bench run: error: --retry-oom goes with --resume (it runs again the "
                                       "cases a run recorded 'oom')\n")


@pytest.mark.parametrize("where, message", [
    ("/proc/unet-bench-results", "/proc/unet-bench-results: cannot create the results folder: "),
    ("file", "is a file, not a folder; give --out a folder (it is created if missing)"),
    ("file/below", "cannot create the results folder: Not a directory"),
])
def test_an_output_folder_that_cannot_be_written_is_one_line_before_the_run(tmp_path, capsys, where, message):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    (tmp_path / "file").write_text("keep me")
    out = where if where.startswith("/") else str(tmp_path / where)
    assert main(["run", str(experiment), "--out", out]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("unet-bench run: error: ") and message in captured.err
    assert captured.err.count("\n") == 1 and (tmp_path / "file").read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")
def test_a_read_only_output_folder_is_one_line_before_the_run(tmp_path, capsys):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    out = tmp_path / "out"
    out.mkdir(mode=0o555)
    assert main(["run", str(experiment), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"unet-bench run: error: {out} is not writable; give --out a folder you "
                                       "can write to\n")


FILE_SIZE_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY))
from unet_bench.__main__ import main
sys.exit(main())
"""


def test_a_disk_that_fills_mid_run_stops_with_exit_1_and_keeps_what_was_written(tmp_path):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY.replace(json.dumps(VARIANTS), '["paper", "padded", "additive"]'))
    full = subprocess.run([sys.executable, "-m", "unet_bench", "run", str(experiment), "--out",
                           str(tmp_path / "full")], capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    sizes = [len(line) + 1 for line in (tmp_path / "full" / RESULTS_FILE).read_bytes().splitlines()]
    limit = sizes[0] + sizes[1] // 2  # room for one record and half of the next
    out = tmp_path / "out"
    cut = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMITED.format(limit=limit), "run", str(experiment),
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert cut.returncode == 1, cut.stderr
    assert f"stopped: 1 ok written to {out / RESULTS_FILE}" in cut.stdout
    assert f"cannot write {out / RESULTS_FILE}: File too large; every record written before it is kept" in cut.stdout
    back = read_records(out / RESULTS_FILE)
    assert [flat(r)["variant"] for r in back.records] == ["paper"] and back.partial_line_bytes > 0
    resumed = subprocess.run([sys.executable, "-m", "unet_bench", "run", str(experiment), "--out", str(out),
                              "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert [r["variant"] for r in flat_records(out / RESULTS_FILE)] == ["paper", "padded", "additive"]
