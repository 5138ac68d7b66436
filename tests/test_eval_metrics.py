"""Evaluation arithmetic against references: scikit-learn, fairlearn, scipy and hand-computed fixtures."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from nichetune.eval.slices import accuracy, length_bucket, slice_metrics
from nichetune.stats.calibration import (
    TemperatureScaler,
    brier,
    calibration_metrics,
    ece,
    mce,
    nll,
    reliability_bins,
    softmax,
)
from nichetune.stats.classification import classification_metrics, most_confused_pairs
from nichetune.stats.conformal import SplitConformal, selective_curve, set_metrics, threshold_for_accuracy
from nichetune.stats.significance import mcnemar, paired_bootstrap, verdict


def _random_case(seed: int, n: int = 300, k: int = 4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))
    return y, pred


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_scikit_learn(seed):
    y, pred = _random_case(seed, k=5)
    pred[pred == 4] = 3  # label 4 is never predicted: zero precision denominators
    labels = list("abcde")
    m = classification_metrics(y, pred, labels)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    for avg in ("macro", "micro", "weighted"):
        assert m[f"{avg}_f1"] == pytest.approx(skm.f1_score(y, pred, average=avg, zero_division=0))
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=range(5), zero_division=0)
    for i, name in enumerate(labels):
        assert m["per_class"][name] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    assert m["confusion"] == skm.confusion_matrix(y, pred, labels=range(5)).tolist()


def test_most_confused_pairs_orders_off_diagonal_counts():
    pairs = most_confused_pairs([[5, 3, 0], [1, 4, 7], [0, 0, 9]], ["a", "b", "c"], top=2)
    assert pairs == [{"true": "b", "predicted": "c", "count": 7}, {"true": "a", "predicted": "b", "count": 3}]


def test_ece_mce_and_reliability_on_a_hand_computed_fixture():
    # top confidences 0.9, 0.8, 0.6, 0.3 (correct, wrong, correct, correct); 2 equal-width bins
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    y = np.array([0, 1, 1, 1])
    # (0, 0.5] is empty ... confidences 0.9, 0.8, 0.6, 0.7 all fall in (0.5, 1.0]
    bins = reliability_bins(probs, y, n_bins=2)
    assert bins == [{"lo": 0.5, "hi": 1.0, "count": 4, "confidence": pytest.approx(0.75), "accuracy": 0.75}]
    assert ece(probs, y, n_bins=2) == pytest.approx(0.0)
    # 4 bins: (0.5,0.75] holds 0.6, 0.7 (both right: |1-0.65|), (0.75,1] holds 0.9 right, 0.8 wrong (|0.5-0.85|)
    assert ece(probs, y, n_bins=4) == pytest.approx((2 * 0.35 + 2 * 0.35) / 4)
    assert mce(probs, y, n_bins=4) == pytest.approx(0.35)
    assert ece(probs, y, n_bins=2, strategy="quantile") == pytest.approx((abs(1 - 0.65) * 2 + abs(0.5 - 0.85) * 2) / 4)


def test_brier_and_nll_match_scikit_learn():
    rng = np.random.default_rng(0)
    probs = softmax(rng.normal(size=(200, 3)) * 2)
    y = rng.integers(0, 3, 200)
    assert nll(probs, y) == pytest.approx(skm.log_loss(y, probs, labels=[0, 1, 2]))
    binary = probs[:, :2] / probs[:, :2].sum(1, keepdims=True)
    yb = (y == 1).astype(int)
    # the multi-class Brier of a binary problem is twice scikit-learn's (which scores one column)
    assert brier(binary, yb) == pytest.approx(2 * skm.brier_score_loss(yb, binary[:, 1]))
    assert set(calibration_metrics(probs, y)) == {"ece", "ece_equal_mass", "mce", "brier", "nll"}


def test_temperature_scaling_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5000, 4)) * 3
    true_probs = softmax(logits / 2.5)  # the model is over-confident by a factor 2.5
    y = np.array([rng.choice(4, p=p) for p in true_probs])
    scaler = TemperatureScaler().fit(logits, y)
    assert scaler is not None and scaler.temperature_ == pytest.approx(2.5, rel=0.08)
    assert scaler.nll_after_ < scaler.nll_before_
    assert ece(scaler.predict_proba(logits), y) < ece(softmax(logits), y) / 2


@pytest.mark.parametrize("method", ["lac", "aps"])
def test_conformal_sets_cover_at_least_one_minus_alpha_across_many_seeds(method):
    alpha, coverages, sizes = 0.1, [], []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        logits = rng.normal(size=(1000, 5)) * 1.5
        probs = softmax(logits)
        y = np.array([rng.choice(5, p=p) for p in softmax(logits * 0.7)])  # miscalibrated on purpose
        cp = SplitConformal(alpha, method).fit(probs[:500], y[:500])
        stats = set_metrics(cp.predict_sets(probs[500:]), y[500:])
        coverages.append(stats["coverage"])
        sizes.append(stats["mean_set_size"])
    mean = float(np.mean(coverages))
    assert 1 - alpha - 0.005 <= mean <= 1 - alpha + 1 / 501 + 0.02  # valid, and not trivially conservative
    assert 1 < np.mean(sizes) < 5


def test_aps_sets_are_nested_prefixes_of_the_ranked_labels():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    cp = SplitConformal(0.2, "aps")
    cp.qhat_ = 0.85
    assert cp.predict_sets(probs).tolist() == [[True, True, False], [False, False, True]]


def test_selective_prediction_curve_and_threshold():
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.3, 0.7], [0.4, 0.6]])
    y = np.array([0, 1, 1, 0])
    curve = selective_curve(probs, y)
    assert curve["accuracy"] == pytest.approx([1.0, 0.5, 2 / 3, 0.5])
    assert threshold_for_accuracy(curve, 0.6) == {"target_accuracy": 0.6, "coverage": 0.75,
                                                  "accuracy": pytest.approx(2 / 3), "confidence_threshold": 0.7}
    assert threshold_for_accuracy(curve, 1.01) is None


def test_slices_match_fairlearn_metricframe():
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(3)
    y, pred = _random_case(3, n=400)
    groups = rng.choice(["asthma", "depression", "pain", "rare"], size=400, p=[0.4, 0.3, 0.27, 0.03])
    result = slice_metrics(y, pred, groups, min_count=20)
    frame = MetricFrame(metrics=accuracy_score, y_true=y, y_pred=pred, sensitive_features=groups)
    for row in result["slices"]:
        assert row["accuracy"] == pytest.approx(frame.by_group[row["slice"]])
        assert row["ci_low"] <= row["accuracy"] <= row["ci_high"]
    assert result["thin_slices"] == ["rare"]  # reported, flagged ...
    solid = frame.by_group.drop("rare")
    assert result["worst"] == solid.idxmin() and result["largest_gap"] == pytest.approx(solid.max() - solid.min())


def test_length_buckets():
    assert [length_bucket(" ".join(["w"] * n)) for n in (3, 20, 99, 150, 500)] == ["<20", "20-49", "50-99",
                                                                                 "100-199", "200+"]


def test_mcnemar_exact_and_chi_square_on_hand_computed_cases():
    # 10 pairs only A got right, 2 only B: exact two-sided p = 2 * P(X <= 2 | n=12, 1/2) = 2 * 79 / 4096
    a = np.array([1] * 10 + [0] * 2 + [1] * 30 + [0] * 5, dtype=bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 30 + [0] * 5, dtype=bool)
    res = mcnemar(a, b)
    assert (res["only_a_correct"], res["only_b_correct"], res["exact"]) == (10, 2, True)
    assert res["p_value"] == pytest.approx(2 * 79 / 4096)
    # 30 vs 10 discordant: chi2 = (|30-10|-1)^2 / 40 = 9.025, p = 0.00266
    a = np.array([1] * 30 + [0] * 10, dtype=bool)
    res = mcnemar(a, ~a)
    assert res["statistic"] == pytest.approx(9.025) and res["p_value"] == pytest.approx(0.0026636, rel=1e-3)
    assert mcnemar(a, a)["p_value"] == 1.0


def test_paired_bootstrap_and_verdicts():
    y, worse = _random_case(7, n=500)
    better = np.where(np.random.default_rng(8).random(500) < 0.5, y, worse)  # fixes half the errors
    res = paired_bootstrap(accuracy, y, worse, better)
    assert res["delta"] == pytest.approx(accuracy(y, better) - accuracy(y, worse))
    assert 0 < res["ci_low"] < res["delta"] < res["ci_high"]
    assert res["p_value"] == pytest.approx(2 / 2001)  # no resample favours A: (0 + 1) / (2000 + 1), two-sided
    assert verdict("accuracy", **{k: res[k] for k in ("delta", "ci_low", "ci_high", "p_value")})["verdict"] == "better"
    same = paired_bootstrap(accuracy, y, worse, worse.copy())
    assert verdict("accuracy", **{k: same[k] for k in ("delta", "ci_low", "ci_high", "p_value")})["verdict"] == \
        "not significantly different"
    flipped = paired_bootstrap(accuracy, y, better, worse)
    v = verdict("accuracy", **{k: flipped[k] for k in ("delta", "ci_low", "ci_high", "p_value")})
    assert v["verdict"] == "worse" and v["sentence"].startswith("The tuned model is worse than the base")


def test_verdict_on_macro_f1_when_the_recipe_picks_it():
    """Always answering the big class keeps accuracy but loses macro-F1: the verdict follows the chosen metric."""
    from sklearn.metrics import f1_score

    from nichetune.eval.classify_run import compare_predictions
    from nichetune.stats.classification import macro_f1_for

    rng = np.random.default_rng(3)
    y = np.where(rng.random(300) < 0.8, 0, np.where(rng.random(300) < 0.5, 1, 2))
    lazy = np.zeros_like(y)  # the majority class only
    careful = np.where(rng.random(300) < 0.75, y, (y + 1) % 3)  # finds minority rows, makes other errors
    f1 = macro_f1_for(["a", "b", "c"])
    on_acc = compare_predictions("lazy", y, lazy, careful, f1)
    on_f1 = compare_predictions("lazy", y, lazy, careful, f1, metric="macro_f1")
    assert on_f1["bootstrap_macro_f1"]["delta"] == pytest.approx(
        f1_score(y, careful, average="macro") - f1_score(y, lazy, average="macro", zero_division=0))
    assert on_acc["verdict"] != "better" and on_f1["verdict"] == "better"
    assert "macro-F1" in on_f1["sentence"] and on_f1["metric"] == "macro_f1"
    assert on_acc["bootstrap"] == on_f1["bootstrap"]  # both metrics are always reported
    assert on_f1["accuracy_verdict"] == on_acc["verdict"] and on_f1["accuracy_sentence"] == on_acc["sentence"]


def test_paired_bootstrap_over_groups_is_the_mean_of_each_groups_delta():
    """Several few-shot samples: one delta (the mean of the samples' deltas) and one interval, resampled within each."""
    y, worse = _random_case(7, n=500)
    better = np.where(np.random.default_rng(8).random(500) < 0.5, y, worse)
    groups = np.repeat([3, 1, 2], [100, 150, 250])  # unequal samples, keys in any order
    res = paired_bootstrap(accuracy, y, worse, better, groups=groups)
    each = [accuracy(y[groups == g], better[groups == g]) - accuracy(y[groups == g], worse[groups == g])
            for g in (1, 2, 3)]
    assert res["delta"] == pytest.approx(np.mean(each))
    assert res["delta"] != pytest.approx(accuracy(y, better) - accuracy(y, worse))  # not the pooled rows' delta
    assert 0 < res["ci_low"] < res["delta"] < res["ci_high"] and res["p_value"] == pytest.approx(2 / 2001)
    one = paired_bootstrap(accuracy, y, worse, better, groups=np.zeros(500))
    assert one == paired_bootstrap(accuracy, y, worse, better)  # one group is the plain bootstrap, draw for draw
