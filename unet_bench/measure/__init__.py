"""Measuring a network: counts (parameters, MACs/FLOPs), timing, memory, ceilings and the environment.

``measure(case)`` is the one entry point for a case of any mode; ``measure_module(model, case)``
measures any ``nn.Module`` by the same rules.
"""

from unet_bench.measure.case import count_case, measure, measure_module
from unet_bench.measure.network import build_model
from unet_bench.measure.outcome import classify_failure

__all__ = ["build_model", "classify_failure", "count_case", "measure", "measure_module"]
