"""Experiment files: read a TOML file, check every key before anything runs, expand its grid into cases.

An experiment file names a suite and describes its cases as one or more grids (cartesian products)::

    name = "default"                   # required: results go to results/<name>/
    description = "what it answers"    # required
    cpu_memory_limit_gb = 8            # optional: resident-memory limit of each CPU case's process (→ 'oom')

    devices = ["cpu"]                  # grid keys at the top level are the defaults of every [[grid]]

    [overrides.depth-5]                # per-variant config overrides, wherever that variant appears
    base_width = 32

    [[grid]]                           # with no [[grid]] block, the top level is the one grid
    variants = ["*"]                   # registered names or globs, in this order
    modes = ["counts", "infer"]
    sizes = [388]
    size_rule = "nearest-output"

Grid keys (a list key also takes a single value; a key in a ``[[grid]]`` block replaces the top level's):

===================  ==========================  ===================================================
key                  default                     meaning
===================  ==========================  ===================================================
variants             (required)                  registered variant names or globs (``"*norm*"``); ``"!3d*"`` drops
modes                ["counts"]                  counts | infer | train | quality
sizes                [572]                       square sizes in pixels (≤ 65536), read through ``size_rule``;
                                                 one per axis as "132x132x116" (3-D), each axis read alike
size_rule            "input"                     how ``sizes`` become each variant's input (below)
batches              [1]                         batch sizes (≤ 65536)
devices              ["cpu"]                     cpu | cuda
dtypes               ["fp32"]                    fp32 | bf16 | fp16 (autocast)
channels_last        [false]                     memory format
compile              [false]                     torch.compile
tf32                 [true]                      CUDA: TF32 convs/matmuls; false = IEEE fp32
cudnn_benchmark      [false]                     CUDA: cuDNN autotuning
threads              all cores                   intra-op threads (≤ the cores this process may use)
repeats              1                           measurements of each case, each its own record (≤ 1000)
min_run_time_s       1.0                         timing budget of one measurement, in (0, 3600] s
seeds                3                           quality mode: training seeds (≤ 100)
steps                quality default             quality mode: optimiser steps per seed
lr                   quality default             quality mode: learning rate, in (0, 10]
optimizer            quality default             quality mode: sgd | adam
weight_map           [true]                      quality mode: the paper's border weights (false: plain loss)
world_sizes          [1, 2]                      train-ddp mode: data-parallel ranks (≤ cores, or GPUs)
set                  {}                          config fields set for every variant (base_width = 16)
sweep                {}                          config fields swept: {depth = [3, 4, 5]} (a product)
overrides            {}                          per variant: {depth-5 = {base_width = 32}}
max_batch_search     false                       search the largest batch that fits (infer/train)
max_batch            1024                        upper bound of that search
===================  ==========================  ===================================================

Every number is checked by `unet_bench.suite.checks` (finite, in range), as the command line's flags are;
``cpu_memory_limit_gb`` is in (0, 65536]. A file whose grids hold more than 10,000 cases is refused
before they are expanded.

``size_rule`` is how a fair comparison is asked for, since a valid-convolution UNet returns a smaller map
than its input and each variant takes different sizes:

- ``input``: every size is an input size and must be valid for every variant (else an error up front);
- ``nearest-input``: each variant gets the valid input size nearest to each size (ties go up);
- ``common-output``: every size is an *output* size; each variant gets the input that yields exactly it;
- ``nearest-output``: each variant gets the valid input whose output is nearest to each size (ties go up)
  — the paper network at 388 gets 572, the padded one 384.

Config values apply in this order: the variant, ``set``, its ``overrides`` entry, the ``sweep`` value.
Overrides equal to the variant's own value are dropped, CUDA-only flags are reset on CPU cases, and a case
that two grids both produce is kept once (its ``case_id`` is what ``--resume`` matches on). Within a grid
the repeats are the outer loop, so repeated measurements of one case are spread over the run rather than
back to back, and slow drift (heat, other load) spreads over every variant alike. Each repeat is a fresh
process (an independent sample for compare's verdicts); a CPU case runs its memory pass in the first repeat
only, since the allocation trace it reads is the same in every repeat (CUDA cases in every repeat).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from unet_bench.errors import BenchError, choices
from unet_bench.models import geometry, get_config, list_models
from unet_bench.models.config import MAX_SIZE, UNetConfig
from unet_bench.models.external import ExternalConfig, frozen, is_external, list_external
from unet_bench.models.footprint import world_sizes_problem
from unet_bench.models.registry import select_models
from unet_bench.quality.settings import OPTIMIZERS
from unet_bench.record import (
    DEFAULT_MIN_RUN_TIME_S,
    DEFAULT_SEEDS,
    DEFAULT_WORLD_SIZES,
    DEVICES,
    DTYPES,
    MODES,
    SIZE_RULES,
    Case,
    size_fields,
)
from unet_bench.suite import checks
from unet_bench.suite.checks import Invalid, boolean, list_of, one_of, string, table
from unet_bench.suite.cost import predict_cost_s, run_once_costs

TOP_KEYS = ("name", "description", "cpu_memory_limit_gb", "grid")
MAX_CASES = 10_000  # a suite larger than this is refused before its grid is expanded
SEARCH_MODES = ("infer", "train")


@dataclass(frozen=True)
class Planned:
    """One entry of a suite: a case, its predicted cost, and whether it starts a max-batch search.

    With ``max_batch`` set, the runner does not run ``case`` as is: it searches the largest batch that
    fits (doubling from 1 until out of memory, then bisecting), each probe a case of its own.
    """

    case: Case
    cost_s: float
    max_batch: int | None = None


@dataclass(frozen=True)
class Spec:
    """An experiment file, checked and expanded."""

    name: str
    description: str
    path: Path
    planned: tuple[Planned, ...]
    cpu_memory_limit_gb: float | None = None
    duplicates: int = 0  # cases produced by more than one grid, kept once

    @property
    def cost_s(self) -> float:
        return sum(p.cost_s for p in self.planned)


GRID_KEYS: dict[str, tuple[Callable[[Any], Any], Any]] = {  # key: (checker, default)
    "variants": (list_of(string), None),
    "modes": (list_of(one_of(MODES)), ("counts",)),
    "sizes": (list_of(checks.size_or_shape), (572,)),
    "size_rule": (one_of(SIZE_RULES), "input"),
    "batches": (list_of(checks.BATCH), (1,)),
    "devices": (list_of(one_of(DEVICES)), ("cpu",)),
    "dtypes": (list_of(one_of(DTYPES)), ("fp32",)),
    "channels_last": (list_of(boolean), (False,)),
    "compile": (list_of(boolean), (False,)),
    "tf32": (list_of(boolean), (True,)),
    "cudnn_benchmark": (list_of(boolean), (False,)),
    "threads": (list_of(checks.threads), (None,)),
    "repeats": (checks.REPEATS, 1),
    "min_run_time_s": (checks.MIN_RUN_TIME_S, DEFAULT_MIN_RUN_TIME_S),
    "seeds": (checks.SEEDS, DEFAULT_SEEDS),
    "steps": (checks.STEPS, None),
    "lr": (checks.LEARNING_RATE, None),
    "optimizer": (one_of(OPTIMIZERS), None),
    "weight_map": (list_of(boolean), (True,)),
    "world_sizes": (list_of(checks.WORLD_SIZE), DEFAULT_WORLD_SIZES),
    "set": (table, {}),
    "sweep": (table, {}),
    "overrides": (table, {}),
    "max_batch_search": (boolean, False),
    "max_batch": (checks.BATCH, 1024),
}


# --- loading -----------------------------------------------------------------------------------------


def load_spec(path: str | Path, device: str | None = None, cpu_memory_limit_gb: float | None = None) -> Spec:
    """Read, check and expand an experiment file; any mistake is a one-line `BenchError` naming the key.

    ``device`` runs every case on that device instead of the file's; ``cpu_memory_limit_gb`` replaces
    the file's limit.
    """
    path = Path(path)
    data = _read_toml(path)
    where = _Where(path)
    unknown = [k for k in data if k not in TOP_KEYS and k not in GRID_KEYS]
    if unknown:
        where.fail(unknown[0], f"unknown key; valid keys are {choices(TOP_KEYS + tuple(GRID_KEYS))}")
    for key in ("name", "description"):
        if key not in data:
            where.fail(key, "missing; every experiment file needs a name and a description")
    name = where.check("name", data["name"], string)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        where.fail("name", f"{name!r} is not allowed; use letters, digits, '.', '_' and '-' "
                   "(it names a folder)")
    description = where.check("description", data["description"], string)
    limit = data.get("cpu_memory_limit_gb")
    limit = where.check("cpu_memory_limit_gb", limit, checks.MEMORY_LIMIT_GB) if limit is not None else None
    if cpu_memory_limit_gb is not None:
        limit = cpu_memory_limit_gb
    if device is not None and device not in DEVICES:
        raise BenchError(f"--device {device!r} is not valid; choose one of {choices(DEVICES)}")

    top = {k: v for k, v in data.items() if k in GRID_KEYS}
    blocks = data.get("grid", [{}])
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, dict) for b in blocks):
        where.fail("grid", "must be one or more [[grid]] tables")
    grids = []
    for index, block in enumerate(blocks):
        prefix = f"grid[{index}]." if "grid" in data else ""
        for key in block:
            if key not in GRID_KEYS:
                where.fail(prefix + key, f"unknown key; valid grid keys are {choices(GRID_KEYS)}")
        grids.append(_Grid(where, prefix, top, block))
    size = sum(grid.size(device) for grid in grids)
    if size > MAX_CASES:
        raise BenchError(f"{path}: the grid holds {size:,} cases, over the limit of {MAX_CASES:,}; "
                         "split it into several experiment files")
    planned = [item for grid in grids for item in grid.expand(device, limit)]

    kept: dict[str, Planned] = {}
    for item in planned:
        key = item.case.case_id + (f"/search{item.max_batch}" if item.max_batch else "")
        kept.setdefault(key, item)
    unique = list(kept.values())
    shared = run_once_costs([p.case for p in unique])
    priced = tuple(dataclasses.replace(p, cost_s=p.cost_s + extra) for p, extra in zip(unique, shared, strict=True))
    return Spec(name, description, path, priced, limit, len(planned) - len(kept))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        shipped = sorted(p.as_posix() for p in Path("experiments").glob("*.toml"))
        hint = f"; experiment files here: {', '.join(shipped)}" if shipped else ""
        raise BenchError(f"{path}: no such experiment file{hint}") from None
    except tomllib.TOMLDecodeError as error:
        raise BenchError(f"{path}: not valid TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BenchError(f"{path}: cannot read it: {error}") from None


class _Where:
    """Formats errors as ``FILE: KEY: what is wrong; what is allowed``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> None:
        raise BenchError(f"{self.path}: {key}: {message}")

    def check(self, key: str, value: Any, check: Callable[[Any], Any]) -> Any:
        try:
            return check(value)
        except Invalid as error:
            self.fail(key, str(error))


class _Grid:
    """One grid block with the top level's defaults filled in, checked key by key.

    Errors name a key where the file sets it: ``grid[1].sizes`` for the block's own, ``sizes`` for the
    top level's.
    """

    def __init__(self, where: _Where, prefix: str, top: dict[str, Any], block: dict[str, Any]) -> None:
        self.where, self.prefix, self.block = where, prefix, block
        values = {**top, **block}
        if "variants" not in values:
            where.fail(prefix + "variants", 'missing; name the variants to run, e.g. ["paper", "padded"] '
                       'or ["*"]')
        self.values = {}
        for key, (check, default) in GRID_KEYS.items():
            self.values[key] = default
            if key in values:
                try:
                    self.values[key] = check(values[key])
                except Invalid as error:
                    self.fail(key, str(error))
        self.given = set(values)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def fail(self, key: str, message: str) -> None:
        local = key.split(".")[0] in self.block
        self.where.fail((self.prefix if local else "") + key, message)

    def variants(self) -> list[str]:
        try:
            names = select_models(self["variants"])
        except BenchError as error:
            self.fail("variants", str(error))
        return names

    def size(self, device: str | None) -> int:
        """How many cases `expand` would produce, counted without expanding anything."""
        lengths = [len(self.variants()), len(self["sizes"]), self["repeats"], 1 if device else len(self["devices"])]
        lengths += [len(v) if isinstance(v, list) else 1 for v in self["sweep"].values()]
        lengths += [len(self[key]) for key in ("modes", "dtypes", "channels_last", "compile", "tf32",
                                               "cudnn_benchmark", "threads", "weight_map")]
        lengths.append(1 if self["max_batch_search"] else len(self["batches"]))
        return math.prod(lengths)

    def config_changes(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """``set``, per-variant ``overrides`` and the ``sweep`` combinations, each checked."""
        fields = UNetConfig.__dataclass_fields__
        for key in ("set", "sweep"):
            for name in self[key]:
                if name not in fields:
                    self.fail(f"{key}.{name}", f"unknown config field; valid fields are {choices(fields)}")
        per_variant = self["overrides"]
        for variant, changes in per_variant.items():
            if variant not in list_models() and variant not in list_external():
                self.fail(f"overrides.{variant}",
                          f"unknown variant; valid variants are {choices(list_models() + list_external())}")
            if not isinstance(changes, dict):
                self.fail(f"overrides.{variant}", "must be a table of config fields, e.g. {base_width = 32}")
            for name in [n for n in changes if isinstance(changes[n], dict)] if is_external(variant) else ():
                self.fail(f"overrides.{variant}.{name}", "a table argument cannot be given in an experiment file; "
                          "give it through create_model")
            for name in changes if not is_external(variant) else ():  # the library checks its own arguments
                if name not in fields:
                    self.fail(f"overrides.{variant}.{name}",
                              f"unknown config field; valid fields are {choices(fields)}")
        sweep = {}
        for name, values in self["sweep"].items():
            values = values if isinstance(values, list) else [values]
            if not values:
                self.fail(f"sweep.{name}", "an empty list is not allowed; give the values to sweep")
            sweep[name] = values
        combos = [dict(zip(sweep, combo, strict=True)) for combo in itertools.product(*sweep.values())]
        return self["set"], per_variant, combos

    def configs(self, variant: str) -> list[tuple[tuple[tuple[str, Any], ...], UNetConfig]]:
        """Each (overrides, config) this grid asks of ``variant``; overrides equal to its own are dropped."""
        fixed, per_variant, combos = self.config_changes()
        base = get_config(variant)
        out = []
        for combo in combos:
            for key, changes in (("set", fixed), (f"overrides.{variant}", per_variant.get(variant, {})),
                                 ("sweep", combo)):
                try:
                    base.replace(**changes)
                except BenchError as error:
                    self.fail(key, str(error))
            changes = {**fixed, **per_variant.get(variant, {}), **combo}
            cfg = base.replace(**changes)
            own = base.value if isinstance(base, ExternalConfig) else functools.partial(getattr, base)
            overrides = tuple(sorted((k, frozen(v)) for k, v in changes.items() if own(k) != frozen(v)))
            out.append((overrides, cfg))
        return out

    def input_sizes(self, variant: str, overrides: tuple, cfg: UNetConfig) -> list[tuple[int, ...]]:
        """The input size (one per axis) for each of ``sizes`` under ``size_rule`` (refused up front if none fits).
        Each axis is read alike: ``92`` is 92x92x92 for a 3-D network, ``"132x132x116"`` one size per axis."""
        rule = self["size_rule"]
        named = variant + (f" with {', '.join(f'{k}={v}' for k, v in overrides)}" if overrides else "")
        out = []
        for size in self.sides(named, cfg):
            if rule == "input" and not geometry.is_valid_size(cfg, size):
                self.fail("sizes", f"{size} is not a valid input size for {named}: "
                          f"{geometry.describe_invalid(cfg, size)} (or set size_rule = \"nearest-input\")")
            if rule == "common-output":
                try:
                    size = geometry.input_size_for_output(cfg, size)
                except BenchError as error:
                    self.fail("sizes", f"{named}: {error} (or set size_rule = \"nearest-output\")")
            elif rule in ("nearest-input", "nearest-output"):
                target = size + geometry.size_loss(cfg) if rule == "nearest-output" else size
                below, above = geometry.nearest_valid_sizes(cfg, target)
                size = min((s for s in (above, below) if s is not None), key=lambda s: abs(s - target))
            if size > MAX_SIZE:
                self.fail("sizes", f"{named} would take an input of {size} px, over the limit of {MAX_SIZE}")
            out.append(size)
        dims = cfg.spatial_dims
        return [tuple(out[i : i + dims]) for i in range(0, len(out), dims)]

    def sides(self, named: str, cfg: UNetConfig) -> list[int]:
        """Every axis of every one of ``sizes``, in order (a size with the wrong number of axes refused)."""
        try:
            sides = [side for size in self["sizes"] for side in geometry.spatial_shape(cfg, size)]
        except BenchError as error:
            self.fail("sizes", f"{named}: {error}")
        return sides

    def check_world_sizes(self, devices: tuple[str, ...]) -> None:
        """``world_sizes`` only with train-ddp, and no more ranks than this machine's cores (or GPUs)."""
        if "train-ddp" not in self["modes"]:
            if "world_sizes" in self.given:
                self.fail("world_sizes", 'goes with modes = ["train-ddp"]')
            return
        for dev, threads in itertools.product(devices, self["threads"]):
            problem = world_sizes_problem(dev, self["world_sizes"], threads)
            if problem:
                self.fail("world_sizes", problem)

    def expand(self, device: str | None, limit: float | None) -> list[Planned]:
        """Every case of this grid, in run order."""
        search = self["max_batch_search"]
        if search:
            if "batches" in self.given:
                self.fail("batches", "not used with max_batch_search = true (the search picks the batches; "
                          "bound it with max_batch)")
            bad = [m for m in self["modes"] if m not in SEARCH_MODES]
            if bad:
                self.fail("modes", f"{bad[0]!r} cannot be searched for a max batch; "
                          f"choose from {choices(SEARCH_MODES)}")
        devices = (device,) if device else self["devices"]
        self.check_world_sizes(devices)
        if search and "cpu" in devices and limit is None:
            self.fail("max_batch_search", "on cpu it needs cpu_memory_limit_gb (or --cpu-memory-limit): "
                      "without a limit the search would fill the machine's memory")
        shapes = []
        for variant in self.variants():
            for overrides, cfg in self.configs(variant):
                sizes = self.input_sizes(variant, overrides, cfg)
                shapes.extend((variant, overrides, cfg, size, asked)
                              for size, asked in zip(sizes, self["sizes"], strict=True))
        options = itertools.product(
            self["modes"], devices, self["dtypes"], self["channels_last"], self["compile"], self["tf32"],
            self["cudnn_benchmark"], self["threads"], (1,) if search else self["batches"], self["weight_map"],
        )
        options = list(options)
        planned = []
        for repeat in range(self["repeats"]):
            for (variant, overrides, cfg, size, asked), opts in itertools.product(shapes, options):
                mode, dev, dtype, channels_last, compiled, tf32, cudnn_benchmark, threads, batch, weights = opts
                quality = mode == "quality"  # training settings only where something is trained
                case = Case(
                    variant=variant, overrides=overrides, mode=mode, device=dev, batch=batch, **size_fields(size),
                    dtype=dtype, channels_last=channels_last, compile=compiled,
                    tf32=tf32 if dev == "cuda" else True,
                    cudnn_benchmark=cudnn_benchmark if dev == "cuda" else False,
                    threads=threads, repeat=repeat, min_run_time_s=self["min_run_time_s"],
                    seeds=self["seeds"], requested_size=asked if isinstance(asked, int) else asked[0],
                    size_rule=self["size_rule"],
                    memory=repeat == 0 or dev == "cuda",
                    world_sizes=self["world_sizes"] if mode == "train-ddp" else (),
                    steps=self["steps"] if quality else None, lr=self["lr"] if quality else None,
                    optimizer=self["optimizer"] if quality else None, weight_map=weights or not quality,
                )
                max_batch = self["max_batch"] if search else None
                planned.append(Planned(case, predict_cost_s(case, cfg, max_batch), max_batch))
        return planned
