"""The execution flags are declared once: `time`, `profile` and `quality` take them with the same help,
defaults and checks, and read them back as one `Execution`."""

import argparse

import pytest

from unet_bench.cli import build_parser
from unet_bench.cli.execution import DECLARATIONS, PROFILED, TIMED, TRAINED, Execution
from unet_bench.errors import BenchError
from unet_bench.record import Case


def command_parser(name: str) -> argparse.ArgumentParser:
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[name]


def flags_of(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings}


@pytest.mark.parametrize(("command", "taken"), [("time", TIMED), ("profile", PROFILED), ("quality", TRAINED)])
def test_each_command_takes_its_flags_as_declared(command, taken):
    flags = flags_of(command_parser(command))
    for flag in DECLARATIONS:
        if flag not in taken:
            assert flag not in flags, f"{command} takes {flag}"
            continue
        action, declared = flags[flag], DECLARATIONS[flag]
        assert (action.help, action.default, action.choices) == (
            declared["help"], declared.get("default", False), declared.get("choices"))
        assert action.type is declared.get("type")


def test_the_flags_read_back_as_the_case_defaults():
    time_args = command_parser("time").parse_args(["paper", "--size", "572"])
    profile_args = command_parser("profile").parse_args(["paper", "--size", "572"])
    assert Execution.from_args(time_args) == Execution.from_args(profile_args) == Execution()
    defaults = Case("paper")
    assert all(getattr(defaults, key) == value for key, value in Execution().case_fields().items())


def test_every_flag_is_read():
    args = command_parser("time").parse_args(
        ["paper", "--size", "572", "--device", "cuda", "--mode", "train", "--dtype", "bf16", "--channels-last",
         "--compile", "--no-tf32", "--cudnn-benchmark", "--threads", "1", "--min-run-time", "0.5",
         "--runtime", "openvino"])
    assert Execution.from_args(args) == Execution("train", "cuda", "bf16", "openvino", True, True, False, True, 1,
                                                  0.5)


@pytest.mark.parametrize("execution", [Execution(tf32=False), Execution(cudnn_benchmark=True)])
def test_cuda_flags_off_cuda_are_refused_in_one_line(execution):
    with pytest.raises(BenchError, match="applies to CUDA only; add --device cuda or drop it"):
        execution.check()
