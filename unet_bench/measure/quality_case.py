"""A suite case of mode ``quality``: train and score the case's variant, as one `Record`.

The record carries the network's counts at the training tile too (parameters, MACs), so that quality
can be set against cost from the same line of results. Another library's network (``monai:BasicUNet``)
trains the same way, at a tile its own size rule allows. `unet_bench.measure.measure` finishes it.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from unet_bench.measure.counts import Counts, count
from unet_bench.measure.fields import counts_values
from unet_bench.models.geometry import input_shape
from unet_bench.models.registry import build_network, get_config
from unet_bench.quality.data import SegmentationSet
from unet_bench.quality.evaluate import evaluate_quality
from unet_bench.record import Case, Record


def measure_quality(case: Case, counts: Counts | None = None,
                    deploy: Callable[[nn.Module, SegmentationSet], nn.Module] | None = None) -> Record:
    """Train ``case``'s variant ``case.seeds`` times on tiles of ``case.input_size`` px and score it.

    ``counts``: the network's counts at that tile, if the caller already has them; ``deploy``: as for
    `evaluate_quality` (what is also scored of each trained model).
    """
    cfg = get_config(case.variant, **case.overrides_dict())
    if counts is None:
        counts = count(build_network(cfg), input_shape(case.size, cfg.in_channels, cfg.spatial_dims))
    settings = {"steps": case.steps, "lr": case.lr, "optimizer": case.optimizer}
    result = evaluate_quality(cfg, seeds=case.seeds, batch=case.batch, tile_in=case.input_size,
                              device=case.device, threads=case.threads, weight_map=case.weight_map,
                              augment=case.augment, elastic_sigma=case.elastic_sigma, schedule=case.schedule,
                              train_images=case.train_images,
                              deploy=deploy,
                              **{k: v for k, v in settings.items() if v is not None})
    values = counts_values(counts)
    extra = {**values.pop("extra"), **result.pop("extra")}
    record = Record.for_case(case, **values, **result, extra=extra)
    record.config = cfg.to_dict()
    return record
