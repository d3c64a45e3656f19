"""The results format: a record is its case plus measurement groups, versioned, documented in one place,
and flat records of earlier versions still read, load and compare."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from unet_bench.analysis.results import load
from unet_bench.cli import main
from unet_bench.record import FIELD_GROUP, GROUPS, SCHEMA, Case, Record

ROOT = Path(__file__).resolve().parents[1]
FLAT = Path(__file__).parent / "data" / "flat_results"  # written by the flat format (schema 1), kept as it was


def test_case_ids_stay_those_earlier_versions_computed():
    # ids computed by the version before the record became case + groups: --resume matches on them
    assert Case("paper").case_id == "ba36deb86cf29598"
    assert Case("padded", overrides=(("base_width", 8), ("depth", 3)), mode="infer", batch=2, input_size=188,
                threads=1, min_run_time_s=0.5, repeat=2, requested_size=4,
                size_rule="nearest-input").case_id == "d183301c81962c6d"
    assert Case("unet3d", input_size=132, input_shape=(132, 132, 116)).case_id == "6c17f19657782a26"
    assert Case("paper", mode="quality", seeds=2, steps=10, lr=0.01, optimizer="adam",
                weight_map=False).case_id == "15134f5269860224"
    assert Case("paper", mode="train-ddp", world_sizes=(1, 2), dtype="bf16", channels_last=True,
                compile=True).case_id == "0e38507dc12e0d6e"


def test_field_names_are_unique_across_the_case_the_record_and_the_groups():
    case = [f.name for f in dataclasses.fields(Case)]
    top = [f.name for f in dataclasses.fields(Record) if f.name not in GROUPS]
    groups = [f.name for cls in GROUPS.values() for f in dataclasses.fields(cls)]
    names = case + top + groups
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert set(FIELD_GROUP) == set(groups)


def test_a_record_holds_its_case_once_and_only_its_measured_groups():
    case = Case("paper", mode="infer", batch=2, input_size=188)
    record = Record.for_case(case, macs=7, latency_ms_median=1.5, extra={"k": 1})
    data = json.loads(json.dumps(record.to_dict()))
    assert data["schema"] == SCHEMA and data["case"] == case.to_dict() and data["case_id"] == case.case_id
    assert data["counts"]["macs"] == 7 and data["timing"]["latency_ms_median"] == 1.5
    assert data["memory"] is None and data["quality"] is None and "macs" not in data
    assert Record.from_dict(data) == record
    row = record.columns()
    assert (row["variant"], row["batch"], row["macs"], row["latency_ms_median"]) == ("paper", 2, 7, 1.5)
    assert row["peak_mem_bytes"] is None and row["tf32"] is None  # absent group; a CUDA flag on CPU


def test_every_field_is_documented_in_the_format_and_nothing_else_is():
    text = (ROOT / "docs" / "results.md").read_text()
    documented: dict[str, set[str]] = {}
    section = None
    for line in text.splitlines():
        if heading := re.match(r"^### `(\w+)`", line):
            section = heading.group(1)
            documented[section] = set()
        elif section and (cell := re.match(r"^\| `(\w+)` \| (.+) \|$", line)):
            assert cell.group(2).strip(), f"{cell.group(1)} has no explanation"
            documented[section].add(cell.group(1))
    assert documented["case"] == {f.name for f in dataclasses.fields(Case)}
    assert documented["record"] == {f.name for f in dataclasses.fields(Record)} - set(GROUPS)
    for key, cls in GROUPS.items():
        assert documented[key] == {f.name for f in dataclasses.fields(cls)}, key


def test_a_measured_record_writes_only_documented_keys(capsys):
    text = (ROOT / "docs" / "results.md").read_text()
    assert main(["count", "paper", "--set", "base_width=4", "--set", "depth=2", "--size", "60", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    record = Record.from_dict(row)
    data = record.to_dict()
    for key in [*data, *data["case"], *data["counts"], *data["extra"]]:
        assert f"`{key}`" in text, key


def test_flat_records_of_earlier_versions_load_and_compare_with_a_note(capsys):
    frame = load([FLAT])
    [note] = frame.attrs["notes"]
    assert "4 records in the flat format" in note
    written = [json.loads(line) for line in (FLAT / "results.jsonl").read_text().splitlines()]
    assert list(frame["case_id"]) == [r["case_id"] for r in written]
    for column in ("variant", "mode", "threads", "macs", "latency_ms_median", "peak_mem_bytes", "output_size"):
        assert [None if v != v else v for v in frame[column]] == [r[column] for r in written], column
    assert main(["compare", str(FLAT)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "flat format" in captured.err and "padded" in out and "-67.8%" in out  # MACs per output pixel, as it was


def test_a_flat_record_reads_into_the_same_record_as_its_nested_line():
    for line in (FLAT / "results.jsonl").read_text().splitlines():
        flat = json.loads(line)
        record = Record.from_dict(flat)
        assert record.case_id == flat["case_id"] and record.threads_used == flat["threads"]
        assert record.get("macs") == flat["macs"] and record.get("peak_mem_bytes") == flat["peak_mem_bytes"]
        assert Record.from_dict(json.loads(json.dumps(record.to_dict()))) == record
