"""`UNetConfig`: every design factor of a UNet in one frozen, hashable object.

The defaults are the network of Ronneberger et al. (2015). A variant is this config with fields changed,
so an ablation is a diff of configs, and a results record can store the whole network as a plain dict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from unet_bench.errors import BenchError, choices

PADDINGS = ("valid", "same")
UPSAMPLES = ("transposed", "bilinear", "nearest", "pixelshuffle")
SKIPS = ("concat", "add", "none")
NORMS = ("none", "batch", "instance", "group")
ACTIVATIONS = ("relu", "leaky_relu", "gelu")
SPATIAL_DIMS = (2, 3)
CHANNEL_DOUBLINGS = ("after-pool", "before-pool")
DOWNSAMPLES = ("maxpool", "strided")
# Limits that keep every answer instant and every network buildable: the paper has depth 4 and 1024
# channels at its widest; sizes (geometry) grow as 2^depth and parameters as the widest width squared.
MAX_DEPTH = 10
MAX_CHANNELS = 16384  # in any layer: in_channels, num_classes, the bottleneck's base_width x 2^depth
MAX_SIZE = 65536  # input side, in pixels


@dataclass(frozen=True)
class UNetConfig:
    """Every factor of the network; defaults are the paper's.

    Args:
        in_channels: channels of the input image (paper: 1, grey-scale EM).
        num_classes: channels of the 1x1 head (paper: 2, cell / border-and-background).
        depth: number of 2x2 max-poolings (paper: 4, so five resolution levels).
        base_width: channels at the first level, doubled at every pooling (paper: 64 → 1024).
        padding: ``valid`` = unpadded 3x3 convs (each loses 2 px); ``same`` = zero-padded by 1.
        upsample: ``transposed`` = 2x2 stride-2 up-conv (paper); ``bilinear`` / ``nearest`` = x2
            interpolation then a 1x1 conv C → C/2; ``pixelshuffle`` = 1x1 conv C → 2C then PixelShuffle(2).
        skip: ``concat`` = centre-crop the encoder map and concatenate it (paper); ``add`` = crop and add
            (both C/2 channels); ``none`` = no skip connections.
        norm: normalisation after each 3x3 conv, before the activation.
        norm_groups: groups for ``norm="group"`` (gcd with the channel count, so any width works).
        activation: non-linearity after each 3x3 conv (``leaky_relu`` uses slope 0.01).
        dropout: drop probability at the end of the contracting path (after the bottleneck convs);
            the paper uses dropout there, 0 disables it.
        bias: whether the 3x3 convs carry a bias (the up-convs and the head always do).
        spatial_dims: 2 for images, 3 for volumes (3x3x3 convs, 2x2x2 pooling and up-convs, linear
            interpolation becomes trilinear); every other field means the same in both.
        channel_doubling: where a level doubles its channels. ``after-pool`` (paper): the first conv after
            each pooling doubles, the up-conv halves. ``before-pool`` (Çiçek et al. 2016, 3-D U-Net): the
            second conv before each pooling doubles (base_width 32 gives 32-64, 64-128, ...), and the
            up-conv keeps its channels (it halves them only where ``skip="add"`` needs matching maps).
        residual: add a shortcut around each double conv (its input centre-cropped to the output, through
            a 1x1 conv where the channels change), as in nnU-Net's residual encoder and MONAI's units.
        downsample: ``maxpool`` = 2x2 max-pool (paper); ``strided`` = 3x3 conv with stride 2 and padding 1
            (nnU-Net, MONAI). Both halve an even size, so the valid sizes are the same; the receptive
            field is not (the strided conv reads 3 px where the pool reads 2).
        attention: additive attention gates on the skips (Oktay et al. 2018): the cropped encoder map is
            scaled by sigmoid(psi(relu(W_x x + W_g g))) with g the up-sampled decoder map, before merging.
    """

    in_channels: int = 1
    num_classes: int = 2
    depth: int = 4
    base_width: int = 64
    padding: str = "valid"
    upsample: str = "transposed"
    skip: str = "concat"
    norm: str = "none"
    norm_groups: int = 32
    activation: str = "relu"
    dropout: float = 0.0
    bias: bool = True
    spatial_dims: int = 2
    channel_doubling: str = "after-pool"
    residual: bool = False
    downsample: str = "maxpool"
    attention: bool = False

    def __post_init__(self) -> None:
        for name, allowed in (
            ("padding", PADDINGS),
            ("upsample", UPSAMPLES),
            ("skip", SKIPS),
            ("norm", NORMS),
            ("activation", ACTIVATIONS),
            ("spatial_dims", SPATIAL_DIMS),
            ("channel_doubling", CHANNEL_DOUBLINGS),
            ("downsample", DOWNSAMPLES),
        ):
            if getattr(self, name) not in allowed:
                raise BenchError(f"{name}={getattr(self, name)!r} is not valid; choose one of {choices(allowed)}")
        for name in ("in_channels", "num_classes", "depth", "base_width", "norm_groups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BenchError(f"{name}={value!r} is not valid; it must be a positive integer")
        if self.depth > MAX_DEPTH:
            raise BenchError(f"depth={self.depth} is over the limit of {MAX_DEPTH} poolings")
        for name in ("in_channels", "num_classes", "base_width", "norm_groups"):
            if getattr(self, name) > MAX_CHANNELS:
                raise BenchError(f"{name}={getattr(self, name)} is over the limit of {MAX_CHANNELS} channels")
        if self.widths()[-1] > MAX_CHANNELS:
            raise BenchError(f"base_width={self.base_width} at depth={self.depth} gives {self.widths()[-1]} "
                             f"channels at the bottleneck, over the limit of {MAX_CHANNELS}")
        if self.base_width % 2:
            raise BenchError(f"base_width={self.base_width} is not valid; it must be even (up-convs halve it)")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise BenchError(f"dropout={self.dropout!r} is not valid; it must be a number in [0, 1)")
        for name in ("bias", "residual", "attention"):
            if not isinstance(getattr(self, name), bool):
                raise BenchError(f"{name}={getattr(self, name)!r} is not valid; it must be true or false")
        if self.spatial_dims == 3 and self.upsample == "pixelshuffle":
            raise BenchError("upsample='pixelshuffle' is 2-D only; for spatial_dims=3 choose one of "
                             f"{choices(u for u in UPSAMPLES if u != 'pixelshuffle')}")
        if self.attention and self.skip == "none":
            raise BenchError("attention=True gates the skips, so it needs skip='concat' or skip='add'")

    def widths(self) -> list[int]:
        """Output channels per level, from the first level down to the bottleneck (paper: 64 ... 1024;
        ``before-pool`` with base_width 32: 64 ... 512)."""
        shift = 1 if self.channel_doubling == "before-pool" else 0
        return [self.base_width * 2 ** (level + shift) for level in range(self.depth + 1)]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of every field (what results records store)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        """Build from a dict; unknown keys are refused with the list of valid ones."""
        check_keys(data)
        return cls(**data)

    def replace(self, **overrides: Any) -> UNetConfig:
        """A copy with some fields changed; unknown keys are refused with the list of valid ones."""
        check_keys(overrides)
        return dataclasses.replace(self, **overrides)

    def diff(self, other: UNetConfig) -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ: ``{name: (self's value, other's value)}``."""
        return {
            f.name: (getattr(self, f.name), getattr(other, f.name))
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        }


FIELD_NAMES = tuple(f.name for f in fields(UNetConfig))


def check_keys(data: dict[str, Any]) -> None:
    """Refuse keys that are not config fields, naming the valid ones."""
    unknown = [key for key in data if key not in FIELD_NAMES]
    if unknown:
        raise BenchError(f"unknown config key {unknown[0]!r}; valid keys are {choices(FIELD_NAMES)}")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse ``["depth=3", "norm=batch"]`` (command-line ``--set``) into typed config overrides."""
    types = {f.name: type(getattr(UNetConfig(), f.name)) for f in fields(UNetConfig)}
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise BenchError(f"override {item!r} is not KEY=VALUE (e.g. depth=3)")
        check_keys({key: None})
        kind = types[key]
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                overrides[key] = text.lower() in ("true", "1")
            else:
                overrides[key] = kind(text)
        except ValueError:
            raise BenchError(f"override {item!r}: {key} takes a {kind.__name__}") from None
    return overrides
