import random

import pytest
from sklearn.metrics import cohen_kappa_score

from nichetune.data.audit.agreement import agreement_section, cohen_kappa, fleiss_kappa, krippendorff_alpha_nominal


def test_cohen_matches_scikit_learn():
    rng = random.Random(0)
    for _ in range(20):
        a = [rng.choice("xyz") for _ in range(50)]
        b = [x if rng.random() < 0.7 else rng.choice("xyz") for x in a]
        assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_fleiss_matches_the_published_example():
    # Fleiss (1971) as worked in Wikipedia: 10 subjects, 14 raters, 5 categories -> kappa 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.2099, abs=1e-3)


def test_krippendorff_matches_the_published_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units,
    # missing values; nominal alpha = 0.743
    coders = [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
              [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
              [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
              [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]
    units = [[c[u] for c in coders if c[u] is not None] for u in range(12)]
    assert krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=1e-3)


def test_perfect_agreement_and_section():
    rows = [{"id": str(i), "label_a": x, "label_b": x, "label_c": y}
            for i, (x, y) in enumerate([("p", "p"), ("n", "n"), ("p", "n"), ("n", "n")])]
    out = agreement_section(rows, ["label_a", "label_b", "label_c"])
    assert out["disagreeing_ids"] == ["2"] and "fleiss_kappa" in out
    assert agreement_section(rows, ["label_a", "label_b"])["cohen_kappa"] == 1.0
