"""What several commands share: how a network and a case are named on the command line, and how a
record is printed. Nothing here imports torch: the parsers are built before any command runs."""

from __future__ import annotations

import argparse
import json

from unet_bench.cli.execution import Execution
from unet_bench.errors import BenchError
from unet_bench.record import Case, Record, size_fields
from unet_bench.suite.checks import BATCH, as_argument, size_or_shape


def add_variant_arguments(parser: argparse.ArgumentParser) -> None:
    """NAME plus ``--set KEY=VALUE`` overrides: how every command names a network."""
    parser.add_argument("name", metavar="NAME", help="a registered variant (see 'unet-bench models'), or another "
                        "library's network (see 'unet-bench models --external')")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config field on top of the variant, e.g. --set depth=3 (repeatable)",
    )


def variant_config(args: argparse.Namespace):
    """The config named by NAME and ``--set`` overrides (unknown names, keys and values refused)."""
    from unet_bench.models import get_variant

    return get_variant(args.name).config.replace(**parsed_overrides(args))


def parsed_overrides(args: argparse.Namespace) -> dict:
    """``--set`` overrides: our config's typed fields, or another library's keyword arguments as literals."""
    from unet_bench.models.config import parse_overrides
    from unet_bench.models.external import is_external, parse_value

    if not is_external(args.name):
        return parse_overrides(args.overrides)
    pairs = [item.partition("=") for item in args.overrides]
    bad = [key for key, sep, _ in pairs if not sep]
    if bad:
        raise BenchError(f"override {bad[0]!r} is not KEY=VALUE (e.g. encoder_name=resnet18)")
    return {key: parse_value(text) for key, _, text in pairs}


def add_case_arguments(parser: argparse.ArgumentParser) -> None:
    add_variant_arguments(parser)
    parser.add_argument("--size", type=as_argument(size_or_shape, str), required=True, metavar="N",
                        help="input side, pixels (e.g. 572), or one per axis (e.g. 132x132x116 for a 3-D network)")
    parser.add_argument("--batch", type=as_argument(BATCH), default=1, metavar="B",
                        help="images per batch (default 1)")
    parser.add_argument("--json", action="store_true", help="print the record as one JSON object")


def case_from_args(args: argparse.Namespace, mode: str, execution: Execution | None = None) -> Case:
    """The case of mode ``mode`` a `count`, `time` or `profile` command line asks for (``execution``: its
    execution flags, `Execution.from_args`; a command without them measures at the defaults)."""
    from unet_bench.models.geometry import spatial_shape

    cfg = variant_config(args)  # refuses unknown variants, keys and values first
    execution = execution or Execution()
    execution.check()
    return Case(variant=args.name, overrides=tuple(sorted(parsed_overrides(args).items())), mode=mode,
                batch=args.batch, **size_fields(spatial_shape(cfg, args.size)), **execution.case_fields())


def refuse_what_cannot_fit(case: Case) -> None:
    """Refuse a case whose memory floor is over what the machine has, naming both (before any allocation)."""
    from unet_bench.models.footprint import why_case_cannot_fit

    why = why_case_cannot_fit(case)
    if why:
        raise BenchError(f"{case.label} cannot run here: {why}")


def out_of_memory_as_one_line(case: Case, error: Exception) -> None:
    """Re-raise an out-of-memory failure of ``case`` as a one-line `BenchError`; other errors pass on."""
    from unet_bench.measure.outcome import classify_failure

    status, message = classify_failure(error)
    if status == "oom":
        raise BenchError(f"{case.label} ran out of memory: {message}") from None
    from unet_bench.models.external import is_external

    if isinstance(error, BenchError):
        return
    if is_external(case.variant) and isinstance(error, (RuntimeError, ValueError)):  # the library's own forward
        text = str(error).strip()
        raise BenchError(f"{case.variant} failed on a {case.size_text} px input: "
                         f"{text.splitlines()[0] if text else type(error).__name__}; check --size and --set") from None


def emit_json(record: Record) -> None:
    """``--json``: the record's flat columns (`Record.columns`: the keys of `analysis.load`'s table, config,
    env and extra as objects), so a script reads ``latency_ms_median`` at the top."""
    print(json.dumps(record.columns(), default=str))


def shape_line(record: Record) -> str:
    row = record.columns()
    cfg = record.config
    dims = cfg.get("spatial_dims", 2)
    sides_in = row['input_shape'] or [row['input_size']] * dims
    sides_out = row['output_shape'] or [row['output_size']] * dims
    return (
        f"{row['variant']}: {'x'.join(str(n) for n in [row['batch'], cfg['in_channels'], *sides_in])} -> "
        f"{'x'.join(str(n) for n in [row['batch'], cfg['num_classes'], *sides_out])}"
    )
