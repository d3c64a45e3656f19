"""Quality on a deployment runtime: what int8 (or the runtime itself) loses, seed by seed.

Each seed's network is trained exactly as a torch quality case trains it (the same seed gives the same
weights), scored in eager torch fp32, then exported at the training tile, quantized for int8 with
calibration tiles cut from the **training** images only, loaded in the runtime and scored on the same
validation images by the same overlap-tile inference. The record's scores are the runtime's; ``extra``
holds each seed's fp32 scores and the change per seed: a paired difference (same weights, same images),
so that what quantization loses is not confused with what another seed would have learned.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unet_bench.measure.counts import Counts, count
from unet_bench.measure.fields import counts_values
from unet_bench.measure.network import check_case
from unet_bench.measure.onnx_export import export_onnx
from unet_bench.measure.quantize import quantization_method, quantize_int8
from unet_bench.measure.runtimes import Session, load
from unet_bench.models.config import UNetConfig
from unet_bench.models.geometry import input_shape
from unet_bench.models.registry import get_config
from unet_bench.models.unet import UNet
from unet_bench.quality.data import SegmentationSet
from unet_bench.quality.evaluate import SCORES, default_halo, score, segment
from unet_bench.quality.synthetic import synthetic_task
from unet_bench.quality.tiling import mirror_pad, tile_grid
from unet_bench.quality.train import TrainSettings, train
from unet_bench.record import Case, Record

CALIBRATION_TILES = 8  # training tiles the int8 ranges are calibrated on


class SessionNetwork(nn.Module):
    """A loaded runtime session where overlap-tile inference expects a UNet: its config gives the
    geometry, and each tile runs through the session one at a time (the graph takes a batch of one)."""

    def __init__(self, cfg: UNetConfig, session: Session) -> None:
        super().__init__()
        self.cfg, self.session = cfg, session
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)  # says which device tiles go to

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.from_numpy(np.array(self.session.run(tile[None].numpy()))) for tile in tiles])


def calibration_tiles(data: SegmentationSet, cfg: UNetConfig, tile_in: int,
                      tiles: int = CALIBRATION_TILES) -> list[np.ndarray]:
    """Input tiles of the training images (mirror-padded as inference pads them), one per image."""
    grid = tile_grid(cfg, tile_in, default_halo(cfg, tile_in))
    out = []
    for image in data.images[:tiles]:
        padded = mirror_pad(image[None], grid)
        tile = np.ascontiguousarray(padded[:, :tile_in, :tile_in], dtype=np.float32)
        out.append(tile.repeat(cfg.in_channels, axis=0)[None])
    return out


def measure_runtime_quality(case: Case, counts: Counts | None = None) -> Record:
    """Train ``case``'s variant ``case.seeds`` times and score each model in torch and in the runtime."""
    check_case(case)
    cfg = get_config(case.variant, **case.overrides_dict())
    if counts is None:
        counts = count(UNet(cfg), input_shape(case.size, cfg.in_channels, cfg.spatial_dims))
    data = synthetic_task(0)
    tile_in, halo = case.input_size, default_halo(cfg, case.input_size)
    settings = TrainSettings(**{k: v for k, v in (("steps", case.steps), ("lr", case.lr),
                                                  ("optimizer", case.optimizer)) if v is not None},
                             batch=case.batch, weight_map=case.weight_map)
    threads = case.threads or torch.get_num_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch_scores, runtime_scores, session = _score_seeds(case, cfg, data, settings, tile_in, halo, threads)
    finally:
        torch.set_num_threads(before)
    values = counts_values(counts)
    extra = values.pop("extra")
    record = Record.for_case(case, **values, **_summary(runtime_scores), quality_seeds=case.seeds,
                             train_steps=settings.steps, runtime_version=session.version,
                             provider=session.provider, provider_options=session.options,
                             quantization=quantization_method(CALIBRATION_TILES) if case.dtype == "int8" else None)
    record.threads_used = threads
    record.config = cfg.to_dict()
    record.extra.update(extra)
    record.extra.update({f"{name}_per_seed": runtime_scores[name] for name in SCORES})
    record.extra.update({f"{name}_torch_fp32_per_seed": torch_scores[name] for name in SCORES})
    record.extra.update({f"{name}_change_per_seed": [r - t for r, t in zip(runtime_scores[name], torch_scores[name],
                                                                             strict=True)] for name in SCORES})
    record.extra["runtime_quality_method"] = (
        f"each seed trained in torch, then scored in eager torch fp32 and in {case.runtime} {case.dtype} on "
        "the same validation images; *_change_per_seed = runtime - torch for the same weights")
    return record


def _score_seeds(case: Case, cfg: UNetConfig, data: Any, settings: TrainSettings, tile_in: int, halo: int,
                 threads: int) -> tuple[dict[str, list[float]], dict[str, list[float]], Session]:
    torch_scores: dict[str, list[float]] = {name: [] for name in SCORES}
    runtime_scores: dict[str, list[float]] = {name: [] for name in SCORES}
    session = None
    with tempfile.TemporaryDirectory(prefix="unet-bench-") as folder:
        for seed in range(case.seeds):
            model = train(cfg, data.train, tile_in=tile_in, seed=seed, settings=settings, device="cpu").model.eval()
            for name, value in score(segment(model, data.val, tile_in=tile_in, halo=halo, batch=1),
                                     data.val).items():
                torch_scores[name].append(value)
            path = Path(folder) / f"seed{seed}.onnx"
            export_onnx(model, torch.zeros((1, cfg.in_channels, tile_in, tile_in)), path)
            if case.dtype == "int8":
                quantize_int8(path, path.with_suffix(".int8.onnx"), calibration_tiles(data.train, cfg, tile_in))
                path = path.with_suffix(".int8.onnx")
            session = load(case.runtime, path, "cpu", threads, case.dtype)
            network = SessionNetwork(cfg, session)
            for name, value in score(segment(network, data.val, tile_in=tile_in, halo=halo, batch=1),
                                     data.val).items():
                runtime_scores[name].append(value)
    return torch_scores, runtime_scores, session


def _summary(scores: dict[str, list[float]]) -> dict[str, float]:
    return {f"{name}_{part}": f(values) for name, values in scores.items()
            for part, f in (("mean", statistics.fmean), ("std", lambda v: statistics.stdev(v) if len(v) > 1 else 0.0))}
