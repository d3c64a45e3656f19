"""`unet-bench models` (the registry) and `unet-bench sizes` (valid input → output sizes)."""

from __future__ import annotations

import argparse

import torch

from unet_bench.errors import BenchError
from unet_bench.models import UNet, geometry, get_variant, list_models
from unet_bench.models.config import parse_overrides


def add_variant_arguments(parser: argparse.ArgumentParser) -> None:
    """NAME plus ``--set KEY=VALUE`` overrides: how every command names a network."""
    parser.add_argument("name", metavar="NAME", help="a registered variant (see 'unet-bench models')")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config field on top of the variant, e.g. --set depth=3 (repeatable)",
    )


def variant_config(args: argparse.Namespace):
    """The config named by NAME and ``--set`` overrides."""
    return get_variant(args.name).config.replace(**parse_overrides(args.overrides))


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def cmd_models(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        raise BenchError(f"no variant matches {args.pattern!r}; valid variants are {', '.join(list_models())}")
    rows = []
    for name in names:
        variant = get_variant(name)
        with torch.device("meta"):  # counts parameters without allocating them
            params = count_parameters(UNet(variant.config))
        rows.append((name, variant.change, f"{params:,}", variant.description))
    header = ("variant", "changes", "parameters", "what it asks")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}")
    return 0


def cmd_sizes(args: argparse.Namespace) -> int:
    cfg = variant_config(args)
    if args.near is not None:
        if args.near < 1:
            raise BenchError(f"--near {args.near} is not valid; give a positive size")
        sizes = [s for s in geometry.nearest_valid_sizes(cfg, args.near) if s is not None]
        sizes = sorted(set(sizes))
    else:
        if args.min < 1 or args.max < args.min:
            raise BenchError(f"--min {args.min} --max {args.max} is not a valid range; need 1 <= min <= max")
        sizes = geometry.valid_sizes(cfg, args.min, args.max)
        if not sizes:
            first = geometry.smallest_valid_size(cfg)
            raise BenchError(f"no valid input size in [{args.min}, {args.max}]; the smallest valid size is {first}")
    print(f"# {args.name}: input -> output (receptive field {geometry.receptive_field(cfg)} px)")
    for size in sizes:
        print(f"{size} -> {geometry.trace(cfg, size).output}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="list the registered variants and what each changes")
    models.add_argument("pattern", nargs="?", default=None, help="a glob over names, e.g. '*norm*'")
    models.set_defaults(func=cmd_models)

    sizes = subparsers.add_parser("sizes", help="valid input sizes of a variant and their output sizes")
    add_variant_arguments(sizes)
    sizes.add_argument("--near", type=int, default=None, metavar="N", help="the valid sizes nearest to N")
    sizes.add_argument("--min", type=int, default=1, metavar="A", help="smallest input size to list (default 1)")
    sizes.add_argument("--max", type=int, default=1024, metavar="B", help="largest input size to list (default 1024)")
    sizes.set_defaults(func=cmd_sizes)
