"""Every number the command line takes goes through the same checks as the experiment file's keys: finite,
in range, the range named when refused; limits on depth, width, sizes and memory answer at once, in one
line, before anything is built."""

import os

import pytest

from unet_bench.cli import main

CORES = len(os.sched_getaffinity(0))


def status(args: list[str]) -> int:
    """The exit status of ``unet-bench ARGS`` run in this process (argparse exits on a usage error)."""
    try:
        return main(args)
    except SystemExit as exit:
        return exit.code


@pytest.mark.parametrize(
    "args, message",
    [
        ("sizes paper --set depth=64 --near 572", "depth=64 is over the limit of 10 poolings"),
        ("sizes paper --max 1000000000",
         "argument --max: 1000000000 is over the limit of 65536 (the largest input size, in pixels)"),
        ("count paper --size 572 --set depth=30", "depth=30 is over the limit of 10 poolings"),
        ("count paper --size 1000000012", "argument --size: 1000000012 is over the limit of 65536"),
        ("count paper --size 572 --set base_width=100000", "base_width=100000 is over the limit of 16384 channels"),
        ("count paper --size 65532", "paper counts cpu b1 65532px fp32 #0 cannot run here: it needs at least "
                                     "1,023.9 GiB (parameters and its largest feature map), more than "),
        ("time paper --size 572 --min-run-time inf",
         "argument --min-run-time: inf is not allowed; it must be a number in (0, 3600] seconds"),
        ("time paper --size 572 --min-run-time 0", "argument --min-run-time: 0.0 is not allowed"),
        ("time paper --size 572 --min-run-time -1", "argument --min-run-time: -1.0 is not allowed"),
        ("time paper --size 572 --threads 999",
         f"argument --threads: 999 is over the limit of {CORES} (the cores this process may use)"),
        ("time paper --size 572 --threads 0", f"argument --threads: 0 is not allowed; it must be an integer in "
                                              f"[1, {CORES}]"),
        ("time paper --size 572 --no-tf32", "--no-tf32 applies to CUDA only; add --device cuda or drop it"),
        ("time paper --size 572 --cudnn-benchmark", "--cudnn-benchmark applies to CUDA only"),
        ("run experiments/default.toml --timeout inf", "argument --timeout: inf is not allowed; it must be a "
                                                        "number in (0, 604800] seconds"),
        ("run experiments/default.toml --cpu-memory-limit inf", "argument --cpu-memory-limit: inf is not allowed"),
        ("run experiments/default.toml --cpu-memory-limit 1e300", "argument --cpu-memory-limit: 1e+300 is not allowed"),
        ("quality paper --lr nan", "argument --lr: nan is not allowed; it must be a number in (0, 10]"),
        ("quality paper --seeds 0", "argument --seeds: 0 is not allowed; it must be an integer in [1, 100]"),
        ("count paper --size 572 --batch 1e3", "argument --batch: '1e3' is not an integer"),
    ],
)
def test_out_of_range_numbers_and_limits_are_one_line_and_exit_2(capsys, args, message):
    assert status(args.split()) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1 and captured.out == ""


def test_time_and_run_refuse_the_same_timing_budgets(tmp_path, capsys):
    for value in ("0", "-1", "inf", "nan", "3601"):
        assert status(["time", "paper", "--size", "572", "--min-run-time", value]) == 2
        flag_error = capsys.readouterr().err
        path = tmp_path / "x.toml"
        path.write_text(f'name = "x"\ndescription = "d"\nvariants = ["paper"]\nmin_run_time_s = {value}\n')
        assert status(["run", str(path), "--dry-run"]) == 2
        file_error = capsys.readouterr().err
        assert "it must be a number in (0, 3600] seconds" in flag_error
        assert "it must be a number in (0, 3600] seconds" in file_error


@pytest.mark.parametrize("args, message", [
    ("count paper --size ５７２", "write numbers in ASCII digits 0-9"),
    ("count paper --size ５７２x５７２", "'５７２x５７２' is not allowed"),
    ("sizes paper --near ٥٧٢", "write numbers in ASCII digits 0-9"),
    ("time paper --size 572 --min-run-time １", "write numbers in ASCII digits 0-9"),
    ("run experiments/default.toml --shard ١/٢ --dry-run", "give it as I/N in ASCII digits"),
    ("run experiments/default.toml --dry-run --cpu-memory-limit 1e-12",
     "--cpu-memory-limit 1e-12 GiB is below what any case needs: a case's process takes about 0.25 GiB"),
])
def test_only_ascii_digits_and_no_absurd_limit(capsys, args, message):
    assert status(args.split()) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1 and captured.out == ""


def test_a_limit_under_every_cases_floor_names_the_reason(tmp_path, capsys):
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\ndescription = "d"\nvariants = ["paper"]\nsizes = [2044]\n')
    assert status(["run", str(path), "--dry-run", "--cpu-memory-limit", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--cpu-memory-limit 0.5 GiB is below what any case of x needs" in err
    assert "it needs at least" in err and "raise the limit" in err


def test_an_empty_share_says_how_many_cases_the_file_holds(tmp_path, capsys):
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\ndescription = "d"\nvariants = ["paper", "padded"]\nsize_rule = "nearest-input"\n')
    assert status(["run", str(path), "--dry-run", "--shard", "2/8"]) == 0
    capsys.readouterr()
    assert status(["run", str(path), "--dry-run", "--shard", "5/8"]) == 2
    err = capsys.readouterr().err
    assert err == f"unet-bench run: error: --shard 5/8: share 5 of 8 has no cases ({path} holds 2 cases; " \
                  "give N at most 2)\n"


def test_a_very_long_name_is_shortened_in_the_message(capsys):
    assert status(["count", "v" * 20_000, "--size", "572"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 2000 and "(19,823 characters)" in err
