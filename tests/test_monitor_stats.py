"""Drift and sequential-testing arithmetic against hand-computed values, scipy, and simulations with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nichetune.stats.drift import (
    category_counts,
    chi_square_homogeneity,
    expected_accuracy,
    holm,
    mmd_test,
    psi,
)
from nichetune.stats.sequential import (
    SequentialTest,
    confidence_sequence,
    msprt_ratio,
    naive_z_p_value,
    sample_ratio_mismatch,
)


def test_psi_and_counts_by_hand():
    # shares (0.5, 0.5) -> (0.8, 0.2): 0.3 ln(1.6) + (-0.3) ln(0.4)
    assert psi([50, 50], [80, 20]) == pytest.approx(0.3 * math.log(1.6) - 0.3 * math.log(0.4))
    assert psi([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)
    assert list(category_counts(["a", "b", "a", "z"], ["a", "b", "c"])) == [2, 1, 0]


def test_chi_square_matches_scipy_and_holm_by_hand():
    from scipy.stats import chi2_contingency

    a, b = [30, 50, 20], [20, 40, 40]
    assert chi_square_homogeneity(a, b) == pytest.approx(chi2_contingency([a, b], correction=False)[1])
    assert chi_square_homogeneity([5, 0], [3, 0]) == 1.0  # one category: nothing to compare
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005, 3 x 0.01, 2 x 0.03, then max(0.06, 1 x 0.04)
    assert list(holm([0.01, 0.04, 0.03, 0.005])) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_mmd_keeps_its_false_alarm_rate_and_finds_a_planted_shift():
    rng = np.random.default_rng(0)
    alarms = 0
    for i in range(60):
        x, y = rng.normal(size=(40, 4)), rng.normal(size=(40, 4))
        alarms += mmd_test(x, y, permutations=99, seed=i)[1] < 0.05
    assert alarms / 60 <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 60)  # alpha plus two binomial standard errors
    x, y = rng.normal(size=(40, 4)), rng.normal(loc=0.8, size=(40, 4))
    statistic, p = mmd_test(x, y, permutations=99)
    assert p <= 0.02 and statistic > 0


def test_expected_accuracy_from_calibrated_confidences_matches_simulated_labels():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.4, 1.0, size=5000)
    correct = rng.random(5000) < conf  # calibrated by construction
    mean, se = expected_accuracy(conf)
    assert abs(mean - correct.mean()) < 3 * se and se == pytest.approx(math.sqrt(np.sum(conf * (1 - conf))) / 5000)


def _simulate(p_a: float, p_b: float, *, days: int = 30, per_day: int = 100, sims: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    naive = msprt = covered = 0
    for _ in range(sims):
        test, sa, sb, n = SequentialTest(alpha=0.05), 0, 0, 0
        rejected_naive, always_covered = False, True
        for _ in range(days):  # look every day
            sa += rng.binomial(per_day, p_a)
            sb += rng.binomial(per_day, p_b)
            n += per_day
            state = test.look(sa, n, sb, n)
            rejected_naive |= naive_z_p_value(sa, n, sb, n) < 0.05
            always_covered &= state["ci_low"] <= p_b - p_a <= state["ci_high"]
        naive += rejected_naive
        msprt += test.stopped_at is not None
        covered += always_covered
    return naive / sims, msprt / sims, covered / sims


def test_peeking_every_day_inflates_a_z_test_but_not_the_msprt():
    naive, msprt, covered = _simulate(0.8, 0.8)
    assert naive > 0.15  # a fixed-horizon test read 30 times rejects a true null far more often than 5%
    assert msprt <= 0.05 and covered >= 0.95
    _, power, covered = _simulate(0.75, 0.85, sims=100)
    assert power >= 0.9 and covered >= 0.9


def test_msprt_formula_and_confidence_sequence_by_hand():
    # 80/100 vs 90/100: d = 0.1, v = 0.16/100 + 0.09/100 = 0.0025, tau^2 = 0.0025
    ratio = msprt_ratio(80, 100, 90, 100, tau=0.05)
    assert ratio == pytest.approx(math.sqrt(0.5) * math.exp(0.0025 * 0.01 / (2 * 0.0025 * 0.005)))
    low, high = confidence_sequence(80, 100, 90, 100, alpha=0.05, tau=0.05)
    half = math.sqrt(2 * 0.0025 * 0.005 / 0.0025 * (math.log(20) + 0.5 * math.log(2)))
    assert (low, high) == pytest.approx((0.1 - half, 0.1 + half))
    assert msprt_ratio(80, 100, 90, 100, tau=0.05, theta0=low) == pytest.approx(20.0)  # the edge: L = 1 / alpha


def test_sample_ratio_mismatch_matches_scipy():
    from scipy.stats import chisquare

    assert sample_ratio_mismatch({"a": 500, "b": 500}, {"a": 0.5, "b": 0.5}) == pytest.approx(1.0)
    p = sample_ratio_mismatch({"a": 500, "b": 600}, {"a": 0.5, "b": 0.5})
    assert p == pytest.approx(chisquare([500, 600], [550, 550]).pvalue) and p < 0.01
    assert sample_ratio_mismatch({"a": 900, "b": 100}, {"a": 0.9, "b": 0.1}) == pytest.approx(1.0)
