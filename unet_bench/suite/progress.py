"""What a suite run did, as a user reads it: one line per finished case, and the closing lines of a run
(what was written where, and what to do next)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from unet_bench.record import Case, Record
from unet_bench.suite.store import RESULTS_FILE


@dataclass
class BatchSearch:
    """Outcome of a max-batch search: the largest batch that ran, the smallest that ran out of memory."""

    case: Case  # the searched case (its batch is the search's start)
    fits: int  # 0 when even batch 1 did not
    fails: int | None  # None when nothing up to max_batch ran out of memory
    stopped: str | None = None  # why the search ended early (a probe ended in error or was skipped)

    def describe(self, max_batch: int) -> str:
        name = self.case.label.replace(f" b{self.case.batch} ", " ")
        if self.stopped:
            return f"max batch {name}: search stopped: {self.stopped}"
        bound = f"{self.fails} does not" if self.fails else f"nothing up to max_batch = {max_batch} ran out"
        return f"max batch {name}: {self.fits} fits, {bound}"


@dataclass
class Summary:
    """What a run did: records written by status, cases skipped as already done, and how it ended."""

    out_dir: Path
    written: Counter = field(default_factory=Counter)
    already_done: int = 0
    partial_line_bytes: int = 0
    interrupted: bool = False
    stopped: str | None = None  # why the run stopped before its end (the results file could not be written)
    oom_again: int = 0  # oom cases retried that ran out of memory again under the same limit (not rewritten)
    searches: list[BatchSearch] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """130 interrupted, 1 if stopped or a case ended in error, else 0 (oom and skipped are results)."""
        return 130 if self.interrupted else 1 if self.stopped or self.written["error"] else 0


def case_line(case: Case, record: Record) -> str:
    """One log line per finished case: status, case, headline figure or message."""
    row = record.columns()
    if record.status != "ok":
        return f"{record.status:<7} {case.label}: {record.message}"
    if row['latency_ms_median'] is not None:
        figure = f"{row['latency_ms_median']:.1f} ms"
    elif row['dice_mean'] is not None:
        figure = f"Dice {row['dice_mean']:.3f}"
        if row['dice_threshold'] is not None:
            figure += f" (tuned threshold {row['dice_threshold']:.3f}, all foreground {row['dice_all_foreground']:.3f})"
    else:
        figure = f"{row['macs'] / 1e9:.2f} GMACs" if row['macs'] else ""
    return f"{'ok':<7} {case.label}  {figure}  ({record.duration_s or 0:.1f} s)"


def describe(summary: Summary) -> str:
    """The closing lines of a run: what was written, where, and what to do next."""
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.written.items())) or "nothing new"
    where = summary.out_dir / RESULTS_FILE
    ended = "interrupted" if summary.interrupted else "stopped" if summary.stopped else "done"
    lines = [f"{ended}: {counts} written to {where}"]
    if summary.oom_again:
        lines.append(f"{summary.oom_again} oom cases ran out of memory again under the same limit "
                     "(already recorded, not written twice)")
    if summary.stopped:
        lines.append(f"{summary.stopped}; every record written before it is kept: free the space or fix the "
                     f"permissions, then finish the rest with --resume --out {summary.out_dir}")
    elif summary.interrupted:
        lines.append(f"every finished case is on disk; finish the rest with --resume --out {summary.out_dir}")
    elif summary.written["error"]:
        lines.append(f"see the 'message' of the error records in {where}; --resume runs them again")
    if summary.written["oom"] and not summary.interrupted:
        lines.append("oom cases stay recorded on --resume; --resume --retry-oom runs them again (with a "
                     "higher --cpu-memory-limit, say)")
    return "\n".join(lines)
