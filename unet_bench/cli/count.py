"""`unet-bench count NAME --size N`: parameters, MACs and FLOPs (forward and training step), per stage.

Prints a readable summary that names what each number covers, or with ``--json`` exactly one JSON
object: the measurement record (`unet_bench.record.Record`).
"""

from __future__ import annotations

import argparse

from unet_bench.cli.common import (
    add_case_arguments,
    case_from_args,
    emit_json,
    out_of_memory_as_one_line,
    refuse_what_cannot_fit,
    shape_line,
)
from unet_bench.counter_figures import COUNTERS_SCOPE, Reconciliation
from unet_bench.record import Record
from unet_bench.suite.checks import as_argument, integer


def print_counts(record: Record) -> None:
    row = record.columns()
    extra = record.extra
    per_pixel = row['macs_per_output_pixel'] or 0.0
    print(shape_line(record) + "   (counts are per image; x batch for a batch)")
    if record.config.get("library"):  # another library's network: where it came from
        cfg = record.config
        print(f"network         {cfg['class']} from {cfg['library']} {cfg['library_version']} "
              "(our design factors: n/a)")
    print(f"parameters      {row['params']:,} (trainable {row['params_trainable']:,})")
    print(f"forward MACs    {row['macs']:,}  ({per_pixel:,.0f} per output pixel)")
    print(f"forward FLOPs   {row['flops']:,}  (2 per MAC)")
    print(f"  covers: {row['flops_scope']}")
    other = ", ".join(f"{op} {n:,}" for op, n in extra["other_ops"].items()) or "none in this network"
    print(f"other ops       {other}  (fvcore units: interpolation and norms, not in the FLOPs above)")
    print(f"training FLOPs  {row['train_flops']:,}  ({row['train_flops'] / row['flops']:.3f} x forward)")
    print(f"  covers: {extra['train_flops_scope']}")
    print(f"cross-check     {extra['crosscheck_text']}")
    print(f"{'stage':<12} {'parameters':>14} {'forward MACs':>20} {'MACs %':>7}")
    for stage, params in extra["params_per_stage"].items():
        macs = extra["macs_per_stage"].get(stage, 0)
        print(f"{stage:<12} {params:>14,} {macs:>20,} {100 * macs / row['macs']:>6.1f}%")


def print_counters(result: Reconciliation) -> None:
    """Every installed FLOP counter beside our exact count, by op type, with the cause of each difference."""
    from unet_bench.analysis.reconciliation import breakdown_table, text, totals_table

    print(f"\nFLOP counters, inference forward, per image ({COUNTERS_SCOPE}):")
    print(text(totals_table(result), long_column="why it differs"))
    print("\nby op type, each in its own unit ('?': the counter reports a total only):")
    print(text(breakdown_table(result)))


def cmd_count(args: argparse.Namespace) -> int:
    case = case_from_args(args, "counts")
    from unet_bench.measure import build_model, measure_module
    from unet_bench.measure.counter_runs import run_counters
    from unet_bench.measure.counts import count, layer_table
    from unet_bench.measure.network import network_input_shape

    refuse_what_cannot_fit(case)
    try:
        model = build_model(case)
        shape = network_input_shape(model, case.size)
        counts = count(model, shape)
        record = measure_module(model, case, counts=counts)
    except (MemoryError, RuntimeError, ValueError) as error:
        out_of_memory_as_one_line(case, error)
        raise
    if args.json:
        emit_json(record)
        return 0
    print_counts(record)
    if args.counters:
        print_counters(run_counters(model, shape))
    if args.layers:
        print("\nper layer (fvcore; its '#flops' column counts MACs):")
        print(layer_table(counts.analysis, args.layers))
    return 0



def register(subparsers: argparse._SubParsersAction) -> None:
    count_parser = subparsers.add_parser(
        "count", help="parameters, MACs and FLOPs (forward and training step), per stage; no timing"
    )
    add_case_arguments(count_parser)
    count_parser.add_argument(
        "--layers", type=as_argument(integer(0, 20)), nargs="?", const=3, default=0, metavar="DEPTH",
        help="also print fvcore's per-layer table, modules nested up to DEPTH (default 3)",
    )
    count_parser.add_argument(
        "--counters", action="store_true",
        help="also run every installed FLOP counter (fvcore, torch, ptflops, thop, torchinfo, calflops) beside our "
             "exact count, by op type, with the cause of each difference",
    )
    count_parser.set_defaults(func=cmd_count)
