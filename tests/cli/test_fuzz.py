"""Property: whatever experiment file or command line a user gives, the command answers with status 0, 1
or 2 within a time limit, never a traceback, at most one stderr line when it refuses (status 2), and no
file changes outside the results folder (nor behind a link placed in it).

Inputs mix valid and invalid values for every key and flag. Commands that would measure for seconds
(a real `run`, a valid `count`/`time`/`quality`) are left to the tests that check their results: here
`run` plans with --dry-run, and `count`/`time`/`quality` always carry one mistake somewhere among
otherwise generated arguments. Each input runs in a fresh folder as the working directory.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unet_bench.cli import main

TIME_LIMIT_S = 30  # an input still running after this has hung
CHECKS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PRECIOUS = b"a file outside the results folder, without a trailing newline"


class Hung(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hung(f"no answer within {TIME_LIMIT_S} s")


def invoke(argv: list[str], folder: Path) -> tuple[int, str]:
    """``unet-bench ARGV`` in this process with ``folder`` as working directory: (status, stderr)."""
    err = io.StringIO()
    before = os.getcwd()
    previous = signal.signal(signal.SIGALRM, _alarm)
    os.chdir(folder)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                status = main(argv)
            except SystemExit as exit:  # argparse: a usage error (2) or --help (0)
                status = exit.code or 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(before)
    return status, err.getvalue()


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Plan one experiment before the timed inputs: the first plan imports torch's compiler stack (seconds
    on a busy machine), which is no hang."""
    with tempfile.TemporaryDirectory() as name:
        (Path(name) / "x.toml").write_text('name = "w"\ndescription = "d"\nvariants = ["paper"]\n')
        assert invoke(["run", "x.toml", "--dry-run"], Path(name))[0] == 0


def snapshot(root: Path, results: str | None = "out") -> dict[str, tuple]:
    """Every path under ``root`` but the ``results`` folder, with what would show a change."""
    seen = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if results and (relative == results or relative.startswith(f"{results}/")):
            continue
        info = path.lstat()
        seen[relative] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return seen


def check(argv: list[str], folder: Path, precious: Path, results: str | None = "out") -> tuple[int, str]:
    """Run ``argv`` and hold the properties; nothing may change outside ``results`` (None: anywhere)."""
    before = snapshot(folder, results)
    status, err = invoke(argv, folder)
    assert status in (0, 1, 2), (argv, status, err)
    assert "Traceback" not in err, (argv, err)
    if status == 2:
        assert err.count("\n") <= 1 and err.endswith("\n"), (argv, err)
    assert snapshot(folder, results) == before, argv
    assert precious.read_bytes() == PRECIOUS, argv
    return status, err


# --- what a results folder may hold before the command ---------------------------------------------------

OUT_STATES = ("missing", "empty", "own", "other-suite", "garbage", "torn", "link-results", "link-lock", "pipe",
              "folder-results", "out-is-a-file")


def prepare(root: Path, state: str, suite: str) -> Path:
    """A working folder with ``out`` in ``state``, and a precious file outside it that links may point at."""
    precious = root / "precious.txt"
    precious.write_bytes(PRECIOUS)
    out = root / "out"
    if state == "out-is-a-file":
        out.write_bytes(b"not a folder")
        return precious
    if state != "missing":
        out.mkdir()
    record = {"case_id": "paper|counts", "status": "ok", "variant": "paper"}
    results = out / "results.jsonl"
    if state in ("own", "other-suite"):
        results.write_text(json.dumps({**record, "suite": suite if state == "own" else "other"}) + "\n")
    elif state == "garbage":
        results.write_bytes(b"\x00\xff not json\n{}\n[1, 2]\n")
    elif state == "torn":
        results.write_text(json.dumps({**record, "suite": suite}) + '\n{"case_id": "x", "sta')
    elif state == "link-results":
        results.symlink_to(precious)
    elif state == "link-lock":
        (out / ".lock").symlink_to(precious)
    elif state == "pipe":
        os.mkfifo(results)
    elif state == "folder-results":
        results.mkdir()
    return precious


# --- experiment files ------------------------------------------------------------------------------------

VARIANTS = ["paper", "padded", "depth-3", "no-skip", "bilinear", "*norm*", "nope", "Paper", ""]
FIELDS = ["depth", "base_width", "padding", "norm", "skip", "dropout", "bias", "in_channels", "width"]
SPECIAL_NUMBERS = [0, -1, 65537, 10**12, 2**63 - 1, float("inf"), float("-inf"), float("nan"), 1e300, 0.5]

numbers = st.one_of(st.integers(-2, 8), st.sampled_from(SPECIAL_NUMBERS), st.floats(allow_nan=True))
junk = st.one_of(st.text(max_size=8), st.booleans(), st.lists(st.integers(), max_size=2),
                 st.dictionaries(st.sampled_from(["a", "depth"]), st.integers(), max_size=1))
field_values = st.one_of(st.integers(-1, 12), st.sampled_from([100000, 64, 2, "same", "valid", "batch", "none", 0.5,
                                                                True, "x", 1e9]))


def listed(element: st.SearchStrategy) -> st.SearchStrategy:
    """A key's value as a user writes it: mostly a short list or a single value, sometimes anything."""
    return st.one_of(st.lists(element, min_size=1, max_size=3, unique=True), st.lists(element, max_size=3),
                     element, junk)


def mostly(valid: st.SearchStrategy, invalid: st.SearchStrategy, odds: int = 3) -> st.SearchStrategy:
    """``odds`` valid values for every invalid one, so that most files get past their first key (the valid
    side comes first: the one hypothesis leans to when it simplifies)."""
    return st.sampled_from([True] * odds + [False]).flatmap(lambda ok: valid if ok else invalid)


GRID = {
    "variants": listed(st.sampled_from(VARIANTS)),
    "modes": listed(st.sampled_from(["counts", "infer", "train", "quality", "inference"])),
    "sizes": listed(mostly(st.integers(1, 700), st.sampled_from(SPECIAL_NUMBERS))),
    "size_rule": mostly(st.sampled_from(["nearest-input", "nearest-output", "common-output", "input"]),
                        st.one_of(st.just("fair"), junk)),
    "batches": listed(mostly(st.integers(1, 4), st.sampled_from([0, -1, 100000]))),
    "devices": listed(st.sampled_from(["cpu", "cpu", "cuda", "tpu"])),
    "dtypes": listed(st.sampled_from(["fp32", "bf16", "fp16", "fp8"])),
    "channels_last": listed(st.booleans()),
    "compile": listed(st.booleans()),
    "tf32": listed(st.booleans()),
    "cudnn_benchmark": listed(st.booleans()),
    "threads": listed(mostly(st.integers(1, 2), st.sampled_from([0, -1, 999]))),
    "repeats": mostly(st.integers(1, 3), st.one_of(numbers, junk)),
    "min_run_time_s": mostly(st.floats(0.01, 3600), st.one_of(numbers, junk)),
    "seeds": mostly(st.integers(1, 5), st.one_of(numbers, junk)),
    "set": mostly(st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=2), junk),
    "sweep": mostly(st.dictionaries(st.sampled_from(FIELDS), listed(field_values), max_size=1), junk),
    "overrides": mostly(st.dictionaries(st.sampled_from(VARIANTS[:4] + ["nope"]),
                                        st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=1),
                                        max_size=1), junk),
    "max_batch_search": mostly(st.booleans(), junk),
    "max_batch": mostly(st.integers(1, 64), st.one_of(numbers, junk)),
    "size": st.integers(),  # not a key: refused
}


def some_of(strategies: dict[str, st.SearchStrategy], most: int) -> st.SearchStrategy:
    """A table with up to ``most`` of these keys, each with its generated value."""
    return st.lists(st.sampled_from(sorted(strategies)), max_size=most, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: strategies[k] for k in keys}))


TOP = {
    "cpu_memory_limit_gb": mostly(st.floats(0.5, 64), st.one_of(numbers, junk)),
    "grid": mostly(st.lists(some_of(GRID, 3), min_size=1, max_size=2), junk),
}
FIRST = {
    "name": mostly(st.just("fz"), st.one_of(st.sampled_from(["../up", "", "a b", "x" * 300]), junk), odds=9),
    "description": mostly(st.just("a fuzzed experiment"), junk, odds=9),
    "variants": mostly(st.just(["paper"]), GRID["variants"], odds=2),
}
experiments = st.builds(
    lambda first, rest, dropped: {k: v for k, v in {**first, **rest}.items() if k != dropped},
    st.fixed_dictionaries(FIRST),
    some_of({**GRID, **TOP}, 4),
    mostly(st.none(), st.sampled_from(sorted(FIRST)), odds=9),
)


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value > 0 else "-inf") if abs(value) == float("inf") \
            else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string, or a TOML error to report
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_text(doc: dict) -> str:
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in doc.items())


@CHECKS
@given(doc=experiments, broken=mostly(st.just(""), st.sampled_from(["[[grid]\n", "name = \n", "\x00"]), odds=9),
       flags=st.lists(mostly(st.sampled_from(["--resume", "--retry-oom", "--device=cuda", "--device=cpu",
                                              "--cpu-memory-limit=2", "--timeout=5", "--out=out"]),
                             st.sampled_from(["--cpu-memory-limit=inf", "--timeout=0", "--resume=1"]), odds=6),
                      max_size=2, unique=True),
       state=st.sampled_from(OUT_STATES))
def test_any_experiment_file_is_planned_or_refused_in_one_line(doc, broken, flags, state):
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        precious = prepare(root, state, str(doc.get("name")))
        (root / "x.toml").write_text(toml_text(doc) + broken)
        check(["run", "x.toml", "--dry-run", "--out", "out", *flags], root, precious)


# --- command lines ---------------------------------------------------------------------------------------

number_text = st.one_of(st.integers(-3, 700).map(str),
                        st.sampled_from(["0", "-1", "inf", "-inf", "nan", "1e300", "1e3", "abc", "", "0.5",
                                         "65537", "999999999999", "1000000012", "3601"]))
overrides = st.lists(st.tuples(st.sampled_from(FIELDS + ["depht"]),
                               st.one_of(number_text, st.sampled_from(["same", "batch", "true", "x"]))),
                     max_size=3).map(lambda pairs: [a for key, value in pairs for a in ("--set", f"{key}={value}")])
variant = st.sampled_from(VARIANTS[:-1])


def flags(names: list[str]) -> st.SearchStrategy:
    """Any of these flags, each with a generated number."""
    return st.lists(st.sampled_from(names), max_size=3, unique=True).flatmap(
        lambda chosen: st.tuples(*[number_text.map(lambda v, f=f: [f, v]) for f in chosen]).map(
            lambda pairs: [a for pair in pairs for a in pair]))


def mistaken(command: str, extra: list[str]) -> st.SearchStrategy:
    """A measuring command with one mistake (a refused number, name or key) among generated arguments."""
    mistakes = st.sampled_from({
        "count": ["--size abc", "--batch 0", "--set depht=3", "--set depth=64", "--bogus"],
        "time": ["--size abc", "--batch 0", "--set depht=3", "--threads 0", "--min-run-time inf", "--set depth=64"],
        "quality": ["--set depht=3", "--threads 0", "--seeds -1", "--set depth=64", "--bogus"],
    }[command]).map(str.split)
    return st.tuples(variant, overrides, flags(extra), mistakes, st.booleans()).map(
        lambda t: [command, t[0], *t[1], *(t[2] + t[3] if t[4] else t[3] + t[2])])


command_lines = st.one_of(
    st.tuples(variant, overrides, flags(["--near", "--min", "--max"])).map(lambda t: ["sizes", t[0], *t[1], *t[2]]),
    st.sampled_from([["models"], ["models", "*norm*"], ["models", "zzz"], [], ["--bogus"], ["sizes"], ["count"]]),
    mistaken("count", ["--size", "--batch", "--layers"]),
    mistaken("time", ["--size", "--batch", "--threads", "--min-run-time"]).flatmap(
        lambda argv: st.lists(st.sampled_from(["--no-tf32", "--cudnn-benchmark", "--device=cuda", "--compile"]),
                              max_size=2, unique=True).map(lambda more: argv + more)),
    mistaken("quality", ["--seeds", "--steps", "--batch", "--tile-out", "--tile-in", "--halo", "--lr"]),
)


@CHECKS
@given(argv=command_lines)
def test_any_command_line_answers_in_one_line_or_runs(argv):
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        precious = prepare(root, "link-lock", "fz")
        check(argv, root, precious)



# --- the newer commands' options -------------------------------------------------------------------------

NEWER_CHECKS = settings(CHECKS, max_examples=60)
SHIFTED_DIGITS = ["５７２", "١/٢", "٥", "1/٢"]
plot_paths = st.sampled_from(["r.png", "r.svg", "out/", "out/r.png", "r.txt", "/proc/r.png", "missing/r.png",
                              "missing/", "link.png", "precious.txt", "", "x" * 5000 + ".png"])
# each profile line carries one mistake after its other flags (argparse takes a repeated flag's last value)
profile_mistakes = st.sampled_from([
    "--steps 0", "--steps 101", "--size abc", "--size ５７２", "--set depht=3", "--set depth=64", "--no-tf32",
    "--mode bogus", "--plot r.txt", "--plot /proc/r.png", "--plot missing/r.png", "--plot link.png",
    "--plot precious.txt", "--plot missing/"]).map(str.split)
profile_lines = st.tuples(variant, overrides, flags(["--batch", "--threads", "--min-run-time", "--top"]),
                          st.one_of(st.just([]), plot_paths.map(lambda p: ["--plot", p])), profile_mistakes).map(
    lambda t: ["profile", t[0], "--size", "44", *t[1], *t[2], *t[3], *t[4]])
history_lines = st.tuples(
    st.lists(st.sampled_from(["out", "nope", "x.toml", "out/results.jsonl", "y" * 5000]), min_size=1, max_size=2),
    st.one_of(st.just([]), plot_paths.map(lambda p: ["--out", p])),
    st.sampled_from([[], ["--metric", "latency_ms_median"], ["--metric", "nope"], ["--metric", ""]]),
    st.sampled_from([[], ["--order", "time"], ["--order", "bogus"], ["--repo", "nope"]]),
).map(lambda t: ["history", *t[0], *t[1], *t[2], *t[3]])
external_mistakes = st.tuples(
    st.sampled_from(["smp:Unet", "monai:BasicUNet"]),
    st.sampled_from([["--size", "1"], ["--size", "7"], ["--size", "64", "--set", "classes=0"],
                     ["--size", "64", "--set", "out_channels=0"], ["--size", "64", "--set", "bogus=1"],
                     ["--size", "٦٤"]]),
).map(lambda t: ["count", t[0], *t[1], "--counters"])
quality_external = st.tuples(st.sampled_from(["smp:Unet", "monai:BasicUNet", "nnunet:PlainConvUNet"]),
                             flags(["--seeds", "--steps", "--tile-out"]),
                             st.sampled_from([["--seeds", "-1"], ["--threads", "0"], ["--steps", "0"], ["--bogus"]]),
                             ).map(lambda t: ["quality", t[0], *t[1], *t[2]])  # other libraries' networks train
shard_texts = st.one_of(st.sampled_from(["1/2", "2/2", "3/8", "8/8", "0/2", "2/1", "1/0", "a/b", "", " 1 / 2 ",
                                         "1/100001", "-1/2", *SHIFTED_DIGITS]), st.text(max_size=5))
shard_lines = st.tuples(shard_texts, st.sampled_from([[], ["--cpu-memory-limit", "1e-12"],
                                                      ["--cpu-memory-limit", "0.3"], ["--resume"]])).map(
    lambda t: ["run", "x.toml", "--dry-run", "--out", "out", f"--shard={t[0]}", *t[1]])
newer_command_lines = st.one_of(profile_lines, history_lines, mistaken("count", ["--size", "--batch"]).map(
    lambda argv: [*argv, "--counters"]), external_mistakes, quality_external, shard_lines)


@NEWER_CHECKS
@given(argv=newer_command_lines)
def test_the_newer_commands_answer_in_one_line_or_run(argv):
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        precious = prepare(root, "link-lock", "fz")
        (root / "link.png").symlink_to(precious)
        (root / "x.toml").write_text('name = "fz"\ndescription = "d"\nvariants = ["paper", "padded"]\n'
                                     'size_rule = "nearest-input"\nsizes = [44]\n')
        status, err = check(argv, root, precious)
        if argv[0] in ("profile", "quality") or argv[0] == "count" and argv[1] in ("smp:Unet", "monai:BasicUNet"):
            assert status == 2, (argv, err)  # each carries a mistake: refused before anything is measured
