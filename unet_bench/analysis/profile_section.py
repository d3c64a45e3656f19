"""The report's profile section: where each variant's step time goes by kind of op, and the baseline's
roofline, from the records of mode ``profile`` in a results frame."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from unet_bench.analysis.axes import number
from unet_bench.analysis.plots import FigureFile
from unet_bench.analysis.results import ok, variant_labels
from unet_bench.analysis.roofline import by_kind, profile_from_row, unplaced, write_roofline

STEPS = ("infer", "train")


def profiled(frame: pd.DataFrame) -> pd.DataFrame:
    """The successful profile records, with their variant labels (repeats: the first of each case)."""
    done = ok(frame)
    rows = done[done["mode"] == "profile"]
    if rows.empty:
        return rows
    labels, _ = variant_labels(rows)
    rows = rows.assign(label=labels)
    return rows.drop_duplicates(subset=["source", "label", "device", "batch", "input_size"], keep="first")


def kind_table(rows: pd.DataFrame, step: str) -> pd.DataFrame | None:
    """One row per profiled variant: its step time and, per kind of op, ``time ms (share %)``."""
    table = []
    for _, row in rows.iterrows():
        profile = profile_from_row(row, step)
        if profile is None:
            continue
        entry = {"variant": row["label"], "input": int(row["input_size"]), "device": row["device"],
                 "step ms (unprofiled)": number(1e3 * profile["step_s"], 3),
                 "step ms (profiled)": number(1e3 * profile["profiled_step_s"], 3)}
        for kind, sums in by_kind(profile["rows"]).items():
            if sums["time_s"] > 0:
                entry[kind] = f"{number(1e3 * sums['time_s'], 3)} ({100 * sums['share']:.1f} %)"
        table.append(entry)
    return pd.DataFrame(table).fillna("-") if table else None


def profile_section(frame: pd.DataFrame, figures_dir: Path, baseline: str = "paper") -> tuple[
        list[FigureFile], list[tuple[str, pd.DataFrame]]]:
    """The baseline's roofline figures (one per profiled step) and the per-kind tables (one per step)."""
    rows = profiled(frame)
    figures: list[FigureFile] = []
    tables: list[tuple[str, pd.DataFrame]] = []
    if rows.empty:
        return figures, tables
    for step in STEPS:
        table = kind_table(rows, step)
        if table is None:
            continue
        what = "inference forward" if step == "infer" else "training step (forward, loss, backward, SGD)"
        tables.append((f"Where the time goes: {what}, per kind of op (ms per batch, share of the profiled step)",
                       table))
        for _, row in rows[rows["label"] == baseline].iterrows():
            profile = profile_from_row(row, step)
            if profile is None:
                continue
            size = int(row["input_size"])
            name = f"roofline_{baseline}_{step}_{size}_{row['device']}"
            path = write_roofline(profile, f"{baseline} {step} {size} px", figures_dir / f"{name}.png")
            caption = (f"Each layer of {baseline}'s {what} at {int(row['input_size'])} px as a point at its FLOPs per "
                       "compulsory byte and achieved FLOP/s, its area its share of the step; lines: the measured copy "
                       f"bandwidth and compute ceiling. {unplaced(profile)} {profile['time_source']}.")
            figures.append(FigureFile(name, f"Roofline: {baseline} {step} at {int(row['input_size'])} px", caption,
                                      (path,)))
    return figures, tables
