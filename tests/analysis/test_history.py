"""`unet-bench history`: runs ordered by the commit their records carry (a throwaway git repository's
history) or by time, each point the geometric mean over its repeats with its interval. Records are a real
timing record of the tiny run with per-repeat latencies, commits and times set."""

import math
import subprocess

import numpy as np
import pytest
from scipy import stats

from tests.analysis.tiny import records, repeated, write
from unet_bench.analysis.history import commit_positions, history
from unet_bench.analysis.results import load
from unet_bench.cli import main


@pytest.fixture
def repo(tmp_path):
    """A git repository of three empty commits; their hashes, oldest first."""
    path = tmp_path / "repo"
    path.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=path, check=True)
    for n in range(3):
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", f"c{n}"], cwd=path, check=True)
    commits = subprocess.run(["git", "rev-list", "--reverse", "HEAD"], cwd=path, capture_output=True, text=True,
                             check=True).stdout.split()
    return path, commits


LATENCIES = {"a": [1.00, 1.02, 0.98], "b": [1.30, 1.33, 1.28], "c": [1.10, 1.12, 1.09]}


def runs(tmp_path, tiny_results, commits, times):
    paper = next(r for r in records(tiny_results) if r["variant"] == "paper" and r["mode"] == "infer"
                 and r["input_size"] == 60 and r["batch"] == 1 and not r["channels_last"])
    dirs = []
    for name, commit, time in zip("abc", commits, times, strict=True):
        rows = [{**r, "env": {**r["env"], "git_commit": commit}, "timestamp": time}
                for r in repeated(paper, LATENCIES[name])]
        dirs.append(str(write(tmp_path / name, rows)))
    return dirs


def test_commit_order_follows_the_history_not_the_arguments_or_the_clock(tmp_path, tiny_results, repo):
    path, commits = repo
    # run a measured the newest commit first; b the oldest last
    dirs = runs(tmp_path, tiny_results, [commits[2], commits[0], commits[1]],
                ["2026-01-01T00:00:00", "2026-01-03T00:00:00", "2026-01-02T00:00:00"])
    assert list(commit_positions(path).values()) == [0, 1, 2]
    by_commit = history(load(dirs), order="commit", repo=path)
    assert [r.source for r in by_commit.runs] == [dirs[1], dirs[2], dirs[0]] and not by_commit.notes
    by_time = history(load(dirs), order="time", repo=path)
    assert [r.source for r in by_time.runs] == [dirs[0], dirs[2], dirs[1]]
    points = by_commit.points
    assert points["series"].tolist() == ["paper"] * 3 and points["run"].tolist() == [0, 1, 2]
    for point, name in zip(points.itertuples(), "bca", strict=True):  # geometric mean, 95 % t interval
        logs = np.log(LATENCIES[name])
        half = stats.t.ppf(0.975, 2) * logs.std(ddof=1) / math.sqrt(3)
        assert point.value == pytest.approx(math.exp(logs.mean()))
        assert (point.low, point.high) == pytest.approx((math.exp(logs.mean() - half), math.exp(logs.mean() + half)))


def test_the_command_prints_points_writes_the_figure_and_notes_unknown_commits(tmp_path, tiny_results, repo, capsys):
    path, commits = repo
    dirs = runs(tmp_path, tiny_results, [commits[1], "f" * 40, commits[0]],
                ["2026-01-01T00:00:00", "2026-01-02T00:00:00", "2026-01-03T00:00:00"])
    out = tmp_path / "history.svg"
    assert main(["history", *dirs, "--repo", str(path), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "1 run(s) carry a commit this repository's history does not hold" in captured.err and dirs[1] in captured.err
    lines = captured.out.splitlines()
    assert lines[1].startswith(f"run 1: {dirs[2]}  {commits[0][:12]}  2026-01-03 00:00")
    assert lines[3].startswith(f"run 3: {dirs[1]}  ffffffffffff")
    assert lines[4].startswith("paper: run 1: 1.103 [") and "run 3: 1.303 [" in lines[4]
    assert out.read_text().startswith("<?xml") and lines[-1] == f"wrote {out}"
    assert main(["history", *dirs, "--out", str(tmp_path / "h.txt")]) == 2
    assert "name a .png, .svg or .pdf file" in capsys.readouterr().err
    assert main(["history", *dirs, "--metric", "nope"]) == 2
    assert "unknown metric 'nope'" in capsys.readouterr().err
