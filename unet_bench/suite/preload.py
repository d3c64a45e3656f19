"""Imported once by the runner's fork server, before it forks any case: what every case needs, loaded.

Each case runs in a process forked from that server, so whatever is loaded here is loaded in every case
for free: torch, the measurement code, and torch's lazily imported machinery (pulled in by counting a
tiny network on the meta device), which would otherwise cost every case a second or more. Nothing here
may run a real tensor op: a process forked after OpenMP has started its threads hangs at its first
parallel op (GNU libgomp is not fork-safe), and meta tensors compute nothing.
"""

import torch

from unet_bench.measure import env
from unet_bench.measure.counts import flop_counter_counts
from unet_bench.models import UNet, geometry, get_config


def _warm_up() -> None:
    cfg = get_config("paper", base_width=2, depth=1)
    with torch.device("meta"):
        model = UNet(cfg)
    size = geometry.smallest_valid_size(cfg)
    flop_counter_counts(model, geometry.input_shape(size, cfg.in_channels, cfg.spatial_dims), train=True)
    env.git_commit()
    env.cpu_model()


try:
    _warm_up()
except Exception:  # noqa: BLE001 - a cold start is slower, not wrong
    pass
