"""The roofline of a profiled step and its tables: per kind of op, and the top layers by time.

Everything reads the profile as a record stores it (``profile.profile_by_step[step]``, `Profile.to_dict`), so the
command that measured it and the report of a results folder draw the same thing. In the figure each
layer with counted FLOPs is a point at its arithmetic intensity (FLOPs per compulsory byte) and achieved
FLOP/s, its area proportional to its share of the step; the ceilings are the measured copy bandwidth
(the sloped line) and the compute ceiling (the flat line); they meet at the ridge intensity. Layers with
no counted FLOPs (pooling, activations, concatenation, loss, optimizer) cannot be placed on it: their
share of the step is written under the plot.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from unet_bench.analysis.axes import STYLE, number, plain_numbers, title
from unet_bench.kinds import BETWEEN_OPS, by_kind

LABELLED = 6  # costliest layers named on the figure
# the scalar entries of a stored profile (`Profile.to_dict`)
PROFILE_SCALARS = ("step", "device", "batch", "steps", "step_s", "profiled_step_s", "compute_ceiling",
                   "compute_source", "bandwidth", "bandwidth_source", "time_source", "flops_scope", "bytes_scope",
                   "ops_s")


def _ridge(profile: dict) -> float | None:
    compute, bandwidth = profile.get("compute_ceiling"), profile.get("bandwidth")
    return compute / bandwidth if compute and bandwidth else None


def bound(row: dict, profile: dict) -> str:
    """``memory`` or ``compute``: which ceiling is lower at the row's intensity ('-' without FLOPs)."""
    ridge = _ridge(profile)
    if not row.get("intensity") or ridge is None:
        return "-"
    return "memory" if row["intensity"] < ridge else "compute"


def roof_fraction(row: dict, profile: dict) -> float | None:
    """Achieved FLOP/s over the roof at the row's intensity: min(compute ceiling, intensity x bandwidth)."""
    if not row.get("flops_per_s") or not row.get("intensity") or _ridge(profile) is None:
        return None
    return row["flops_per_s"] / min(profile["compute_ceiling"], row["intensity"] * profile["bandwidth"])


def profile_from_row(row: pd.Series, step: str) -> dict | None:
    """The profile of ``step`` (infer | train) of a loaded results row (`results.load` flattens the record's
    ``profile_by_step`` into ``profile_by_step_<step>_<key>`` columns), or None if it has none."""
    prefix = f"profile_by_step_{step}_"
    rows = row.get(prefix + "rows")
    if not isinstance(rows, str):
        return None
    profile = {key: row.get(prefix + key) for key in PROFILE_SCALARS}
    return {**profile, "rows": json.loads(rows)}


def kind_frame(profile: dict) -> pd.DataFrame:
    """Time, share, FLOPs, bytes and rates summed per kind of op (the between-ops time last)."""
    rows = []
    for kind, s in by_kind(profile["rows"]).items():
        seconds = s["time_s"]
        rows.append({"kind": kind, "time ms": 1e3 * seconds, "share %": 100 * s["share"],
                     "GFLOP": s["flops"] / 1e9, "MB moved": s["bytes"] / 1e6,
                     "GFLOP/s": s["flops"] / seconds / 1e9 if s["flops"] and seconds > 0 else np.nan,
                     "GB/s": s["bytes"] / seconds / 1e9 if s["bytes"] and seconds > 0 else np.nan})
    return pd.DataFrame(rows)


def top_frame(profile: dict, n: int = 10) -> pd.DataFrame:
    """The ``n`` costliest layers by time, with intensity, rates, the bound and the fraction of the roof."""
    rows = sorted((r for r in profile["rows"] if r["layer"] != BETWEEN_OPS), key=lambda r: -r["time_s"])[:n]
    out = []
    for r in rows:
        fraction = roof_fraction(r, profile)
        out.append({"layer": r["layer"], "kind": r["kind"], "time ms": 1e3 * r["time_s"],
                    "share %": 100 * r["share"], "GFLOP": r["flops"] / 1e9,
                    "MB in": r["input_bytes"] / 1e6, "MB weights": r["weight_bytes"] / 1e6,
                    "MB out": r["output_bytes"] / 1e6, "FLOP/B": r["intensity"] or np.nan,
                    "GFLOP/s": (r["flops_per_s"] or np.nan) / 1e9, "GB/s": (r["bytes_per_s"] or np.nan) / 1e9,
                    "bound": bound(r, profile), "% of roof": 100 * fraction if fraction else np.nan})
    return pd.DataFrame(out)


def format_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers written out to 3 significant digits (blank where there is none), for text and Markdown."""
    return frame.apply(lambda col: col.map(lambda v: "" if isinstance(v, float) and not np.isfinite(v)
                                           else number(v, 3) if isinstance(v, (int, float)) else v))


def roofline_figure(profile: dict, heading: str) -> Figure:
    """The roofline of ``profile`` (module docstring); ``heading`` names the network and the step."""
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(7.5, 5.0))
        ax = figure.add_subplot()
        rows = [r for r in profile["rows"] if r.get("intensity") and r.get("flops_per_s")]
        compute, bandwidth = profile.get("compute_ceiling"), profile["bandwidth"]
        xs = np.array([r["intensity"] for r in rows])
        ys = np.array([r["flops_per_s"] for r in rows]) / 1e9
        low = min([*xs, compute / bandwidth if compute else 1.0]) / 3 if len(xs) else 0.1
        high = max([*xs, compute / bandwidth if compute else 1.0]) * 3 if len(xs) else 1e3
        grid = np.geomspace(low, high, 200)
        roof = grid * bandwidth / 1e9
        ax.plot(grid, roof if not compute else np.minimum(roof, compute / 1e9), color="#222222", lw=1.4)
        ax.plot(grid, roof, color="#888888", lw=0.8, ls=":")
        ax.text(grid[5], roof[5] * 1.15, f"copy bandwidth {bandwidth / 1e9:,.1f} GB/s", fontsize=7.5, rotation=0)
        if compute:
            ax.axhline(compute / 1e9, color="#888888", lw=0.8, ls=":")
            ax.text(high / 1.05, compute / 1e9 * 1.08, f"compute ceiling {compute / 1e9:,.1f} GFLOP/s",
                    fontsize=7.5, ha="right")
            ax.axvline(compute / bandwidth, color="#bbbbbb", lw=0.6, ls="--")
        colors = {"conv": "#1f77b4", "transposed conv": "#ff7f0e", "interpolation": "#2ca02c", "norm": "#d62728"}
        for kind in dict.fromkeys(r["kind"] for r in rows):
            mask = np.array([r["kind"] == kind for r in rows])
            sizes = np.array([max(r["share"], 0.0) for r in rows])[mask]
            ax.scatter(xs[mask], ys[mask], s=20 + 2000 * sizes, alpha=0.55, color=colors.get(kind, "#9467bd"),
                       edgecolors="white", linewidths=0.5, label=kind)
        costliest = sorted(rows, key=lambda r: -r["time_s"])[:LABELLED]
        for k, r in enumerate(sorted(costliest, key=lambda r: r["flops_per_s"])):  # staggered: clusters stay legible
            ax.annotate(f"{r['layer']} {100 * r['share']:.1f}%", (r["intensity"], r["flops_per_s"] / 1e9),
                        fontsize=7, xytext=(-40 + 18 * k, -28 - 11 * k if k % 2 else 18 + 11 * k),
                        textcoords="offset points", arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "#666666"})
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (FLOP per compulsory byte)")
        ax.set_ylabel("achieved (GFLOP/s)")
        legend = ax.legend(loc="upper left", title="point area = share of step time")
        legend.get_title().set_fontsize(7.5)
        plain_numbers(ax)
        placed = sum(r["share"] for r in rows)
        title(ax, f"Roofline: {heading}",
              f"{profile['device']}, batch {profile['batch']}, step {1e3 * profile['profiled_step_s']:,.1f} ms "
              f"profiled ({1e3 * profile['step_s']:,.1f} ms unprofiled); layers with counted FLOPs: "
              f"{100 * placed:.0f}% of the step\n{unplaced(profile)}")
    return figure


def unplaced(profile: dict) -> str:
    """The kinds not on the figure (no counted FLOPs) and their share of the step."""
    shares: dict[str, float] = {}
    for r in profile["rows"]:
        if not (r.get("intensity") and r.get("flops_per_s")):
            shares[r["kind"]] = shares.get(r["kind"], 0.0) + r["share"]
    parts = [f"{kind} {100 * share:.1f}%" for kind, share in sorted(shares.items(), key=lambda kv: -kv[1])
             if share >= 0.0005]
    return "Not on the figure (no counted FLOPs): " + (", ".join(parts) or "nothing") + "."


def write_roofline(profile: dict, heading: str, path: str | Path) -> Path:
    """Draw `roofline_figure` into ``path`` (PNG or SVG, by its suffix)."""
    path = Path(path)
    roofline_figure(profile, heading).savefig(path)
    return path
