"""Seeded training of one UNet on a `SegmentationSet`, the way the paper trains it.

The loss only covers the pixels the network outputs: each training image is mirror-padded by half of
what the network loses (0 for padded variants), so a random input tile has its target — the window
under its output — inside the image, borders included. The loss is pixel-wise softmax cross-entropy,
weighted by the paper's weight map if asked. Everything random (initial weights, tiles, flips, dropout)
follows one seed, and torch's deterministic algorithms are on where it has them.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from unet_bench.errors import BenchError, choices
from unet_bench.models.config import UNetConfig
from unet_bench.models.geometry import check_input_size, output_size, spatial_shape
from unet_bench.models.unet import UNet
from unet_bench.quality.data import SegmentationSet
from unet_bench.quality.settings import DEFAULT_LR, DEFAULT_OPTIMIZER, DEFAULT_STEPS, INITS, OPTIMIZERS
from unet_bench.quality.weights import SIGMA, W0, weight_map


@dataclass(frozen=True)
class TrainSettings:
    """How to train; the defaults are the paper's where it states them.

    Args:
        steps: optimiser steps.
        batch: tiles per step (the paper uses 1 large tile; small tiles in a batch cost the same).
        optimizer: ``adam`` (the default: it learns more in a short run) or ``sgd`` (the paper's, with
            ``momentum``).
        lr: learning rate; None = ``DEFAULT_LR[optimizer]``.
        momentum: SGD momentum (paper: 0.99, so each step averages about the last 100 gradients).
        weight_map: weight the loss by the paper's w(x) (class balance + borders between objects).
        w0, sigma: the border term's height and width (paper: 10 and about 5 px).
        augment: random flips and 90° rotations of each tile (the paper uses more, e.g. elastic warps).
        init: ``paper`` = Gaussian weights with std √(2/N), N the inputs of one output unit, zero biases
            (the paper's, which it calls "extremely important" for this deep a network); ``torch`` = the
            layers' own default initialisation.
    """

    steps: int = DEFAULT_STEPS
    batch: int = 4
    optimizer: str = DEFAULT_OPTIMIZER
    lr: float | None = None
    momentum: float = 0.99
    weight_map: bool = True
    w0: float = W0
    sigma: float = SIGMA
    augment: bool = True
    init: str = "paper"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise BenchError(f"optimizer={self.optimizer!r} is not valid; choose {choices(OPTIMIZERS)}")
        if self.steps < 1 or self.batch < 1:
            raise BenchError(f"steps={self.steps}, batch={self.batch} is not valid; both must be at least 1")
        if self.init not in INITS:
            raise BenchError(f"init={self.init!r} is not valid; choose {choices(INITS)}")
        if self.lr is not None and not self.lr > 0:
            raise BenchError(f"lr={self.lr} is not valid; it must be positive")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


class TileSampler:
    """Random training tiles: an input window and the target and weight windows under its output."""

    def __init__(self, cfg: UNetConfig, data: SegmentationSet, tile_in: int, settings: TrainSettings) -> None:
        if cfg.in_channels != 1 or cfg.num_classes < 2:
            raise BenchError(
                f"in_channels={cfg.in_channels}, num_classes={cfg.num_classes} cannot train on "
                "single-channel object/background masks; use in_channels=1 and num_classes >= 2"
            )
        check_input_size(cfg, *spatial_shape(cfg, tile_in))
        if data.images[0].ndim != cfg.spatial_dims:
            raise BenchError(f"a {cfg.spatial_dims}-D network cannot train on {data.images[0].ndim}-D images; "
                             "give it data with as many axes (volumes for a 3-D network)")
        self.tile_in = tile_in
        self.out = out = output_size(cfg, tile_in)
        small = [img.shape for img in data.images if min(img.shape) < out]
        if small:
            raise BenchError(
                f"a training image of {'x'.join(map(str, small[0]))} px is smaller than the {out} px output "
                "tile; use a smaller tile or larger images"
            )
        top = (tile_in - out) // 2
        pad = ((top, tile_in - out - top),) * cfg.spatial_dims
        self.images = [np.pad(img, pad, mode="reflect") for img in data.images]
        self.masks = data.masks
        self.weights = [
            weight_map(m, inst, cfg.num_classes, settings.w0, settings.sigma)
            if settings.weight_map else np.ones(m.shape, np.float32)
            for m, inst in zip(data.masks, data.instances, strict=True)
        ]
        self.augment = settings.augment

    def sample(self, rng: np.random.Generator, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs B×1×T×T, targets B×O×O, weights B×O×O) for T = tile_in, O = the output size (one more
        T or O axis for volumes)."""
        xs, ts, ws = [], [], []
        for _ in range(batch):
            i = int(rng.integers(len(self.images)))
            starts = [int(rng.integers(n - self.out + 1)) for n in self.masks[i].shape]
            window = tuple(slice(s, s + self.out) for s in starts)
            image = self.images[i][tuple(slice(s, s + self.tile_in) for s in starts)]
            tile = [image, self.masks[i][window], self.weights[i][window]]
            if self.augment:  # input and target share their centre, so the same flip/rotation fits both
                turns, flip = int(rng.integers(4)), bool(rng.integers(2))
                tile = [np.rot90(a, turns, axes=(-2, -1)) for a in tile]
                tile = [a[..., ::-1] for a in tile] if flip else tile
                if image.ndim == 3 and rng.integers(2):  # volumes: a flip of the first axis too
                    tile = [a[::-1] for a in tile]
            for store, a in zip((xs, ts, ws), tile, strict=True):
                store.append(np.ascontiguousarray(a))
        return (torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ts)),
                torch.from_numpy(np.stack(ws)))


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic torch algorithms (warning, not failing, where an op has none), restored afterwards."""
    before = (
        torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]


@torch.no_grad()
def paper_init(model: torch.nn.Module) -> None:
    """std √(2/N) Gaussian weights, N = inputs feeding one output unit; zero biases (He et al. 2015).

    For a conv N = C_in·k² (k³ in 3-D); for the 2x2 stride-2 up-conv each output pixel sees one tap per
    input channel, so N = C_in·(k / stride)².
    """
    for module in model.modules():
        if isinstance(module, torch.nn.modules.conv._ConvTransposeNd):
            taps = math.prod(k // s for k, s in zip(module.kernel_size, module.stride, strict=True))
            n = module.in_channels * max(taps, 1)
        elif isinstance(module, torch.nn.modules.conv._ConvNd):
            n = module.in_channels // module.groups * math.prod(module.kernel_size)
        else:
            continue
        module.weight.normal_(0, math.sqrt(2 / n))
        if module.bias is not None:
            module.bias.zero_()


def make_optimizer(model: torch.nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    if settings.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    return torch.optim.SGD(model.parameters(), lr=settings.learning_rate, momentum=settings.momentum)


@dataclass
class TrainResult:
    model: UNet
    losses: list[float]  # the loss of every step
    time_s: float  # wall time of the steps (weight maps and model set-up excluded)


def train(
    cfg: UNetConfig, data: SegmentationSet, *, tile_in: int, seed: int,
    settings: TrainSettings = TrainSettings(), device: str = "cpu",
) -> TrainResult:
    """Train a fresh UNet(cfg) for ``settings.steps`` steps on random ``tile_in`` px tiles of ``data``."""
    sampler = TileSampler(cfg, data, tile_in, settings)
    with deterministic():
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = UNet(cfg)
        if settings.init == "paper":
            paper_init(model)
        model = model.to(device).train()
        optimizer = make_optimizer(model, settings)
        losses = []
        start = time.perf_counter()
        for step in range(settings.steps):
            inputs, targets, weights = (t.to(device) for t in sampler.sample(rng, settings.batch))
            loss = (F.cross_entropy(model(inputs), targets, reduction="none") * weights).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):
                raise BenchError(
                    f"training diverged at step {step} (loss {losses[-1]}); lower the learning rate "
                    f"(now {settings.learning_rate}) or use optimizer='adam'"
                )
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return TrainResult(model, losses, time.perf_counter() - start)
