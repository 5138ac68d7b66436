import random
from itertools import combinations

import numpy as np
import pytest

from nichetune.data.near_dup import (
    MinHasher,
    detection_probability,
    duplicate_clusters,
    exact_clusters,
    jaccard,
    lsh_params,
    near_pairs,
    normalise_text,
    shingles,
)

WORDS = [f"w{i}" for i in range(400)]


def test_normalisation_ignores_case_punctuation_and_spacing():
    assert normalise_text("The  Drug, helped!\n") == normalise_text("the drug helped") == "the drug helped"


def test_minhash_estimates_jaccard():
    rng = random.Random(0)
    hasher = MinHasher(256)
    errors = []
    for _ in range(40):
        a = set(rng.sample(range(1, 2**32), 200))
        b = set(rng.sample(sorted(a), rng.randint(20, 200))) | set(rng.sample(range(1, 2**32), rng.randint(0, 150)))
        estimate = float(np.mean(hasher.signature(a) == hasher.signature(b)))
        errors.append(abs(estimate - jaccard(a, b)))
    assert max(errors) < 0.12 and np.mean(errors) < 0.04


def test_lsh_finds_pairs_at_the_threshold():
    for threshold in (0.5, 0.7, 0.85, 0.95):
        bands, rows = lsh_params(threshold, 128)
        assert bands * rows <= 128
        assert detection_probability(threshold, bands, rows) >= 0.98
        assert detection_probability(threshold, 128 // (rows + 1), rows + 1) < 0.98  # the cheapest such choice


def _doc(rng, n=40):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def test_near_pairs_match_brute_force_above_threshold():
    rng = random.Random(1)
    texts = [_doc(rng) for _ in range(60)]
    for i in range(20):  # near copies with a few edits
        words = texts[i].split()
        for _ in range(rng.randint(1, 3)):
            words[rng.randrange(len(words))] = rng.choice(WORDS)
        texts.append(" ".join(words))
    threshold = 0.6
    sets = [shingles(t) for t in texts]
    truth = {(i, j) for i, j in combinations(range(len(texts)), 2) if jaccard(sets[i], sets[j]) >= threshold}
    found = {(i, j) for i, j, sim in near_pairs(texts, threshold=threshold)}
    assert found <= truth  # verified: never a false positive
    assert len(found) >= 0.95 * len(truth)  # and almost every true pair is found
    assert len(truth) >= 15


def test_clusters_join_exact_and_near_copies():
    base = "the patient reported severe nausea after the second dose of the new medication"
    texts = [base, base.upper() + "!", base.replace("severe", "strong"), "an unrelated sentence about compilers"]
    assert [c.members for c in exact_clusters(texts)] == [[0, 1]]
    # one word changed in 13 alters 3 of 11 trigrams: Jaccard 8/14 = 0.571
    (cluster,) = duplicate_clusters(texts, threshold=0.55)
    assert cluster.members == [0, 1, 2] and cluster.kind == "near"
    assert cluster.min_jaccard == pytest.approx(8 / 14, 1e-3)
    assert [c.members for c in duplicate_clusters(texts, threshold=0.6)] == [[0, 1]]


@pytest.mark.parametrize("text", ["", "one", "two words"])
def test_short_texts_are_handled(text):
    assert isinstance(shingles(text), set)
    duplicate_clusters([text, text, "other text entirely here"])
