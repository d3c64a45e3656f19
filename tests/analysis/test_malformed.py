"""Malformed results: each line that is not a well-formed record is left out with a note naming the file
and the line, the rest is compared; a file with nothing readable, or a JSON file of another kind, is one
line. The malformed records are the tiny run's real records with one field broken."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.analysis.tiny import CASES, records
from unet_bench.analysis.lines import NOTED_PER_FILE
from unet_bench.analysis.results import load
from unet_bench.cli import main
from unet_bench.errors import BenchError

BROKEN_LINE = 3


def broken(record: dict, change: dict | None = None, drop: str | None = None) -> str:
    """A record as one line with ``change`` applied and ``drop`` removed."""
    return json.dumps({k: v for k, v in {**record, **(change or {})}.items() if k != drop})


MALFORMED = {
    "config null": (lambda r: broken(r, {"config": None}), "'config' is null, not an object"),
    "config a list": (lambda r: broken(r, {"config": [1, 2]}), "'config' is a list, not an object"),
    "overrides a string": (lambda r: broken(r, {"overrides": "depth=2"}),
                           "'overrides' is a string ('depth=2'), not an object"),
    "size a string": (lambda r: broken(r, {"input_size": "572"}), "'input_size' is a string ('572'), not an integer"),
    "size a float": (lambda r: broken(r, {"input_size": 60.5}), "'input_size' is the number 60.5, not an integer"),
    "missing mode": (lambda r: broken(r, drop="mode"), "no 'mode' (a record has variant, mode, device, batch, "
                                                       "input_size)"),
    "mode a list": (lambda r: broken(r, {"mode": ["infer"]}), "'mode' is a list, not a string"),
    "env a number": (lambda r: broken(r, {"env": 5}), "'env' is an integer, not an object"),
    "extra a list": (lambda r: broken(r, {"extra": []}), "'extra' is a list, not an object"),
    "number as a string": (lambda r: broken(r, {"params": "31030658"}),
                           "'params' is a string ('31030658'), not an integer or null"),
    "boolean for a number": (lambda r: broken(r, {"batch": True}), "'batch' is true/false, not an integer"),
    "number for a boolean": (lambda r: broken(r, {"channels_last": 0}),
                             "'channels_last' is an integer, not true/false"),
    "infinite latency": (lambda r: broken(r, {"latency_ms_median": float("inf")}),
                         "'latency_ms_median' is inf, beyond any measurement (1e-30 to 1e+30 in size, or 0)"),
    "huge number inside env": (lambda r: broken(r, {"env": {"cpu_cores": 10**40}}),
                               "'env.cpu_cores' is an integer of more than 30 digits, beyond any measurement "
                               "(1e-30 to 1e+30 in size, or 0)"),
    "per-seed values a string": (lambda r: broken(r, {"extra": {"dice_per_seed": "0.8,0.9"}}),
                                 "per-seed values are a string ('0.8,0.9'), not a list of numbers"),
    "nested too deep": (lambda r: broken(r, {"extra": {"a": json.loads("[" * 30 + "]" * 30)}}),
                        "nested deeper than 20 levels"),
    "corrupt JSON": (lambda r: broken(r)[:40], "not JSON"),
    "not an object": (lambda r: "[1, 2, 3]", "not a JSON object but a list"),
    "not UTF-8": (lambda r: "\udcff", "not JSON"),
}


def with_line(results: Path, folder: Path, line: str) -> Path:
    """A copy of ``results`` whose line `BROKEN_LINE` is ``line``."""
    lines = (results / "results.jsonl").read_text().splitlines()
    lines[BROKEN_LINE - 1] = line
    folder.mkdir()
    (folder / "results.jsonl").write_bytes("".join(f"{x}\n" for x in lines).encode("utf-8", "surrogateescape"))
    return folder


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_line_is_skipped_with_a_note_naming_file_and_line(tiny_results, tmp_path, case):
    make, why = MALFORMED[case]
    record = records(tiny_results)[BROKEN_LINE - 1]
    folder = with_line(tiny_results, tmp_path / "r", make(record))
    loaded = load([folder])
    assert loaded.attrs["notes"] == [f"{folder / 'results.jsonl'}:{BROKEN_LINE}: line skipped: {why}"]
    assert len(loaded) == CASES - 1 and record["case_id"] not in set(loaded["case_id"])


def test_compare_and_report_go_on_past_malformed_lines(tiny_results, tmp_path, capsys):
    folder = with_line(tiny_results, tmp_path / "r", "{\"variant\": \"paper\", \"mode\": ")  # a corrupt line
    path = folder / "results.jsonl"
    path.write_text(path.read_text() + broken(records(tiny_results)[0], {"config": None}) + "\n")
    assert main(["compare", str(folder)]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"note: {path}:{BROKEN_LINE}: line skipped: not JSON",
                                         f"note: {path}:{CASES + 1}: line skipped: 'config' is null, not an object"]
    broken_variant = records(tiny_results)[BROKEN_LINE - 1]["variant"]
    assert broken_variant == "bilinear" and "bilinear" not in captured.out  # its one record was that line
    assert "padded" in captured.out and "paper" in captured.out
    assert main(["report", str(folder), "--out", str(tmp_path / "report")]) == 0
    assert capsys.readouterr().err == captured.err
    assert f"- {path}:{BROKEN_LINE}: line skipped: not JSON" in (tmp_path / "report" / "report.md").read_text()


def test_a_file_of_malformed_lines_only_is_one_line_error(tmp_path, capsys):
    (tmp_path / "results.jsonl").write_text('{"variant": "paper"}\n[]\n')
    assert main(["compare", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"unet-bench compare: error: no results in {tmp_path}: results.jsonl holds no readable record "
        f"({tmp_path / 'results.jsonl'}:1: line skipped: no 'mode' (a record has variant, mode, device, batch, "
        "input_size); 1 more notes)\n")


def test_many_malformed_lines_are_named_up_to_a_limit(tiny_results, tmp_path):
    folder = with_line(tiny_results, tmp_path / "r", "{}")
    path = folder / "results.jsonl"
    path.write_text(path.read_text() + "x\n" * (NOTED_PER_FILE + 5))
    notes = load([folder]).attrs["notes"]
    assert len(notes) == NOTED_PER_FILE + 1
    assert notes[0] == f"{path}:{BROKEN_LINE}: line skipped: no 'variant' (a record has variant, mode, device, " \
                       "batch, input_size)"
    assert notes[1] == f"{path}:{CASES + 1}: line skipped: not JSON"
    last = CASES + NOTED_PER_FILE + 5
    assert notes[-1] == f"{path}: 6 more malformed lines skipped (lines {last - 5} to {last})"


# --- pytest-benchmark files ------------------------------------------------------------------------------

def benchmark(name: str, median: object = 0.01) -> dict:
    """One entry shaped as pytest-benchmark writes it (the fields this loader reads)."""
    return {"name": name, "fullname": f"tests/test_x.py::{name}", "extra_info": {"batch": 2},
            "stats": {"median": median, "q1": 0.009, "q3": 0.011, "iqr": 0.002, "rounds": 5}}


@pytest.mark.parametrize("content, message", [
    ("[]", "is not a pytest-benchmark JSON file (no 'benchmarks' list)"),
    ('{"benchmarks": 5}', "is not a pytest-benchmark JSON file (no 'benchmarks' list)"),
    ('{"runs": []}', "is not a pytest-benchmark JSON file (no 'benchmarks' list)"),
    ("{not json", "is not valid JSON; give a results directory, a .jsonl or a pytest-benchmark .json file"),
    ("[" * 100000, "is not valid JSON"),
    ('{"benchmarks": [{"name": "x"}]}', "holds no readable record (.*:1: benchmark skipped: not a benchmark entry"),
    ('{"benchmarks": [1, 2]}', "holds no readable record (.*:1: benchmark skipped: .*; 1 more notes)"),
])
def test_a_json_file_that_is_not_pytest_benchmarks_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "bench.json"
    path.write_text(content)
    with pytest.raises(BenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load([path])
    assert main(["compare", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_malformed_benchmark_entry_is_skipped_with_a_note(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": [benchmark("ok"), benchmark("bad", median="fast"),
                                               {**benchmark("odd"), "extra_info": {"batch": "2"}}]}))
    loaded = load([path])
    assert loaded["variant"].tolist() == ["ok"] and loaded["images_per_s"].tolist() == [pytest.approx(200)]
    assert loaded.attrs["notes"] == [f"{path}:2: benchmark skipped: its stats have no number 'median'",
                                     f"{path}:3: benchmark skipped: 'batch' is a string ('2'), not an integer"]


@pytest.mark.parametrize("where, kind", [("results.jsonl", "pipe"), ("results.jsonl", "folder"),
                                         ("bench.json", "pipe")])
def test_a_results_file_that_is_a_pipe_or_folder_is_one_line(tmp_path, capsys, where, kind):
    path = tmp_path / where
    if kind == "pipe":
        os.mkfifo(path)  # must not block the reading
    else:
        path.mkdir()
    assert main(["compare", str(tmp_path if where == "results.jsonl" else path)]) == 2
    err = capsys.readouterr().err
    assert err == f"unet-bench compare: error: {path} is not a regular file; a results file is one\n"
