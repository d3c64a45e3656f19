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
dtypes               ["fp32"]                    fp32 | bf16 | fp16 (autocast) | int8 (a runtime's, below);
                                                 ``precision`` is another name for it
runtimes             ["torch"]                   where inference runs: torch | onnxruntime | openvino (below)
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
augment              ["flips"]                   quality mode: none | flips (and 90° rotations) | elastic
                                                 (the paper's elastic warp, then flips)
schedule             "constant"                  quality mode: learning rate over the steps: constant | cosine |
                                                 warmup-cosine (a linear rise over the first tenth, then cosine)
train_images         all                         quality mode: train on the first N training images only
elastic_sigma        10.0                        quality mode, augment elastic: the warp's displacement std, in
                                                 (0, 100] px (the paper's 10)
world_sizes          [1, 2]                      train-ddp mode: data-parallel ranks (≤ cores, or GPUs)
set                  {}                          config fields set for every variant (base_width = 16)
sweep                {}                          config fields swept: {depth = [3, 4, 5]} (a product)
overrides            {}                          per variant: {depth-5 = {base_width = 32}}
max_batch_search     false                       search the largest batch that fits (infer/train)
max_batch            1024                        upper bound of that search
baseline             "paper"                     the variant every other one is paired with (below)
paired               true                        time each infer/train case with its baseline in one process
===================  ==========================  ===================================================

Every number is checked by `unet_bench.suite.checks` (finite, in range), as the command line's flags are;
``cpu_memory_limit_gb`` is in (0, 65536]. A file whose grids hold more than 10,000 cases, or more than 2,000
networks and sizes (variants x sweep points x sizes: the plan counts each one's FLOPs), is refused
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

**Pairs.** Where a grid holds its ``baseline`` variant, every other variant's infer and train cases carry
the baseline's case at the same grid point (the same options and request, the baseline's own input size)
as their ``reference``: each process builds both networks, warms both, and times them in alternating
A B B A blocks, so that the verdict against the baseline comes from ratios measured side by side
(`unet_bench.measure.timing`). The baseline's own cases are timed alone as before. ``paired = false``
times every case alone.

**Runtimes.** ``runtimes`` are where the inference cases run: ``torch`` (eager, the default), or the
network exported to ONNX and run by ``onnxruntime`` or ``openvino`` (the ``runtimes`` extra). The other
modes always run under torch. A runtime other than torch takes dtypes ``fp32`` and ``int8`` (static
quantization, calibrated on training images of the synthetic task), and not torch's ``channels_last`` or
``compile`` (those combinations are left out of the grid). Each such case is paired in its process with
the same network under eager torch (unless ``paired = false``), so its speed against torch is measured
side by side; `compare --by runtime` puts the runtimes of each variant beside torch.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from unet_bench.errors import BenchError, choices
from unet_bench.record import DEVICES
from unet_bench.suite import checks
from unet_bench.suite.checks import string
from unet_bench.suite.cost import run_once_costs
from unet_bench.suite.grid import GRID_KEYS, Grid, Planned, Where

TOP_KEYS = ("name", "description", "cpu_memory_limit_gb", "grid")
MAX_CASES = 10_000  # a suite larger than this is refused before its grid is expanded
MAX_NETWORKS = 2_000  # networks x sizes a plan prices, each built once on the meta device (about 10 ms each)


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


# --- loading -----------------------------------------------------------------------------------------


def load_spec(path: str | Path, device: str | None = None, cpu_memory_limit_gb: float | None = None,
              runtime: str | None = None) -> Spec:
    """Read, check and expand an experiment file; any mistake is a one-line `BenchError` naming the key.

    ``device`` runs every case on that device instead of the file's; ``cpu_memory_limit_gb`` replaces
    the file's limit; ``runtime`` runs every inference case on that runtime instead of the file's.
    """
    path = Path(path)
    data = _read_toml(path)
    where = Where(path)
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
        grids.append(Grid(where, prefix, top, block, runtime))
    size = sum(grid.size(device) for grid in grids)
    if size > MAX_CASES:
        raise BenchError(f"{path}: the grid holds {size:,} cases, over the limit of {MAX_CASES:,}; "
                         "split it into several experiment files")
    networks = sum(grid.networks() for grid in grids)
    if networks > MAX_NETWORKS:
        raise BenchError(f"{path}: the grid holds {networks:,} networks and sizes (variants x sweep points x "
                         f"sizes), over the limit of {MAX_NETWORKS:,} one plan counts; split it into several "
                         "experiment files")
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
