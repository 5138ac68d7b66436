"""A/B tests that may be looked at every day: the mixture sequential probability ratio test (mSPRT).

For the difference of two proportions (B - A, e.g. accuracy from feedback) with estimate ``d`` and variance
``v = pA (1 - pA) / nA + pB (1 - pB) / nB``, the normal mixture likelihood ratio against ``theta0`` with a
``N(theta0, tau^2)`` mixing distribution is

    L = sqrt(v / (v + tau^2)) * exp(tau^2 (d - theta0)^2 / (2 v (v + tau^2)))

(Johari, Pekelis and Walsh, "Always valid inference", 2017). ``1 / max L`` so far is a p-value that stays valid
however often it is read and whenever the test is stopped, and inverting the test gives a confidence sequence:
an interval that holds the true difference at every look at once with probability 1 - alpha.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TAU = 0.05  # the mixing scale: tuned for differences of a few points of accuracy


def _variance(successes_a: float, n_a: float, successes_b: float, n_b: float) -> tuple[float, float]:
    pa, pb = successes_a / n_a, successes_b / n_b
    v = pa * (1 - pa) / n_a + pb * (1 - pb) / n_b
    return pb - pa, max(v, 1e-12)


def msprt_ratio(successes_a: float, n_a: float, successes_b: float, n_b: float, *, tau: float = TAU,
                theta0: float = 0.0) -> float:
    """The mixture likelihood ratio of ``B - A = theta0`` after these counts (see the module's formula)."""
    d, v = _variance(successes_a, n_a, successes_b, n_b)
    t2 = tau * tau
    return math.sqrt(v / (v + t2)) * math.exp(min(700.0, t2 * (d - theta0) ** 2 / (2 * v * (v + t2))))


def confidence_sequence(successes_a: float, n_a: float, successes_b: float, n_b: float, *, alpha: float = 0.05,
                        tau: float = TAU) -> tuple[float, float]:
    """The interval of ``theta0`` the mSPRT does not reject at level alpha: valid at every look at once."""
    d, v = _variance(successes_a, n_a, successes_b, n_b)
    t2 = tau * tau
    half = math.sqrt(2 * v * (v + t2) / t2 * (math.log(1 / alpha) + 0.5 * math.log((v + t2) / v)))
    return d - half, d + half


@dataclass
class SequentialTest:
    """Looks at an A/B test over time: ``look`` after each batch of results; the always-valid p-value is the
    running minimum of ``1 / L``, and the test stops the first time it falls below alpha."""

    alpha: float = 0.05
    tau: float = TAU
    p_value: float = 1.0
    looks: int = 0
    stopped_at: int | None = None

    def look(self, successes_a: float, n_a: float, successes_b: float, n_b: float) -> dict:
        self.looks += 1
        if min(n_a, n_b) < 1:
            return self.state(successes_a, n_a, successes_b, n_b)
        ratio = msprt_ratio(successes_a, n_a, successes_b, n_b, tau=self.tau)
        self.p_value = min(self.p_value, 1.0 / ratio if ratio > 0 else 1.0)
        if self.stopped_at is None and self.p_value < self.alpha:
            self.stopped_at = self.looks
        return self.state(successes_a, n_a, successes_b, n_b)

    def state(self, successes_a: float, n_a: float, successes_b: float, n_b: float) -> dict:
        ready = min(n_a, n_b) >= 1
        low, high = confidence_sequence(successes_a, n_a, successes_b, n_b, alpha=self.alpha, tau=self.tau) \
            if ready else (-1.0, 1.0)
        return {"difference": (successes_b / n_b - successes_a / n_a) if ready else float("nan"),
                "p_value": self.p_value, "ci_low": max(-1.0, low), "ci_high": min(1.0, high), "looks": self.looks,
                "stopped": self.stopped_at is not None, "stopped_at": self.stopped_at}


def naive_z_p_value(successes_a: float, n_a: float, successes_b: float, n_b: float) -> float:
    """The fixed-horizon two-proportion z-test's p-value, valid only when looked at once."""
    from scipy.stats import norm

    d, v = _variance(successes_a, n_a, successes_b, n_b)
    return float(2 * norm.sf(abs(d) / math.sqrt(v)))


def sample_ratio_mismatch(counts: dict[str, int], weights: dict[str, float]) -> float:
    """p-value that the arms' counts follow their assignment weights (chi-square goodness of fit); a small one
    means assignment or logging is broken and no comparison can be trusted."""
    from scipy.stats import chisquare

    arms = sorted(weights)
    observed = np.array([counts.get(a, 0) for a in arms], float)
    if observed.sum() == 0 or len(arms) < 2:
        return 1.0
    share = np.array([weights[a] for a in arms], float)
    expected = observed.sum() * share / share.sum()
    return float(chisquare(observed, expected).pvalue)
