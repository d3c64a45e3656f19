"""`unet-bench time NAME --size N`: latency, throughput, % of peak and memory of inference or a training step.

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
from unet_bench.cli.execution import TIMED, Execution, add_execution_arguments
from unet_bench.record import Record

GIGA = 1e9


def human_bytes(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.1f} MiB"


def print_timing(record: Record) -> None:
    row = record.columns()
    extra = record.extra
    opts = [row['dtype']] + ([row['runtime']] if row['runtime'] != "torch" else [])
    opts += ["channels_last"] if row['channels_last'] else []
    opts += ["compile"] if row['compile'] else []
    if row['device'] == "cuda":
        opts += ["tf32" if row['tf32'] else "ieee-fp32"]
        opts += ["cudnn.benchmark"] if row['cudnn_benchmark'] else []
    print(f"{shape_line(record)}   {row['mode']} on {record.env['device_name']} ({row['device']}), "
          f"{'/'.join(opts)}, {row['threads']} threads")
    print(f"latency         {row['latency_ms_median']:,.2f} ms median per batch  "
          f"(IQR {row['latency_ms_iqr']:,.2f} ms: p25 {row['latency_ms_p25']:,.2f}, "
          f"p75 {row['latency_ms_p75']:,.2f}; n={row['latency_n']} blocks of {extra['calls_per_block']}; "
          f"warm-up {row['warmup_s']:.2f} s excluded)")
    if row['compile_s'] is not None:
        print(f"compile         {row['compile_s']:.2f} s (first call beyond a steady call), excluded")
    print(f"throughput      {row['images_per_s']:,.3f} images/s, "
          f"{row['output_mpix_per_s']:,.4f} output Mpix/s ({extra['throughput_scope']})")
    print(f"compute         {row['achieved_flops_per_s'] / GIGA:,.1f} GFLOP/s achieved "
          f"({extra['achieved_flops_scope']})")
    if row['peak_fraction'] is not None:
        print(f"                = {100 * row['peak_fraction']:.1f}% of "
              f"{row['peak_flops_per_s'] / GIGA:,.1f} GFLOP/s ({extra['peak_source']})")
    if extra.get("peak_nominal_flops_per_s"):
        print(f"                nominal peak {extra['peak_nominal_flops_per_s'] / GIGA:,.1f} GFLOP/s "
              f"({extra['peak_nominal_source']})")
    if row['runtime'] != "torch":
        print_runtime(row)
    print(f"memory          peak {human_bytes(row['peak_mem_bytes'])}  [{row['peak_mem_method']}]")
    if row['mode'] == "train":
        print(f"                saved for backward {human_bytes(row['saved_activation_bytes'])}, "
              f"parameters {human_bytes(row['param_bytes'])}, gradients {human_bytes(row['grad_bytes'])}, "
              f"optimizer state {human_bytes(row['optimizer_bytes'])} (SGD momentum)")
        ratio = f"{row['peak_mem_ratio']:.2f}" if row['peak_mem_ratio'] is not None else "n/a"
        print(f"                predicted peak {human_bytes(row['predicted_peak_bytes'])}; "
              f"measured/predicted {ratio}")


def print_runtime(row: dict) -> None:
    """What the runtime ran: the exported graph, the check against eager torch, the session's options."""
    census = ", ".join(f"{op} {n}" for op, n in row['op_census'].items())
    check = "MISMATCH: " if row['output_mismatch'] else ""
    print(f"runtime         {row['runtime']} {row['runtime_version']} ({row['provider']}; "
          f"{', '.join(f'{k}={v}' for k, v in row['provider_options'].items())})")
    print(f"export          {row['export_s']:.2f} s, {human_bytes(row['model_bytes'])}, opset {row['opset']} "
          f"({row['exporter']}); graph: {census}")
    print(f"check           {check}max error {row['max_abs_error']:.3g} ({row['max_rel_error']:.3g} of the largest "
          f"output; tolerance {row['error_tolerance']:g}) against eager torch on a seeded input")


def cmd_time(args: argparse.Namespace) -> int:
    execution = Execution.from_args(args)
    case = case_from_args(args, execution.mode, execution)
    from unet_bench.measure import measure
    from unet_bench.measure.network import check_case

    check_case(case)  # a missing GPU is named before the memory check asks it for its size
    refuse_what_cannot_fit(case)
    try:
        record = measure(case)
    except (MemoryError, RuntimeError, ValueError) as error:
        out_of_memory_as_one_line(case, error)
        raise
    if args.json:
        emit_json(record)
    else:
        print_timing(record)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    time_parser = subparsers.add_parser(
        "time", help="latency, throughput, %% of peak and memory of inference or a training step"
    )
    add_case_arguments(time_parser)
    add_execution_arguments(time_parser, TIMED)
    time_parser.set_defaults(func=cmd_time)
