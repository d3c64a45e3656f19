"""Where the user measures: a suite case process and `unet-bench time` against a plain user script.

Each contender runs in a process of its own, the way a user would meet it: the plain network timed by a
plain ``python`` script (the module's `PLAIN_SCRIPT`, which imports nothing of this package), the
suite's case process (`run_isolated`, a fork of the runner's server), and the ``unet-bench time`` command.
Rounds are interleaved and rotated; each ratio is the median over rounds of two figures taken moments
apart, so a shared machine's drifting load cancels out as far as it can. Targets on a 2-core CPU:

* suite path and ``unet-bench time`` >= 0.98x the plain script's speed (the same eager network);
* the best CPU mode (channels_last + torch.compile) >= 1.25x the plain script;
* that best mode's % of the measured ceiling (printed; never above 100 %).

Run: ``PYTHONPATH=. python -m pytest tests/benchmarks/test_suite_path.py -s`` (about 5-10 minutes).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable

from unet_bench.record import Case
from unet_bench.suite.runner import run_isolated

ROUNDS = int(os.environ.get("UNET_BENCH_ROUNDS", "5"))
SIZE = 572
CALLS = 4

PLAIN_SCRIPT = f"""
import statistics, time, torch
import torch.nn as nn, torch.nn.functional as F

def double_conv(cin, cout):
    relu = nn.ReLU(inplace=True)
    return nn.Sequential(nn.Conv2d(cin, cout, 3), relu, nn.Conv2d(cout, cout, 3), relu)

class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        w = [64, 128, 256, 512, 1024]
        self.enc = nn.ModuleList(double_conv(w[i - 1] if i else 1, c) for i, c in enumerate(w))
        self.up = nn.ModuleList(nn.ConvTranspose2d(c, c // 2, 2, stride=2) for c in w[:0:-1])
        self.dec = nn.ModuleList(double_conv(c, c // 2) for c in w[:0:-1])
        self.head = nn.Conv2d(64, 2, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for up, block in zip(self.up, self.dec):
            x = up(x)
            s = skips.pop()
            t, l = (s.shape[2] - x.shape[2]) // 2, (s.shape[3] - x.shape[3]) // 2
            x = block(torch.cat([s[:, :, t:t + x.shape[2], l:l + x.shape[3]], x], 1))
        return self.head(x)

model = UNet().eval()
x = torch.randn(1, 1, {SIZE}, {SIZE})
times = []
with torch.inference_mode():
    model(x)
    for _ in range({CALLS}):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
print(statistics.median(times))
"""


def plain() -> float:
    out = subprocess.run([sys.executable, "-c", PLAIN_SCRIPT], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def suite_case(**options) -> Callable[[], float]:
    case = Case("paper", mode="infer", input_size=SIZE, min_run_time_s=0.5, **options)

    def run() -> float:
        record = run_isolated(case)
        assert record.status == "ok", record.message
        suite_case.records.setdefault(str(options), []).append(record)
        return record.get('latency_ms_median') / 1e3

    return run


suite_case.records = {}


def time_command() -> float:
    out = subprocess.run([sys.executable, "-m", "unet_bench", "time", "paper", "--size", str(SIZE),
                          "--min-run-time", "0.5", "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["latency_ms_median"] / 1e3


def test_suite_path_against_a_plain_script(benchmark):
    contenders: dict[str, Callable[[], float]] = {
        "plain script": plain,
        "suite case": suite_case(),
        "unet-bench time": time_command,
        "suite case channels_last+compile": suite_case(channels_last=True, compile=True),
    }
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}

    def one_round() -> None:
        shift = len(times[names[0]]) % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(contenders[name]())

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    speed = {name: statistics.median(p / t for p, t in zip(times["plain script"], times[name], strict=True))
             for name in names}
    best = suite_case.records[str({"channels_last": True, "compile": True})]
    fraction = statistics.median(r.peak_fraction for r in best)
    print(f"\npaper UNet 1x1x{SIZE}x{SIZE} fp32 inference, each contender in its own process, {ROUNDS} rotated "
          "rounds; 'vs plain' = median over rounds of plain latency / contender latency")
    print(f"{'contender':<36}{'median s':>10}{'min s':>8}{'vs plain':>10}")
    for name in names:
        print(f"{name:<36}{statistics.median(times[name]):>10.3f}{min(times[name]):>8.3f}{speed[name]:>10.3f}")
    print(f"best mode: {100 * fraction:.1f}% of the ceiling ({best[0].extra.get('peak_source')})")
    targets = {
        "suite case >= 0.98x plain": speed["suite case"] >= 0.98,
        "unet-bench time >= 0.98x plain": speed["unet-bench time"] >= 0.98,
        "best mode >= 1.25x plain": speed["suite case channels_last+compile"] >= 1.25,
        "best mode <= 100% of the ceiling": fraction <= 1.0,
    }
    for target, met in targets.items():
        print(f"target {target}: {'met' if met else 'NOT met'}")
    benchmark.extra_info.update(times=times, speed=speed, best_peak_fraction=fraction, targets=targets)
