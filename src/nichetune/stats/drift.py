"""Drift arithmetic: is the production data still like the reference data?

Each test gives a p-value that accounts for the sample sizes (a permutation or exact null distribution) and an
effect size with a threshold, so that a huge log does not turn a trivial shift into an alarm (the complaint
against sample-size-blind drift verdicts) and a tiny window does not hide a large one. Many windows and slices
are tested at once; ``holm`` adjusts their p-values so that the chance of any false alarm in one report stays at
or below alpha.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

PSI_EPS = 1e-4  # floor for empty bins, so PSI stays finite


def psi(reference: Sequence[float], current: Sequence[float], eps: float = PSI_EPS) -> float:
    """Population stability index of two distributions over the same bins (counts or shares):
    ``sum (c - r) * ln(c / r)``. Rules of thumb: under 0.1 stable, 0.1-0.25 moderate, over 0.25 large."""
    r = np.asarray(reference, dtype=float)
    c = np.asarray(current, dtype=float)
    r = np.clip(r / r.sum(), eps, None)
    c = np.clip(c / c.sum(), eps, None)
    return float(np.sum((c - r) * np.log(c / r)))


def category_counts(values: Sequence[Hashable], categories: Sequence[Hashable]) -> np.ndarray:
    """Counts of each of ``categories`` in ``values`` (values outside them are not counted)."""
    index = {c: i for i, c in enumerate(categories)}
    counts = np.zeros(len(categories))
    for v in values:
        if v in index:
            counts[index[v]] += 1
    return counts


def chi_square_homogeneity(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """p-value that two count vectors come from the same categorical distribution (Pearson's chi-square on the
    2 x K table; categories empty in both are dropped). 1.0 when fewer than two categories remain."""
    from scipy.stats import chi2_contingency

    table = np.vstack([np.asarray(reference_counts, float), np.asarray(current_counts, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(chi2_contingency(table, correction=False)[1])


def ks_test(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov ``(statistic, p-value)`` (exact for small samples, as scipy chooses)."""
    from scipy.stats import ks_2samp

    result = ks_2samp(np.asarray(reference, float), np.asarray(current, float))
    return float(result.statistic), float(result.pvalue)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)


def mmd_test(x: np.ndarray, y: np.ndarray, *, permutations: int = 200, seed: int = 0) -> tuple[float, float]:
    """Maximum mean discrepancy between two samples of vectors with a Gaussian kernel (bandwidth: the median
    pairwise distance of the pooled sample), ``(MMD^2 biased estimate, permutation p-value)``; the p-value is
    ``(k + 1) / (permutations + 1)`` where k permuted statistics reach the observed one."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    pooled = np.vstack([x, y])
    d2 = _sq_dists(pooled, pooled)
    off_diagonal = d2[np.triu_indices(len(pooled), 1)]
    bandwidth = float(np.median(off_diagonal)) or 1.0
    kernel = np.exp(-d2 / bandwidth)
    n = len(x)

    def statistic(order: np.ndarray) -> float:
        k = kernel[np.ix_(order, order)]
        return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())

    observed = statistic(np.arange(len(pooled)))
    rng = np.random.default_rng(seed)
    hits = sum(statistic(rng.permutation(len(pooled))) >= observed for _ in range(permutations))
    return observed, (hits + 1) / (permutations + 1)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values: reject where adjusted < alpha, and the chance of any false rejection
    among all the tests stays at or below alpha, whatever their dependence."""
    p = np.asarray(p_values, float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def expected_accuracy(confidences: Sequence[float]) -> tuple[float, float]:
    """Accuracy expected from calibrated confidences without labels (CBPE): the mean confidence of the predicted
    label, with its standard error as a Poisson-binomial mean ``sqrt(sum p (1 - p)) / n``."""
    p = np.asarray(confidences, float)
    if not len(p):
        return float("nan"), float("nan")
    return float(p.mean()), float(np.sqrt(np.sum(p * (1 - p))) / len(p))
