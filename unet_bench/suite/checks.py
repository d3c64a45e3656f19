"""Checkers for experiment-file values: each returns the normalised value or raises `Invalid` saying
what is allowed (the spec adds the file and the key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unet_bench.errors import choices


class Invalid(Exception):
    """A value that is not allowed; the message says what is (the caller adds file and key)."""


def one_of(allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise Invalid(f"{value!r} is not allowed; choose from {choices(allowed)}")
        return value
    return check


def integer(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise Invalid(f"{value!r} is not allowed; it must be an integer >= {minimum}")
        return value
    return check


def positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise Invalid(f"{value!r} is not allowed; it must be a number > 0")
    return float(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{value!r} is not allowed; it must be true or false")
    return value


def string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{value!r} is not allowed; it must be a non-empty string")
    return value


def list_of(check: Callable[[Any], Any]) -> Callable[[Any], tuple]:
    """A list of values (a single value is a list of one); empty lists and repeats are refused."""
    def check_list(value: Any) -> tuple:
        values = value if isinstance(value, list) else [value]
        if not values:
            raise Invalid("an empty list is not allowed; give at least one value")
        out = tuple(check(v) for v in values)
        if len(set(out)) != len(out):
            raise Invalid(f"{value!r} repeats a value; give each once")
        return out
    return check_list


def table(value: Any) -> dict:
    if not isinstance(value, dict):
        raise Invalid(f"{value!r} is not allowed; it must be a table of config fields, e.g. {{depth = 3}}")
    return value
