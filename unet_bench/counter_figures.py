"""What a run of the FLOP counters produces: our count per op type beside each counter's figure.

Plain data and torch-free, like `unet_bench.kinds`: `unet_bench.measure.counter_runs` measures it, and
the analysis (`unet_bench.analysis.reconciliation`, `unet_bench.analysis.causes`) reads it without
importing torch or building a network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONV, TRANSPOSED, INTERP, NORM, POOL, ELEMENTWISE, OTHER = (
    "convolution", "transposed convolution", "interpolation", "normalisation", "pooling", "element-wise", "other")
CATEGORIES = (CONV, TRANSPOSED, INTERP, NORM, POOL, ELEMENTWISE, OTHER)
COUNTERS_SCOPE = ("ours: 2 FLOPs per multiply-accumulate, transposed convolutions on their input grid, "
                  "interpolation, norms, pooling and element-wise ops by their arithmetic; see "
                  "unet_bench.measure.counter_runs")
NOT_INSTALLED = "not installed"


@dataclass
class Reference:
    """Our exact count: FLOPs per op type, the values each type produced, and the alternatives that other
    conventions give (for naming a difference)."""

    flops: dict[str, int]
    values: dict[str, int]  # output values of the ops of each type (what "per value" conventions multiply)
    bias_adds: dict[str, int]  # inside element-wise: one per output value of a (transposed) conv with a bias
    activations: int  # inside element-wise: one per output value of an activation
    arithmetic: int  # inside element-wise: additions and products of maps (a skip added to the decoder's map)
    transposed_output_grid: int  # FLOPs of the transposed convolutions if counted on their output grid

    @property
    def total(self) -> int:
        return sum(self.flops.values())


@dataclass
class Counter:
    """One counter's figure: its unit, total and (where it reports per layer or op) its breakdown."""

    name: str
    unit: str  # "MACs" or "FLOPs", as the counter's own documentation calls its figure
    total: int | None = None
    by_type: dict[str, int] | None = None
    status: str = "ok"  # ok | not installed | failed: ...
    version: str | None = None

    @property
    def per_flop(self) -> int:
        """How many of its units one of our FLOPs is worth: MAC counters count half."""
        return 1 if self.unit == "FLOPs" else 2


@dataclass
class Reconciliation:
    """Our count beside every counter, at the input shape counted (batch 1: ``(1, C, *sides)``)."""

    reference: Reference
    counters: list[Counter] = field(default_factory=list)
    input_shape: tuple[int, ...] = ()

    @property
    def sides_text(self) -> str:
        """The counted input's spatial sides, e.g. ``572x572`` or ``132x132x116``."""
        return "x".join(str(side) for side in self.input_shape[2:])

    def ratio(self, counter: Counter) -> float | None:
        """The counter's total over ours (both as it reports them: a MAC counter agreeing reads 0.5)."""
        return None if counter.total is None else counter.total / self.reference.total
