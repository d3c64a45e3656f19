"""Whether two runs were measured under comparable conditions: the machine's load and CPU steal.

Records carry the 1-minute load average and the CPU steal fraction before and after each measurement
(``env.loadavg_before`` / ``_after``, ``env.cpu_steal_before`` / ``_after``, where the platform has them).
Two runs that read differently under different load tell about the load, not about the change; the
verdicts cannot see that (each run's repeats only show its own noise), so `compare` says it in words.
"""

from __future__ import annotations

import pandas as pd

LOAD_GAP = 1.0  # load averages this far apart (and LOAD_SHARE of the cores) count as clearly different
LOAD_SHARE = 0.25
STEAL_GAP = 0.05  # CPU steal fractions this far apart count as clearly different


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
