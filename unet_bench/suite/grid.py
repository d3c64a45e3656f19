"""One grid of an experiment file: its keys checked against `GRID_KEYS` (the top level's values as
defaults), then expanded into planned cases. The keys and the rules they follow are described in
`unet_bench.suite.spec`."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unet_bench.errors import BenchError, choices
from unet_bench.models import geometry, get_config, list_models
from unet_bench.models.config import MAX_SIZE, UNetConfig
from unet_bench.models.external import ExternalConfig, frozen, is_external, list_external
from unet_bench.models.footprint import world_sizes_problem
from unet_bench.models.registry import select_models
from unet_bench.quality.settings import AUGMENTS, OPTIMIZERS, SCHEDULES
from unet_bench.record import (
    DEFAULT_ELASTIC_SIGMA_PX,
    DEFAULT_MIN_RUN_TIME_S,
    DEFAULT_SEEDS,
    DEFAULT_WORLD_SIZES,
    DEVICES,
    DTYPES,
    MODES,
    RUNTIME_DTYPES,
    RUNTIMES,
    SIZE_RULES,
    Case,
    size_fields,
)
from unet_bench.suite import checks
from unet_bench.suite.checks import Invalid, boolean, list_of, one_of, string, table
from unet_bench.suite.cost import EXPORT_S, predict_cost_s

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


GRID_KEYS: dict[str, tuple[Callable[[Any], Any], Any]] = {  # key: (checker, default)
    "variants": (list_of(string), None),
    "modes": (list_of(one_of(MODES)), ("counts",)),
    "sizes": (list_of(checks.size_or_shape), (572,)),
    "size_rule": (one_of(SIZE_RULES), "input"),
    "batches": (list_of(checks.BATCH), (1,)),
    "devices": (list_of(one_of(DEVICES)), ("cpu",)),
    "dtypes": (list_of(one_of(DTYPES)), ("fp32",)),
    "precision": (list_of(one_of(DTYPES)), None),  # another name for dtypes
    "runtimes": (list_of(one_of(RUNTIMES)), ("torch",)),
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
    "augment": (list_of(one_of(AUGMENTS)), ("flips",)),
    "schedule": (one_of(SCHEDULES), "constant"),
    "train_images": (checks.TRAIN_IMAGES, None),
    "elastic_sigma": (checks.ELASTIC_SIGMA, DEFAULT_ELASTIC_SIGMA_PX),
    "world_sizes": (list_of(checks.WORLD_SIZE), DEFAULT_WORLD_SIZES),
    "set": (table, {}),
    "sweep": (table, {}),
    "overrides": (table, {}),
    "max_batch_search": (boolean, False),
    "max_batch": (checks.BATCH, 1024),
    "baseline": (string, "paper"),
    "paired": (boolean, True),
}
PAIRED_MODES = ("infer", "train")  # timed modes whose cases can carry their baseline in the same process


def runs_on(mode: str, runtime: str, runtimes: tuple[str, ...], dtype: str, channels_last: bool,
            compiled: bool) -> bool:
    """Whether a grid's combination is a case. ``runtimes`` are where inference (modes infer and quality)
    runs; the other modes run under torch whatever they say. A runtime other than torch runs in fp32 or
    int8 without torch's layout and compile options; int8 runs on such a runtime only."""
    if mode not in ("infer", "quality"):
        return runtime == "torch" and dtype != "int8"
    if runtime not in runtimes:
        return False
    if runtime == "torch":
        return dtype != "int8"
    return dtype in RUNTIME_DTYPES and not channels_last and not compiled


class Where:
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

class Grid:
    """One grid block with the top level's defaults filled in, checked key by key.

    Errors name a key where the file sets it: ``grid[1].sizes`` for the block's own, ``sizes`` for the
    top level's.
    """

    def __init__(self, where: Where, prefix: str, top: dict[str, Any], block: dict[str, Any],
                 runtime: str | None = None) -> None:
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
        if self["precision"] is not None:
            if "dtypes" in self.given:
                self.fail("precision", "is another name for dtypes; give one of them")
            self.values["dtypes"] = self["precision"]
        if runtime is not None:  # the command line's --runtime: every inference case on that runtime
            self.values["runtimes"] = (runtime,)
        self.check_runtimes()

    def check_runtimes(self) -> None:
        """Runtimes other than torch run inference in fp32 or int8; int8 needs one of them; each installed."""
        exported = [r for r in self["runtimes"] if r != "torch"]
        if "int8" in self["dtypes"] and not exported:
            self.fail("dtypes", "'int8' runs on a deployment runtime; add runtimes = [\"onnxruntime\"] or "
                      "[\"openvino\"]")
        if exported and not {"infer", "quality"} & set(self["modes"]) and "runtimes" in self.given:
            self.fail("runtimes", f"{exported[0]!r} runs inference; add \"infer\" or \"quality\" to modes")
        from unet_bench.measure.runtimes import require  # here: a file without runtimes loads no numpy

        for runtime in exported:
            try:
                require(runtime)
            except BenchError as error:
                self.fail("runtimes", str(error))

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
        lengths += [len(self[key]) for key in ("modes", "runtimes", "dtypes", "channels_last", "compile", "tf32",
                                               "cudnn_benchmark", "threads", "weight_map", "augment")]
        lengths.append(1 if self["max_batch_search"] else len(self["batches"]))
        return math.prod(lengths)

    def networks(self) -> int:
        """How many networks and sizes `expand` would price (each built once on the meta device), at most."""
        lengths = [len(self.variants()), len(self["sizes"])]
        lengths += [len(v) if isinstance(v, list) else 1 for v in self["sweep"].values()]
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
        runtimes = tuple(dict.fromkeys(["torch", *self["runtimes"]]))  # torch for the modes other than infer
        options = itertools.product(
            self["modes"], runtimes, [self["runtimes"]], devices, self["dtypes"], self["channels_last"],
            self["compile"], self["tf32"], self["cudnn_benchmark"], self["threads"],
            (1,) if search else self["batches"], self["weight_map"], self["augment"],
        )
        options = [o for o in options if runs_on(*o[:3], *o[4:7])]
        references = self.reference_shapes(shapes, search)
        planned = []
        for repeat in range(self["repeats"]):
            for (variant, overrides, cfg, size, asked), opts in itertools.product(shapes, options):
                (mode, runtime, _, dev, dtype, channels_last, compiled, tf32, cudnn_benchmark, threads, batch, weights,
                 augment) = opts
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
                    runtime=runtime,
                    augment=augment if quality else "flips", schedule=self["schedule"] if quality else "constant",
                    train_images=self["train_images"] if quality else None,
                    elastic_sigma=self["elastic_sigma"] if quality and augment == "elastic"
                    else DEFAULT_ELASTIC_SIGMA_PX,
                )
                reference = references.get((variant, overrides, asked)) if mode in PAIRED_MODES else None
                if runtime != "torch" and mode == "quality":
                    cost = predict_cost_s(case, cfg) + case.seeds * EXPORT_S  # trained as under torch, exported
                elif runtime != "torch":
                    if self["paired"]:  # the same network under eager torch, side by side in its process
                        case = dataclasses.replace(case, reference=dataclasses.replace(
                            case, runtime="torch", dtype="fp32", memory=False))
                    cost = predict_cost_s(case, cfg) + (predict_cost_s(case.reference, cfg, timed_only=True)
                                                        if case.reference else 0.0)
                elif reference is not None:
                    ref_overrides, ref_cfg, ref_size = reference
                    case = dataclasses.replace(case, reference=dataclasses.replace(
                        case, variant=self["baseline"], overrides=ref_overrides, **size_fields(ref_size),
                        memory=False))
                    cost = predict_cost_s(case, cfg) + predict_cost_s(case.reference, ref_cfg, timed_only=True)
                else:
                    cost = predict_cost_s(case, cfg, self["max_batch"] if search else None)
                planned.append(Planned(case, cost, self["max_batch"] if search else None))
        return planned

    def reference_shapes(self, shapes: list[tuple], search: bool) -> dict[tuple, tuple]:
        """(variant, overrides, requested size) → the baseline's (overrides, config, input size) at that grid
        point, for every shape that is not the baseline's own: what each case is paired with in its process.
        The baseline's overrides must be the case's (a sweep's point), or its only ones. Empty when pairing
        is off, the baseline is not in the grid, or batches are searched."""
        baseline = self["baseline"]
        if not self["paired"] or search:
            return {}
        # the baseline's shapes indexed once (by requested size, and by size and overrides), so that pairing
        # costs one look-up per shape rather than a scan of the baseline's shapes (quadratic in a sweep)
        by_asked: dict[Any, list[tuple]] = {}
        by_point: dict[tuple, tuple] = {}
        for v, o, cfg, size, asked in shapes:
            if v == baseline:
                by_asked.setdefault(frozen(asked), []).append((o, cfg, size))
                by_point.setdefault((frozen(asked), o), (o, cfg, size))
        only = {asked: found[0] for asked, found in by_asked.items() if len({o for o, _, _ in found}) == 1}
        found = {}
        for variant, overrides, _, _, asked in shapes:
            if variant == baseline:
                continue
            match = by_point.get((frozen(asked), overrides)) or only.get(frozen(asked))
            if match:
                found[variant, overrides, asked] = match
        return found
