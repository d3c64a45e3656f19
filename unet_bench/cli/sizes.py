"""`unet-bench sizes NAME`: a variant's valid input sizes and the output size of each."""

from __future__ import annotations

import argparse

from unet_bench.cli.common import add_variant_arguments, variant_config
from unet_bench.errors import BenchError
from unet_bench.suite.checks import SIZE, as_argument


def cmd_sizes(args: argparse.Namespace) -> int:
    from unet_bench.models import geometry

    cfg = variant_config(args)
    if args.near is not None:
        sizes = [s for s in geometry.nearest_valid_sizes(cfg, args.near) if s is not None]
        sizes = sorted(set(sizes))
    else:
        if args.max < args.min:
            raise BenchError(f"--min {args.min} --max {args.max} is not a valid range; need min <= max")
        sizes = geometry.valid_sizes(cfg, args.min, args.max)
        if not sizes:
            first = geometry.smallest_valid_size(cfg)
            raise BenchError(f"no valid input size in [{args.min}, {args.max}]; the smallest valid size is {first}")
    from unet_bench.models.config import UNetConfig

    field = f"{geometry.receptive_field(cfg)} px" if isinstance(cfg, UNetConfig) else "n/a: another library's network"
    per_axis = ", on each axis of a volume" if cfg.spatial_dims == 3 else ""
    print(f"# {args.name}: input -> output{per_axis} (receptive field {field})")
    for size in sizes:
        print(f"{size} -> {geometry.trace(cfg, size).output}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    sizes = subparsers.add_parser("sizes", help="valid input sizes of a variant and their output sizes")
    add_variant_arguments(sizes)
    size = as_argument(SIZE)
    sizes.add_argument("--near", type=size, default=None, metavar="N", help="the valid sizes nearest to N")
    sizes.add_argument("--min", type=size, default=1, metavar="A", help="smallest input size to list (default 1)")
    sizes.add_argument("--max", type=size, default=1024, metavar="B", help="largest input size to list (default 1024)")
    sizes.set_defaults(func=cmd_sizes)
