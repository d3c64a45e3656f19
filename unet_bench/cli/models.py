"""`unet-bench models [GLOB]`: the registered variants, the one factor each changes, its parameters."""

from __future__ import annotations

import argparse

from unet_bench.errors import BenchError


def cmd_models(args: argparse.Namespace) -> int:
    if args.external:
        return list_external_networks()
    import torch

    from unet_bench.models import UNet, get_variant, list_models

    names = list_models(args.pattern)
    if not names:
        raise BenchError(f"no variant matches {args.pattern!r}; valid variants are {', '.join(list_models())}")
    rows = []
    for name in names:
        variant = get_variant(name)
        with torch.device("meta"):  # counts parameters without allocating them
            params = sum(p.numel() for p in UNet(variant.config).parameters())
        rows.append((name, variant.change, f"{params:,}", variant.description))
    header = ("variant", "changes", "parameters", "what it asks")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}")
    return 0


def list_external_networks() -> int:
    """Other libraries' networks: where each comes from, its parameters at its defaults, its size rule."""
    import torch

    from unet_bench.models import geometry
    from unet_bench.models.external import ADAPTERS, INSTALL, ExternalConfig, library_version

    rows = []
    for name, adapter in ADAPTERS.items():
        version = library_version(adapter)
        if version is None:
            rows.append((name, f"{adapter.package} (not installed: {INSTALL})", "-", "-", adapter.description))
            continue
        cfg = ExternalConfig(name)
        with torch.device("meta"):
            params = sum(p.numel() for p in cfg.build().parameters())
        first, period = geometry.progression(cfg)
        rows.append((name, f"{adapter.package} {version}", f"{params:,}",
                     f"{first}, {first + period}, ... ({adapter.rule})", adapter.description))
    header = ("network", "library", "parameters", "valid sizes (output = input)", "what it is")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]:<{widths[3]}}  {row[4]}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="list the registered variants and what each changes")
    models.add_argument("pattern", nargs="?", default=None, help="a glob over names, e.g. '*norm*'")
    models.add_argument("--external", action="store_true",
                        help="list other libraries' networks instead (MONAI, smp, nnU-Net), at their defaults")
    models.set_defaults(func=cmd_models)
