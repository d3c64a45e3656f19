"""`unet-bench profile NAME --size N`: where the time of a step goes, per layer and per kind of op, against
the compute and bandwidth ceilings; and the step's energy where the hardware counts it.

Prints the per-kind breakdown and the top layers (``--json``: the record, `unet_bench.record.Record`);
``--plot PATH`` draws the roofline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unet_bench.cli.common import (
    add_case_arguments,
    case_from_args,
    emit_json,
    out_of_memory_as_one_line,
    refuse_what_cannot_fit,
    shape_line,
)
from unet_bench.cli.execution import PROFILED, Execution, add_execution_arguments
from unet_bench.cli.paths import open_output, output_file, probe_folder, write_failed
from unet_bench.errors import BenchError
from unet_bench.record import Record

MAX_PROFILED_STEPS = 100
PLOT_SUFFIXES = (".png", ".svg")


def profiled_steps(text: str) -> int:
    """``--steps``: a whole number of profiled steps from 1 to `MAX_PROFILED_STEPS`."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PROFILED_STEPS:
        raise argparse.ArgumentTypeError(f"{text!r} is not valid; give a whole number from 1 to {MAX_PROFILED_STEPS}")
    return value


def check_plot_path(path: str | None) -> Path | None:
    """Refuse a plot path that cannot be written as a figure, before anything is measured (the rules of
    `unet_bench.cli.paths`: ``DIR/`` writes ``DIR/roofline.png``; never through a link)."""
    if path is None:
        return None
    return output_file(path, "--plot", PLOT_SUFFIXES, "roofline.png", probe=False)


def write_plot(record: Record, mode: str, case, plot: Path) -> None:
    """Draw the roofline into ``plot`` (never through a link); OSError when the write fails."""
    import matplotlib.pyplot as plt

    from unet_bench.analysis.roofline import roofline_figure

    figure = roofline_figure(record.profile.profile_by_step[mode], f"{record.case.variant} {mode} {case.size_text} px")
    try:
        with open_output(plot) as file:
            figure.savefig(file, format=plot.suffix.lstrip(".").lower())
    finally:
        plt.close(figure)


def print_profile(record: Record, mode: str, top: int) -> None:
    row = record.columns()
    from unet_bench.analysis.roofline import format_frame, kind_frame, top_frame

    profile = record.profile.profile_by_step[mode]
    print(f"{shape_line(record)}   {mode} on {record.env['device_name']} ({row['device']}), {row['threads']} threads")
    print(f"step            {1e3 * profile['step_s']:,.2f} ms unprofiled (median of timed blocks); "
          f"{1e3 * profile['profiled_step_s']:,.2f} ms per step under the profiler ({profile['steps']} steps), "
          f"of which ops {1e3 * profile['ops_s']:,.2f} ms")
    print(f"compute ceiling {profile['compute_ceiling'] / 1e9:,.1f} GFLOP/s ({profile['compute_source']})")
    print(f"bandwidth       {profile['bandwidth'] / 1e9:,.1f} GB/s ({profile['bandwidth_source']})")
    print(f"time            {profile['time_source']}")
    print(f"FLOPs           {profile['flops_scope']}")
    print(f"bytes           {profile['bytes_scope']}")
    print("\nby kind of op (per step, per batch)")
    print(format_frame(kind_frame(profile)).to_string(index=False))
    print(f"\ntop {top} layers by time")
    print(format_frame(top_frame(profile, top)).to_string(index=False))
    energy = record.energy.energy_by_step.get(mode)
    if energy is not None:
        if energy["available"]:
            what = "per image" if mode == "infer" else "per training step (batch)"
            value = row['energy_j_per_image'] if mode == "infer" else row['energy_j_per_train_step']
            print(f"\nenergy          {value:,.4g} J {what} ({energy['method']})")
            if mode == "infer":
                print(f"                {row['energy_j_per_output_mpix']:,.4g} J per output megapixel")
        else:
            print(f"\nenergy          {energy['method']}")


def cmd_profile(args: argparse.Namespace) -> int:
    plot = check_plot_path(args.plot)
    execution = Execution.from_args(args)
    if execution.runtime != "torch":
        raise BenchError(f"profile breaks eager torch's step down per layer; a network on {execution.runtime} is "
                         f"timed whole: unet-bench time {args.name} --size {args.size} --runtime {execution.runtime}")
    case = case_from_args(args, "profile", execution)
    from unet_bench.measure.network import check_case
    from unet_bench.measure.profile_case import measure_profile

    check_case(case)
    refuse_what_cannot_fit(case)
    if plot is not None:
        probe_folder(plot.parent, "--plot")  # last, right before measuring: the folder takes a new file
    try:
        record = measure_profile(case, steps=(execution.mode,), profiled_steps=args.steps, energy=not args.no_energy)
    except (MemoryError, RuntimeError, ValueError) as error:
        out_of_memory_as_one_line(case, error)
        raise
    if args.json:  # what was measured is out before the figure is written, so a failed write loses nothing
        emit_json(record)
    else:
        print_profile(record, execution.mode, args.top)
    if plot is not None:
        try:
            write_plot(record, execution.mode, case, plot)
        except OSError as error:
            sys.stdout.flush()
            kept = "the profile is printed above" + (" (--json)" if args.json else "")
            sys.stderr.write(f"unet-bench profile: error: {write_failed(plot, error, kept)}\n")
            return 1
        if not args.json:
            print(f"\nroofline        {plot}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile", help="per-layer and per-op-kind time, FLOPs, bytes and roofline of a step; energy"
    )
    add_case_arguments(parser)
    add_execution_arguments(parser, PROFILED)  # a profile runs the eager network: no --compile
    add = parser.add_argument
    add("--steps", type=profiled_steps, default=3, metavar="N", help="warm steps under the profiler (default 3)")
    add("--top", type=profiled_steps, default=10, metavar="N", help="layers in the top table (default 10)")
    add("--plot", default=None, metavar="PATH",
        help="draw the roofline into PATH (.png or .svg; DIR/ writes DIR/roofline.png)")
    add("--no-energy", action="store_true", help="skip the energy run")
    parser.set_defaults(func=cmd_profile)
