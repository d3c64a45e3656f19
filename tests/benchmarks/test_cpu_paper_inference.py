"""The paper UNet at 1x1x572x572, fp32 inference on CPU, every core: the project's paths against a plain one.

Contenders run in interleaved rounds (each round runs every contender once, in a rotated order), and each
ratio is the median over rounds of a ratio of two calls made moments apart, so the load of a shared machine
cancels out as far as it can. The GEMM that sets the ceiling runs in the same rounds. Targets (a 2-core CPU):

* the project's default eager path (``unet-bench time paper --size 572``) >= 0.98x the plain one's speed;
* its best CPU mode >= 1.25x faster than the plain one;
* that best mode's achieved GFLOP/s >= 85% of the large fp32 GEMM's.

Run: ``PYTHONPATH=. python -m pytest tests/benchmarks -s`` (about 5-10 minutes; set UNET_BENCH_ROUNDS).
The figures are printed and kept in pytest-benchmark's ``extra_info`` (``--benchmark-json FILE``).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from unet_bench.measure.env import cpu_count
from unet_bench.measure.peaks import GEMM_SIZE
from unet_bench.measure.steps import build_step
from unet_bench.models import create_model
from unet_bench.record import Case

SIZE = 572
PAPER_FLOPS = 300_856_848_896
ROUNDS = int(os.environ.get("UNET_BENCH_ROUNDS", "9"))


def double_conv(cin: int, cout: int) -> nn.Sequential:
    relu = nn.ReLU(inplace=True)
    return nn.Sequential(nn.Conv2d(cin, cout, 3), relu, nn.Conv2d(cout, cout, 3), relu)


class PlainUNet(nn.Module):
    """The paper network written out layer by layer, as a user without this package would write it."""

    def __init__(self) -> None:
        super().__init__()
        w = [64, 128, 256, 512, 1024]
        self.enc = nn.ModuleList()
        for i, c in enumerate(w):
            self.enc.append(double_conv(w[i - 1] if i else 1, c))
        self.up = nn.ModuleList(nn.ConvTranspose2d(c, c // 2, 2, stride=2) for c in w[:0:-1])
        self.dec = nn.ModuleList(double_conv(c, c // 2) for c in w[:0:-1])
        self.head = nn.Conv2d(64, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for up, block in zip(self.up, self.dec, strict=True):
            x = up(x)
            skip = skips.pop()
            top, left = (skip.shape[2] - x.shape[2]) // 2, (skip.shape[3] - x.shape[3]) // 2
            x = block(torch.cat([skip[:, :, top : top + x.shape[2], left : left + x.shape[3]], x], dim=1))
        return self.head(x)


def project_conv_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]


def plain_conv_layers(plain: PlainUNet) -> list[nn.Module]:
    """The plain network's convs in the project's order (each decoder level: up-conv, then its convs)."""
    layers = [m for block in plain.enc for m in block if isinstance(m, nn.Conv2d)]
    for up, block in zip(plain.up, plain.dec, strict=True):
        layers += [up, block[0], block[2]]
    return [*layers, plain.head]


def project_step(model: nn.Module, x: torch.Tensor, **options) -> Callable[[], object]:
    """What ``unet-bench time paper --size 572 [options]`` times: the project's inference step, on ``x``."""
    copy = create_model("paper")
    copy.load_state_dict(model.state_dict())
    step = build_step(copy, Case("paper", mode="infer", input_size=SIZE, **options), in_channels=1)
    step.x.copy_(x)  # keeps the step's memory format
    return step.run


def test_paper_572_cpu_inference(benchmark):
    threads = cpu_count()
    torch.set_num_threads(threads)
    model = create_model("paper")
    plain = PlainUNet()
    with torch.no_grad():
        for theirs, ours in zip(plain_conv_layers(plain), project_conv_layers(model), strict=True):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
    x = torch.randn(1, 1, SIZE, SIZE)
    a, b = torch.randn(GEMM_SIZE, GEMM_SIZE), torch.randn(GEMM_SIZE, GEMM_SIZE)

    def plain_run() -> torch.Tensor:
        with torch.no_grad():
            return plain(x)

    contenders: dict[str, Callable[[], object]] = {
        "fp32 GEMM": lambda: torch.mm(a, b),
        "plain (no_grad)": plain_run,
        "project default": project_step(model, x),
        "project channels_last": project_step(model, x, channels_last=True),
        "project compile+channels_last": project_step(model, x, channels_last=True, compile=True),
    }
    first_call = {}
    for name, run in contenders.items():  # warm-up: oneDNN primitives, compilation
        start = time.perf_counter()
        run()
        first_call[name] = time.perf_counter() - start
        run()
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}

    def one_round() -> None:
        """Every contender once, in an order rotated each round."""
        shift = len(times[names[0]]) % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    report(times, first_call, threads, benchmark.extra_info)
    reference = plain_run()
    for name in names[2:]:  # the same network and input: the same output
        torch.testing.assert_close(contenders[name]().contiguous(), reference, rtol=1e-3, atol=1e-4)


def paired(times: dict[str, list[float]], name: str, reference: str, scale: float = 1.0) -> float:
    """Median over rounds of scale x reference time / contender time: each ratio compares two calls made
    moments apart in the same round, so a load that drifts between rounds cancels out."""
    return statistics.median(scale * r / c for r, c in zip(times[reference], times[name], strict=True))


def report(times: dict[str, list[float]], first_call: dict[str, float], threads: int, info: dict) -> None:
    """Print the figures and the three targets; keep them in pytest-benchmark's extra_info."""
    median = {name: statistics.median(t) for name, t in times.items()}
    iqr = {name: (lambda q: q[2] - q[0])(statistics.quantiles(t, n=4)) for name, t in times.items()}
    gemm_work = 2 * GEMM_SIZE**3
    speedup = {name: paired(times, name, "plain (no_grad)") for name in times}
    of_gemm = {name: paired(times, name, "fp32 GEMM", PAPER_FLOPS / gemm_work) for name in times}
    best = max((name for name in times if name.startswith("project")), key=speedup.get)
    print("\n'vs plain' (speed-up) and '% GEMM' are medians of per-round ratios (calls moments apart);")
    print("GFLOP/s is from the median time; 'min s' shows the noise floor of this shared machine")
    print(f"paper UNet 1x1x{SIZE}x{SIZE} fp32 inference, {threads} threads, {len(times['fp32 GEMM'])} "
          f"interleaved rounds; torch {torch.__version__}")
    print(f"{'contender':<32}{'median s':>10}{'IQR s':>8}{'min s':>8}{'GFLOP/s':>9}{'vs plain':>10}"
          f"{'% GEMM':>8}{'1st call s':>11}")
    for name in times:
        rate = (gemm_work if name == "fp32 GEMM" else PAPER_FLOPS) / median[name]
        share = 100.0 if name == "fp32 GEMM" else 100 * of_gemm[name]
        print(f"{name:<32}{median[name]:>10.3f}{iqr[name]:>8.3f}{min(times[name]):>8.3f}{rate / 1e9:>9.1f}"
              f"{speedup[name]:>10.3f}{share:>7.1f}%{first_call[name]:>11.1f}")
        info[name] = {
            "median_s": median[name], "iqr_s": iqr[name], "gflops": rate / 1e9, "speedup": speedup[name],
            "of_gemm": of_gemm[name], "s": times[name],
        }
    targets = {
        "default >= 0.98x plain": speedup["project default"] >= 0.98,
        f"best ({best}) >= 1.25x plain": speedup[best] >= 1.25,
        f"best ({best}) >= 85% of GEMM": of_gemm[best] >= 0.85,
    }
    for target, met in targets.items():
        print(f"target {target}: {'met' if met else 'NOT met'}")
    info.update(targets=targets, threads=threads, torch=torch.__version__)
