"""Whether runs were measured under comparable conditions: the machine's load, CPU steal and control.

Records carry the 1-minute load average and the CPU steal fraction before and after each measurement
(``env.loadavg_before`` / ``_after``, ``env.cpu_steal_before`` / ``_after``, where the platform has them),
and the time of the control workload in each timed process (``control_ms_median``). Two runs under
different load may read differently for that reason alone: the verdicts across runs count the control's
change in their intervals (`stats.across_runs`), and `compare` says in words what differed. Within a run,
a control that moved by more than `DRIFT_BOUND` between the first and the last third of the run's
processes means the machine changed under it (`control_drift_notes`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from unet_bench.analysis import stats

LOAD_GAP = 1.0  # load averages this far apart (and LOAD_SHARE of the cores) count as clearly different
LOAD_SHARE = 0.25
STEAL_GAP = 0.05  # CPU steal fractions this far apart count as clearly different
DRIFT_BOUND = 0.05  # a run's control moving more than this between its first and last third is reported


def conditions(frame: pd.DataFrame, source: str) -> dict[str, float]:
    """Median over ``source``'s timed records of the load average and steal (mean of before and after)."""
    rows = frame[(frame["source"] == source) & frame["latency_ms_median"].notna()]
    out = {}
    for name in ("loadavg", "cpu_steal"):
        columns = [f"env_{name}_{when}" for when in ("before", "after") if f"env_{name}_{when}" in rows]
        if columns:
            values = rows[columns].apply(pd.to_numeric, errors="coerce").mean(axis=1).dropna()
            if len(values):
                out[name] = float(values.median())
    if "env_cpu_cores" in rows and rows["env_cpu_cores"].notna().any():
        out["cores"] = float(pd.to_numeric(rows["env_cpu_cores"], errors="coerce").max())
    return out


def load_warnings(frame: pd.DataFrame, baseline: str, sources: list[str]) -> list[str]:
    """One line per source whose timings ran under clearly different load or steal than ``baseline``'s."""
    ref = conditions(frame, baseline)
    lines = []
    for source in sources:
        if source == baseline:
            continue
        own = conditions(frame, source)
        cores = max(ref.get("cores", 1.0), own.get("cores", 1.0))
        if "loadavg" in ref and "loadavg" in own and \
                abs(own["loadavg"] - ref["loadavg"]) >= max(LOAD_GAP, LOAD_SHARE * cores):
            lines.append(f"load differs: {baseline} was timed at a 1-minute load average of {ref['loadavg']:.2g} "
                         f"and {source} at {own['loadavg']:.2g} ({cores:.0f} cores; median over timed records): "
                         "timing differences between them may come from the load, not from the change")
        if "cpu_steal" in ref and "cpu_steal" in own and abs(own["cpu_steal"] - ref["cpu_steal"]) >= STEAL_GAP:
            lines.append(f"CPU steal differs: {baseline} {ref['cpu_steal']:.0%}, {source} {own['cpu_steal']:.0%} "
                         "(median over timed records): timing differences may come from the host, not the change")
    return lines


def run_drift(frame: pd.DataFrame, source: str) -> float | None:
    """The control's relative change from the first to the last third of ``source``'s timed processes, in
    the order they were measured (geometric means); None with fewer than three control times."""
    rows = frame[frame["source"] == source]
    if "control_ms_median" not in rows:
        return None
    order = rows.sort_values("timestamp", kind="stable") if "timestamp" in rows else rows
    times = pd.to_numeric(order["control_ms_median"], errors="coerce").dropna()
    times = times[times > 0]
    if len(times) < 3:
        return None
    logs = np.log(times.to_numpy())
    third = len(logs) // 3
    return float(np.expm1(logs[-third:].mean() - logs[:third].mean()))


def control_drift_notes(frame: pd.DataFrame) -> list[str]:
    """One line per source whose control moved by more than `DRIFT_BOUND` during the run."""
    lines = []
    for source in dict.fromkeys(frame["source"]):
        drift = run_drift(frame, source)
        if drift is not None and abs(drift) > DRIFT_BOUND:
            lines.append(f"{source}: the control workload ran {drift:+.1%} from the first to the last third of "
                         f"the run (bound ±{DRIFT_BOUND:.0%}): the machine's speed changed during it; verdicts "
                         "within the run stand on their pairs, unpaired figures carry the drift")
    return lines


def control_change_notes(frame: pd.DataFrame, baseline: str, sources: list[str]) -> list[str]:
    """One line per source whose control ran at another speed than ``baseline``'s: what the verdicts did."""
    if "control_ms_median" not in frame:
        return []
    lines = []
    runs = frame["extra_ab_run"] if "extra_ab_run" in frame else pd.Series(None, index=frame.index, dtype=object)
    for source in sources:
        if source == baseline:
            continue
        shared = set(runs[frame["source"] == source].dropna()) & set(runs[frame["source"] == baseline].dropna())
        if shared:  # the two sides of one `unet-bench ab` run: their rows are judged round by round instead
            continue
        times = [pd.to_numeric(frame.loc[frame["source"] == s, "control_ms_median"], errors="coerce").dropna()
                 for s in (baseline, source)]
        control = stats.Control.between(*(t[t > 0].to_list() for t in times))
        if control is None:
            continue
        if control.moved:
            lines.append(f"control moved: {source}'s control workload ran {np.expm1(control.change):+.1%} against "
                         f"{baseline}'s over the whole runs; a row is judged on latency over the control where "
                         f"its own processes' controls moved ({stats.CONTROL_RESIDUAL:.0%} of that change counted "
                         "in its interval), else on the raw ratio with the whole change counted (the caption's "
                         "samples say how many rows took each rule)")
        else:
            lines.append(f"control steady between {baseline} and {source} ({np.expm1(control.change):+.1%}): "
                         "timing verdicts use the raw ratio, the control's change counted in their intervals")
    return lines
