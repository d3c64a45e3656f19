"""`evaluate_quality(cfg)`: train one variant with several seeds on the same data and score it.

Every variant is trained on tiles with the same *output* size (``tile_out``), so each step supervises the
same number of pixels whatever the variant loses to valid convolutions; a valid-conv variant pays for its
lost border with larger input tiles, which shows up as training time. Validation images are segmented by
overlap-tile inference (`tiling.predict_tiled`) with the training tile, and scored by Dice and IoU of the
object class, pooled over the validation split, and by the instance metrics. The same scoring runs every
``curve_every`` steps during training: the learning curve, which shows whether a run has plateaued (its
last point is the final score, so it costs only the points before it).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from unet_bench.errors import BenchError
from unet_bench.models.config import UNetConfig
from unet_bench.models.external import ExternalConfig
from unet_bench.models.geometry import nearest_valid_sizes, output_size, size_loss
from unet_bench.quality.baselines import all_foreground_dice, tune_threshold
from unet_bench.quality.data import SegmentationSet, Split
from unet_bench.quality.instances import instance_scores
from unet_bench.quality.metrics import dice, iou
from unet_bench.quality.settings import (
    CURVE_POINTS,
    DEFAULT_AUGMENT,
    DEFAULT_BATCH,
    DEFAULT_LR_SCHEDULE,
    DEFAULT_OPTIMIZER,
    DEFAULT_STEPS,
    DEFAULT_TILE_OUT,
    MIN_OBJECT_PX,
)
from unet_bench.quality.synthetic import synthetic_task
from unet_bench.quality.tiling import predict_tiled, tile_grid
from unet_bench.quality.train import TrainSettings, train
from unet_bench.quality.volume import volume_task
from unet_bench.record import DEFAULT_ELASTIC_SIGMA_PX, DEFAULT_SEEDS


def training_tile(cfg: UNetConfig | ExternalConfig, tile_out: int) -> int:
    """The smallest valid input tile whose output is at least ``tile_out`` px."""
    if tile_out < 1:
        raise BenchError(f"tile_out={tile_out} is not valid; it must be a positive number of pixels")
    above = nearest_valid_sizes(cfg, tile_out + size_loss(cfg))[1]
    assert above is not None  # valid sizes repeat every 2^depth px, so one lies above any size
    return above


def default_halo(cfg: UNetConfig | ExternalConfig, tile_in: int) -> int:
    """Output px dropped per tile side at inference: 0 for valid convs (nothing they output saw the
    tile's edge), a quarter of the tile's output for padded ones (whose edges saw zero padding)."""
    return 0 if size_loss(cfg) else output_size(cfg, tile_in) // 4


def segment(model: torch.nn.Module, data: SegmentationSet, *, tile_in: int, halo: int, batch: int) -> list[np.ndarray]:
    """Predicted class maps of every image in ``data`` (overlap-tile inference, eval mode)."""
    model.eval()
    return [predict_tiled(model, image, tile_in=tile_in, halo=halo, batch=batch).argmax(0).numpy()
            for image in data.images]


SCORES = ("dice", "iou", "object_f1", "map", "rand_error")


def score(preds: list[np.ndarray], data: SegmentationSet) -> dict[str, float]:
    """Every quality score of predicted class maps against ``data``: pixel Dice and IoU, instance metrics
    (predicted objects under `MIN_OBJECT_PX` dropped)."""
    return {"dice": dice(preds, data.masks), "iou": iou(preds, data.masks),
            **instance_scores(preds, data.instances, MIN_OBJECT_PX)}


def _std(values: list[float]) -> float:
    """Sample std (n − 1): the spread a user should expect from another seed; 0 for one seed."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def curve_step(steps: int) -> int:
    """Steps between learning-curve points by default: `CURVE_POINTS` points over the run."""
    return max(1, steps // CURVE_POINTS)


def curve_gain(curve_steps: list[int], values: list[float]) -> float | None:
    """What a score gained over the last quarter of the steps: the last point minus the point nearest
    3/4 of the way; near 0 means the run has plateaued. None for a curve of one point."""
    if len(curve_steps) < 2:
        return None
    quarter = min(range(len(curve_steps) - 1), key=lambda k: abs(curve_steps[k] - 0.75 * curve_steps[-1]))
    return values[-1] - values[quarter]


def evaluate_quality(
    cfg: UNetConfig | ExternalConfig, *, seeds: int = DEFAULT_SEEDS, steps: int = DEFAULT_STEPS,
    batch: int = DEFAULT_BATCH, tile_out: int = DEFAULT_TILE_OUT, tile_in: int | None = None,
    halo: int | None = None, optimizer: str = DEFAULT_OPTIMIZER, lr: float | None = None,
    weight_map: bool = True, init: str = "paper", augment: str | bool = DEFAULT_AUGMENT,
    elastic_sigma: float = DEFAULT_ELASTIC_SIGMA_PX, schedule: str = DEFAULT_LR_SCHEDULE,
    curve_every: int | None = None, train_images: int | None = None,
    data: Split | None = None, device: str = "cpu", threads: int | None = None,
    deploy: Callable[[torch.nn.Module, SegmentationSet], torch.nn.Module] | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` with seeds 0 … seeds−1 and score each model on the validation split.

    Args:
        seeds: number of training seeds (initial weights, tiles, flips); the data is the same for all.
        steps, batch, optimizer, lr, weight_map, init, augment, elastic_sigma, schedule: see `TrainSettings` (another
            library's network keeps its own initialisation).
        tile_out: output side of a training tile; the input is the smallest valid tile giving at least that.
        tile_in: the input tile side instead (must be valid for ``cfg``); overrides ``tile_out``.
        halo: output px dropped per tile side at inference; None = `default_halo`.
        curve_every: score the validation split every this many steps (and after the last): the learning
            curve; None = `curve_step` (10 points), 0 = only after the last step.
        train_images: train on the first this many images of the training split only (what augmentation
            buys shows with few); None = all. Validation is the same either way.
        data: train/validation images; None = ``synthetic_task(0)`` (16 + 8 images of 128 px), or for a
            3-D network ``volume_task(0)`` (8 + 4 volumes of 48 voxels a side).
        device: ``cpu`` or ``cuda``.
        threads: torch intra-op threads for the run (restored after); None = leave torch's setting.
            On a busy CPU, 1 thread can be far faster than 2 for small widths (threads spin-wait).
        deploy: each trained model (and the training split it may calibrate on) to what is also scored on
            the same validation images, e.g. the network exported and quantized; its scores go to
            ``extra["<score>_deployed_per_seed"]``.

    Returns:
        ``Record`` fields — ``<score>_mean`` and ``<score>_std`` (sample std over seeds) for each of
        `SCORES`, the baselines ``dice_all_foreground`` and ``<score>_threshold`` (the smoothing-plus-
        threshold rule tuned on the training split, `baselines.tune_threshold`), quality_seeds,
        train_time_s (mean wall time to train one model), train_steps, the learning curve (curve_steps,
        curve_dice_mean, curve_object_f1_mean and their gains over the last quarter) — and ``extra``: the
        per-seed values and curves,
        the loss at the start and end of training, the threshold rule and the settings used.
        ``Record.for_case(case, **result)`` takes it as it is.
    """
    if seeds < 1:
        raise BenchError(f"seeds={seeds} is not valid; train at least one seed")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError("device='cuda' is not available here; use device='cpu'")
    settings = TrainSettings(steps=steps, batch=batch, optimizer=optimizer, lr=lr, weight_map=weight_map,
                             init=init, augment=augment, elastic_sigma=elastic_sigma, schedule=schedule)
    if curve_every is not None and curve_every < 0:
        raise BenchError(f"curve_every={curve_every} is not valid; give 0 (no curve) or a number of steps")
    every = curve_step(steps) if curve_every is None else curve_every
    if tile_in is None:
        tile_in = training_tile(cfg, tile_out)
    halo = default_halo(cfg, tile_in) if halo is None else halo
    tile_grid(cfg, tile_in, halo)  # refuse a bad tile or halo before any training
    if threads is not None and threads < 1:
        raise BenchError(f"threads={threads} is not valid; give at least 1")
    if data is None:
        data = volume_task(0) if cfg.spatial_dims == 3 else synthetic_task(0)
    if train_images is not None:
        if not 0 < train_images <= len(data.train):
            raise BenchError(f"train_images={train_images} is not valid; the training split has "
                             f"{len(data.train)} images (give 1 to {len(data.train)})")
        data = Split(data.train.subset(range(train_images)), data.val)
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        return _evaluate(cfg, data, seeds, settings, tile_in, halo, every, device, deploy)
    finally:
        torch.set_num_threads(before)


def _evaluate(
    cfg: UNetConfig | ExternalConfig, data: Split, seeds: int, settings: TrainSettings, tile_in: int, halo: int,
    every: int, device: str, deploy: Callable[[torch.nn.Module, SegmentationSet], torch.nn.Module] | None,
) -> dict[str, Any]:
    steps, batch = settings.steps, settings.batch
    times, loss_start, loss_end = [], [], []
    scores: dict[str, list[float]] = {name: [] for name in SCORES}
    deployed: dict[str, list[float]] = {name: [] for name in SCORES}
    curves: dict[str, list[list[float]]] = {"dice": [], "object_f1": []}

    def probe(model: torch.nn.Module) -> dict[str, float]:
        return score(segment(model, data.val, tile_in=tile_in, halo=halo, batch=batch), data.val)

    start = time.perf_counter()
    for seed in range(seeds):
        result = train(cfg, data.train, tile_in=tile_in, seed=seed, settings=settings, device=device,
                       probe=probe, every=every)
        for name, value in result.curve[-1][1].items():  # the last point is the trained model's score
            scores[name].append(value)
        for name, value in (probe(deploy(result.model, data.train)) if deploy else {}).items():
            deployed[name].append(value)
        for name, values in curves.items():
            values.append([point[name] for _, point in result.curve])
        curve_steps = [step for step, _ in result.curve]
        times.append(result.time_s)
        tenth = max(1, steps // 10)
        loss_start.append(float(np.mean(result.losses[:tenth])))
        loss_end.append(float(np.mean(result.losses[-tenth:])))
    curve_means = {name: [statistics.fmean(v) for v in zip(*values, strict=True)] for name, values in curves.items()}
    rule = tune_threshold(data.train)
    threshold = score([rule.predict(image) for image in data.val.images], data.val)
    return {
        **{f"{name}_{part}": f(values) for name, values in scores.items()
           for part, f in (("mean", statistics.fmean), ("std", _std))},
        "dice_all_foreground": all_foreground_dice(data.val.masks),
        **{f"{name}_threshold": value for name, value in threshold.items()},
        "quality_seeds": seeds,
        "train_time_s": statistics.fmean(times),
        "train_steps": steps,
        "curve_steps": curve_steps,
        **{f"curve_{name}_mean": values for name, values in curve_means.items()},
        **{f"curve_{name}_gain": curve_gain(curve_steps, values) for name, values in curve_means.items()},
        "extra": {
            **{f"{name}_per_seed": values for name, values in scores.items()},
            **{f"{name}_deployed_per_seed": values for name, values in deployed.items() if deploy},
            **{f"curve_{name}_per_seed": values for name, values in curves.items()},
            **{f"curve_{name}_gain_per_seed": [curve_gain(curve_steps, v) for v in values]
               for name, values in curves.items()},
            "train_time_s_per_seed": times,
            "loss_start_per_seed": loss_start,  # mean loss over the first tenth of the steps
            "loss_end_per_seed": loss_end,  # ... and over the last tenth
            "threshold_rule": {"sigma": rule.sigma, "threshold": rule.threshold, "brighter": rule.brighter,
                               "train_dice": rule.train_dice},
            "val_foreground_fraction": data.val.foreground_fraction(),
            "quality_total_s": time.perf_counter() - start,
            "tile_in": tile_in,
            "tile_out": output_size(cfg, tile_in),
            "infer_halo": halo,
            "min_object_px": MIN_OBJECT_PX,
            "batch": batch,
            "optimizer": settings.optimizer,
            "lr": settings.learning_rate,
            "momentum": settings.momentum if settings.optimizer == "sgd" else None,
            "weight_map": settings.weight_map,
            "init": settings.init if isinstance(cfg, UNetConfig) else "library",
            "augment": settings.augment,
            "elastic_sigma": settings.elastic_sigma if settings.augment == "elastic" else None,
            "schedule": settings.schedule,
            "threads": torch.get_num_threads(),
            "train_images": len(data.train),
            "val_images": len(data.val),
        },
    }
