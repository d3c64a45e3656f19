"""A metric across runs, the way asv shows one: each results directory is a point, in commit or time order.

Each run's value of a case is what `compare` shows for it (the geometric mean over its repeats for a
timing), with its interval: the 95 % interval over the repeats, or the timed blocks' p25-p75 for a single
repeat (as `compare` shows them). A run is placed by the git commit its records carry (``env.git_commit``,
the commit measured; ``-dirty`` when the tree had changes), ordered as this repository's history orders
it, or by when it was measured. A run whose commit the repository does not know is placed by time after
the known ones, and a note says so.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from unet_bench.analysis.compare import compare
from unet_bench.analysis.pairing import key_one, missing
from unet_bench.analysis.results import METRICS
from unet_bench.errors import BenchError, choices

ORDERS = ("commit", "time")
SERIES = ("variant", "mode", "device", "dtype", "input_size", "batch", "channels_last", "compile", "threads")


@dataclass(frozen=True)
class Run:
    """One results directory: where it sits on the axis and what labels it."""

    source: str
    commit: str | None
    time: str

    @property
    def label(self) -> str:
        return f"{(self.commit or 'no commit')[:12]}\n{self.time[:16].replace('T', ' ')}"


@dataclass
class History:
    """``points``: one row per series and run, with ``value``, ``low`` and ``high``; ``runs`` in order."""

    metric: str
    order: str
    runs: list[Run]
    points: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def history(frame: pd.DataFrame, metric: str = "latency_ms_median", order: str = "commit",
            repo: str | Path = ".") -> History:
    """The ``metric`` of every case of every source of ``frame`` (loaded by `results.load`), runs in ``order``."""
    if order not in ORDERS:
        raise BenchError(f"--order {order!r} is not valid; choose one of {choices(ORDERS)}")
    sources = list(dict.fromkeys(frame["source"]))
    table = compare(frame, sources[0], [metric]).table
    runs, notes = _ordered_runs(frame, sources, order, repo)
    position = {run.source: i for i, run in enumerate(runs)}
    varying = [c for c in SERIES[1:] if c in table and table[c].map(key_one).nunique(dropna=False) > 1]
    points = pd.DataFrame({
        "series": [_series(row, varying) for _, row in table.iterrows()],
        "run": table["source"].map(position),
        "value": table[metric], "low": table[f"{metric}_low"], "high": table[f"{metric}_high"],
    }).dropna(subset=["value"]).sort_values(["series", "run"], kind="stable").reset_index(drop=True)
    return History(metric, order, runs, points, notes)


def _series(row: pd.Series, varying: list[str]) -> str:
    shown = {"input_size": lambda v: f"{int(v)}px", "batch": lambda v: f"b{int(v)}"}
    parts = [str(row["variant"])]
    for column in varying:
        value = key_one(row[column])
        parts.append(shown[column](value) if column in shown and value is not None else f"{column}={value}")
    return " ".join(parts)


def _ordered_runs(frame: pd.DataFrame, sources: list[str], order: str, repo: str | Path) -> tuple[list[Run], list[str]]:
    runs = []
    for source in sources:
        rows = frame[frame["source"] == source]
        commits = rows["env_git_commit"].dropna() if "env_git_commit" in rows else pd.Series(dtype=object)
        times = rows["timestamp"].dropna().astype(str) if "timestamp" in rows else pd.Series(dtype=object)
        runs.append(Run(source, str(commits.mode().iloc[0]) if len(commits) else None,
                        str(times.min()) if len(times) else ""))
    if order == "time":
        return sorted(runs, key=lambda r: r.time), []
    known = commit_positions(repo)
    place = {r.source: known.get((r.commit or "").removesuffix("-dirty")) for r in runs}
    unknown = [r.source for r in runs if place[r.source] is None]
    notes = [f"commit order: {len(unknown)} run(s) carry a commit this repository's history does not hold, "
             f"placed by time after the others: {', '.join(unknown)}"] if unknown else []
    return sorted(runs, key=lambda r: (place[r.source] is None, place[r.source] or 0, r.time)), notes


def commit_positions(repo: str | Path = ".") -> dict[str, int]:
    """``{commit: position}`` along ``repo``'s history, oldest first (empty outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-list", "--topo-order", "--reverse", "HEAD"], cwd=repo, capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {commit: i for i, commit in enumerate(out.split())}


def history_text(result: History) -> str:
    """The points as a table: a row per series, a column per run, each cell 'value [low, high]'."""
    info = METRICS[result.metric]
    lines = [f"# {info.heading} across {len(result.runs)} runs in {result.order} order; [interval]: 95 % over "
             "repeats (one repeat: its timed blocks' p25-p75)"]
    lines += [f"run {i + 1}: {run.source}  {run.label.replace(chr(10), '  ')}" for i, run in enumerate(result.runs)]
    for series, group in result.points.groupby("series", sort=False):
        cells = [f"run {int(p.run) + 1}: {_number(p.value * info.scale)} [{_number(p.low * info.scale)}, "
                 f"{_number(p.high * info.scale)}]" for p in group.itertuples()]
        lines.append(f"{series}: " + "; ".join(cells))
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return "nan" if missing(value) else f"{value:.4g}"


def plot_history(result: History, path: str | Path, formats: Sequence[str] = ("png", "svg", "pdf")) -> Path:
    """Draw the history (a line per series, error bars for the intervals) into ``path``."""
    import matplotlib  # here, not at the top: the backend is chosen before pyplot loads

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lstrip(".") not in formats:
        raise BenchError(f"--out {str(path)!r}: give a file ending in {choices(['.' + f for f in formats])}")
    info = METRICS[result.metric]
    figure, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(result.runs) + 3), 4.5))
    for series, group in result.points.groupby("series", sort=False):
        values, low, high = (group[c].to_numpy(float) * info.scale for c in ("value", "low", "high"))
        ax.errorbar(group["run"], values, yerr=[values - low, high - values], marker="o", capsize=3, label=series)
    ax.set_xticks(range(len(result.runs)), [run.label for run in result.runs], fontsize=7)
    ax.set_ylabel(info.heading)
    ax.set_title(f"{info.label} by {result.order} (bars: 95 % interval over repeats, or p25-p75 of one repeat)",
                 fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    try:
        figure.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
    except OSError as error:
        raise BenchError(f"cannot write {path}: {error.strerror}") from None
    finally:
        plt.close(figure)
    return path
