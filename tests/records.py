"""Results lines as tests read them: one flat dict of field names per record (`Record.columns`), whatever
the format on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unet_bench.record import Record
from unet_bench.suite.store import read_records


def flat(data: dict[str, Any]) -> dict[str, Any]:
    """One results line as its flat columns (config, env and extra as dicts)."""
    return Record.from_dict(data).columns()


def flat_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a results file, each as `flat`."""
    return [flat(data) for data in read_records(path).records]
