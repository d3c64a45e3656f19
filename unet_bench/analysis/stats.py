"""Verdicts: is a change larger than the noise of the runs that measured it?

A change is stated as an effect with a confidence interval over **independent repeats** — one record per
repeat, each measured in a fresh process — and is called real only when its interval excludes zero:
``+4.3 % [+2.1, +6.5]``. With fewer than `MIN_REPEATS` repeats on either side there is no verdict: two
values say nothing about how far a third would fall.

**Timings** (and memory where it varies between repeats): Welch's t interval on the logarithm of the
per-repeat values (each one a repeat's median over its timed blocks). The effect is the ratio of the two
sides' geometric means, shown as a relative change. Logarithms because timing noise is multiplicative and
a ratio is what a reader compares; Welch because a variant may be noisier than its reference; the t
quantile (Welch–Satterthwaite degrees of freedom) because with 3 to 10 repeats the spread itself is
uncertain, and the interval must widen for that. The distribution-free alternative, a Hodges–Lehmann
interval on the per-repeat medians, is not used: with 3 repeats a side its widest interval (lowest to
highest of the 9 pairwise differences) has 90 % coverage, so it would call one unchanged row in ten real.

**Dice and IoU** (and every per-seed metric): Welch on the raw per-seed values (a difference of means; a
seed is a repeat of the training), shown relative to the reference's mean with Fieller's interval for the
ratio of the two means, which counts the reference mean's own noise: a relative interval can then never
pass -100 % while the new mean is clearly above 0 (dividing the difference's interval by a fixed reference
mean could). Where the reference mean itself cannot be told from 0, there is no bounded ratio interval,
and the difference's interval is shown relative to the reference's size.

**Many rows at once.** At 95 % each, one row in twenty of an unchanged table would be called real. Intervals
are therefore adjusted for the number of rows compared per metric with the false-coverage-rate rule of
Benjamini & Yekutieli (2005): the rows whose p-values pass Benjamini–Hochberg at `ALPHA` (R of m rows) set
the level of every interval of that metric to 1 − ALPHA·max(R, 1)/m, so a row is real exactly when its
interval excludes zero. When every row changed (R = m) these are plain 95 % intervals; when nothing changed,
the chance that any row is called real is at most 5 %.

**Pairs.** Within one run, a timing is judged against its reference by ratios measured side by side: when
the case's process also timed the reference (A B B A blocks, ``paired_ratio``), on the log of each
process's paired ratio; else, when both were measured in the same rounds (the runner interleaves
repeats), on the log of each round's ratio. Either way a one-sample t interval over the processes
(`paired`): the processes stay the unit of independence, while what the machine did slowly (drift,
steady load) cancels inside each pair. Results of `unet-bench ab` pair the two environments round by
round the same way. Unpaired (Welch) only where nothing pairs.

**Rows share their noise.** A paired row of 3 processes has a variance with 2 degrees of freedom, and
its t quantile (4.30) more than doubles its interval against a known variance. The other paired rows of the
same run and mode measured the same machine's noise the same way, so each row's variance is moved toward
theirs by the empirical-Bayes rule of Smyth (2004, limma's moderated t): how far, and how many degrees of
freedom that buys, follows from how alike the rows' variances are (`prior`); a row far noisier than the
rest (`OUTLIER_QUANTILE`) keeps its own. No row borrows more degrees of freedom than the other rows have.

**Across runs** (two results directories), nothing is paired, and the machine may have been another one in
all but name: busier, hotter, throttled. Every timed process also timed a fixed control workload
(`unet_bench.measure.control`); `across_runs` compares the two runs' controls first. When the control
moved (its own Welch interval excludes zero), the verdict uses each repeat's latency over its control
(``latency_per_control``), and counts `CONTROL_RESIDUAL` of the control's change as a variance
component of the interval, since a network does not slow exactly as the control does; when it did not,
the raw ratio, with the control's whole change as that component. So an unchanged suite run twice
under different load comes out within noise, at the price of wider intervals: for a sensitive before/after
comparison, alternate the two versions on one machine (`unet-bench ab`).

**Derived figures** — throughput, FLOP/s, % of peak — are fixed transformations of one timing: they carry
its noise (their own log change ± the timing's half-width, at the timing's level). Counts are exact and
carry no interval; so is memory that was identical in every repeat of both sides.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import optimize, special, stats

ALPHA = 0.05
MIN_REPEATS = 3
# Share of the control's change between two runs that a network's timing is not assumed to follow: the
# run-to-run variance component of a control-normalised comparison (tests/benchmarks calibrates it).
CONTROL_RESIDUAL = 0.5
NOISE_MARK = "~"
MIN_POOLED_ROWS = 3  # paired rows of one kind a run needs before they share their noise (`prior`)
# A row whose variance is above this quantile of the F distribution the prior gives it keeps its own. With
# 2 degrees of freedom a row cannot show it is noisier than the rest: simulated, a row twice as noisy as 15
# alike ones is called real when unchanged 16 % of the time (5 % alone), one five times as noisy 10 %.
OUTLIER_QUANTILE = 0.9
REAL, NOISE, EXACT, NONE = "real", "within noise", "exact", "no verdict"
METHOD = (
    "Δ [interval] = change against the reference with a confidence interval over independent repeats (each a "
    "fresh process): Welch's t interval on the log of the per-repeat values (timings, memory), or on the "
    f"per-seed values (Dice, IoU, object F1: Welch's test, Fieller's interval for the ratio of the means); "
    f"timings against a reference of the same run: a one-sample t interval on "
    f"the log of the per-process paired ratios (A B B A in one process), else of the per-round ratios, each row's "
    f"variance moderated toward that of the run's other paired rows of its mode (Smyth 2004); across "
    f"runs: normalised by the control workload when it moved, the control's change counted as a variance "
    f"component; throughput, FLOP/s and % of peak carry the interval of their timing. "
    f"Intervals are adjusted for the rows compared per metric (Benjamini-Yekutieli false-coverage rate, "
    f"95 % when every row changed); real only when the interval excludes 0, {NOISE_MARK} = within noise; "
    f"fewer than {MIN_REPEATS} repeats on either side: no verdict; no interval: exact"
)


@dataclass(frozen=True)
class Summary:
    """One side of a comparison: mean and sample variance of its values (logs for ratios), and how many."""

    mean: float
    var: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float], log: bool) -> Summary:
        data = np.log(np.asarray(values, float)) if log else np.asarray(values, float)
        return cls(float(data.mean()), float(data.var(ddof=1)) if len(data) > 1 else 0.0, len(data))


@dataclass(frozen=True)
class Effect:
    """A change with its noise: ``estimate`` ± t(df)·``se``, a log ratio or (``log=False``) a difference of
    means relative to ``ref_mean``."""

    estimate: float
    se: float
    df: float
    log: bool = True
    ref_mean: float = 1.0
    method: str = "unpaired"  # how the samples were paired: unpaired | in process | by round | ...
    n: int = 0  # a one-sample (paired) effect: how many processes or rounds; 0 for any other
    ref_var: float = 0.0  # a difference of means: the variance of the reference's mean (within se**2)

    @property
    def p(self) -> float:
        """Two-sided p-value of 'no change'."""
        return float(2 * stats.t.sf(abs(self.estimate) / self.se, self.df))

    def interval(self, level: float) -> tuple[float, float]:
        half = float(stats.t.ppf((1 + level) / 2, self.df)) * self.se
        return self.estimate - half, self.estimate + half

    def relative(self, value: float) -> float:
        if self.log:
            return math.expm1(value)
        # against the reference's size: a gain below 0 that grows is a rise, and the interval keeps its order
        return value / abs(self.ref_mean) if self.ref_mean else math.nan  # no relative change from a mean of 0

    def relative_interval(self, level: float) -> tuple[float, float]:
        """The interval at ``level`` as relative changes: of the log ratio, or Fieller's for the ratio of
        two means (`ref_var` > 0), which widens for the reference mean's noise instead of ignoring it."""
        low, high = self.interval(level)
        if self.log or self.ref_var <= 0:
            return self.relative(low), self.relative(high)
        q = float(stats.t.ppf((1 + level) / 2, self.df))
        ref, new = self.ref_mean, self.ref_mean + self.estimate
        new_var = self.se**2 - self.ref_var
        a = ref * ref - q * q * self.ref_var
        if a <= 0:  # the reference mean is within noise of 0: the ratio has no bounded interval
            return self.relative(low), self.relative(high)
        half = q * math.sqrt(new_var * a + self.ref_var * new * new)
        ratios = ((new * ref - half) / a, (new * ref + half) / a)
        low, high = sorted(math.copysign(1.0, ref) * (r - 1) for r in ratios)
        return low, high

    def shifted(self, estimate: float) -> Effect:
        """The same noise around another estimate (a figure derived from the same measurement)."""
        return replace(self, estimate=estimate)


@dataclass(frozen=True)
class Verdict:
    """What a table says about one change: ``status`` (`REAL`, `NOISE`, `EXACT` or `NONE`), the relative
    change and, for real / noise, its interval at ``level``; ``why`` says why there is no verdict."""

    status: str
    rel: float
    low: float = math.nan
    high: float = math.nan
    level: float = math.nan
    p: float = math.nan
    why: str = ""
    method: str = ""


def welch(ref: Summary, new: Summary, log: bool) -> Effect:
    """Welch's effect of ``new`` against ``ref`` (both with some spread between them)."""
    a, b = ref.var / ref.n, new.var / new.n
    se = math.sqrt(a + b)
    df = (a + b) ** 2 / ((a * a / (ref.n - 1) if a else 0.0) + (b * b / (new.n - 1) if b else 0.0))
    return Effect(new.mean - ref.mean, se, df, log, 1.0 if log else ref.mean, ref_var=0.0 if log else a)


def judge(ref: Summary, new: Summary, log: bool, unit: str = "repeat", once_is_exact: bool = False,
          ) -> Effect | Verdict:
    """The effect to put an interval on, or the verdict when there is none to compute: too few repeats
    (`NONE`), or no spread on either side (`EXACT`). ``once_is_exact``: the metric is a deterministic
    trace that a suite takes in one repeat only (CPU peak memory), so one value is as good as many."""
    rel = math.expm1(new.mean - ref.mean) if log else (new.mean / ref.mean - 1 if ref.mean else math.nan)
    if once_is_exact and ref.var == 0 and new.var == 0:
        return Verdict(EXACT, rel)
    fewest = min(ref.n, new.n)
    if fewest < MIN_REPEATS:
        return Verdict(NONE, rel, why=f"{fewest} {unit}{'' if fewest == 1 else 's'}")
    if ref.var == 0 and new.var == 0:
        return Verdict(EXACT, rel)
    return welch(ref, new, log)


def fcr_level(pvalues: Sequence[float], alpha: float = ALPHA) -> tuple[float, int]:
    """(interval level, rows selected) for ``pvalues`` of one metric: Benjamini–Hochberg at ``alpha``
    selects R rows; every interval is at 1 − alpha·max(R, 1)/m."""
    m = len(pvalues)
    if m == 0:
        return 1 - alpha, 0
    ordered = np.sort(np.asarray(pvalues, float))
    passed = np.nonzero(ordered <= alpha * np.arange(1, m + 1) / m)[0]
    selected = int(passed[-1]) + 1 if len(passed) else 0
    return 1 - alpha * max(selected, 1) / m, selected


def verdict(effect: Effect, level: float) -> Verdict:
    """Real when the interval at ``level`` excludes zero."""
    low, high = effect.interval(level)
    status = REAL if low > 0 or high < 0 else NOISE
    return Verdict(status, effect.relative(effect.estimate), *effect.relative_interval(level),
                   level, effect.p, method=effect.method)


def paired(logs: Sequence[float], method: str, unit: str = "repeat") -> Effect | Verdict:
    """The effect behind paired log ratios, one per process (or round): a one-sample t interval."""
    data = np.asarray(logs, float)
    rel = math.expm1(float(data.mean())) if len(data) else math.nan
    if len(data) < MIN_REPEATS:
        return Verdict(NONE, rel, why=f"{len(data)} paired {unit}{'' if len(data) == 1 else 's'}", method=method)
    sd = float(data.std(ddof=1))
    if sd == 0:
        return Verdict(EXACT, rel, method=method)
    return Effect(float(data.mean()), sd / math.sqrt(len(data)), len(data) - 1, method=method, n=len(data))


@dataclass(frozen=True)
class Prior:
    """What the paired rows of one run say together about the noise of any one of them: a variance of the
    per-process log ratios and how many degrees of freedom it is worth (``df`` may be ``math.inf``)."""

    var: float
    df: float
    total_df: float  # the degrees of freedom of every row together: no row can borrow more than the rest have


def prior(variances: Sequence[float], dfs: Sequence[float]) -> Prior | None:
    """The empirical-Bayes prior of Smyth (2004) (limma's ``fitFDist``) from the rows' sample variances.

    With 3 processes a row, a row's own variance has 2 degrees of freedom and its t quantile is 4.30; the
    other rows of the same run, mode and pairing measured the same machine's noise. The spread of the
    rows' log variances beyond what sampling alone gives says how alike the rows' noise is: alike, and the
    prior is worth many degrees of freedom (each row's variance moves toward the pooled one); unalike, and
    it is worth few (each row keeps its own). None with fewer than `MIN_POOLED_ROWS` rows.
    """
    var, d = np.asarray(variances, float), np.asarray(dfs, float)
    keep = (var > 0) & (d > 0)
    var, d = var[keep], d[keep]
    if len(var) < MIN_POOLED_ROWS:
        return None
    e = np.log(var) - special.digamma(d / 2) + np.log(d / 2)
    excess = float(np.mean((e - e.mean()) ** 2) * len(e) / (len(e) - 1) - np.mean(special.polygamma(1, d / 2)))
    if excess <= float(special.polygamma(1, 1e8)):  # no spread beyond sampling: the rows are alike
        return Prior(float(np.exp(e.mean())), math.inf, float(d.sum()))
    half = optimize.brentq(lambda y: float(special.polygamma(1, y)) - excess, 1e-8, 1e8)
    df0 = 2 * half
    return Prior(float(np.exp(e.mean() + special.digamma(df0 / 2) - np.log(df0 / 2))), df0, float(d.sum()))


def moderated(effect: Effect, found: Prior) -> Effect:
    """A paired effect with its variance moved toward the run's `prior` and the degrees of freedom
    that buys (at most those of the other rows)."""
    if effect.n < 2:
        return effect
    own_df = effect.n - 1
    df0 = min(found.df, found.total_df - own_df)
    own = effect.se**2 * effect.n
    # a row noisier than the prior's spread explains is not one of the alike rows: it keeps its own
    # variance and degrees of freedom (else a single noisy variant would borrow the quiet rows' small one)
    if df0 <= 0 or own / found.var > stats.f.ppf(OUTLIER_QUANTILE, own_df, df0):
        return effect
    var = (df0 * found.var + own_df * own) / (df0 + own_df)
    return replace(effect, se=math.sqrt(var / effect.n), df=df0 + own_df)


def moderate(effects: dict[Any, Effect | Verdict], groups: dict[Any, Hashable]) -> dict[Any, Effect | Verdict]:
    """Every paired effect of ``effects`` moderated by the prior of its group (same method, same mode):
    rows that measured the same machine's noise in the same way."""
    members: dict[Hashable, list[Any]] = {}
    for key, effect in effects.items():
        if isinstance(effect, Effect) and effect.n >= 2:
            members.setdefault((effect.method, groups.get(key)), []).append(key)
    out = dict(effects)
    for keys in members.values():
        found = prior([effects[k].se**2 * effects[k].n for k in keys], [effects[k].n - 1 for k in keys])
        if found is not None:
            out.update({k: moderated(effects[k], found) for k in keys})
    return out


@dataclass(frozen=True)
class Control:
    """How the control workload differed between two runs: its log change and whether that is real."""

    change: float  # log ratio new / ref of the runs' geometric-mean control times
    moved: bool

    @classmethod
    def between(cls, ref: Sequence[float], new: Sequence[float]) -> Control | None:
        """None without at least two control times a side."""
        if len(ref) < 2 or len(new) < 2:
            return None
        a, b = Summary.of(ref, log=True), Summary.of(new, log=True)
        if a.var == 0 and b.var == 0:
            return cls(b.mean - a.mean, b.mean != a.mean)
        low, high = welch(a, b, log=True).interval(1 - ALPHA)
        return cls(b.mean - a.mean, low > 0 or high < 0)


def across_runs(ref: Sequence[float], new: Sequence[float], ref_control: Sequence[float],
                new_control: Sequence[float]) -> Effect | Verdict:
    """A timing of two runs (per-repeat values and, in the same order, their control times): see the module
    docstring. Without controls on both sides, Welch on the raw values, as for any unpaired figure."""
    control = Control.between(ref_control, new_control)
    if control is None:
        return judge(Summary.of(ref, True), Summary.of(new, True), log=True)
    if control.moved:
        ref = np.asarray(ref, float) / np.asarray(ref_control, float)
        new = np.asarray(new, float) / np.asarray(new_control, float)
        residual, method = CONTROL_RESIDUAL * control.change, "normalised by the control"
    else:
        residual, method = control.change, "raw, control steady"
    found = judge(Summary.of(ref, True), Summary.of(new, True), log=True)
    if isinstance(found, Verdict):
        return replace(found, method=method)
    # The component is a stated bound, not estimated from these repeats: it has no degrees of freedom of
    # its own to lose (Welch-Satterthwaite with an infinite df for it), so a large one widens the interval
    # by itself, not through the t quantile of 3 repeats.
    total = found.se**2 + residual**2
    df = total**2 / (found.se**4 / found.df) if found.se > 0 else math.inf
    return replace(found, se=math.sqrt(total), df=df, method=method)


def minimal_detectable(groups: Sequence[Sequence[float]], level: float = 1 - ALPHA, log: bool = True) -> float | None:
    """The smallest relative change of a timing that two cases of this run could show as real: the
    half-width of the interval between two cases with the typical number of repeats, from the spread of
    the log per-repeat values pooled over every case with repeats. None with fewer than 3 repeats.
    ``log=False``: the smallest absolute difference, from the values themselves (quality over seeds)."""
    logs = [np.log(np.asarray(g, float)) if log else np.asarray(g, float) for g in groups if len(g) >= 2]
    if not logs:
        return None
    n = int(np.median([len(g) for g in logs]))
    if n < MIN_REPEATS:
        return None
    dof = sum(len(g) - 1 for g in logs)
    sd = math.sqrt(sum(float(((g - g.mean()) ** 2).sum()) for g in logs) / dof)
    half = float(stats.t.ppf((1 + level) / 2, 2 * n - 2)) * sd * math.sqrt(2 / n)
    return math.expm1(half) if log else half


def minimal_detectable_paired(groups: Sequence[Sequence[float]], level: float = 1 - ALPHA) -> float | None:
    """The smallest relative change a paired row of this run could show as real: the half-width of the
    one-sample interval with the typical number of processes, from the spread of the log paired ratios
    pooled over the paired rows, at the degrees of freedom the rows' `prior` lends a row (`moderated`).
    None with fewer than `MIN_REPEATS` processes a row."""
    logs = [np.asarray(g, float) for g in groups if len(g) >= 2]
    if not logs:
        return None
    n = int(np.median([len(g) for g in logs]))
    if n < MIN_REPEATS:
        return None
    dof = sum(len(g) - 1 for g in logs)
    sd = math.sqrt(sum(float(((g - g.mean()) ** 2).sum()) for g in logs) / dof)
    found = prior([float(g.var(ddof=1)) for g in logs], [len(g) - 1 for g in logs])
    df = n - 1 + (min(found.df, found.total_df - (n - 1)) if found else 0)
    return math.expm1(float(stats.t.ppf((1 + level) / 2, df)) * sd / math.sqrt(n))
