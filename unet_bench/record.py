"""The two plain types every part of the pipeline shares: a `Case` (what to measure) and a `Record`
(what was measured).

The spec expands an experiment file into cases; `unet_bench.measure.measure(case)` turns one case into one
record; the runner appends ``record.to_dict()`` as a JSON line; the results loader flattens those lines
into a DataFrame. Keys are documented field by field below: they are the project's data interface, so a
key is added, never renamed. Units are in the names (``_bytes``, ``_ms``, ``_s``, ``_per_s``).
Sizes are square (or cubic, for a 3-D network): ``input_size`` is the side in pixels (voxels). Where the
sides differ (the 3-D U-Net's 132x132x116), ``input_shape`` gives one size per axis and ``input_size`` is
its first; records then carry ``input_shape`` and ``output_shape`` too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from unet_bench.errors import BenchError, choices

# The vocabulary of cases: every module that checks or offers one of these imports it from here.
MODES = ("counts", "infer", "train", "quality", "profile", "train-ddp")
DEVICES = ("cpu", "cuda")
DTYPES = ("fp32", "bf16", "fp16", "int8")  # int8: a statically quantized network, on a deployment runtime only
# Where the network runs: eager PyTorch, or exported to ONNX and run by a deployment runtime.
RUNTIMES = ("torch", "onnxruntime", "openvino")
RUNTIME_DTYPES = ("fp32", "int8")  # what a case on a runtime other than torch runs in
# unsupported: the network does not export to, or load in, the case's runtime (its message says why).
STATUSES = ("ok", "oom", "error", "skipped", "unsupported")
# How an experiment file's sizes become a variant's input (documented in unet_bench.suite.spec).
SIZE_RULES = ("input", "nearest-input", "common-output", "nearest-output")
DEFAULT_MIN_RUN_TIME_S = 1.0  # time budget for the timed blocks of one measurement
DEFAULT_SEEDS = 3  # quality mode: training seeds
# the std of the elastic warp's coarse displacements, px: the paper's 10 (for its 512 px EM images)
DEFAULT_ELASTIC_SIGMA_PX = 10.0
# Case's training fields and their defaults (left out of a case_id at these, so older ids stay valid)
QUALITY_DEFAULTS = {"steps": None, "lr": None, "optimizer": None, "weight_map": True, "augment": "flips",
                    "schedule": "constant", "train_images": None, "elastic_sigma": DEFAULT_ELASTIC_SIGMA_PX}
# Case fields left out of `Case.case_id` at these values: added after ids were first written.
ID_DEFAULTS = {**QUALITY_DEFAULTS, "runtime": "torch"}
DEFAULT_WORLD_SIZES = (1, 2)  # train-ddp mode: data-parallel ranks measured in turn


def unknown_fields(cls: type, data: dict[str, Any]) -> None:
    """Refuse keys that are not fields of the dataclass ``cls``, naming the valid ones."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise BenchError(f"unknown {cls.__name__} field {unknown[0]!r}; valid fields are {choices(names)}")


@dataclass(frozen=True)
class Case:
    """One measurement to make: a network, an input, a mode and the execution options."""

    variant: str  # registered variant name
    overrides: tuple[tuple[str, Any], ...] = ()  # config fields changed on top of the variant, sorted
    mode: str = "counts"  # counts | infer | train | quality | train-ddp
    device: str = "cpu"  # cpu | cuda
    batch: int = 1
    input_size: int = 572  # side of the square input, pixels
    dtype: str = "fp32"  # fp32 | bf16 | fp16 (bf16/fp16 run under autocast)
    channels_last: bool = False
    compile: bool = False  # torch.compile (compile time reported apart from the timing)
    tf32: bool = True  # CUDA: allow TF32 in convs/matmuls (PyTorch's cuDNN default); False = IEEE fp32
    cudnn_benchmark: bool = False
    threads: int | None = None  # intra-op threads; None = every core torch sees
    repeat: int = 0  # index of this repeat of the same case (each repeat is its own record)
    min_run_time_s: float = DEFAULT_MIN_RUN_TIME_S  # time budget for the timed blocks of one measurement
    seeds: int = DEFAULT_SEEDS  # quality mode: number of training seeds
    # infer/train: run the memory pass (one more step: peak and saved-for-backward bytes). A suite runs it
    # in the first repeat of a CPU case only: the allocation trace it reads is the same in every repeat.
    memory: bool = True
    # How input_size was chosen: the experiment file's size and rule (None for a size given directly).
    # Comparisons pair rows of one grid point by these, not by guessing from sizes.
    requested_size: int | None = None
    size_rule: str | None = None
    # One size per spatial axis where they differ (e.g. (132, 132, 116)); None: input_size on every axis.
    input_shape: tuple[int, ...] | None = None
    # quality mode: training settings (None = the defaults of unet_bench.quality.settings)
    steps: int | None = None  # optimiser steps per seed
    lr: float | None = None  # learning rate
    optimizer: str | None = None  # sgd | adam
    weight_map: bool = True  # weight the loss by the paper's border weight map
    augment: str = "flips"  # none | flips (and 90° rotations) | elastic (the paper's warp, then flips)
    schedule: str = "constant"  # the learning rate over the steps: constant | cosine
    train_images: int | None = None  # train on the first N images of the training split (None: all)
    elastic_sigma: float = DEFAULT_ELASTIC_SIGMA_PX  # augment elastic: the warp's displacement std, px
    # train-ddp: the numbers of data-parallel ranks to train on, each measured in turn (empty otherwise)
    world_sizes: tuple[int, ...] = ()
    runtime: str = "torch"  # torch | onnxruntime | openvino: where the network runs (infer)
    # infer/train: the baseline's case at the same grid point, timed in the same process in alternation
    # with this one (A B B A): the paired ratio. None: timed alone.
    reference: Case | None = None

    def overrides_dict(self) -> dict[str, Any]:
        return dict(self.overrides)

    @property
    def size(self) -> int | tuple[int, ...]:
        """The input size as the geometry takes it: one int for every axis, or one per axis."""
        return self.input_shape or self.input_size

    @property
    def size_text(self) -> str:
        """'572' or '132x132x116'."""
        return "x".join(str(s) for s in self.input_shape) if self.input_shape else str(self.input_size)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["overrides"] = self.overrides_dict()
        if not self.world_sizes:  # absent unless used: the case_id of every other case stays as it was
            del data["world_sizes"]
        if self.reference is None:
            del data["reference"]
        else:
            data["reference"] = self.reference.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Case:
        """The inverse of `to_dict`; an unknown key is refused with the list of valid fields."""
        unknown_fields(cls, data)
        shape = data.get("input_shape")
        reference = data.get("reference")
        return cls(**{**data, "overrides": tuple(sorted(dict(data.get("overrides") or {}).items())),
                      "input_shape": tuple(shape) if shape else None,
                      "world_sizes": tuple(data.get("world_sizes") or ()),
                      "reference": cls.from_dict(reference) if reference else None})

    @property
    def case_id(self) -> str:
        """Stable id of this case (repeat included): what `--resume` matches on. Fields added later are left
        out at their defaults (no ``input_shape``, the default training settings), so earlier ids stay valid."""
        data = self.to_dict()
        if data["input_shape"] is None:
            del data["input_shape"]
        for name, default in ID_DEFAULTS.items():
            if data[name] == default:
                del data[name]
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """Short human-readable name for progress bars and logs."""
        extra = ",".join(f"{k}={v}" for k, v in self.overrides)
        name = f"{self.variant}[{extra}]" if extra else self.variant
        opts = ([] if self.runtime == "torch" else [self.runtime]) + [self.dtype]
        opts += (["cl"] if self.channels_last else []) + (["compile"] if self.compile else [])
        opts += [] if self.weight_map else ["no-weight-map"]
        opts += [] if self.augment == "flips" else [f"augment {self.augment}"]
        opts += [] if self.schedule == "constant" else [f"lr {self.schedule}"]
        opts += [] if self.train_images is None else [f"{self.train_images} training images"]
        opts += [] if self.elastic_sigma == DEFAULT_ELASTIC_SIGMA_PX else [f"elastic sigma {self.elastic_sigma:g} px"]
        opts += [f"ranks {','.join(map(str, self.world_sizes))}"] if self.world_sizes else []
        if self.reference:
            twin = self.reference.variant == self.variant and self.reference.runtime != self.runtime
            opts += [f"vs {self.reference.runtime if twin else self.reference.variant}"]
        return f"{name} {self.mode} {self.device} b{self.batch} {self.size_text}px {'/'.join(opts)} #{self.repeat}"


SCHEMA = 2  # version of the results format (docs/results.md); flat records written before it read as 1


@dataclass
class CountsGroup:
    """What the network is at this input, counted exactly (no noise): per image unless stated."""

    output_size: int | None = None  # side of the output (smaller than the input for valid convs)
    output_shape: list[int] | None = None  # one size per axis of the output, where the sides differ
    params: int | None = None
    params_trainable: int | None = None
    macs: int | None = None  # forward multiply-accumulates of convs and transposed convs
    flops: int | None = None  # 2 x macs
    flops_scope: str = ""  # which ops macs/flops cover, in words
    other_flops: int | None = None  # forward FLOPs outside convs (interpolation, norms, ...)
    train_flops: int | None = None  # forward + backward FLOPs of one training step
    macs_per_output_pixel: float | None = None


@dataclass
class TimingGroup:
    """How fast one call ran: latency statistics over timed blocks and the throughput they imply."""

    latency_ms_median: float | None = None  # per batch
    latency_ms_iqr: float | None = None
    latency_ms_p25: float | None = None
    latency_ms_p75: float | None = None
    latency_n: int | None = None  # number of timed measurements behind the median
    latency_ms_per_output_mpix: float | None = None  # median latency / output megapixels of the batch
    images_per_s: float | None = None
    output_mpix_per_s: float | None = None  # output megapixels per second (all classes count once)
    achieved_flops_per_s: float | None = None
    peak_flops_per_s: float | None = None  # the device ceiling used for peak_fraction
    peak_fraction: float | None = None  # achieved / peak
    warmup_s: float | None = None  # warm-up (incl. cuDNN autotune) excluded from timing
    compile_s: float | None = None  # torch.compile time, excluded from timing
    # the control workload (unet_bench.measure.control), timed in blocks alternated with the case's
    control_ms_median: float | None = None  # per call, in this process
    control_ms_p25: float | None = None
    control_ms_p75: float | None = None
    latency_per_control: float | None = None  # latency_ms_median / control_ms_median
    control_drift: float | None = None  # the control's change from the first to the last third of its blocks
    control_block_ms: list[float] | None = None  # raw control blocks (extra.control_calls_per_block calls each)



@dataclass
class PairedGroup:
    """The case against its baseline (`Case.reference`), timed in alternation in the same process (A B B A)."""

    paired_reference: str | None = None  # the reference's variant
    paired_ratio: float | None = None  # geometric mean of the block ratios case / reference
    paired_ratios: list[float] | None = None  # per adjacent pair of blocks, per call
    paired_ref_ms_median: float | None = None  # the reference's median latency in this process
    paired_reference_runtime: str | None = None  # the reference's runtime (torch eager, for an exported case)


@dataclass
class ExportGroup:
    """The network as a deployment runtime runs it (``runtime`` other than torch): how it was exported and
    loaded, what the exported graph holds, and how far its output is from eager torch's on the same input."""

    runtime_version: str | None = None
    exporter: str = ""  # which ONNX exporter, its version and options
    opset: int | None = None  # the ONNX opset of the exported graph
    provider: str | None = None  # onnxruntime's execution provider, or openvino's device
    provider_options: dict[str, Any] = field(default_factory=dict)  # graph optimisation level, threads, ...
    export_s: float | None = None  # wall time of the export (quantization included for int8)
    model_file: str | None = None  # the exported model, relative to the results folder (None: not kept)
    model_bytes: int | None = None  # size of the model file
    op_census: dict[str, int] = field(default_factory=dict)  # node count per ONNX op type of the graph run
    max_abs_error: float | None = None  # max |runtime - eager torch| over the output, on a seeded input
    max_rel_error: float | None = None  # max_abs_error / max |eager torch output|
    error_tolerance: float | None = None  # the bound on max_rel_error for this precision
    output_mismatch: bool | None = None  # max_rel_error > error_tolerance: the runtime computes something else
    quantization: dict[str, Any] | None = None  # int8: method, format, calibration images and their source


@dataclass
class MemoryGroup:
    """Memory of one step, per batch: measured peak, exact saved-for-backward bytes, the prediction."""

    peak_mem_bytes: int | None = None
    peak_mem_method: str = ""  # how peak_mem_bytes was measured
    saved_activation_bytes: int | None = None  # bytes autograd saved for backward (train)
    param_bytes: int | None = None
    grad_bytes: int | None = None
    optimizer_bytes: int | None = None
    predicted_peak_bytes: int | None = None
    peak_mem_ratio: float | None = None  # measured / predicted


@dataclass
class QualityGroup:
    """Segmentation quality on the validation split (mode quality): means and sample stds over seeds,
    and the baselines on the same split (per-seed values in ``extra``)."""

    dice_mean: float | None = None
    dice_std: float | None = None
    iou_mean: float | None = None
    iou_std: float | None = None
    quality_seeds: int | None = None
    train_time_s: float | None = None  # wall time of the training steps of one model, mean over seeds
    train_steps: int | None = None  # optimiser steps per seed
    object_f1_mean: float | None = None  # object F1 at IoU >= 0.5
    object_f1_std: float | None = None
    map_mean: float | None = None  # mean average precision over IoU 0.5:0.95
    map_std: float | None = None
    rand_error_mean: float | None = None  # adapted Rand error; lower is better
    rand_error_std: float | None = None
    dice_all_foreground: float | None = None  # baseline: every pixel an object
    dice_threshold: float | None = None  # baseline: smoothing + one global threshold tuned on training
    iou_threshold: float | None = None
    object_f1_threshold: float | None = None
    map_threshold: float | None = None
    rand_error_threshold: float | None = None
    # the learning curve: the validation split scored every few steps of training (per seed in extra
    # curve_dice_per_seed, curve_object_f1_per_seed); its last point is dice_mean, object_f1_mean
    curve_steps: list[int] | None = None  # steps done at each point
    curve_dice_mean: list[float] | None = None  # Dice at each point, mean over seeds
    curve_object_f1_mean: list[float] | None = None  # object F1 at each point, mean over seeds
    curve_dice_gain: float | None = None  # Dice gained over the last quarter of the steps (≈ 0: plateaued)
    curve_object_f1_gain: float | None = None  # the same for object F1


@dataclass
class ProfileGroup:
    """Per-layer profiles (mode profile): ``{infer|train: Profile.to_dict()}`` and the copy bandwidth."""

    profile_by_step: dict[str, Any] = field(default_factory=dict)
    bandwidth: dict[str, Any] | None = None  # the copy-bandwidth ceiling the profile is read against


@dataclass
class EnergyGroup:
    """Energy of the work, idle power subtracted (mode profile); None where the hardware has no counter."""

    energy_j_per_image: float | None = None  # inference
    energy_j_per_output_mpix: float | None = None  # inference, per output megapixel
    energy_j_per_train_step: float | None = None  # one training step, per batch
    energy_method: str = ""  # how the energy was measured, or "not available: why"
    energy_by_step: dict[str, Any] = field(default_factory=dict)  # {infer|train: Energy.to_dict()}


@dataclass
class DdpGroup:
    """Data-parallel training (mode train-ddp): the largest world size, and each world size's run."""

    world_size: int | None = None  # ranks behind latency and throughput: the largest of the case's world_sizes
    scaling_efficiency: float | None = None  # images/s per rank at world_size / images/s per rank at 1 rank
    comm_grad_bytes: int | None = None  # gradient bytes each rank all-reduces per training step
    ddp_by_world_size: dict[str, Any] = field(default_factory=dict)  # {world size: that run's figures}


# The measurement groups of a record, by key: each present (measured) or None.
GROUPS: dict[str, type] = {"counts": CountsGroup, "timing": TimingGroup, "paired": PairedGroup,
                           "export": ExportGroup, "memory": MemoryGroup,
                           "quality": QualityGroup, "profile": ProfileGroup, "energy": EnergyGroup,
                           "ddp": DdpGroup}
# Which group holds which field: names are unique across groups, so a flat row keeps bare names.
FIELD_GROUP: dict[str, str] = {f.name: key for key, cls in GROUPS.items() for f in dataclasses.fields(cls)}
_CASE_FIELDS = {f.name: f for f in dataclasses.fields(Case)}
_CUDA_ONLY = ("tf32", "cudnn_benchmark")  # Case flags that mean nothing off CUDA: None in a row there


@dataclass
class Record:
    """One measured case: the `Case` that produced it, the outcome, measurement groups and environment."""

    case: Case
    status: str = "ok"  # ok | oom | error | skipped | unsupported
    message: str = ""  # why, for anything but ok
    timestamp: str = ""  # ISO 8601, UTC, when the measurement finished
    duration_s: float | None = None  # wall time of the whole measurement
    suite: str | None = None
    threads_used: int | None = None  # intra-op threads it ran on (the default count where Case.threads is None)
    config: dict[str, Any] = field(default_factory=dict)  # the full UNetConfig.to_dict() (ExternalConfig.to_dict())
    counts: CountsGroup | None = None
    timing: TimingGroup | None = None
    paired: PairedGroup | None = None
    export: ExportGroup | None = None
    memory: MemoryGroup | None = None
    quality: QualityGroup | None = None
    profile: ProfileGroup | None = None
    energy: EnergyGroup | None = None
    ddp: DdpGroup | None = None
    env: dict[str, Any] = field(default_factory=dict)  # environment fingerprint (versions, device, git, ...)
    extra: dict[str, Any] = field(default_factory=dict)  # method notes and raw detail (docs/results.md)
    case_id: str = ""  # the case's id when measured (what --resume matches on); set from the case if empty
    schema: int = SCHEMA

    def __post_init__(self) -> None:
        self.case_id = self.case_id or self.case.case_id

    def set(self, **values: Any) -> Record:
        """Set fields by their flat names, each into its place (a group is created when first filled);
        ``extra`` is merged. A name that is no field is refused, naming the valid ones."""
        top = {f.name for f in dataclasses.fields(self)} - {"case", *GROUPS}
        for key, value in values.items():
            if key == "extra":
                self.extra.update(value)
            elif key in top:
                setattr(self, key, value)
            elif key in FIELD_GROUP:
                setattr(self.group(FIELD_GROUP[key]), key, value)
            else:
                raise BenchError(f"unknown Record field {key!r}; valid fields are {choices([*top, *FIELD_GROUP])}")
        return self

    def group(self, key: str) -> Any:
        """The measurement group ``key``, created empty if the record has none yet."""
        if getattr(self, key) is None:
            setattr(self, key, GROUPS[key]())
        return getattr(self, key)

    def get(self, name: str) -> Any:
        """A field by its flat name, as `columns` reads it (None where its group is absent)."""
        return self.columns()[name]

    def to_dict(self) -> dict[str, Any]:
        """The results line: schema, case_id and the case once, the outcome, each group (or null), env, extra."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data = {"schema": self.schema, "case_id": self.case_id, "case": self.case.to_dict(),
                **{k: v for k, v in data.items() if k not in ("schema", "case_id", "case", *GROUPS)}}
        for key in GROUPS:
            value = getattr(self, key)
            data[key] = dataclasses.asdict(value) if value is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """Read a results line of this format or a flat one written before it (schema 1); keys this
        version does not know go to ``extra`` rather than failing."""
        view = flat_fields(data)
        case_values = {k: v for k, v in view.items() if k in _CASE_FIELDS and not
                       (v is None and _CASE_FIELDS[k].default is not None)}
        shape = case_values.get("input_shape")
        case = Case(**{**case_values, "overrides": tuple(sorted(dict(case_values.get("overrides") or {}).items())),
                       "input_shape": tuple(shape) if shape else None,
                       "world_sizes": tuple(case_values.get("world_sizes") or ()),
                       "reference": Case.from_dict(case_values["reference"]) if case_values.get("reference") else None})
        record = cls(case=case, case_id=view.get("case_id") or "", schema=SCHEMA)
        if "schema" not in data and view.get("threads") is not None:
            record.threads_used = view["threads"]  # a flat record's threads were the threads it ran on
        top = {f.name for f in dataclasses.fields(cls)} - {"case", "case_id", "schema", *GROUPS}
        unknown = {}
        for key, value in view.items():
            if key in top or key in FIELD_GROUP:
                record.set(**{key: value})
            elif key not in _CASE_FIELDS and key != "case_id":
                unknown[key] = value
        record.extra.update(unknown)
        return record

    @classmethod
    def for_case(cls, case: Case, **values: Any) -> Record:
        """A record of ``case``; measured values are passed by their flat names (see `set`)."""
        return cls(case=case).set(**values)

    def columns(self) -> dict[str, Any]:
        """The record as one flat mapping: Case fields, top-level fields and every group's fields by their
        bare names (None for an absent group); config, env and extra stay dicts for the caller to spread.
        ``threads`` is the count it ran on; the CUDA-only flags are None off CUDA, as flat records had them."""
        case = dataclasses.asdict(self.case)
        case["overrides"] = self.case.overrides_dict()
        case["input_shape"] = list(self.case.input_shape) if self.case.input_shape else None
        case["world_sizes"] = list(self.case.world_sizes)
        case["reference"] = self.case.reference.to_dict() if self.case.reference else None
        if self.case.device != "cuda":
            case.update(dict.fromkeys(_CUDA_ONLY))
        row = {**case, "threads": self.threads_used if self.threads_used is not None else self.case.threads}
        for f in dataclasses.fields(self):
            if f.name in GROUPS:
                group = getattr(self, f.name) or GROUPS[f.name]()
                row.update({g.name: getattr(group, g.name) if getattr(self, f.name) else None
                            for g in dataclasses.fields(group)})
            elif f.name not in ("case", "threads_used", "schema"):
                row[f.name] = getattr(self, f.name)
        return row


_OLD_EXTRA = {"profile": "profile_by_step", "bandwidth": "bandwidth", "energy": "energy_by_step",
              "ddp": "ddp_by_world_size"}  # flat records kept these in extra


def flat_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A results line of either format as one flat dict of field names (the shape schema 1 wrote): the
    case's fields, the top-level ones and every present group's. A line whose case or groups are not
    objects is refused with a `BenchError` naming which."""
    if "schema" not in data:
        extra = data.get("extra")
        if isinstance(extra, dict) and any(k in extra for k in _OLD_EXTRA):
            data = {**data, "extra": {k: v for k, v in extra.items() if k not in _OLD_EXTRA},
                    **{new: extra[old] for old, new in _OLD_EXTRA.items() if old in extra}}
        return data
    view = {k: v for k, v in data.items() if k not in ("schema", "case", *GROUPS)}
    case = data.get("case")
    if not isinstance(case, dict):
        raise BenchError("its 'case' is not an object")
    view.update(case)
    for key in GROUPS:
        group = data.get(key)
        if group is not None and not isinstance(group, dict):
            raise BenchError(f"its {key!r} group is neither an object nor null")
        view.update(group or {})
    return view


def size_fields(shape: tuple[int, ...]) -> dict[str, Any]:
    """A case's ``input_size`` and ``input_shape`` for one size per axis (no shape where all sides agree)."""
    return {"input_size": shape[0], "input_shape": tuple(shape) if len(set(shape)) > 1 else None}
