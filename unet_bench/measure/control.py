"""The control workload every timed process times beside its case: a yardstick for the machine's speed.

A machine's speed moves between runs and within one (load from other processes, CPU steal, clock and
thermal changes), and a measurement alone cannot tell that from a change of the code. So each timed
process also times a fixed **control**, in blocks alternated with the case's: one 3x3 convolution of
fixed shape and seeded weights (`CONTROL_SHAPES`), channels_last on the CPU. It runs through the same
library kernels (oneDNN / cuDNN), on the same threads and memory hierarchy as every network, so a busier
or slower machine slows it much as it slows the case; and it uses no unet-bench code, so a change to the
networks, blocks or measurement code under test does not move it. It does move with torch, oneDNN or
cuDNN, the thread count and the device: `describe` names all of these and records carry it, and two runs
whose controls differ in kind are never normalised by each other.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

# (batch, channels, height, width) of the control's input per device: ~0.3 GFLOP on a CPU (about a
# millisecond on two cores), ~19 GFLOP on a GPU (a launch-bound control would measure the launch).
CONTROL_SHAPES = {"cpu": (1, 64, 64, 64), "cuda": (8, 64, 128, 128)}
CONTROL_SEED = 0


def describe(device: str, threads: int) -> str:
    """What the control is, in words: equal text means the same workload (for comparing two runs)."""
    n, c, h, w = CONTROL_SHAPES[device]
    layout = ", channels_last" if device == "cpu" else ""
    return (f"conv2d 3x3 {c}->{c} on {n}x{c}x{h}x{w} fp32{layout}, {threads} threads, torch "
            f"{torch.__version__} on {device}")


def control_step(device: str) -> Callable[[], torch.Tensor]:
    """The control's one call: the same convolution on the same input every time, under inference mode."""
    n, c, h, w = CONTROL_SHAPES[device]
    generator = torch.Generator().manual_seed(CONTROL_SEED)
    x = torch.randn((n, c, h, w), generator=generator).to(device)
    weight = (torch.randn((c, c, 3, 3), generator=generator) / (3 * c**0.5)).to(device)
    if device == "cpu":
        x, weight = x.contiguous(memory_format=torch.channels_last), weight.contiguous(
            memory_format=torch.channels_last)

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return F.conv2d(x, weight, padding=1)

    return run
