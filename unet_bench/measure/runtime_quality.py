"""Quality on a deployment runtime: what int8 (or the runtime itself) loses, seed by seed.

Each seed's network is trained exactly as a torch quality case trains it (`quality_case.measure_quality`:
the same seed gives the same weights) and scored in eager torch fp32; then it is exported at the training
tile, quantized for int8 with calibration tiles cut from the **training** images only, loaded in the
runtime and scored on the same validation images by the same overlap-tile inference. The record's scores
are the runtime's; ``extra`` holds each seed's torch fp32 scores and the change per seed: a paired
difference (same weights, same images), so that what quantization loses is not confused with what another
seed would have learned.
"""

from __future__ import annotations

import statistics
import tempfile
from itertools import count as counter
from pathlib import Path

import numpy as np
import torch
from torch import nn

from unet_bench.measure.counts import Counts
from unet_bench.measure.network import check_case, in_channels_of, spatial_dims_of
from unet_bench.measure.onnx_export import export_onnx
from unet_bench.measure.quality_case import measure_quality
from unet_bench.measure.quantize import quantization_method, quantize_int8
from unet_bench.measure.runtimes import Session, load
from unet_bench.models.geometry import input_shape
from unet_bench.quality.data import SegmentationSet
from unet_bench.quality.evaluate import SCORES, default_halo
from unet_bench.quality.tiling import mirror_pad, tile_grid
from unet_bench.record import Case, Record

CALIBRATION_TILES = 8  # training tiles the int8 ranges are calibrated on


class SessionNetwork(nn.Module):
    """A loaded runtime session where overlap-tile inference expects the trained network: its config
    gives the geometry, and each tile runs through the session one at a time (the graph takes one)."""

    def __init__(self, cfg: object, session: Session) -> None:
        super().__init__()
        self.cfg, self.session = cfg, session
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)  # says which device tiles go to

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.from_numpy(np.array(self.session.run(tile[None].numpy()))) for tile in tiles])


def calibration_tiles(data: SegmentationSet, cfg: object, tile_in: int, channels: int,
                      tiles: int = CALIBRATION_TILES) -> list[np.ndarray]:
    """Input tiles of the training images (mirror-padded as inference pads them), one per image."""
    grid = tile_grid(cfg, tile_in, default_halo(cfg, tile_in))
    out = []
    for image in data.images[:tiles]:
        padded = mirror_pad(image[None], grid)
        corner = (slice(None), *[slice(0, tile_in)] * (padded.ndim - 1))
        tile = np.ascontiguousarray(padded[corner], dtype=np.float32)
        out.append(tile.repeat(channels, axis=0)[None])
    return out


def measure_runtime_quality(case: Case, counts: Counts | None = None) -> Record:
    """Train ``case``'s variant ``case.seeds`` times and score each model in torch and on the runtime."""
    check_case(case)
    threads = case.threads or torch.get_num_threads()
    sessions: list[Session] = []
    seeds = counter()
    with tempfile.TemporaryDirectory(prefix="unet-bench-") as folder:

        def deploy(model: nn.Module, train: SegmentationSet) -> nn.Module:
            """The trained ``model`` exported (int8: quantized on training tiles) and loaded in the runtime."""
            channels, dims = in_channels_of(model), spatial_dims_of(model)
            path = Path(folder) / f"seed{next(seeds)}.onnx"
            export_onnx(model, torch.zeros(input_shape(case.input_size, channels, dims)), path)
            if case.dtype == "int8":
                tiles = calibration_tiles(train, model.cfg, case.input_size, channels)
                quantize_int8(path, path.with_suffix(".int8.onnx"), tiles)
                path = path.with_suffix(".int8.onnx")
            sessions.append(load(case.runtime, path, "cpu", threads, case.dtype))
            return SessionNetwork(model.cfg, sessions[-1])

        record = measure_quality(case, counts, deploy)
    extra = record.extra
    for name in SCORES:
        trained, deployed = extra.pop(f"{name}_per_seed"), extra.pop(f"{name}_deployed_per_seed")
        extra[f"{name}_torch_fp32_per_seed"], extra[f"{name}_per_seed"] = trained, deployed
        extra[f"{name}_change_per_seed"] = [d - t for d, t in zip(deployed, trained, strict=True)]
        record.set(**{f"{name}_mean": statistics.fmean(deployed),
                      f"{name}_std": statistics.stdev(deployed) if len(deployed) > 1 else 0.0})
    session = sessions[-1]
    record.set(runtime_version=session.version, provider=session.provider, provider_options=session.options,
               quantization=quantization_method(CALIBRATION_TILES) if case.dtype == "int8" else None)
    extra["runtime_quality_method"] = (
        f"each seed trained in torch, then scored in eager torch fp32 and in {case.runtime} {case.dtype} on "
        "the same validation images; <score>_change_per_seed = runtime - torch for the same weights; the "
        "learning curve is torch's")
    return record
