"""The zero-shot label wording: which rows it reads, how it scores a template, and that eval and compare use it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax

from nichetune.infer.label_wording import (
    SIMILARITY_TEMPERATURE,
    TEMPLATES,
    choice_rows,
    choose_wording,
    worded,
)


def test_choice_rows_take_each_label_in_turn_and_stop_at_the_limit():
    rows = [{"text": f"p{i}", "label": "pos"} for i in range(5)] + [{"text": "n0", "label": "neg"},
                                                                    {"text": "u0", "label": "neu"}]
    assert [r["text"] for r in choice_rows(rows, limit=5)] == ["p0", "n0", "u0", "p1", "p2"]
    assert [r["text"] for r in choice_rows(rows, limit=100)] == ["p0", "n0", "u0", "p1", "p2", "p3", "p4"]
    assert choice_rows(rows, limit=2) == [rows[0], rows[5]] and choice_rows([], limit=3) == []


def test_labels_read_as_words_inside_the_template():
    assert worded(["side_effects", "LABEL_3"], "This text is {}.") == {
        "side_effects": "This text is side effects.", "LABEL_3": "This text is LABEL_3."}


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_the_template_under_which_the_rows_labels_are_likeliest_wins():
    """A hand-made embedding: texts about cats point along x, dogs along y. Bare names point half-way between; the
    "This is {}." sentences point at their own texts, so that template must win, and each score is the mean
    log-probability of the true label (scipy's log-softmax as the reference)."""
    rows = [{"text": "cat one", "label": "cat"}, {"text": "dog one", "label": "dog"},
            {"text": "cat two", "label": "cat"}]
    vectors = {"cat one": [1, 0.1], "cat two": [1, 0.3], "dog one": [0.2, 1],
               "This is cat.": [1, 0], "This is dog.": [0, 1]}

    def embed(texts):
        return _unit([vectors.get(t, [1, 1]) for t in texts])

    got = choose_wording(embed, rows, ["cat", "dog"])
    assert got.template == "This is {}." and got.rows == 3
    texts = embed(["cat one", "dog one", "cat two"])
    y = np.array([0, 1, 0])
    for template in TEMPLATES:
        logits = texts @ embed(list(worded(["cat", "dog"], template).values())).T / SIMILARITY_TEMPERATURE
        assert got.scores[template] == pytest.approx(log_softmax(logits, axis=1)[np.arange(3), y].mean(), abs=1e-4)
    assert got.scores["{}"] == pytest.approx(np.log(0.5), abs=1e-4)  # bare names sit half-way: no information
    assert choose_wording(embed, [{"text": "x", "label": "bird"}], ["cat", "dog"]) is None


def test_ties_keep_the_plainer_template():
    rows = [{"text": "a", "label": "cat"}, {"text": "b", "label": "dog"}]
    got = choose_wording(lambda texts: _unit(np.ones((len(texts), 2))), rows, ["cat", "dog"])
    assert got.template == TEMPLATES[0] and len(set(got.scores.values())) == 1
