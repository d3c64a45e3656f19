"""The counter reconciliation as tables: each counter's total and ratio to ours with the causes, and the
breakdown by op type, for the terminal (`unet-bench count --counters`) and the report (Markdown).

It reads what `unet_bench.measure.counter_runs` measured (`unet_bench.counter_figures`): no network is
built and no counter runs here."""

from __future__ import annotations

import pandas as pd

from unet_bench.analysis.causes import explain
from unet_bench.counter_figures import CATEGORIES, COUNTERS_SCOPE, Reconciliation


def counters_intro(results: list[tuple[str, Reconciliation]]) -> str:
    """The report section's opening sentence, at the input the reconciliations counted."""
    sides = results[0][1].sides_text if results else ""
    return (f"Every installed FLOP counter beside our exact count, inference forward at {sides}, per image "
            f"({COUNTERS_SCOPE}). 'x ours' is the counter's total over ours as each reports it: a MAC counter "
            "that agrees reads 0.500.")


def totals_table(result: Reconciliation) -> pd.DataFrame:
    """One row per counter (ours first): unit, total, ratio to ours, and each difference's cause."""
    rows = [{"counter": "ours (exact)", "unit": "FLOPs", "total": f"{result.reference.total:,}", "x ours": "1",
             "why it differs": "-"}]
    for counter in result.counters:
        ratio = result.ratio(counter)
        name = f"{counter.name} {counter.version}" if counter.version else counter.name
        rows.append({"counter": name, "unit": counter.unit,
                     "total": "-" if counter.total is None else f"{counter.total:,}",
                     "x ours": "-" if ratio is None else f"{ratio:.3f}",
                     "why it differs": "; ".join(explain(result.reference, counter))})
    return pd.DataFrame(rows)


def breakdown_table(result: Reconciliation) -> pd.DataFrame:
    """Op types (rows) by counter (columns), each in the counter's own unit; '?' where it reports only a total."""
    columns = {"op type": [*CATEGORIES, "total"], "ours (FLOPs)": [
        *(f"{result.reference.flops[c]:,}" for c in CATEGORIES), f"{result.reference.total:,}"]}
    for counter in result.counters:
        if counter.total is None:
            continue
        values = ["?"] * len(CATEGORIES) if counter.by_type is None else [
            f"{counter.by_type[c]:,}" for c in CATEGORIES]
        columns[f"{counter.name} ({counter.unit})"] = [*values, f"{counter.total:,}"]
    return pd.DataFrame(columns)


def text(table: pd.DataFrame, long_column: str | None = None) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned; ``long_column`` (the
    causes) is printed under the table, one line per row, instead of stretching it."""
    shown = table.drop(columns=[long_column]) if long_column else table
    cells = [list(map(str, shown.columns)), *(list(map(str, row)) for row in shown.itertuples(index=False))]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in cells]
    if long_column:
        lines += [f"{first}: {cause}" for first, cause in zip(table.iloc[:, 0], table[long_column], strict=True)
                  if cause != "-"]
    return "\n".join(lines)


def markdown(result: Reconciliation, title: str) -> str:
    """Both tables under one heading, for the report."""
    return "\n\n".join([f"### {title}", totals_table(result).to_markdown(index=False),
                        breakdown_table(result).to_markdown(index=False)])
