"""``--shard i/n``: a deterministic share of a suite's cases, for job arrays or any other scheduler.

Share ``i`` of ``n`` (1-based: ``1/4`` ... ``4/4``) holds the cases at positions i, i + n, i + 2n, ... of
the suite's run order. Round-robin rather than contiguous blocks: the repeats of a case are spread over the
run (the spec makes them the outer loop), so every share gets a like mix of variants and repeats, and
shares of a suite's slow cases are as long as shares of its quick ones. The same file gives the same
shares on every machine; the ``n`` shares together hold every case exactly once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import TypeVar

from unet_bench.errors import BenchError
from unet_bench.suite.spec import Spec

T = TypeVar("T")
MAX_SHARDS = 100_000


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; anything else is a one-line error saying what is valid."""
    match = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", text)  # ASCII digits only: \d takes "١/٢"
    if not match:
        raise BenchError(f"--shard {text!r} is not valid; give it as I/N in ASCII digits, share I of N "
                         "(1 <= I <= N), e.g. 1/4")
    index, count = int(match[1]), int(match[2])
    if not 1 <= count <= MAX_SHARDS:
        raise BenchError(f"--shard {text!r}: N must be in [1, {MAX_SHARDS}]")
    if not 1 <= index <= count:
        raise BenchError(f"--shard {text!r}: I must be in [1, {count}] (shares are numbered from 1)")
    return index, count


def share(items: Sequence[T], index: int, count: int) -> list[T]:
    """Share ``index`` of ``count`` (1-based) of ``items``: every ``count``-th item from position ``index``."""
    return list(items[index - 1::count])


def shard_spec(spec: Spec, index: int, count: int) -> Spec:
    """``spec`` with only its share ``index`` of ``count`` of the cases; a share with no case is refused,
    naming how many the file holds (a job array wider than the suite)."""
    planned = tuple(share(spec.planned, index, count))
    if not planned:
        total = len(spec.planned)
        raise BenchError(f"--shard {index}/{count}: share {index} of {count} has no cases ({spec.path} holds "
                         f"{total} case{'s' if total != 1 else ''}; give N at most {total})")
    return dataclasses.replace(spec, planned=planned)


def lock_name(index: int, count: int) -> str:
    """The lock file of one share: the shares of one suite may write its folder at the same time."""
    return f".lock.shard-{index}-of-{count}"
