"""Results on disk → one tidy pandas DataFrame: one row per case and repeat, flat named columns.

Tables, plots and the report all start from `load`, so every one of them sees the same rows and the same
column names. Columns are the `Case` fields and every measurement group's fields by their bare names (`Record.columns`;
the results format is docs/results.md), unit in the name (``latency_ms_median``, ``peak_mem_bytes``),
plus the network config flattened as ``cfg_<field>`` (``cfg_depth``, ``cfg_upsample``), the environment as
``env_<key>`` (nested keys joined by ``_``), `Record.extra` as ``extra_<key>``, the overrides as one
``overrides`` string (``"base_width=8,depth=3"``) and a ``source`` column naming the directory or file each
row came from. Two kinds of input are read:

- a results directory (or its ``results.jsonl``): one ``Record.to_dict()`` JSON object per line, as the
  runner appends them. A line that is not a well-formed record (`lines`: a partial last line left by a
  run killed mid-write, a corrupt line, a field of the wrong type) is left out and named in
  ``frame.attrs["notes"]``, never fatal; a case recorded more than once (same ``case_id``, e.g. failed
  then re-run by ``--resume``) keeps its last record;
- a pytest-benchmark JSON file (``--benchmark-json``): one row per benchmark, its timing statistics
  mapped onto the latency columns; ``extra_info`` keys that name a `Record` field fill that field. A
  JSON file of another kind is refused in one line; a malformed entry is left out with a note.

Records written before a figure existed get it derived on load where it follows from the others: latency
per output megapixel and output megapixels per second from the latency, the batch and the output size;
MACs per output pixel from the MACs.

`METRICS` names every measured column with its display unit, whether higher is better and where its
verdict comes from: the one place the tables, the figures and the verdicts take them from.
"""

from __future__ import annotations

import errno
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unet_bench.analysis.lines import is_number, read_bytes, read_lines, skipped_notes, why_malformed
from unet_bench.errors import BenchError, choices
from unet_bench.record import DEFAULT_ELASTIC_SIGMA_PX, SCHEMA, Case, Record
from unet_bench.suite.store import RESULTS_FILE

# What identifies a measured setting apart from the network: rows that agree on these are comparable.
FACTORS = ("mode", "runtime", "device", "dtype", "input_size", "batch", "channels_last", "compile", "tf32",
           "cudnn_benchmark", "threads")


@dataclass(frozen=True)
class Metric:
    """A measured column and how to show it: ``value * scale`` in ``unit``; and where its verdict comes from.

    ``verdict``: ``exact`` (counts, and figures a case takes once, such as an export: no interval),
    ``repeats`` (an interval over the per-repeat values), ``trace`` (as ``repeats``, but a deterministic
    trace that a suite takes in one repeat only: one value, or identical values, are exact), ``seeds`` (over
    the per-seed values in the ``samples`` column) or ``derived`` (a fixed transformation of the ``timing``
    column's measurement, carrying its noise).
    """

    column: str
    label: str
    unit: str = ""
    scale: float = 1.0
    higher_is_better: bool = False
    spread: tuple[str, str] | None = None  # columns holding the measured low/high (p25/p75) of one repeat
    std: str | None = None  # column holding the spread as a standard deviation (quality over seeds)
    verdict: str = "repeats"
    timing: str | None = None  # derived: the timing it is computed from
    samples: str | None = None  # seeds: the column holding the per-seed values (a JSON list)

    @property
    def heading(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


_MIB = 1 / 2**20
_LATENCY_SPREAD = ("latency_ms_p25", "latency_ms_p75")
METRICS: dict[str, Metric] = {m.column: m for m in (
    Metric("params", "parameters", "M", 1e-6, verdict="exact"),
    Metric("params_trainable", "trainable parameters", "M", 1e-6, verdict="exact"),
    Metric("macs", "MACs", "G", 1e-9, verdict="exact"),
    Metric("flops", "FLOPs", "G", 1e-9, verdict="exact"),
    Metric("other_flops", "non-conv FLOPs", "M", 1e-6, verdict="exact"),
    Metric("train_flops", "training-step FLOPs", "G", 1e-9, verdict="exact"),
    Metric("macs_per_output_pixel", "MACs per output pixel", "k", 1e-3, verdict="exact"),
    Metric("latency_ms_median", "latency", "ms", spread=_LATENCY_SPREAD),
    Metric("latency_ms_per_output_mpix", "latency per output Mpx", "ms", spread=_LATENCY_SPREAD),
    Metric("images_per_s", "throughput", "img/s", higher_is_better=True, verdict="derived",
           timing="latency_ms_median"),
    Metric("output_mpix_per_s", "output throughput", "Mpx/s", higher_is_better=True, verdict="derived",
           timing="latency_ms_per_output_mpix"),
    Metric("achieved_flops_per_s", "achieved", "GFLOP/s", 1e-9, higher_is_better=True, verdict="derived",
           timing="latency_ms_median"),
    Metric("peak_fraction", "peak utilisation", "%", 100.0, higher_is_better=True, verdict="derived",
           timing="latency_ms_median"),
    Metric("peak_mem_bytes", "peak memory", "MiB", _MIB, verdict="trace"),
    Metric("saved_activation_bytes", "saved activations", "MiB", _MIB, verdict="exact"),
    Metric("param_bytes", "parameter memory", "MiB", _MIB, verdict="exact"),
    Metric("grad_bytes", "gradient memory", "MiB", _MIB, verdict="exact"),
    Metric("optimizer_bytes", "optimizer state", "MiB", _MIB, verdict="exact"),
    Metric("predicted_peak_bytes", "predicted peak memory", "MiB", _MIB, verdict="exact"),
    Metric("peak_mem_ratio", "measured / predicted memory"),
    Metric("compile_s", "compile time", "s"),
    Metric("dice_mean", "Dice", higher_is_better=True, std="dice_std", verdict="seeds",
           samples="extra_dice_per_seed"),
    Metric("iou_mean", "IoU", higher_is_better=True, std="iou_std", verdict="seeds", samples="extra_iou_per_seed"),
    Metric("object_f1_mean", "object F1", higher_is_better=True, std="object_f1_std", verdict="seeds",
           samples="extra_object_f1_per_seed"),
    Metric("map_mean", "mAP 0.5:0.95", higher_is_better=True, std="map_std", verdict="seeds",
           samples="extra_map_per_seed"),
    Metric("rand_error_mean", "adapted Rand error", std="rand_error_std", verdict="seeds",
           samples="extra_rand_error_per_seed"),
    Metric("curve_object_f1_gain", "object F1 gained, last quarter of steps", verdict="seeds",
           samples="extra_curve_object_f1_gain_per_seed"),
    Metric("object_f1_per_gflop", "object F1 per GFLOP/Mpx", higher_is_better=True, verdict="seeds",
           samples="extra_object_f1_per_gflop_per_seed"),
    # baselines: computed once from the data, the same for every seed
    Metric("dice_threshold", "Dice, tuned threshold", higher_is_better=True, verdict="exact"),
    Metric("dice_all_foreground", "Dice, all foreground", higher_is_better=True, verdict="exact"),
    Metric("object_f1_threshold", "object F1, tuned threshold", higher_is_better=True, verdict="exact"),
    Metric("train_time_s", "training time", "s"),
    Metric("energy_j_per_image", "energy per image", "J"),
    Metric("energy_j_per_output_mpix", "energy per output Mpx", "J"),
    Metric("energy_j_per_train_step", "energy per training step", "J"),
    # a deployment runtime's export: taken once per case, against eager torch's output on a seeded input
    Metric("export_s", "export time", "s", verdict="exact"),
    Metric("model_bytes", "model file", "MiB", _MIB, verdict="exact"),
    Metric("max_abs_error", "max abs error vs torch", verdict="exact"),
    Metric("max_rel_error", "max rel error vs torch", verdict="exact"),
)}
# Per image → per output pixel: what a table shows instead when the compared outputs differ in size.
PER_PIXEL = {"latency_ms_median": "latency_ms_per_output_mpix", "macs": "macs_per_output_pixel",
             "images_per_s": "output_mpix_per_s"}

_RECORD_FIELDS = tuple(Record(Case("")).columns())
_NUMERIC = ("output_size", "duration_s", "latency_ms_iqr", "latency_ms_p25", "latency_ms_p75", "latency_n",
            "peak_flops_per_s", "warmup_s", "dice_std", "iou_std", "quality_seeds", "train_steps", "object_f1_std",
            "map_std", "rand_error_std", "iou_threshold", "map_threshold", "rand_error_threshold", *METRICS)


def load(sources: Iterable[str | Path]) -> pd.DataFrame:
    """Load results directories, ``results.jsonl`` files and pytest-benchmark JSON files into one frame.

    Rows keep the order they were written in; lines that could not be read are listed in
    ``frame.attrs["notes"]``. Raises `BenchError` for a missing path or when nothing readable is found.
    """
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    seen: set[Path] = set()
    for source in sources:
        path = resolve(source)
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        name = str(source).rstrip("/") if path.suffix == ".json" or Path(source).is_dir() else str(path.parent)
        noted = len(notes)
        found = _read_benchmark_json(path, notes) if path.suffix == ".json" else _read_jsonl(path, notes)
        if not found:
            why = notes[noted:]
            raise BenchError(f"no results in {source}: {path.name} holds no readable record"
                             + (f" ({why[0]}{f'; {len(why) - 1} more notes' if len(why) > 1 else ''})" if why else ""))
        for row in found:
            row["source"] = name
        rows.extend(found)
    if not rows:
        raise BenchError("no results given; name a results directory such as results/default")
    frame = pd.DataFrame(rows)
    for column in _NUMERIC:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    _per_output_pixel(frame)
    _quality_per_cost(frame)
    frame.attrs["notes"] = notes
    return frame


def _per_output_pixel(frame: pd.DataFrame) -> None:
    """Fill the per-output-pixel columns that records written before they existed lack (from the latency,
    the MACs, the batch and the output size)."""
    for column in ("batch", "output_size", "latency_ms_median", "macs", *PER_PIXEL.values()):
        if column not in frame:
            frame[column] = np.nan
    pixels = pd.to_numeric(frame["output_size"], errors="coerce") ** 2
    mpix = pd.to_numeric(frame["batch"], errors="coerce") * pixels / 1e6
    derived = {
        "latency_ms_per_output_mpix": frame["latency_ms_median"] / mpix,
        "macs_per_output_pixel": frame["macs"] / pixels,
        "output_mpix_per_s": mpix / (frame["latency_ms_median"] / 1e3),
    }
    for column, values in derived.items():  # a zero latency or output size derives nothing, not infinity
        frame[column] = frame[column].fillna(values.astype(float).replace([np.inf, -np.inf], np.nan))


def _quality_per_cost(frame: pd.DataFrame) -> None:
    """Object F1 per GFLOP of segmenting one output megapixel (forward FLOPs at the training tile), per
    seed too, so that 'which network gives the most objects per compute' gets an interval over seeds."""
    gflop = 2e-3 * pd.to_numeric(frame["macs_per_output_pixel"], errors="coerce")  # 2 x MACs x 1e6 px / 1e9
    gflop = gflop.where(gflop > 0)
    frame["object_f1_per_gflop"] = (frame["object_f1_mean"] / gflop if "object_f1_mean" in frame else np.nan)
    if "extra_object_f1_per_seed" in frame:
        frame["extra_object_f1_per_gflop_per_seed"] = [
            [v / g for v in seeds] if (seeds := listed(text)) is not None and g == g else None
            for text, g in zip(frame["extra_object_f1_per_seed"], gflop, strict=True)]


def listed(value: Any) -> list | None:
    """A list column's value as a list: extra's lists are kept as JSON text in a row; None for anything else."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, list) else None


def resolve(source: str | Path) -> Path:
    """The file behind ``source``: a directory's ``results.jsonl``, or the file itself.

    A path that does not exist is refused with the results directories found next to it.
    """
    path = Path(source)
    try:
        os.stat(path)
    except OSError as error:
        if error.errno not in (errno.ENOENT, errno.ENOTDIR):  # a name too long, a loop of links, no permission
            shown = str(source) if len(str(source)) <= 200 else f"{str(source)[:90]}...{str(source)[-90:]}"
            raise BenchError(f"results {shown!r}: {error.strerror}; give a results directory or file") from None
    if path.is_dir():
        if (path / RESULTS_FILE).exists():  # read as it is: a pipe or a folder there is refused in one line
            return path / RESULTS_FILE
        inside = results_dirs(path)
        hint = f"; results directories under it: {choices(inside)}" if inside else ""
        raise BenchError(f"no {RESULTS_FILE} in {source}{hint}")
    if path.exists():
        if path.suffix not in (".jsonl", ".json"):
            raise BenchError(f"{source} is not a results file; give a results directory, a .jsonl or a "
                             f"pytest-benchmark .json file")
        return path
    parent = path.parent if path.parent.is_dir() else Path(".")
    near = results_dirs(parent)
    hint = f"; results directories under {parent}: {choices(near)}" if near else ""
    raise BenchError(f"results directory {str(source)!r} does not exist{hint}")


def results_dirs(root: Path) -> list[str]:
    """Directories under ``root`` (two levels at most) that hold a results file."""
    found = sorted({p.parent for pattern in (f"*/{RESULTS_FILE}", f"*/*/{RESULTS_FILE}") for p in root.glob(pattern)})
    return [str(p) for p in found]


def flatten(data: dict[str, Any]) -> dict[str, Any]:
    """One record dict → one flat row (config, env and extra spread into prefixed columns)."""
    record = Record.from_dict(data).columns()  # either format; fills fields an older writer did not know
    row = {k: v for k, v in record.items() if k not in ("config", "overrides", "env", "extra")}
    # a list value (another library's argument: features = [32, 64]) reads 32/64: labels split on commas
    row["overrides"] = ",".join(f"{k}={'/'.join(map(str, v)) if isinstance(v, list) else v}"
                                for k, v in sorted(record["overrides"].items()))
    for prefix in ("config", "env", "extra"):
        short = "cfg" if prefix == "config" else prefix
        for key, value in _flat_items(record[prefix]):
            row[f"{short}_{key}"] = value
    for name in [k for k, v in row.items() if isinstance(v, dict)]:  # a group's details: profile_by_step, ...
        row.update({f"{name}_{key}": value for key, value in _flat_items(row.pop(name))})
    return row


def _flat_items(data: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flat_items(value, f"{name}_")
        elif isinstance(value, (list, tuple)):
            yield name, json.dumps(value, default=str)
        else:
            yield name, value


def _read_jsonl(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    """Rows of a results file, each line that is not a well-formed record left out with a note (`lines`);
    a case recorded twice (failed, then re-run by ``--resume``) keeps its last record."""
    rows: dict[Any, dict[str, Any]] = {}
    flat = 0
    for number, data in read_lines(path, notes):
        flat += "schema" not in data
        row = flatten(data)
        rows[row["case_id"] or f"#{number}"] = row
    if flat:
        notes.append(f"{path}: {flat} records in the flat format of earlier versions, read as schema {SCHEMA}")
    return list(rows.values())


def _read_benchmark_json(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    """pytest-benchmark's ``--benchmark-json`` output → rows (seconds → ms, q1/q3 → p25/p75); a benchmark
    entry that is not one of its kind is left out with a note."""
    text = read_bytes(path)
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BenchError(f"{path} is not valid JSON; give a results directory, a .jsonl or a pytest-benchmark "
                         ".json file") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise BenchError(f"{path} is not a pytest-benchmark JSON file (no 'benchmarks' list)")
    machine, commit = _object(data.get("machine_info")), _object(data.get("commit_info"))
    env = {
        "python": machine.get("python_version"), "machine": machine.get("machine"),
        "cpu": _object(machine.get("cpu")).get("brand_raw"), "git_commit": commit.get("id"),
        "git_dirty": commit.get("dirty"), "pytest_benchmark": data.get("version"),
    }
    rows, skipped = [], []
    for number, bench in enumerate(data["benchmarks"], 1):
        record = _benchmark_record(bench, env, data.get("datetime", ""))
        why = record if isinstance(record, str) else why_malformed(record, may_be_null=_UNKNOWN_TO_BENCHMARKS)
        if why is None:
            rows.append(flatten(record))
        else:
            skipped.append((number, why))
    notes += skipped_notes(str(path), "benchmark", skipped)
    return rows


_UNKNOWN_TO_BENCHMARKS = ("mode", "device", "batch", "input_size")
_STATS = ("median", "q1", "q3", "iqr", "rounds")


def _benchmark_record(bench: Any, env: dict[str, Any], timestamp: Any) -> dict[str, Any] | str:
    """One pytest-benchmark entry as a record, or why it is not one."""
    if not isinstance(bench, dict) or not isinstance(bench.get("name"), str) or \
            not isinstance(stats := bench.get("stats"), dict):
        return "not a benchmark entry (a 'name' and a 'stats' object)"
    bad = [k for k in _STATS if not is_number(stats.get(k))]
    if bad:
        return f"its stats have no number {bad[0]!r}"
    info = _object(bench.get("extra_info"))
    known = {k: info.pop(k) for k in list(info) if k in _RECORD_FIELDS and k not in ("env", "extra")}
    batch = known.get("batch")
    record = {
        "variant": bench["name"], "mode": "benchmark", "device": None, "batch": None, "input_size": None,
        "timestamp": timestamp if isinstance(timestamp, str) else "",
        **known,
        "latency_ms_median": stats["median"] * 1e3, "latency_ms_p25": stats["q1"] * 1e3,
        "latency_ms_p75": stats["q3"] * 1e3, "latency_ms_iqr": stats["iqr"] * 1e3,
        "latency_n": stats["rounds"],
        "env": {**env, "timer": _object(bench.get("options")).get("timer")},
        "extra": {"benchmark": bench.get("fullname", bench["name"]), "group": bench.get("group"), **info},
    }
    if isinstance(batch, int) and not isinstance(batch, bool) and stats["median"] > 0 and "images_per_s" not in known:
        record["images_per_s"] = batch / stats["median"]
    return record


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


TRAINING_LABELS = (("weight_map", True, lambda v: "no-weight-map"), ("augment", "flips", "augment={}".format),
                   ("schedule", "constant", "schedule={}".format), ("train_images", None, "train_images={:g}".format),
                   ("elastic_sigma", DEFAULT_ELASTIC_SIGMA_PX, "elastic_sigma={:g}".format))


def _same(value: Any, default: Any) -> bool:
    """Whether a row's training setting is the default (a missing one, from an older record or another
    mode, is; a weight_map of null outside quality is too)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return bool(value == default)


def variant_labels(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    """Row labels ``variant[overrides]``, with the overrides every row shares left out of the labels.

    Returns the labels and the shared overrides (``"base_width=8"``, or ``""``) for a caption: a tiny run
    at base_width=8 reads ``paper``, ``padded``, ... rather than repeating the width in every row.
    """
    parts = frame["overrides"].fillna("").map(lambda s: set(s.split(",")) - {""})
    # training settings, not config fields, yet each makes another model
    for column, default, word in TRAINING_LABELS:
        if column in frame:
            parts = parts.combine(frame[column], lambda p, v, d=default, w=word: p if _same(v, d) else p | {w(v)})
    common = set.intersection(*parts) if len(parts) else set()
    labels = [
        variant if not (rest := sorted(p - common)) else f"{variant}[{','.join(rest)}]"
        for variant, p in zip(frame["variant"], parts, strict=True)
    ]
    return pd.Series(labels, index=frame.index, name="variant"), ",".join(sorted(common))


def ok(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows whose measurement succeeded (failed ones keep their status and message, no values)."""
    return frame[frame["status"] == "ok"]
