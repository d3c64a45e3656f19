"""Seeded training of one UNet on a `SegmentationSet`, the way the paper trains it.

The loss only covers the pixels the network outputs: each training image is mirror-padded by half of
what the network loses (0 for padded variants), so a random input tile has its target — the window
under its output — inside the image, borders included. The loss is pixel-wise softmax cross-entropy,
weighted by the paper's weight map if asked. Everything random (initial weights, tiles, flips, warps,
dropout) follows one seed, and torch's deterministic algorithms are on where it has them. Another
library's network (``monai:BasicUNet``, ...) trains the same way, from its own initialisation.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from unet_bench.errors import BenchError, choices
from unet_bench.models.config import UNetConfig
from unet_bench.models.external import ExternalConfig
from unet_bench.models.geometry import check_input_size, output_size, spatial_shape
from unet_bench.models.registry import build_network
from unet_bench.quality.data import SegmentationSet
from unet_bench.quality.elastic import displacements, sample_points, warp
from unet_bench.quality.labels import separation_borders
from unet_bench.quality.settings import (
    DEFAULT_AUGMENT,
    DEFAULT_LR,
    DEFAULT_LR_SCHEDULE,
    DEFAULT_OPTIMIZER,
    DEFAULT_STEPS,
    INITS,
    OPTIMIZERS,
    SCHEDULES,
    WARMUP_SHARE,
    augment_choice,
)
from unet_bench.quality.weights import SIGMA, W0, weight_map
from unet_bench.record import DEFAULT_ELASTIC_SIGMA_PX


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
        augment: ``flips`` = random flips and 90° rotations of each tile; ``elastic`` = the paper's elastic
            warp (`elastic`) before them; ``none``. True and False (how records before the choice said it)
            mean ``flips`` and ``none``.
        elastic_sigma: the elastic warp's displacement std, px (the paper's 10).
        schedule: the learning rate over the steps: ``constant``, ``cosine`` (from ``lr`` down to 0 at
            the last step, so the last steps settle instead of jumping about the minimum), or
            ``warmup-cosine`` (a linear rise to ``lr`` over the first tenth, then cosine: a high rate that
            would otherwise kill a network without norms in its first steps).
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
    augment: str | bool = DEFAULT_AUGMENT
    elastic_sigma: float = DEFAULT_ELASTIC_SIGMA_PX
    init: str = "paper"
    schedule: str = DEFAULT_LR_SCHEDULE

    def __post_init__(self) -> None:
        object.__setattr__(self, "augment", augment_choice(self.augment))
        if self.schedule not in SCHEDULES:
            raise BenchError(f"schedule={self.schedule!r} is not valid; choose {choices(SCHEDULES)}")
        if self.optimizer not in OPTIMIZERS:
            raise BenchError(f"optimizer={self.optimizer!r} is not valid; choose {choices(OPTIMIZERS)}")
        if self.steps < 1 or self.batch < 1:
            raise BenchError(f"steps={self.steps}, batch={self.batch} is not valid; both must be at least 1")
        if self.init not in INITS:
            raise BenchError(f"init={self.init!r} is not valid; choose {choices(INITS)}")
        if self.lr is not None and not self.lr > 0:
            raise BenchError(f"lr={self.lr} is not valid; it must be positive")
        if not self.elastic_sigma > 0:
            raise BenchError(f"elastic_sigma={self.elastic_sigma} is not valid; it must be positive (px)")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


class TileSampler:
    """Random training tiles: an input window and the target and weight windows under its output."""

    def __init__(self, cfg: UNetConfig | ExternalConfig, data: SegmentationSet, tile_in: int,
                 settings: TrainSettings) -> None:
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
        self.instances = data.instances
        self.weights = [
            weight_map(m, inst, cfg.num_classes, settings.w0, settings.sigma)
            if settings.weight_map else np.ones(m.shape, np.float32)
            for m, inst in zip(data.masks, data.instances, strict=True)
        ]
        self.augment, self.elastic_sigma = settings.augment, settings.elastic_sigma

    def _window(self, rng: np.random.Generator, i: int, starts: list[int]) -> list[np.ndarray]:
        """Image, target and weight window of image ``i`` at ``starts``; with ``elastic``, all three
        resampled through one random field over the input window (its centre moves the target).

        The warped target is drawn from the warped instance labels, with a background border cut again
        where two objects meet: a warp that squeezes the 2 px border between touching cells would
        otherwise leave them joined in the target, teaching the network to merge them."""
        window = tuple(slice(s, s + self.out) for s in starts)
        if self.augment != "elastic":
            image = self.images[i][tuple(slice(s, s + self.tile_in) for s in starts)]
            return [image, self.masks[i][window], self.weights[i][window]]
        dims = len(starts)
        moved = displacements(rng, (self.tile_in,) * dims, sigma=self.elastic_sigma)
        top = (self.tile_in - self.out) // 2
        centre = moved[(slice(None),) + (slice(top, top + self.out),) * dims]
        image_at = sample_points((self.tile_in,) * dims, tuple(starts), moved)
        target_at = sample_points((self.out,) * dims, tuple(starts), centre)
        objects = warp(self.instances[i], target_at, 0)
        target = ((objects > 0) & ~separation_borders(objects)).astype(self.masks[i].dtype)
        return [warp(self.images[i], image_at, 3), target, warp(self.weights[i], target_at, 1)]

    def sample(self, rng: np.random.Generator, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs B×1×T×T, targets B×O×O, weights B×O×O) for T = tile_in, O = the output size (one more
        T or O axis for volumes)."""
        xs, ts, ws = [], [], []
        for _ in range(batch):
            i = int(rng.integers(len(self.images)))
            starts = [int(rng.integers(n - self.out + 1)) for n in self.masks[i].shape]
            tile = self._window(rng, i, starts)
            if self.augment != "none":  # input and target share their centre: one flip/rotation fits both
                turns, flip = int(rng.integers(4)), bool(rng.integers(2))
                tile = [np.rot90(a, turns, axes=(-2, -1)) for a in tile]
                tile = [a[..., ::-1] for a in tile] if flip else tile
                if tile[0].ndim == 3 and rng.integers(2):  # volumes: a flip of the first axis too
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


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """The learning rate of step ``step`` (0-based) of ``steps``, as a multiple of ``lr``: constant, cosine
    from 1 to 0 over the steps, or warmup-cosine (a linear rise over `WARMUP_SHARE` of the steps, from
    1/warm-up steps to 1, then cosine from 1 to 0 over the rest)."""
    warm = max(1, round(WARMUP_SHARE * steps)) if schedule == "warmup-cosine" else 0
    if step < warm:
        return (step + 1) / warm
    if schedule == "constant":
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


def make_schedule(optimizer: torch.optim.Optimizer, settings: TrainSettings) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning rate of each step, by `lr_factor`."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(settings.schedule, step, settings.steps))


Probe = Callable[[torch.nn.Module], dict[str, float]]  # scores of the model as it stands (eval mode)


@dataclass
class TrainResult:
    model: torch.nn.Module
    losses: list[float]  # the loss of every step
    time_s: float  # wall time of the steps (weight maps, model set-up and probes excluded)
    curve: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (steps done, probe's scores)


def train(
    cfg: UNetConfig | ExternalConfig, data: SegmentationSet, *, tile_in: int, seed: int,
    settings: TrainSettings = TrainSettings(), device: str = "cpu", probe: Probe | None = None,
    every: int = 0,
) -> TrainResult:
    """Train a fresh network of ``cfg`` for ``settings.steps`` steps on random ``tile_in`` px tiles of
    ``data``; with a ``probe``, score the model every ``every`` steps and after the last (the learning
    curve), its time left out of ``time_s``."""
    sampler = TileSampler(cfg, data, tile_in, settings)
    with deterministic():
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = build_network(cfg)
        if settings.init == "paper" and isinstance(cfg, UNetConfig):  # another library keeps its own
            paper_init(model)
        model = model.to(device).train()
        optimizer = make_optimizer(model, settings)
        schedule = make_schedule(optimizer, settings)
        losses: list[float] = []
        curve: list[tuple[int, dict[str, float]]] = []
        spent = 0.0
        for step in range(1, settings.steps + 1):
            start = time.perf_counter()
            inputs, targets, weights = (t.to(device) for t in sampler.sample(rng, settings.batch))
            loss = (F.cross_entropy(model(inputs), targets, reduction="none") * weights).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            spent += time.perf_counter() - start
            if not math.isfinite(losses[-1]):
                raise BenchError(
                    f"training diverged at step {step - 1} (loss {losses[-1]}); lower the learning rate "
                    f"(now {settings.learning_rate}) or use optimizer='adam'"
                )
            if probe is not None and ((every and step % every == 0) or step == settings.steps):
                curve.append((step, probe(model.eval())))
                model.train()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return TrainResult(model, losses, spent, curve)
