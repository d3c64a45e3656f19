"""What a results folder already holds for a suite, and so what ``--resume`` skips.

A case recorded ``ok`` is done; one recorded ``oom`` is done too unless the user asks to retry it
(``--retry-oom``, after raising the memory limit, say): running out of memory again under the same limit
says nothing new. A folder holding another suite's records is refused, so two experiments never share
one results file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unet_bench.errors import BenchError
from unet_bench.suite.spec import Spec
from unet_bench.suite.store import RESULTS_FILE, read_records


def done_cases(spec: Spec, records: list[dict[str, Any]], where: Path, retry_oom: bool = False) -> dict[str, str]:
    """``{case_id: status}`` of the cases ``--resume`` skips: recorded ``ok``, or ``oom`` unless
    ``retry_oom`` (running out of memory again under the same limit says nothing new). Records of
    another suite are refused: resuming into them would mix two experiments in one file."""
    other = next((r.get("suite") for r in records if r.get("suite") != spec.name), spec.name)
    if other != spec.name:
        whose = f"suite {other!r}" if isinstance(other, str) else "no suite"
        raise BenchError(f"{where} holds records of {whose}, not of {spec.name!r}; resume it with that "
                         "experiment file, or write to another directory with --out")
    skip = ("ok",) if retry_oom else ("ok", "oom")
    last = {r.get("case_id"): r.get("status") for r in records if r.get("status") in ("ok", "oom")}
    return {case_id: status for case_id, status in last.items() if status in skip}


def refuse_unless_resuming(spec: Spec, records: list[dict[str, Any]], path: Path, resume: bool,
                           shared: bool = False) -> None:
    """Refuse to add to a results file that holds records unless resuming. ``shared``: the file is shared
    by the shares of the suite (shards), so only records of ``spec``'s own cases count."""
    mine = {p.case.case_id for p in spec.planned}
    held = [r for r in records if not shared or r.get("case_id") in mine]
    if held and not resume:
        raise BenchError(f"{path} already holds {len(held)} records; "
                         "add --resume to finish that run, or write to another directory with --out")


def done_in_folder(spec: Spec, out_dir: Path, retry_oom: bool = False) -> dict[str, str]:
    """`done_cases` of what ``out_dir`` holds now (``--dry-run --resume``: what a resume would skip)."""
    path = out_dir / RESULTS_FILE
    return done_cases(spec, read_records(path).records, path, retry_oom)


def oom_limits(records: list[dict[str, Any]]) -> dict[str, float | None]:
    """``{case_id: cpu memory limit}`` of the cases recorded ``oom`` (None: no limit was set)."""
    return {r.get("case_id"): (r.get("extra") or {}).get("cpu_memory_limit_gb")
            for r in records if r.get("status") == "oom"}


def resuming_line(spec: Spec, known: dict[str, str], skipped: int) -> str:
    total = len(spec.planned)
    oom = sum(1 for p in spec.planned if not p.max_batch and known.get(p.case.case_id) == "oom")
    if not oom:
        return f"resuming: {skipped} of {total} cases already recorded ok"
    return (f"resuming: {skipped} of {total} cases already recorded ({skipped - oom} ok, {oom} oom; "
            "--retry-oom runs the oom ones again)")
