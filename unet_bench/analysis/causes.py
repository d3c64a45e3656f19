"""Why a FLOP counter's figure differs from our count, in words, op type by op type.

Conventions are named first, since they move FLOPs between op types: MACs versus FLOPs, the bias add
counted inside a convolution (ours counts it element-wise), a transposed convolution counted on its output
grid. What is left is an op type it does not count (or only in part: the activations but not the skip
additions), a per-value convention of its own, or, for ptflops, layers counted twice.
"""

from __future__ import annotations

import itertools

from unet_bench.counter_figures import (
    CATEGORIES,
    CONV,
    ELEMENTWISE,
    INTERP,
    OTHER,
    POOL,
    TRANSPOSED,
    Counter,
    Reference,
)

MACS = "counts MACs: 1 per multiply-accumulate where ours counts 2 FLOPs"


def explain(ref: Reference, counter: Counter) -> list[str]:
    """Each difference between ``counter`` and our count ``ref``, with its cause."""
    if counter.total is None:
        return [counter.status]
    k = counter.per_flop
    causes = [MACS] if k == 2 else []
    if counter.by_type is None:
        if counter.total * k == ref.total:
            return [*causes, "otherwise the same total"]
        return [*causes, f"total only (no breakdown by op): {counter.total * k / ref.total:.3f} x ours in FLOPs"]
    theirs = {c: counter.by_type[c] * k for c in CATEGORIES}
    ours, values = dict(ref.flops), dict(ref.values)
    parts = {"activations": ref.activations, "skip additions and other map arithmetic": ref.arithmetic,
             **{f"bias adds of the {kind}s": ref.bias_adds[kind] for kind in (CONV, TRANSPOSED)}}
    for kind in (CONV, TRANSPOSED):
        causes += _convention(ref, kind, theirs, ours, values, parts, k)
    layers = sum(theirs[c] for c in (INTERP, POOL, ELEMENTWISE))
    for category in CATEGORIES:
        if theirs[category] == ours[category]:
            continue
        if theirs[category] == 0:
            causes.append(f"{category}: not counted (ours {ours[category]:,} FLOPs)")
        elif category == ELEMENTWISE and (missed := _missed_parts(counter.by_type[ELEMENTWISE], parts)):
            causes.append("element-wise: " + "; ".join(f"{name} not counted ({n:,} FLOPs)" for name, n in missed))
        elif category == OTHER and ours[OTHER] == 0 and theirs[OTHER] == layers:
            causes.append("other: the activation, pooling and interpolation layers counted a second time, "
                          "through the functionals it patches")
        elif category == OTHER and ours[OTHER] == 0:
            causes.append(f"other: {theirs[OTHER]:,} FLOPs outside any layer (functional ops, its own conventions)")
        elif ours[category] and abs(theirs[category] / ours[category] - 1) < 0.05:
            change = theirs[category] - ours[category]
            causes.append(f"{category}: {change:+,} FLOPs beside ours ({100 * change / ours[category]:+.2f} %): "
                          f"its own formula")
        elif values[category]:
            causes.append(f"{category}: {theirs[category] / values[category]:g} FLOPs per output value where ours "
                          f"counts {ours[category] / values[category]:g}")
        else:
            causes.append(f"{category}: {theirs[category]:,} FLOPs where ours counts {ours[category]:,}")
    return causes or ["the same, op type by op type"]


def _convention(ref: Reference, kind: str, theirs: dict[str, int], ours: dict[str, int], values: dict[str, int],
                parts: dict[str, int], k: int) -> list[str]:
    """Name the grid and bias conventions of one kind of convolution, and settle it (updating the rest)."""
    bias = ref.bias_adds[kind]
    grids = {ours[kind]: ""}
    if kind == TRANSPOSED and ours[kind]:
        grids[ref.transposed_output_grid] = (
            f"transposed convolution: counted on the output grid, as a convolution would be "
            f"({ref.transposed_output_grid / ours[kind]:g} x the multiply-accumulates it does)")
    for grid, text in grids.items():
        if theirs[kind] not in (grid, grid + k * bias):
            continue
        causes = [text] if text else []
        if bias and theirs[kind] == grid + k * bias:
            causes.append(f"{kind}: counts the bias add inside it (ours: element-wise)")
            ours[ELEMENTWISE] -= bias
            values[ELEMENTWISE] -= bias
            parts[f"bias adds of the {kind}s"] = 0
        theirs[kind] = ours[kind]
        return causes
    return []


def _missed_parts(counted: int, parts: dict[str, int]) -> list[tuple[str, int]]:
    """The parts of our element-wise count that a counter leaves out, where the ones it counts (once per
    value, in its own unit) add up to its figure exactly; [] where no such split exists."""
    present = {name: n for name, n in parts.items() if n}
    for size in range(len(present), 0, -1):
        for kept in itertools.combinations(present, size):
            if sum(present[name] for name in kept) == counted and size < len(present):
                return [(name, n) for name, n in present.items() if name not in kept]
    return []
