"""The kinds of op a profile sums a step by, and its special layer names: torch-free, so that the analysis
of stored profiles (`unet_bench.analysis.roofline`) reads them without importing torch."""

from __future__ import annotations

KINDS = ("conv", "transposed conv", "pooling", "interpolation", "norm", "activation", "concat or add", "crop",
         "loss", "optimizer", "other")
NETWORK = "(network)"  # ops the top-level module runs itself
STEP = "(step)"  # ops outside the network: the loss, gradient accumulation
OPTIMIZER = "(optimizer)"
BETWEEN_OPS = "(between ops)"  # the step's wall time that no profiled op accounts for
SUMMED = ("time_s", "share", "flops", "bytes")


def by_kind(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Time, share, FLOPs and bytes of profile rows (`LayerRow.to_dict`) summed per kind, in `KINDS` order,
    the between-ops time last."""
    sums: dict[str, dict[str, float]] = {}
    for row in rows:
        kind = sums.setdefault(row["kind"], dict.fromkeys(SUMMED, 0))
        for key in SUMMED:
            kind[key] += row[key]
    order = [*KINDS, BETWEEN_OPS]
    return {kind: sums[kind] for kind in sorted(sums, key=lambda k: order.index(k) if k in order else len(order))}
