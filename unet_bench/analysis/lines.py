"""A results file read as tables and reports need it: a line that is not a well-formed record is skipped
with a note naming the file and the line, and every other line is read.

The runner reads its own file strictly (`store.read_records` refuses a corrupt line before the last: it
appends to that file and must not build on a line it cannot understand). Comparing only reads, so one bad
line — edited by hand, written by another tool, damaged in a copy — costs that line, not the comparison.

A record is well formed when it is a JSON object (either format: `record.flat_fields`) whose case has
variant, mode, device, batch and input_size, and every field it carries has that field's type: a string for
a string, an integer for an integer (not a float, not a string of digits, not true/false), a number for a
number, true/false for a flag, an object for config, overrides, env and extra; null only where the field
allows it. Numbers anywhere in it are finite (NaN stands for "not measured" in a number field), and 0 or
between `SMALLEST` and `LARGEST` in size; the per-seed quality values are lists of such numbers; nesting
stops at `DEEPEST`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
import types
import typing
from pathlib import Path
from typing import Any, Union

from unet_bench.errors import BenchError
from unet_bench.record import GROUPS, Case, Record, flat_fields

LARGEST = 1e30  # no measured or counted figure comes near it; squares and products of it stay finite
SMALLEST = 1e-30  # nor, but for 0, this close to zero; quotients of it stay finite
DEEPEST = 20  # levels of nested objects and lists in one record
NOTED_PER_FILE = 20  # skipped lines named one by one; the rest of a file's are counted in one more line
REQUIRED = tuple(f.name for f in dataclasses.fields(Case) if f.default is dataclasses.MISSING) + \
    ("mode", "device", "batch", "input_size")
# extra entries the quality verdicts read as numbers
SEED_LISTS = ("dice_per_seed", "iou_per_seed", "object_f1_per_seed", "map_per_seed", "rand_error_per_seed")
# the type of every field by its flat name (`record.flat_fields`), as JSON holds it (lists, not tuples)
_HINTS = {**typing.get_type_hints(Case), "overrides": dict, "input_shape": list | None, "world_sizes": list,
          "reference": dict | None,
          # flat records wrote null for the CUDA flags on CPU and for weight_map outside quality
          "tf32": bool | None, "cudnn_benchmark": bool | None, "weight_map": bool | None,
          **{k: v for k, v in typing.get_type_hints(Record).items() if k not in ("case", *GROUPS)},
          # a group's field is null where the group is absent (a flat view of it)
          **{k: v | None for cls in GROUPS.values() for k, v in typing.get_type_hints(cls).items()}}


def read_lines(path: Path, notes: list[str]) -> list[tuple[int, dict[str, Any]]]:
    """The well-formed records of a ``results.jsonl`` with their line numbers; one note per line left out
    (a partial last line, left by a run killed mid-write, is noted as such)."""
    data = read_bytes(path)
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    records, skipped = [], []
    for number, line in enumerate([*lines, tail], start=1):
        if not line.strip():
            continue
        data_or_why = _parse(line)
        if isinstance(data_or_why, dict):
            why = why_malformed(data_or_why)
            if why is None:
                records.append((number, data_or_why))
                continue
        else:
            why = data_or_why
        if number > len(lines) and why.startswith("not JSON"):
            notes.append(f"{path}: left out a partial last line ({len(tail)} bytes; a run killed mid-write leaves "
                         "one, and --resume measures that case again)")
        else:
            skipped.append((number, why))
    notes += skipped_notes(str(path), "line", skipped)
    return records


def skipped_notes(path: str, unit: str, skipped: list[tuple[int, str]]) -> list[str]:
    """'<path>:<n>: <unit> skipped: <why>' for the first `NOTED_PER_FILE`, then one line for the rest."""
    notes = [f"{path}:{number}: {unit} skipped: {why}" for number, why in skipped[:NOTED_PER_FILE]]
    rest = skipped[NOTED_PER_FILE:]
    if rest:
        notes.append(f"{path}: {len(rest)} more malformed {unit}s skipped ({unit}s {rest[0][0]} to {rest[-1][0]})")
    return notes


def read_bytes(path: Path) -> bytes:
    """The file's bytes; a path that is not a regular file (a pipe must not block) or cannot be read is
    refused in one line."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise BenchError(f"{path}: cannot read it: {error.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BenchError(f"{path} is not a regular file; a results file is one")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as error:
        raise BenchError(f"{path}: cannot read it: {error.strerror}") from None
    finally:
        os.close(fd)


def _parse(line: bytes) -> dict[str, Any] | str:
    """The line's JSON object, or why it is none."""
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError):  # ValueError: not JSON, or an integer of thousands of digits
        return "not JSON"
    except RecursionError:
        return f"nested deeper than {DEEPEST} levels"
    return value if isinstance(value, dict) else f"not a JSON object but {kind(value)}"


def why_malformed(data: dict[str, Any], may_be_null: tuple[str, ...] = ()) -> str | None:
    """Why ``data`` is not a well-formed record (see the module docstring), or None when it is one.
    ``may_be_null``: fields allowed to be null beyond those the record allows (a pytest-benchmark row knows
    no device)."""
    try:
        data = flat_fields(data)
    except BenchError as error:
        return str(error)
    for name in REQUIRED:
        if name not in data:
            return f"no {name!r} (a record has {', '.join(REQUIRED)})"
    why = _numbers_and_depth(data, 0)
    if why:
        return why
    for name, value in data.items():
        hint = _HINTS.get(name)
        if hint is not None and not (value is None and name in may_be_null) and not _fits(hint, value):
            return f"{name!r} is {kind(value)}, not {_expected(hint)}"
    extra = data.get("extra") or {}
    for values in (data.get(name, extra.get(name)) for name in SEED_LISTS):  # a top-level one goes to extra
        if values is not None and not (isinstance(values, list) and all(is_number(v) for v in values)):
            return f"per-seed values are {kind(values)}, not a list of numbers"
    return None


def _fits(hint: Any, value: Any) -> bool:
    if typing.get_origin(hint) in (Union, types.UnionType):
        return any(_fits(option, value) for option in typing.get_args(hint))
    origin = typing.get_origin(hint) or hint
    if origin is type(None):
        return value is None
    if origin is bool:
        return isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is float:
        return is_number(value) or (isinstance(value, float) and math.isnan(value))
    return isinstance(value, origin)


def is_number(value: Any) -> bool:
    """A JSON number (not true/false) that is finite, under `LARGEST` in size and, unless 0, over `SMALLEST`."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        (SMALLEST <= abs(value) < LARGEST or value == 0)


def _numbers_and_depth(value: Any, depth: int, where: str = "") -> str | None:
    """Why a number in ``value`` is out of range, or its nesting too deep; None when neither."""
    if depth > DEEPEST:
        return f"nested deeper than {DEEPEST} levels"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if is_number(value) or (isinstance(value, float) and math.isnan(value)):
            return None
        shown = f"{value}" if isinstance(value, float) else "an integer of more than 30 digits"
        return f"{where!r} is {shown}, beyond any measurement ({SMALLEST:.0e} to {LARGEST:.0e} in size, or 0)"
    if isinstance(value, dict):
        items = [(f"{where}.{k}" if where else k, v) for k, v in value.items()]
    else:
        items = [(f"{where}[{i}]", v) for i, v in enumerate(value)] if isinstance(value, list) else []
    for name, item in items:
        why = _numbers_and_depth(item, depth + 1, name)
        if why:
            return why
    return None


def kind(value: Any) -> str:
    """The JSON kind of ``value`` in words: 'null', 'a string', 'true/false', 'a list', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "an integer" if isinstance(value, int) else f"the number {value!r}"
    if isinstance(value, str):
        return f"a string ({value[:20]!r})" if len(value) <= 20 else "a string"
    return "a list" if isinstance(value, list) else "an object"


def _expected(hint: Any) -> str:
    options = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)
    words = {str: "a string", int: "an integer", float: "a number", bool: "true/false", dict: "an object",
             type(None): "null"}
    return " or ".join(words.get(typing.get_origin(o) or o, str(o)) for o in options)
