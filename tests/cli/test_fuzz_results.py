"""Property: whatever results a user gives `compare` and `report` — records well formed or not, lines cut
or corrupt, pytest-benchmark files of any shape, a link where the report would write — the command answers
with status 0, 1 or 2, never a traceback, and changes no file outside the results folder (`compare` none
at all).

What they print on stderr: a refusal (status 2) is one line; a success (status 0) prints only ``note:``
lines, one per line of the results left out (naming the file and the line) or per other note, and never
names a line that was a well-formed record. Records are generated, not measured: what is checked here is
that no input breaks the commands, not their numbers.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cli.test_fuzz import CHECKS, check, mostly, prepare

FORMATS = ("text", "md", "csv", "latex")
REPORT_CHECKS = settings(CHECKS, max_examples=30)  # a report draws its figures: about a second each
COMPARE_CHECKS = settings(CHECKS, max_examples=100)

measured = st.one_of(st.floats(1e-3, 1e4), st.sampled_from([0, 0.0, -1.5, 1e-29, 1e29, float("nan")]))
counted = st.one_of(st.integers(1, 10**9), st.sampled_from([0, -1, 10**29]))
seed_values = st.lists(st.integers(-100, 200).map(lambda hundredths: hundredths / 100), max_size=3)
RECORD = {
    "variant": st.sampled_from(["paper", "paper", "padded", "bilinear"]),
    "mode": st.sampled_from(["counts", "infer", "train", "quality"]),
    "device": st.sampled_from(["cpu", "cpu", "cuda"]),
    "batch": st.integers(1, 3),
    "input_size": st.sampled_from([20, 60, 60, 76]),
}
RECORD_MORE = {
    "status": st.sampled_from(["ok", "ok", "ok", "error", "oom", "skipped"]),
    "message": st.text(max_size=30),
    "repeat": st.integers(0, 3),
    "case_id": st.sampled_from(["", "a", "b", "c"]),
    "size_rule": st.sampled_from([None, "input", "common-output"]),
    "requested_size": st.sampled_from([None, 20]),
    "output_size": st.sampled_from([None, 0, 20, 60]),
    "threads": st.sampled_from([None, 1, 2]),
    "channels_last": st.booleans(),
    "tf32": st.sampled_from([None, True, False]),
    "overrides": st.sampled_from([{}, {}, {}, {"depth": 2}, {"base_width": 4, "depth": 2}]),
    "config": st.dictionaries(st.sampled_from(["depth", "padding", "base_width"]),
                              st.sampled_from([2, 4, "valid", "same", None, [1]]), max_size=3),
    **{name: counted for name in ("params", "macs", "flops", "peak_mem_bytes", "latency_n")},
    **{name: measured for name in ("latency_ms_median", "latency_ms_p25", "latency_ms_p75", "images_per_s",
                                   "peak_fraction", "warmup_s", "dice_mean", "dice_std")},
    "quality_seeds": st.integers(1, 3),
    "env": st.fixed_dictionaries({}, optional={"loadavg_before": measured, "cpu_steal_before": measured,
                                               "cpu_cores": st.integers(1, 4), "torch": st.just("2")}),
    "extra": st.fixed_dictionaries({}, optional={
        "dice_per_seed": seed_values, "calls_per_block": st.one_of(counted, st.text(max_size=3)),
        "crosscheck": st.fixed_dictionaries({"agree": st.one_of(st.booleans(), st.just("yes"))}),
        "crosscheck_text": st.text(max_size=5)}),
}
well_formed = st.fixed_dictionaries(RECORD, optional=RECORD_MORE)
JUNK = [None, "x", "572", [], {}, True, 0, -1, 1e300, 1e-300, 5e-324, float("inf"), float("-inf"), 10**40, [1, "a"],
        {"a": [None]},
        json.loads("[" * 25 + "]" * 25)]
JUNK_LINES = ["", "{", "[1, 2]", "null", '"text"', "\x00\udcff", '{"variant": ', "[" * 3000, "1" * 5000]
broken_record = st.one_of(
    st.tuples(well_formed, st.sampled_from(sorted({*RECORD, *RECORD_MORE})), st.sampled_from(JUNK)).map(
        lambda t: json.dumps({**t[0], t[1]: t[2]})),
    st.tuples(well_formed, st.sampled_from(sorted(RECORD))).map(
        lambda t: json.dumps({k: v for k, v in t[0].items() if k != t[1]})),
    st.sampled_from(JUNK_LINES),
)
# (line, well formed?): most lines records, some broken
lines = st.lists(mostly(well_formed.map(lambda r: (json.dumps(r), True)), broken_record.map(lambda b: (b, False)),
                        odds=4), min_size=1, max_size=8)
benchmarks = st.one_of(
    st.fixed_dictionaries({"benchmarks": st.lists(st.one_of(
        st.fixed_dictionaries({"name": st.sampled_from(["paper", "padded"]),
                               "stats": st.fixed_dictionaries({k: measured for k in ("median", "q1", "q3", "iqr")},
                                                              optional={"rounds": counted}),
                               "extra_info": st.dictionaries(st.sampled_from(["batch", "input_size", "mode"]),
                                                             st.sampled_from(JUNK + [1, 60]), max_size=2)}),
        st.sampled_from(JUNK)), max_size=3)}),
    st.sampled_from(JUNK),
)


def write_results(root: Path, name: str, content: list[tuple[str, bool]], torn: bool) -> str:
    """``out/<name>/results.jsonl`` holding these lines (the last without its newline when ``torn``)."""
    folder = root / "out" / name
    folder.mkdir(parents=True)
    text = "\n".join(line for line, _ in content) + ("" if torn else "\n")
    (folder / "results.jsonl").write_bytes(text.encode("utf-8", "surrogateescape"))
    return f"out/{name}"


def results_folder(root: Path, first: list, second: list | None, bench: object, torn: bool) -> list[str]:
    """The results the command is given: one or two results folders, sometimes a pytest-benchmark file."""
    prepare(root, "missing", "fz")
    sources = [write_results(root, "a", first, torn)]
    if second is not None:
        sources.append(write_results(root, "b", second, False))
    if bench is not None:
        (root / "out" / "bench.json").write_text(json.dumps(bench))
        sources.append("out/bench.json")
    return sources


def check_notes(err: str, root: Path, sources: list[str], content: list[list[tuple[str, bool]]]) -> None:
    """Status 0: only note lines, and no well-formed line named as skipped."""
    assert all(line.startswith("note: ") for line in err.splitlines()), err
    for source, written in zip(sources, content, strict=False):
        for number, (_, good) in enumerate(written, 1):
            if good:
                assert f"{source}/results.jsonl:{number}: line skipped" not in err, (source, number, err)


results_input = dict(first=lines, second=mostly(st.none(), lines, odds=2), bench=mostly(st.none(), benchmarks, odds=6),
                     torn=st.booleans(), baseline=st.sampled_from([[]] * 4 + [["--baseline", "padded"],
                                                                   ["--baseline", "out/a"], ["--baseline", "nope"]]),
                     per_image=st.sampled_from([[], ["--per-image"]]))


@COMPARE_CHECKS
@given(**results_input, metrics=st.sampled_from([[]] * 5 + [["--metrics", "macs,latency_ms_per_output_mpix"],
                                                              ["--metrics", "dice_mean"], ["--metrics", "speed"]]))
def test_any_results_file_is_compared_or_refused_in_one_line(first, second, bench, torn, baseline, per_image,
                                                             metrics):
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        sources = results_folder(root, first, second, bench, torn)
        for fmt in FORMATS:
            status, err = check(["compare", *sources, "--format", fmt, *baseline, *per_image, *metrics], root,
                                root / "precious.txt", results=None)  # compare writes nothing at all
            if status == 0:
                check_notes(err, root, sources, [first, second or []])


@REPORT_CHECKS
@given(**results_input, out=st.sampled_from([[], ["--out", "out/rep"]]), link=st.sampled_from([False] * 4 + [True]))
def test_any_results_file_is_reported_or_refused_in_one_line(first, second, bench, torn, baseline, per_image, out,
                                                            link):
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        sources = results_folder(root, first, second, bench, torn)
        if link:  # a report file in a copied results folder that links outside it
            (root / "out" / "a" / "report").mkdir()
            (root / "out" / "a" / "report" / "report.html").symlink_to(root / "precious.txt")
        status, err = check(["report", *sources, *baseline, *per_image, *out], root, root / "precious.txt")
        if status == 0:
            check_notes(err, root, sources, [first, second or []])
