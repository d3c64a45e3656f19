"""`unet-bench count` (parameters, MACs, FLOPs) and `unet-bench time` (latency, throughput, memory).

Both print a readable summary that names what each number covers, or with ``--json`` exactly one JSON
object: the measurement record (`unet_bench.record.Record`), whose keys are documented there.
"""

from __future__ import annotations

import argparse
import json

from unet_bench.cli.models_cmd import add_variant_arguments, variant_config
from unet_bench.measure import build_model, measure, measure_module
from unet_bench.measure.counts import count, layer_table
from unet_bench.models.config import parse_overrides
from unet_bench.record import DTYPES, Case, Record

GIGA = 1e9


def case_from_args(args: argparse.Namespace, mode: str) -> Case:
    variant_config(args)  # refuses unknown variants, keys and values first
    return Case(
        variant=args.name, overrides=tuple(sorted(parse_overrides(args.overrides).items())), mode=mode,
        device=getattr(args, "device", "cpu"), batch=args.batch, input_size=args.size,
        dtype=getattr(args, "dtype", "fp32"), channels_last=getattr(args, "channels_last", False),
        compile=getattr(args, "compile", False), tf32=not getattr(args, "no_tf32", False),
        cudnn_benchmark=getattr(args, "cudnn_benchmark", False), threads=getattr(args, "threads", None),
        min_run_time_s=getattr(args, "min_run_time", 1.0),
    )


def emit_json(record: Record) -> None:
    print(json.dumps(record.to_dict(), default=str))


def shape_line(record: Record) -> str:
    cfg = record.config
    return (
        f"{record.variant}: {record.batch}x{cfg['in_channels']}x{record.input_size}x{record.input_size} -> "
        f"{record.batch}x{cfg['num_classes']}x{record.output_size}x{record.output_size}"
    )


def print_counts(record: Record) -> None:
    extra = record.extra
    per_pixel = record.macs_per_output_pixel or 0.0
    print(shape_line(record) + "   (counts are per image; x batch for a batch)")
    print(f"parameters      {record.params:,} (trainable {record.params_trainable:,})")
    print(f"forward MACs    {record.macs:,}  ({per_pixel:,.0f} per output pixel)")
    print(f"forward FLOPs   {record.flops:,}  (2 per MAC)")
    print(f"  covers: {record.flops_scope}")
    other = ", ".join(f"{op} {n:,}" for op, n in extra["other_ops"].items()) or "none in this network"
    print(f"other ops       {other}  (fvcore units: interpolation and norms, not in the FLOPs above)")
    print(f"training FLOPs  {record.train_flops:,}  ({record.train_flops / record.flops:.3f} x forward)")
    print(f"  covers: {extra['train_flops_scope']}")
    print(f"cross-check     {extra['crosscheck_text']}")
    print(f"{'stage':<12} {'parameters':>14} {'forward MACs':>20} {'MACs %':>7}")
    for stage, params in extra["params_per_stage"].items():
        macs = extra["macs_per_stage"].get(stage, 0)
        print(f"{stage:<12} {params:>14,} {macs:>20,} {100 * macs / record.macs:>6.1f}%")


def cmd_count(args: argparse.Namespace) -> int:
    case = case_from_args(args, "counts")
    model = build_model(case)
    counts = count(model, (1, model.cfg.in_channels, case.input_size, case.input_size))
    record = measure_module(model, case, counts=counts)
    if args.json:
        emit_json(record)
        return 0
    print_counts(record)
    if args.layers:
        print("\nper layer (fvcore; its '#flops' column counts MACs):")
        print(layer_table(counts.analysis, args.layers))
    return 0


def human_bytes(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.1f} MiB"


def print_timing(record: Record) -> None:
    extra = record.extra
    opts = [record.dtype]
    opts += ["channels_last"] if record.channels_last else []
    opts += ["compile"] if record.compile else []
    if record.device == "cuda":
        opts += ["tf32" if record.tf32 else "ieee-fp32"]
        opts += ["cudnn.benchmark"] if record.cudnn_benchmark else []
    print(f"{shape_line(record)}   {record.mode} on {record.env['device_name']} ({record.device}), "
          f"{'/'.join(opts)}, {record.threads} threads")
    print(f"latency         {record.latency_ms_median:,.2f} ms median per batch  "
          f"(IQR {record.latency_ms_iqr:,.2f} ms: p25 {record.latency_ms_p25:,.2f}, "
          f"p75 {record.latency_ms_p75:,.2f}; n={record.latency_n} blocks of {extra['calls_per_block']}; "
          f"warm-up {record.warmup_s:.2f} s excluded)")
    if record.compile_s is not None:
        print(f"compile         {record.compile_s:.2f} s (first call beyond a steady call), excluded")
    print(f"throughput      {record.images_per_s:,.3f} images/s, "
          f"{record.output_mpix_per_s:,.4f} output Mpix/s")
    print(f"compute         {record.achieved_flops_per_s / GIGA:,.1f} GFLOP/s achieved "
          f"({extra['achieved_flops_scope']})")
    if record.peak_fraction is not None:
        print(f"                = {100 * record.peak_fraction:.1f}% of "
              f"{record.peak_flops_per_s / GIGA:,.1f} GFLOP/s ({extra['peak_source']})")
    print(f"memory          peak {human_bytes(record.peak_mem_bytes)}  [{record.peak_mem_method}]")
    if record.mode == "train":
        print(f"                saved for backward {human_bytes(record.saved_activation_bytes)}, "
              f"parameters {human_bytes(record.param_bytes)}, gradients {human_bytes(record.grad_bytes)}, "
              f"optimizer state {human_bytes(record.optimizer_bytes)} (SGD momentum)")
        ratio = f"{record.peak_mem_ratio:.2f}" if record.peak_mem_ratio is not None else "n/a"
        print(f"                predicted peak {human_bytes(record.predicted_peak_bytes)}; "
              f"measured/predicted {ratio}")


def cmd_time(args: argparse.Namespace) -> int:
    record = measure(case_from_args(args, args.mode))
    if args.json:
        emit_json(record)
    else:
        print_timing(record)
    return 0


def add_case_arguments(parser: argparse.ArgumentParser) -> None:
    add_variant_arguments(parser)
    parser.add_argument("--size", type=int, required=True, metavar="N", help="input side, pixels (e.g. 572)")
    parser.add_argument("--batch", type=int, default=1, metavar="B", help="images per batch (default 1)")
    parser.add_argument("--json", action="store_true", help="print the record as one JSON object")


def register(subparsers: argparse._SubParsersAction) -> None:
    count_parser = subparsers.add_parser(
        "count", help="parameters, MACs and FLOPs (forward and training step), per stage; no timing"
    )
    add_case_arguments(count_parser)
    count_parser.add_argument(
        "--layers", type=int, nargs="?", const=3, default=0, metavar="DEPTH",
        help="also print fvcore's per-layer table, modules nested up to DEPTH (default 3)",
    )
    count_parser.set_defaults(func=cmd_count)

    time_parser = subparsers.add_parser(
        "time", help="latency, throughput, %% of peak and memory of inference or a training step"
    )
    add_case_arguments(time_parser)
    add = time_parser.add_argument
    add("--device", choices=("cpu", "cuda"), default="cpu")
    add("--mode", choices=("infer", "train"), default="infer",
        help="infer: forward under inference_mode; train: forward, loss, backward, SGD step")
    add("--dtype", choices=DTYPES, default="fp32", help="bf16 / fp16 run under autocast")
    add("--channels-last", action="store_true", help="channels_last memory format")
    add("--compile", action="store_true", help="torch.compile (compile time reported apart)")
    add("--no-tf32", action="store_true", help="CUDA: IEEE fp32 instead of TF32")
    add("--cudnn-benchmark", action="store_true", help="CUDA: cudnn.benchmark autotuning")
    add("--threads", type=int, default=None, metavar="T",
        help="intra-op threads (default: every core this process may use)")
    add("--min-run-time", type=float, default=1.0, metavar="S",
        help="seconds of timed blocks before the noise check (default 1)")
    time_parser.set_defaults(func=cmd_time)
