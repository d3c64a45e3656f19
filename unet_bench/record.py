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
DTYPES = ("fp32", "bf16", "fp16")
STATUSES = ("ok", "oom", "error", "skipped")
# How an experiment file's sizes become a variant's input (documented in unet_bench.suite.spec).
SIZE_RULES = ("input", "nearest-input", "common-output", "nearest-output")
DEFAULT_MIN_RUN_TIME_S = 1.0  # time budget for the timed blocks of one measurement
DEFAULT_SEEDS = 3  # quality mode: training seeds
QUALITY_DEFAULTS = {"steps": None, "lr": None, "optimizer": None, "weight_map": True}  # Case's training fields
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
    # train-ddp: the numbers of data-parallel ranks to train on, each measured in turn (empty otherwise)
    world_sizes: tuple[int, ...] = ()
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
        for name, default in QUALITY_DEFAULTS.items():
            if data[name] == default:
                del data[name]
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """Short human-readable name for progress bars and logs."""
        extra = ",".join(f"{k}={v}" for k, v in self.overrides)
        name = f"{self.variant}[{extra}]" if extra else self.variant
        opts = [self.dtype] + (["cl"] if self.channels_last else []) + (["compile"] if self.compile else [])
        opts += [] if self.weight_map else ["no-weight-map"]
        opts += [f"ranks {','.join(map(str, self.world_sizes))}"] if self.world_sizes else []
        opts += [f"vs {self.reference.variant}"] if self.reference else []
        return f"{name} {self.mode} {self.device} b{self.batch} {self.size_text}px {'/'.join(opts)} #{self.repeat}"


@dataclass
class Record:
    """One measured case. Missing measurements are None (a counts-only case has no latency)."""

    # --- what was measured ---
    variant: str
    mode: str
    device: str
    batch: int
    input_size: int  # side of the square input, pixels
    requested_size: int | None = None  # the size the experiment file asked for (Case.requested_size)
    size_rule: str | None = None  # how input_size was chosen from it (Case.size_rule)
    output_size: int | None = None  # side of the square output, pixels (smaller than the input for valid convs)
    dtype: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    tf32: bool | None = None  # None on CPU
    cudnn_benchmark: bool | None = None  # None on CPU
    threads: int | None = None
    repeat: int = 0
    case_id: str = ""
    suite: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the full UNetConfig.to_dict() (ExternalConfig.to_dict())
    overrides: dict[str, Any] = field(default_factory=dict)

    input_shape: list[int] | None = None  # one size per axis, where the sides differ (Case.input_shape)
    output_shape: list[int] | None = None  # one size per axis of the output, where input_shape is given

    # --- outcome ---
    status: str = "ok"  # ok | oom | error | skipped
    message: str = ""  # why, for anything but ok
    timestamp: str = ""  # ISO 8601, UTC, when the measurement finished
    duration_s: float | None = None  # wall time of the whole measurement

    # --- counts (per image of the batch unless stated) ---
    params: int | None = None
    params_trainable: int | None = None
    macs: int | None = None  # forward multiply-accumulates of convs and transposed convs, per image
    flops: int | None = None  # 2 x macs: forward FLOPs of convs and transposed convs, per image
    flops_scope: str = ""  # which ops macs/flops cover, in words
    other_flops: int | None = None  # forward FLOPs outside convs (interpolation, norms, ...), per image
    train_flops: int | None = None  # forward + backward FLOPs of one training step, counted, per image
    macs_per_output_pixel: float | None = None

    # --- timing ---
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

    # --- paired timing (Case.reference: the baseline timed in the same process, A B B A) ---
    paired_reference: str | None = None  # the reference's variant
    paired_ratio: float | None = None  # geometric mean of the block ratios case / reference
    paired_ratios: list[float] | None = None  # per adjacent pair of blocks, per call
    paired_ref_ms_median: float | None = None  # the reference's median latency in this process

    # --- memory (per batch) ---
    peak_mem_bytes: int | None = None
    peak_mem_method: str = ""  # how peak_mem_bytes was measured
    saved_activation_bytes: int | None = None  # bytes autograd saved for backward (train)
    param_bytes: int | None = None
    grad_bytes: int | None = None
    optimizer_bytes: int | None = None
    predicted_peak_bytes: int | None = None
    peak_mem_ratio: float | None = None  # measured / predicted

    # --- quality (mode="quality"; unet_bench.quality.evaluate_quality, per-seed values in extra) ---
    dice_mean: float | None = None  # Dice of the object class on the validation split, mean over seeds
    dice_std: float | None = None  # sample std (n - 1) over seeds
    iou_mean: float | None = None
    iou_std: float | None = None
    quality_seeds: int | None = None
    train_time_s: float | None = None  # wall time of the training steps of one model, mean over seeds
    train_steps: int | None = None  # optimiser steps per seed
    # instance metrics (unet_bench.quality.instances), mean and sample std over seeds
    object_f1_mean: float | None = None  # object F1 at IoU >= 0.5
    object_f1_std: float | None = None
    map_mean: float | None = None  # mean average precision over IoU 0.5:0.95 (2018 Data Science Bowl)
    map_std: float | None = None
    rand_error_mean: float | None = None  # adapted Rand error (ISBI 2012): merges and splits; lower is better
    rand_error_std: float | None = None
    # baselines on the same validation split (unet_bench.quality.baselines): every pixel an object, and
    # smoothing + one global threshold tuned on the training split
    dice_all_foreground: float | None = None
    dice_threshold: float | None = None
    iou_threshold: float | None = None
    object_f1_threshold: float | None = None
    map_threshold: float | None = None
    rand_error_threshold: float | None = None
    weight_map: bool | None = None  # trained with the paper's border weight map (Case.weight_map)

    # --- energy (mode="profile": unet_bench.measure.energy; None where the hardware has no counter) ---
    energy_j_per_image: float | None = None  # inference, the work's energy (idle power subtracted)
    energy_j_per_output_mpix: float | None = None  # inference, per output megapixel
    energy_j_per_train_step: float | None = None  # one training step, per batch
    energy_method: str = ""  # how the energy was measured, or "not available: why"

    # --- data-parallel training (mode="train-ddp"; per world size in extra["ddp"]) ---
    world_size: int | None = None  # ranks behind latency and throughput: the largest of the case's world_sizes
    scaling_efficiency: float | None = None  # images/s per rank at world_size / images/s per rank at 1 rank
    comm_grad_bytes: int | None = None  # gradient bytes each rank all-reduces per training step

    # --- context ---
    env: dict[str, Any] = field(default_factory=dict)  # environment fingerprint (versions, device, git, ...)
    extra: dict[str, Any] = field(default_factory=dict)  # anything else worth keeping (per-stage params, ...)
    # extra keys filled by unet_bench.measure:
    #   params_per_stage, macs_per_stage: {stage: n} in network order (encoder0.., bottleneck, decoder..0, head)
    #   other_ops: {fvcore op: count} outside convs (fvcore units); flops_per_output_pixel
    #   train_flops_by_op: {aten op: FLOPs} of the training step; train_flops_scope: what train_flops covers
    #   crosscheck: {fvcore_flops, flop_counter_flops, fvcore_only, agree}; crosscheck_text: the same in words
    #   (infer/train) achieved_flops_scope, peak_source (where peak_flops_per_s comes from), calls_per_block,
    #   first_call_s, compile_options; (train) saved_tensors (distinct storages), largest_saved_bytes,
    #   autocast_weight_copy_bytes (low-precision weight copies saved for backward, not in saved_activation_bytes),
    #   saved_bytes_method (how they were counted, and on the eager or the compiled model)
    #   (profile) profile: {infer|train: Profile.to_dict()} (rows per layer, by_kind, ceilings, scopes),
    #   energy: {infer|train: Energy.to_dict()}, bandwidth: the copy bandwidth ceiling, peak_source

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """Build from a dict; keys this version does not know go to ``extra`` rather than failing."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names}
        record = cls(**known)
        record.extra.update(unknown)
        return record

    @classmethod
    def for_case(cls, case: Case, **values: Any) -> Record:
        """A record that identifies ``case``; measured values are passed as keywords."""
        return cls(
            variant=case.variant,
            mode=case.mode,
            device=case.device,
            batch=case.batch,
            input_size=case.input_size,
            requested_size=case.requested_size,
            size_rule=case.size_rule,
            dtype=case.dtype,
            channels_last=case.channels_last,
            compile=case.compile,
            tf32=case.tf32 if case.device == "cuda" else None,
            cudnn_benchmark=case.cudnn_benchmark if case.device == "cuda" else None,
            threads=case.threads,
            repeat=case.repeat,
            case_id=case.case_id,
            overrides=case.overrides_dict(),
            input_shape=list(case.input_shape) if case.input_shape else None,
            **values,
        )


def size_fields(shape: tuple[int, ...]) -> dict[str, Any]:
    """A case's ``input_size`` and ``input_shape`` for one size per axis (no shape where all sides agree)."""
    return {"input_size": shape[0], "input_shape": tuple(shape) if len(set(shape)) > 1 else None}
