"""Which input sizes a UNet can take, what comes out, and what each output pixel sees.

Every 3x3 valid conv loses 2 px, every 2x2 pool halves (and must see an even size so that the decoder's
crop stays centred), every up-sampling doubles. Tracing one spatial dimension through the network is
exact and cheap, so every axis is checked independently (non-square inputs and 3-D volumes work: a size
is an int, the same on every axis, or one int per axis). A strided-conv down-sampling halves an even size
as the pool does, so only the receptive field depends on it.
For the paper network: valid inputs are 16k + 124 (k ≥ 4) and output = input − 184; for the 3-D U-Net
(depth 3) 8k + 60 (k ≥ 4), e.g. 132x132x116 → 44x44x28.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from unet_bench.errors import InvalidInputSizeError
from unet_bench.models.config import UNetConfig


@dataclass(frozen=True)
class Trace:
    """Sizes of one spatial dimension through the network."""

    encoder: tuple[int, ...]  # after each encoder level's double conv (the skip sources)
    bottleneck: int  # after the bottleneck's double conv
    upsampled: tuple[int, ...]  # after each up-sampling, deepest first
    decoder: tuple[int, ...]  # after each decoder level's double conv, deepest first; the last is the output

    @property
    def output(self) -> int:
        return self.decoder[-1]


def _level_loss(cfg: UNetConfig) -> int:
    """Pixels one level's double 3x3 conv loses (4 when unpadded, 0 when padded)."""
    return 4 if cfg.padding == "valid" else 0


@functools.lru_cache(maxsize=4096)
def trace(cfg: UNetConfig, size: int) -> Trace | None:
    """Sizes through the network for one input dimension, or None if the size is not valid."""
    if not isinstance(cfg, UNetConfig):  # another library's network: its own size rule
        return cfg.trace(size)
    loss = _level_loss(cfg)
    encoder = []
    n = size
    for _ in range(cfg.depth):
        n -= loss
        if n < 2 or n % 2:
            return None
        encoder.append(n)
        n //= 2
    n -= loss
    if n < 1:
        return None
    bottleneck = n
    upsampled, decoder = [], []
    for skip in reversed(encoder):
        n *= 2
        if cfg.skip != "none" and (skip < n or (skip - n) % 2):
            return None
        upsampled.append(n)
        n -= loss
        if n < 1:
            return None
        decoder.append(n)
    return Trace(tuple(encoder), bottleneck, tuple(upsampled), tuple(decoder))


def _input_for_bottleneck(cfg: UNetConfig, bottleneck: int) -> int:
    """The one input size whose bottleneck map is ``bottleneck`` px (the encoder walked backwards)."""
    n = bottleneck + _level_loss(cfg)
    for _ in range(cfg.depth):
        n = 2 * n + _level_loss(cfg)
    return n


@functools.lru_cache(maxsize=1024)
def progression(cfg: UNetConfig) -> tuple[int, int]:
    """``(first, period)``: the valid input sizes are exactly first, first + period, first + 2·period, ...

    Every pooling must see an even size, so a valid input is fixed by its bottleneck size b:
    input = 2^depth·b + loss·(2^(depth+1) − 1). The decoder's sizes grow with b, so the valid b are all
    those from the smallest one that leaves every decoder map at least 1 px (a few steps of `trace`).
    """
    if not isinstance(cfg, UNetConfig):  # another library's network: its own size rule
        return cfg.progression()
    bottleneck = 1
    while trace(cfg, _input_for_bottleneck(cfg, bottleneck)) is None:
        bottleneck += 1  # ends within loss + 1 steps: b > loss keeps every decoder map ≥ 1 px
    return _input_for_bottleneck(cfg, bottleneck), 2**cfg.depth


def is_valid_size(cfg: UNetConfig, size: int) -> bool:
    """True if an input of this size (one dimension) passes through the network exactly."""
    return isinstance(size, int) and size > 0 and trace(cfg, size) is not None


AXES = {2: ("height", "width"), 3: ("depth", "height", "width")}


def spatial_shape(cfg: UNetConfig, size: int | tuple[int, ...]) -> tuple[int, ...]:
    """The input's size on every spatial axis of the config's network (see `sides`)."""
    return sides(size, cfg.spatial_dims)


def sides(size: int | tuple[int, ...] | list[int], dims: int) -> tuple[int, ...]:
    """One size per spatial axis: an int repeats over the ``dims`` axes; a tuple must give one size per axis
    (a one-line error otherwise)."""
    if isinstance(size, (tuple, list)):
        if len(size) != dims:
            raise InvalidInputSizeError(
                f"a {dims}-D network takes {dims} sizes ({'x'.join(AXES.get(dims, ('size',) * dims))}), "
                f"not {'x'.join(str(s) for s in size)}"
            )
        return tuple(int(s) for s in size)
    return (int(size),) * dims


def input_shape(size: int | tuple[int, ...] | list[int], in_channels: int, dims: int,
                batch: int = 1) -> tuple[int, ...]:
    """``(batch, C, *sides)`` of a ``dims``-D network's input: the one place an input's shape is built, so
    that a 3-D network or a size per axis is counted, timed and profiled at the shape it runs at."""
    return (batch, in_channels, *sides(size, dims))


def output_size(cfg: UNetConfig, size: int | tuple[int, ...]) -> int | tuple[int, ...]:
    """Output size for an input size (an int, or one size per axis, each checked independently)."""
    if isinstance(size, tuple):
        check_input_size(cfg, *size)
        return tuple(trace(cfg, s).output for s in size)  # type: ignore[union-attr]
    check_input_size(cfg, *spatial_shape(cfg, size))
    return trace(cfg, size).output  # type: ignore[union-attr]


def valid_sizes(cfg: UNetConfig, lo: int = 1, hi: int = 1024) -> list[int]:
    """All valid input sizes in [lo, hi]."""
    first, period = progression(cfg)
    start = first + max(0, -(-(lo - first) // period)) * period
    return list(range(start, hi + 1, period))


def nearest_valid_sizes(cfg: UNetConfig, size: int) -> tuple[int | None, int | None]:
    """The nearest valid size at or below, and at or above, ``size`` (None where there is none)."""
    first, period = progression(cfg)
    if size < first:
        return None, first
    below = first + (size - first) // period * period
    return below, below if below == size else below + period


def smallest_valid_size(cfg: UNetConfig) -> int:
    """The smallest input the network can take."""
    return progression(cfg)[0]


def input_size_for_output(cfg: UNetConfig, out: int) -> int:
    """The input size that yields exactly ``out`` output pixels (for fair comparisons across variants)."""
    size = out + size_loss(cfg)
    if not is_valid_size(cfg, size):
        outs = [s - size_loss(cfg) for s in nearest_valid_sizes(cfg, size) if s is not None]
        raise InvalidInputSizeError(f"no input gives an output of {out} px; the nearest reachable outputs are {outs}")
    return size


def size_loss(cfg: UNetConfig) -> int:
    """input − output for any valid input (184 for the paper network, 0 when padded)."""
    s = smallest_valid_size(cfg)
    return s - trace(cfg, s).output  # type: ignore[union-attr]


def describe_invalid(cfg: UNetConfig, size: int) -> str:
    """'the nearest valid sizes are 556 and 572' — the second half of an invalid-size message."""
    below, above = nearest_valid_sizes(cfg, size)
    near = [s for s in (below, above) if s is not None]
    if len(near) == 1:
        return f"the nearest valid size is {near[0]}"
    return f"the nearest valid sizes are {near[0]} and {near[1]}"


def check_input_size(cfg: UNetConfig, *sizes: int) -> None:
    """Raise `InvalidInputSizeError` naming the bad axis and the nearest valid sizes (one size per axis)."""
    sizes = tuple(int(s) for s in sizes)  # under torch.jit.trace (fvcore) sizes arrive as 0-d tensors
    spatial_shape(cfg, sizes)  # one size per axis
    for name, size in zip(AXES[cfg.spatial_dims], sizes, strict=True):
        if not is_valid_size(cfg, size):
            first, period = progression(cfg)
            raise InvalidInputSizeError(
                f"input {name} {size} is not valid for this UNet (valid sizes are {first}, {first + period}, "
                f"{first + 2 * period}, ... every {period}); {describe_invalid(cfg, size)}"
            )


def largest_feature_map(cfg: UNetConfig, size: int | tuple[int, ...]) -> int:
    """Values in the largest map a level keeps (channels x its pixels or voxels, one image): a floor on
    memory. ``size`` is an int (every axis) or one size per axis."""
    if not isinstance(cfg, UNetConfig):  # another library's network: its largest module output
        return cfg.largest_feature_map(size)
    shape = spatial_shape(cfg, size)
    check_input_size(cfg, *shape)
    traces = [trace(cfg, s) for s in shape]
    widths = cfg.widths()
    levels = [(widths[-1], [t.bottleneck for t in traces])]  # type: ignore[union-attr]
    for level in range(cfg.depth):
        levels.append((widths[level], [t.encoder[level] for t in traces]))  # type: ignore[union-attr]
        levels.append((widths[level], [t.decoder[cfg.depth - 1 - level] for t in traces]))  # type: ignore[union-attr]
    return max(channels * math.prod(sides) for channels, sides in levels)


# --- receptive field ------------------------------------------------------------------------------------


def _back_conv(cfg: UNetConfig, a: int, b: int) -> tuple[int, int]:
    """Input interval of a 3x3 conv for output interval [a, b] (same-padding ignores the border)."""
    return (a, b + 2) if cfg.padding == "valid" else (a - 1, b + 1)


def _back_upsample(cfg: UNetConfig, a: int, b: int) -> tuple[int, int]:
    """Coarse-map interval that fine-map interval [a, b] of a x2 up-sampling reads."""
    if cfg.upsample == "bilinear":  # align_corners=False: pixel o reads floor((o-0.5)/2) and the next one
        return (a - 0.5) // 2, (b - 0.5) // 2 + 1  # type: ignore[return-value]
    return a // 2, b // 2  # transposed 2x2/2, nearest and pixel shuffle read one coarse pixel


def input_interval(cfg: UNetConfig, size: int, a: int, b: int | None = None) -> tuple[int, int]:
    """Input pixels [lo, hi] (one dimension) that output pixels [a, b] depend on, for an input of ``size``.

    Exact interval arithmetic over the network's graph: the decoder is walked down collecting what each
    skip reads, then the encoder is walked up taking the hull of the skip and the deeper path.
    """
    b = a if b is None else b
    t = trace(cfg, size)
    if t is None:
        check_input_size(cfg, *spatial_shape(cfg, size))
    assert t is not None
    skip_reads: list[tuple[int, int] | None] = []
    for level in range(cfg.depth):  # decoder, shallowest first
        a, b = _back_conv(cfg, *_back_conv(cfg, a, b))
        up = t.upsampled[cfg.depth - 1 - level]
        offset = (t.encoder[level] - up) // 2
        skip_reads.append((a + offset, b + offset) if cfg.skip != "none" else None)
        a, b = _back_upsample(cfg, a, b)
    a, b = _back_conv(cfg, *_back_conv(cfg, a, b))  # bottleneck
    for level in reversed(range(cfg.depth)):  # encoder, deepest first
        # 2x2 max-pool reads [2a, 2b+1]; the 3x3 stride-2 conv (padding 1) reads [2a-1, 2b+1]
        a, b = (2 * a, 2 * b + 1) if cfg.downsample == "maxpool" else (2 * a - 1, 2 * b + 1)
        read = skip_reads[level]
        if read is not None:
            a, b = min(a, read[0]), max(b, read[1])
        a, b = _back_conv(cfg, *_back_conv(cfg, a, b))
    return max(int(a), 0), min(int(b), size - 1)  # zero padding and interpolation clamp at the border


def receptive_field(cfg: UNetConfig) -> int:
    """Largest number of input pixels (one dimension) that a single output pixel depends on."""
    first, period = progression(cfg)
    size = first + 64 * period  # wider than any field
    out = trace(cfg, size).output  # type: ignore[union-attr]
    centre = out // 2  # far from the border, so no interval is clamped
    spans = [input_interval(cfg, size, o) for o in range(centre, min(centre + period, out))]
    return max(hi - lo + 1 for lo, hi in spans)
