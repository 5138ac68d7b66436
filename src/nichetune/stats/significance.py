"""Is B really better than A on the same inputs? Paired bootstrap intervals and McNemar's test."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap_ci(metric: Callable[[np.ndarray], float], n: int, *, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``metric(indices)`` over resamples of ``range(n)`` with replacement."""
    rng = np.random.default_rng(seed)
    values = np.array([metric(rng.integers(0, n, n)) for _ in range(n_boot)])
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def paired_bootstrap(metric: Callable[[np.ndarray, np.ndarray], float], y_true, pred_a, pred_b, *,
                     n_boot: int = 2000, seed: int = 0, groups=None) -> dict:
    """Delta ``metric(B) - metric(A)`` with a 95% interval from resampling the same examples for both,
    and the two-sided bootstrap p-value of no difference (counted as (k + 1) / (n_boot + 1), so it is
    never reported as exactly 0 from a finite number of resamples).

    With ``groups`` (one key per example: the sample or dataset it came from) the delta is the mean of each
    group's own delta, and every resample draws within each group (a stratified bootstrap): several small
    samples give one interval for their mean. One group is the plain bootstrap, draw for draw."""
    y_true, pred_a, pred_b = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)
    n = len(y_true)
    keys = np.zeros(n) if groups is None else np.asarray(groups)
    members = [np.flatnonzero(keys == key) for key in dict.fromkeys(keys.tolist())]

    def delta_of(parts: list[np.ndarray]) -> float:
        return float(np.mean([metric(y_true[i], pred_b[i]) - metric(y_true[i], pred_a[i]) for i in parts]))

    delta = delta_of(members)
    rng = np.random.default_rng(seed)
    deltas = np.array([delta_of([m[rng.integers(0, len(m), len(m))] for m in members]) for _ in range(n_boot)])
    p = 2 * (min((deltas <= 0).sum(), (deltas >= 0).sum()) + 1) / (n_boot + 1)
    return {"delta": float(delta), "ci_low": float(np.quantile(deltas, 0.025)),
            "ci_high": float(np.quantile(deltas, 0.975)), "p_value": float(min(1.0, p)), "n": n}


def mcnemar(correct_a, correct_b) -> dict:
    """McNemar's test on paired correctness: exact binomial when fewer than 25 discordant pairs,
    else the chi-square statistic with continuity correction."""
    from scipy.stats import binom, chi2

    a, b_ = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int((a & ~b_).sum()), int((~a & b_).sum())
    discordant = only_a + only_b
    if discordant == 0:
        return {"only_a_correct": 0, "only_b_correct": 0, "statistic": 0.0, "p_value": 1.0, "exact": True}
    if discordant < 25:
        p = min(1.0, 2 * binom.cdf(min(only_a, only_b), discordant, 0.5))
        return {"only_a_correct": only_a, "only_b_correct": only_b, "statistic": float(min(only_a, only_b)),
                "p_value": float(p), "exact": True}
    stat = (abs(only_a - only_b) - 1) ** 2 / discordant
    return {"only_a_correct": only_a, "only_b_correct": only_b, "statistic": float(stat),
            "p_value": float(chi2.sf(stat, 1)), "exact": False}


def verdict(metric: str, delta: float, ci_low: float, ci_high: float, p_value: float, *,
            higher_is_better: bool = True, alpha: float = 0.05, a: str = "the base",
            b: str = "the tuned model") -> dict:
    """A plain sentence: better, not significantly different, or worse, with the numbers behind it."""
    significant = p_value < alpha and (ci_low > 0 or ci_high < 0)
    improved = delta > 0 if higher_is_better else delta < 0
    word = ("better" if improved else "worse") if significant else "not significantly different"
    relation = f"{word} than" if significant else f"{word} from"
    subject = b[0].upper() + b[1:] if b.startswith("the ") else b  # a run name keeps its spelling
    sentence = (f"{subject} is {relation} {a} on {metric}: {delta:+.3f} "
                f"(95% CI {ci_low:+.3f} to {ci_high:+.3f}, p = {p_value:.3g}).")
    return {"verdict": word, "sentence": sentence, "delta": float(delta), "p_value": float(p_value)}
