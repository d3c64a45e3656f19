"""The verdict rule on constructed numbers (a run cannot be made to produce a chosen spread): intervals
checked against scipy's own Welch test, the row-count adjustment against scipy's Benjamini-Hochberg, and
the edges (too few repeats, no spread)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sstats

from unet_bench.analysis import stats


def scipy_welch(ref, new, level):
    result = sstats.ttest_ind(new, ref, equal_var=False)
    return result.pvalue, tuple(result.confidence_interval(level))


def test_log_interval_is_welchs_interval_on_the_logs():
    ref, new = [10.0, 10.4, 9.8, 10.1], [11.0, 11.6, 10.7]
    effect = stats.judge(stats.Summary.of(ref, log=True), stats.Summary.of(new, log=True), log=True)
    p, (low, high) = scipy_welch(np.log(ref), np.log(new), 0.95)
    assert effect.p == pytest.approx(p, rel=1e-9)
    assert effect.interval(0.95) == pytest.approx((low, high), rel=1e-9)
    judged = stats.verdict(effect, 0.95)
    geometric = math.exp(np.log(new).mean()) / math.exp(np.log(ref).mean()) - 1
    assert judged.status == stats.REAL and judged.rel == pytest.approx(geometric)
    assert (judged.low, judged.high) == pytest.approx((math.expm1(low), math.expm1(high)))
    assert 0 < judged.low < judged.rel < judged.high


def test_a_change_is_real_exactly_when_its_interval_excludes_zero():
    ref, new = [1.0, 1.1, 0.9], [1.05, 1.2, 0.95]
    effect = stats.judge(stats.Summary.of(ref, True), stats.Summary.of(new, True), log=True)
    assert 0.05 < effect.p < 1
    assert stats.verdict(effect, 0.95).status == stats.NOISE
    assert stats.verdict(effect, 1 - effect.p * 0.99).status == stats.NOISE  # just wider than the boundary
    assert stats.verdict(effect, 1 - effect.p * 1.01).status == stats.REAL  # just narrower


def test_differences_of_means_for_seeds_are_relative_to_the_reference_mean():
    # a reference without spread is a known mean: the interval is the difference's, over that mean
    ref, new = [0.81, 0.81, 0.81], [0.84, 0.85, 0.83]
    effect = stats.judge(stats.Summary.of(ref, False), stats.Summary.of(new, False), log=False, unit="seed")
    p, (low, high) = scipy_welch(ref, new, 0.95)
    assert effect.p == pytest.approx(p, rel=1e-9)
    judged = stats.verdict(effect, 0.95)
    assert judged.status == stats.REAL
    assert (judged.rel, judged.low, judged.high) == pytest.approx((0.03 / 0.81, low / 0.81, high / 0.81))


def test_a_seed_metrics_relative_interval_counts_the_reference_means_noise():
    # a noisy reference, a new mean clearly above 0: the difference's interval over the reference mean
    # reaches -141 %, a fall below nothing; the ratio of the means cannot be below 0 here
    ref, new = [0.20, 0.28, 0.36], [0.07, 0.08, 0.09]
    effect = stats.judge(stats.Summary.of(ref, False), stats.Summary.of(new, False), log=False, unit="seed")
    assert effect.relative(effect.interval(0.95)[0]) < -1.0
    judged = stats.verdict(effect, 0.95)
    assert judged.rel == pytest.approx(0.08 / 0.28 - 1)
    assert -1.0 < judged.low < judged.rel < judged.high < 0
    assert judged.status == stats.REAL  # the verdict is the difference's: unchanged


def test_a_seed_metrics_relative_interval_covers_the_true_ratio_at_its_level():
    # three seeds a side, the new mean a third of the reference's, both as noisy as seeds are
    rng = np.random.default_rng(0)
    truth, trials = 0.1 / 0.3 - 1, 2000
    covered = 0
    for _ in range(trials):
        ref, new = rng.normal(0.3, 0.05, 3), rng.normal(0.1, 0.05, 3)
        judged = stats.verdict(stats.welch(stats.Summary.of(ref, False), stats.Summary.of(new, False), False), 0.95)
        covered += judged.low <= truth <= judged.high
    assert 0.93 <= covered / trials <= 0.97  # dividing by the reference mean alone covered 98.8 %


def test_a_change_from_a_negative_mean_keeps_its_direction_and_its_interval_in_order():
    # a learning curve's gain over its last quarter can be below 0: from -0.01 to +0.02 is a rise
    ref, new = [-0.012, -0.010, -0.008], [0.018, 0.020, 0.022]
    effect = stats.judge(stats.Summary.of(ref, False), stats.Summary.of(new, False), log=False, unit="seed")
    p, (low, high) = scipy_welch(ref, new, 0.95)
    judged = stats.verdict(effect, 0.95)
    assert judged.status == stats.REAL and judged.rel == pytest.approx(3.0)  # +0.03 against |-0.01|
    assert 0 < judged.low < low / 0.01 and high / 0.01 < judged.high  # wider: the reference mean's noise counts
    assert judged.low < judged.rel < judged.high


@pytest.mark.parametrize("ref, new, unit, why", [
    ([1.0], [2.0], "repeat", "1 repeat"),
    ([1.0, 1.1, 1.2], [2.0, 2.1], "repeat", "2 repeats"),
    ([0.8, 0.9], [0.7, 0.8, 0.75], "seed", "2 seeds"),
])
def test_fewer_than_three_repeats_give_no_verdict(ref, new, unit, why):
    judged = stats.judge(stats.Summary.of(ref, False), stats.Summary.of(new, False), log=False, unit=unit)
    assert judged.status == stats.NONE and judged.why == why
    assert judged.rel == pytest.approx(np.mean(new) / np.mean(ref) - 1)


def test_values_identical_over_repeats_are_exact():
    judged = stats.judge(stats.Summary.of([4096] * 3, True), stats.Summary.of([5120] * 4, True), log=True)
    assert judged.status == stats.EXACT and judged.rel == pytest.approx(0.25)
    one_side = stats.judge(stats.Summary.of([4096] * 3, True), stats.Summary.of([5000, 5100, 5200], True), True)
    assert isinstance(one_side, stats.Effect) and one_side.df == pytest.approx(2)  # the varying side's df


def test_row_count_adjustment_is_benjamini_hochberg_with_matching_intervals():
    # The fifteen p-values of Benjamini & Hochberg's (1995) example: four pass at 5 %.
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719,
         0.6528, 0.7590, 1.0]
    assert (sstats.false_discovery_control(p) <= 0.05).sum() == 4
    assert stats.fcr_level(p) == (pytest.approx(1 - 0.05 * 4 / 15), 4)
    assert stats.fcr_level([0.3, 0.5, 0.04]) == (pytest.approx(1 - 0.05 / 3), 0)  # none pass: Bonferroni's level
    assert stats.fcr_level([0.001, 0.01, 0.02]) == (pytest.approx(0.95), 3)  # all pass: plain 95 %
    assert stats.fcr_level([]) == (0.95, 0)


def test_minimal_detectable_change_sits_on_the_95_percent_boundary():
    rng = np.random.default_rng(1)
    groups = [list(np.exp(rng.normal(0, 0.03, 3)) * scale) for scale in (1.0, 2.0, 5.0, 9.0)]
    detectable = stats.minimal_detectable(groups)
    # Two cases with this run's pooled spread (equal on both sides), exactly that far apart: p = 0.05.
    logs = [np.log(g) - np.log(g).mean() for g in groups]
    sd = math.sqrt(sum((x**2).sum() for x in logs) / sum(len(x) - 1 for x in logs))
    base = np.array([-sd, 0.0, sd])  # sample sd of these three is exactly sd
    ref, new = np.exp(base), np.exp(base + math.log1p(detectable))
    effect = stats.judge(stats.Summary.of(ref, True), stats.Summary.of(new, True), log=True)
    assert effect.p == pytest.approx(0.05, rel=1e-6)
    assert stats.minimal_detectable([[1.0], [2.0, 2.1]]) is None  # a typical case measured once or twice


def test_a_trace_taken_once_is_exact_and_a_timing_taken_once_has_no_verdict():
    one, other = stats.Summary.of([100.0], log=True), stats.Summary.of([120.0], log=True)
    traced = stats.judge(one, other, log=True, once_is_exact=True)
    assert traced.status == stats.EXACT and traced.rel == pytest.approx(0.2)
    timed = stats.judge(one, other, log=True)
    assert timed.status == stats.NONE and timed.why == "1 repeat"
    varied = stats.judge(stats.Summary.of([100.0, 101.0, 99.0], True), stats.Summary.of([120.0, 121.0, 119.0], True),
                         log=True, once_is_exact=True)
    assert isinstance(varied, stats.Effect)  # a trace that varies between repeats gets an interval


def test_paired_log_ratios_give_a_one_sample_interval_over_processes():
    logs = [math.log(r) for r in (0.85, 0.86, 0.84, 0.855)]
    effect = stats.paired(logs, "in process")
    assert isinstance(effect, stats.Effect) and effect.df == 3 and effect.method == "in process"
    assert effect.se == pytest.approx(np.std(logs, ddof=1) / 2)
    verdict = stats.verdict(effect, 0.95)
    assert verdict.status == stats.REAL and verdict.low < verdict.rel < verdict.high < 0
    too_few = stats.paired(logs[:2], "by round")
    assert too_few.status == stats.NONE and too_few.why == "2 paired repeats"


def test_an_unchanged_network_under_a_slower_machine_is_within_noise_across_runs():
    # The second run's machine is 30 % slower: the control and the network both slow (the network 35 %).
    quiet, control_quiet = [10.0, 10.1, 9.9, 10.05], [1.0, 1.01, 0.99, 1.0]
    busy, control_busy = [13.5, 13.6, 13.4, 13.55], [1.3, 1.31, 1.29, 1.3]
    raw = stats.verdict(stats.judge(stats.Summary.of(quiet, True), stats.Summary.of(busy, True), True), 0.95)
    assert raw.status == stats.REAL  # what the unpaired rule alone would say
    found = stats.across_runs(quiet, busy, control_quiet, control_busy)
    assert found.method == "normalised by the control"
    assert stats.verdict(found, 0.95).status == stats.NOISE
    # A real 25 % slow-down on a steady machine is still called real, on the raw ratio.
    slower = stats.across_runs(quiet, [12.5, 12.6, 12.4, 12.55], control_quiet, [1.0, 0.99, 1.01, 1.0])
    assert slower.method == "raw, control steady" and stats.verdict(slower, 0.95).status == stats.REAL
    assert stats.Control.between(control_quiet, control_busy).moved


def test_the_paired_detectable_change_follows_the_spread_of_the_ratios():
    groups = [np.log([0.9, 0.91, 0.89]), np.log([1.1, 1.12, 1.08])]
    sd = math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / 4)
    assert stats.minimal_detectable_paired(groups) == pytest.approx(
        math.expm1(sstats.t.ppf(0.975, 2) * sd / math.sqrt(3)))
    assert stats.minimal_detectable_paired([np.log([0.9, 0.91])]) is None


def test_with_alike_rows_the_paired_detectable_change_borrows_the_other_rows_degrees_of_freedom():
    rng = np.random.default_rng(3)
    groups = [rng.normal(0.0, 0.02, 3) for _ in range(16)]  # 16 rows, 3 processes, one machine's noise
    alone = stats.minimal_detectable_paired(groups[:2])  # 2 rows: too few to share, t with 2 df
    shared = stats.minimal_detectable_paired(groups)
    sd = math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / 32)
    # no more degrees of freedom than the 16 rows hold together (32), and many more than one row's 2
    assert math.expm1(sstats.t.ppf(0.975, 32) * sd / math.sqrt(3)) <= shared
    assert shared < math.expm1(sstats.t.ppf(0.975, 8) * sd / math.sqrt(3))
    assert alone > 1.5 * shared


def _real_share(sds, rows_per_sd, trials, rng):
    """Share of unchanged rows (3 processes each, true change 0) called real at 95 %, per noise level."""
    real = np.zeros(len(sds))
    for _ in range(trials):
        effects, kinds = {}, {}
        for k, sd in enumerate(sds):
            for j in range(rows_per_sd[k]):
                effects[(k, j)] = stats.paired(rng.normal(0.0, sd, 3), "in process")
                kinds[(k, j)] = "infer"
        for (k, _), found in stats.moderate(effects, kinds).items():
            real[k] += stats.verdict(found, 0.95).status == stats.REAL
    return real / (trials * np.asarray(rows_per_sd))


def test_moderated_paired_rows_keep_their_false_positive_rate():
    rng = np.random.default_rng(0)
    alike = _real_share([0.03], [16], 150, rng)
    assert 0.025 < alike[0] < 0.075  # 2400 unchanged rows: 5 % called real, as 95 % intervals promise
    # one row five times noisier than the other fifteen: moderation must not lend it their small variance
    mixed = _real_share([0.02, 0.10], [15, 1], 300, rng)
    assert mixed[0] < 0.075 and mixed[1] < 0.15  # alone (t with 2 df) it would be 5 %


def test_moderation_narrows_an_alike_row_and_leaves_too_few_rows_alone():
    rng = np.random.default_rng(1)
    effects = {k: stats.paired(rng.normal(-0.1, 0.02, 3), "in process") for k in range(12)}
    moderated = stats.moderate(effects, {k: "infer" for k in effects})
    assert sum(moderated[k].df > effects[k].df for k in effects) >= 9  # all but a chance outlier or two
    # most rows: about t(30) instead of t(2) at the true spread (0.02), so well under 0.6 of t(2)'s width
    widths = [moderated[k].interval(0.95)[1] - moderated[k].interval(0.95)[0] for k in effects]
    assert np.median(widths) < 0.6 * 2 * sstats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3)
    two = {k: effects[k] for k in (0, 1)}
    assert stats.moderate(two, {0: "infer", 1: "infer"}) == two
    # rows of different modes do not share: train rows alone (two of them) stay as they were
    kinds = {k: "infer" if k < 10 else "train" for k in effects}
    mixed = stats.moderate(effects, kinds)
    assert mixed[10] == effects[10] and mixed[0].df > effects[0].df


def test_a_control_change_widens_the_interval_by_itself_not_through_three_repeats_t_quantile():
    ref, control_ref = [10.0, 10.1, 9.9], [1.0, 1.0, 1.0]
    new, control_new = [12.0, 12.12, 11.88], [1.2, 1.2, 1.2]  # the same network on a machine 20 % slower
    found = stats.across_runs(ref, new, control_ref, control_new)
    low, high = found.interval(0.95)
    component = stats.CONTROL_RESIDUAL * math.log(1.2)
    assert found.method == "normalised by the control" and abs(found.estimate) < 1e-9
    # nearly all of the variance is the stated component: the interval is about +-1.96 of it, where the
    # t quantile of 4 degrees of freedom (2.78) would have made it 40 % wider
    assert 1.9 * component < high < 2.1 * component and low == pytest.approx(-high)
