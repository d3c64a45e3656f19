"""Which measurement each row is compared with.

A row is compared with the reference measured at the **same grid point**: the same setting (mode, device,
dtype, batch, memory format, ...) and the same request of the experiment file — its ``size_rule`` and
``requested_size`` — so a valid-convolution variant at 572 px and the padded one at 576 px, both asked for
"nearest-input 572", sit side by side, while "common-output 20" and "input 20" never mix. A size given
directly (no rule) or by the ``input`` rule is its own request. Results written before records carried
the rule are paired by equal input size only (`legacy_sources` names them; the caller says so).

Against a variant (one results directory), the reference is that variant in the same directory. Against a
runtime (``--by runtime``), it is the same variant label under that runtime in the same directory, at the
same grid point and otherwise the same setting (an int8 network beside the fp32 one it was quantized from):
an exported network beside itself under torch eager. Against a
results directory (before/after), the reference is the same variant label in that directory; rows left
over after those exact matches are paired by registered variant and grid point, so an edited experiment
file (``base_width`` 16 → 14) still pairs ``paper[base_width=16]`` with ``paper[base_width=14]``, and
`config_change` names the fields that differ.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from unet_bench.analysis.results import FACTORS

SETTING = [f for f in FACTORS if f != "input_size"]
# By runtime, a quantized network is compared with the network it was quantized from (torch has no int8).
QUANTIZED_FROM = {"int8": "fp32"}


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def key_one(value: Any) -> Any:
    """A value as a grouping key: NaN and None both become None."""
    return None if missing(value) else value


def key(values: Any) -> tuple:
    return tuple(key_one(v) for v in values)


def legacy_sources(frame: pd.DataFrame) -> list[str]:
    """Sources none of whose records carry a size rule (written before records had one)."""
    rules = frame["size_rule"] if "size_rule" in frame else pd.Series(None, index=frame.index)
    known = rules.map(lambda r: not missing(r))
    return [s for s, has in known.groupby(frame["source"], sort=False).any().items() if not has]


def grid_points(frame: pd.DataFrame, by_input_size: set[str]) -> pd.Series:
    """Each row's grid point as a key: ``"<rule>:<requested size>"``, or ``"input:<input size>"`` for a size
    given directly, the ``input`` rule and the sources in ``by_input_size``."""
    def point(row: pd.Series) -> str:
        rule, requested = key_one(row.get("size_rule")), key_one(row.get("requested_size"))
        if row["source"] in by_input_size or rule in (None, "input") or requested is None:
            size = key_one(row["input_size"])
            return f"input:{'-' if size is None else int(size)}"
        return f"{rule}:{int(requested)}"
    return frame.apply(point, axis=1) if len(frame) else pd.Series([], dtype=object)


def pair(rows: pd.DataFrame, baseline: str, by: str) -> dict[Any, Any]:
    """Index of each row's reference row in ``rows`` (the aggregated table: one row per source, variant
    label, setting and grid point; ``name`` the registered variant, ``_config`` the network config).
    ``by``: the column ``baseline`` is a value of (``variant``, ``runtime`` or ``source``); every other
    column of what identifies a row must agree. Reference rows are paired with themselves; a row without a
    reference is left out."""
    if by != "source":
        match = ["source", *(f for f in ("variant", *SETTING) if f != by), "point"]
        refs = {key(r[match]): i for i, r in rows[rows[by] == baseline].iterrows()}
        pairs = {i: refs[k] for i, r in rows.iterrows() if (k := key(r[match])) in refs}
        if by == "runtime":  # a quantized row the baseline runtime has no twin of: the network it came from
            like = rows.assign(dtype=rows["dtype"].replace(QUANTIZED_FROM))
            pairs.update({i: refs[k] for i, r in like.iterrows() if i not in pairs and (k := key(r[match])) in refs})
        return pairs
    ref_rows = rows[rows["source"] == baseline]
    others = rows[rows["source"] != baseline]
    # A factor on which the sources do not overlap at all (device: cpu vs cuda) is what is compared.
    setting = [f for f in SETTING if _overlap(ref_rows[f], others[f])]
    pairs = {i: i for i in ref_rows.index}
    for _, side in others.groupby("source", sort=False):
        free = dict(ref_rows.iterrows())
        exact = ["variant", *setting, "point"]
        index = {key(r[exact]): i for i, r in free.items()}
        for i, row in side.iterrows():
            j = index.get(key(row[exact]))
            if j is not None and j in free:
                pairs[i] = j
                del free[j]
        loose = ["name", *setting, "point"]
        for i, row in side.iterrows():
            if i in pairs:
                continue
            options = [(len(config_change(ref["_config"], row["_config"])), j) for j, ref in free.items()
                       if key(ref[loose]) == key(row[loose])]
            if options:
                j = min(options, key=lambda o: o[0])[1]  # the fewest changed fields, then the first
                pairs[i] = j
                del free[j]
    return pairs


def config_change(ref: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The config fields that differ, as 'field old → new'."""
    names = [n for n in dict.fromkeys([*ref, *new]) if key_one(ref.get(n)) != key_one(new.get(n))]
    return [f"{n} {_show(ref.get(n))} → {_show(new.get(n))}" for n in names]


def _show(value: Any) -> str:
    value = key_one(value)
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _overlap(a: pd.Series, b: pd.Series) -> bool:
    return bool({key_one(v) for v in a} & {key_one(v) for v in b}) or b.empty
