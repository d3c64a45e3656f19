"""One validation for every value a user gives, from an experiment file or the command line.

Each checker returns the normalised value or raises `Invalid` saying what is allowed, with the range
named (the spec adds the file and the key; `as_argument` turns a checker into an argparse type, so that a
flag and the file key it mirrors accept exactly the same values). Numbers must be finite and in range:
``inf`` as a time or a memory limit would hang a run or overflow a system call.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from unet_bench.errors import choices
from unet_bench.models.config import MAX_SIZE

Checker = Callable[[Any], Any]


class Invalid(Exception):
    """A value that is not allowed; the message says what is (the caller adds file and key)."""


def one_of(allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise Invalid(f"{value!r} is not allowed; choose from {choices(allowed)}")
        return value
    return check


def integer(minimum: int, maximum: int | None = None, why: str = "") -> Callable[[Any], int]:
    """An integer in [minimum, maximum]; ``why`` names what the maximum is (e.g. 'the largest input size')."""
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            bound = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
            raise Invalid(f"{value!r} is not allowed; it must be an integer {bound}")
        if maximum is not None and value > maximum:
            raise Invalid(f"{value} is over the limit of {maximum}{f' ({why})' if why else ''}")
        return value
    return check


def number(maximum: float, unit: str) -> Callable[[Any], float]:
    """A finite number > 0 and at most ``maximum`` (in ``unit``)."""
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= maximum:
            raise Invalid(f"{value!r} is not allowed; it must be a number in (0, {maximum:g}] {unit}")
        return float(value)
    return check


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which a scheduler or taskset may narrow)."""
    return len(os.sched_getaffinity(0))


def threads(value: Any) -> int:
    """Intra-op threads: more than the cores this process may use only makes threads wait on each other."""
    return integer(1, usable_cores(), "the cores this process may use")(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{value!r} is not allowed; it must be true or false")
    return value


def string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{value!r} is not allowed; it must be a non-empty string")
    return value


def list_of(check: Checker, max_length: int = 1000) -> Callable[[Any], tuple]:
    """A list of values (a single value is a list of one); empty lists, repeats and long lists are refused."""
    def check_list(value: Any) -> tuple:
        values = value if isinstance(value, list) else [value]
        if not values:
            raise Invalid("an empty list is not allowed; give at least one value")
        if len(values) > max_length:
            raise Invalid(f"{len(values)} values are over the limit of {max_length}")
        out = tuple(check(v) for v in values)
        if len(set(out)) != len(out):
            raise Invalid(f"{value!r} repeats a value; give each once")
        return out
    return check_list


def table(value: Any) -> dict:
    if not isinstance(value, dict):
        raise Invalid(f"{value!r} is not allowed; it must be a table of config fields, e.g. {{depth = 3}}")
    return value


# --- the numbers a user gives, wherever they give them ---------------------------------------------------

MAX_BATCH = 65536
SIZE = integer(1, MAX_SIZE, "the largest input size, in pixels")
BATCH = integer(1, MAX_BATCH, "the largest batch")
REPEATS = integer(1, 1000, "the most repeats of one case")
SEEDS = integer(1, 100, "the most training seeds")
WORLD_SIZE = integer(1, 4096, "the most data-parallel ranks")
STEPS = integer(1, 1_000_000, "the most training steps")
TRAIN_IMAGES = integer(1, 1_000_000, "the most training images")
MIN_RUN_TIME_S = number(3600.0, "seconds")
TIMEOUT_S = number(7 * 86400.0, "seconds")
MEMORY_LIMIT_GB = number(65536.0, "GiB")
LEARNING_RATE = number(10.0, "")
ELASTIC_SIGMA = number(100.0, "px")


def size_or_shape(value: Any) -> int | tuple[int, ...]:
    """An input size: one integer (the same on every axis), or one per axis of a 2-D or 3-D network,
    written ``"132x132x116"`` or ``[132, 132, 116]``; the network then checks how many axes it takes."""
    if isinstance(value, str):
        parts = value.strip().lower().split("x")
        if not all(p.strip().isascii() and p.strip().isdigit() for p in parts):  # "５７２" is no size
            raise Invalid(f"{value!r} is not allowed; it must be an integer in [1, {MAX_SIZE}], "
                          "or one per axis as \"132x132x116\"")
        value = [int(p) for p in parts]
        if len(value) == 1:
            return SIZE(value[0])
    if isinstance(value, (list, tuple)):
        if not 2 <= len(value) <= 3:
            raise Invalid(f"{value!r} is not allowed; give one size per axis, 2 or 3 of them")
        return tuple(SIZE(v) for v in value)
    return SIZE(value)


def as_argument(check: Checker, kind: type = int) -> Callable[[str], Any]:
    """An argparse ``type``: parse the text as ``kind``, then apply the same checker the file keys use."""
    def parse(text: str) -> Any:
        if not text.isascii():  # int() and float() read other scripts' digits ("５７２"); a user means ASCII
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise argparse.ArgumentTypeError(f"{shown!r} is not allowed; write numbers in ASCII digits 0-9")
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") \
                from None
        try:
            return check(value)
        except Invalid as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return parse
