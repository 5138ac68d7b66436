"""The lexical model and the stack: the same predictions as scikit-learn's pipelines, the stronger candidate kept on
validation, a pickle-free round trip, and a stack weight that follows which side carries the signal."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from nichetune.errors import NichetuneError
from nichetune.tasks.lexical import LexicalStack, fit_lexical, fit_stack, load_stack

WORDS = [["awful", "pain", "nausea", "worse"], ["fine", "okay", "average", "mild"], ["great", "relief", "helped"]]


def _texts(rng, y, noise: float = 0.6) -> list[str]:
    out = []
    for c in y:
        words = [rng.choice(WORDS[c] if rng.random() > noise else WORDS[rng.integers(3)]) for _ in range(3)]
        out.append(" ".join(words) + f" {rng.choice(['pill', 'drug', 'dose'])}")
    return out


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y_tr, y_va, y_te = rng.integers(0, 3, 300), rng.integers(0, 3, 120), rng.integers(0, 3, 120)
    return (_texts(rng, y_tr), y_tr), (_texts(rng, y_va), y_va), (_texts(rng, y_te), y_te)


def _logreg():
    return LogisticRegression(max_iter=2000, C=10.0, solver="newton-cg")


@pytest.mark.parametrize("kind, clf", [("logreg", _logreg), ("svm", lambda: LinearSVC(C=1.0))])
def test_scores_match_scikit_learn(data, kind, clf):
    (tr, y_tr), _, (te, _) = data
    model = fit_lexical(tr, y_tr, 3, kinds=(kind,))
    ref = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), clf()).fit(tr, y_tr)
    np.testing.assert_allclose(model.scores(te), ref.decision_function(te), atol=1e-8)


def test_binary_scores_give_the_same_probabilities_and_absent_labels_never_win(data):
    (tr, y_tr), _, (te, _) = data
    keep = y_tr != 1  # label 1 never appears in training: two classes, 0 and 2, of three
    model = fit_lexical([t for t, k in zip(tr, keep, strict=True) if k], y_tr[keep], 3, kinds=("logreg",))
    ref = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                        _logreg()).fit([t for t, k in zip(tr, keep, strict=True) if k], y_tr[keep])
    s = model.scores(te)
    p2 = 1 / (1 + np.exp(-(s[:, 2] - s[:, 0])))
    np.testing.assert_allclose(p2, ref.predict_proba(te)[:, 1], atol=1e-8)
    assert not (s.argmax(1) == 1).any()


def test_the_stronger_candidate_on_validation_is_kept(data):
    (tr, y_tr), (va, y_va), _ = data
    model = fit_lexical(tr, y_tr, 3, val_texts=va, val_y=y_va)
    assert set(model.validation) == {"logreg", "svm"}
    assert model.validation[model.kind] == max(model.validation.values())
    assert model.validation[model.kind] == pytest.approx(float(np.mean(model.predict(va) == y_va)))


def test_one_label_is_refused_with_a_hint():
    with pytest.raises(NichetuneError, match="two labels"):
        fit_lexical(["a b", "c d"], np.array([1, 1]), 3)


def test_stack_weight_follows_the_side_with_the_signal_and_round_trips(data, tmp_path):
    (tr, y_tr), (va, y_va), (te, _) = data
    model = fit_lexical(tr, y_tr, 3, val_texts=va, val_y=y_va)
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(len(y_va), 3))
    # an encoder that knows nothing: most of the weight goes to the words, and the stack is no worse than them
    blind = fit_stack(model, noise, model.scores(va), y_va)
    assert blind.weight > 0.5 and blind.summary["validation"]["stack"] >= blind.summary["validation"]["lexical"]
    # an encoder that knows the answer outright: the words add nothing
    perfect = noise + 40 * np.eye(3)[y_va]
    stack = fit_stack(model, perfect, model.scores(va), y_va)
    assert stack.weight <= 0.1 and stack.summary["validation"]["stack"] == 1.0
    # a useful encoder and useful words: the stack beats either side on validation
    both = fit_stack(model, noise + 1.5 * np.eye(3)[y_va], model.scores(va), y_va)
    scores = both.summary["validation"]
    assert 0 < both.weight < 1 and scores["stack"] > max(scores["encoder"], scores["lexical"])
    assert scores["stack"] == pytest.approx(float(np.mean(both.mix(noise + 1.5 * np.eye(3)[y_va],
                                                                   model.scores(va)).argmax(1) == y_va)))
    both.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lexical.json", "lexical.safetensors"]
    back = load_stack(tmp_path)
    enc = rng.normal(size=(len(te), 3))
    np.testing.assert_allclose(back.apply(te, enc), both.apply(te, enc), atol=1e-5)
    assert isinstance(back, LexicalStack) and load_stack(tmp_path / "missing") is None


def test_two_overconfident_wrong_sides_never_stack_into_a_constant_answer(data):
    (tr, y_tr), (va, y_va), _ = data
    model = fit_lexical(tr, y_tr, 3, val_texts=va, val_y=y_va)
    rng = np.random.default_rng(2)
    wrong = 50 * rng.normal(size=(len(y_va), 3))  # confident noise: uniform answers would have the lower log-loss
    stack = fit_stack(model, wrong, 50 * rng.normal(size=(len(y_va), 3)), y_va)
    assert stack.w_encoder + stack.w_lexical > 0
    assert len(set(stack.mix(wrong, model.scores(va)).argmax(1).tolist())) > 1


def test_the_report_names_the_simpler_model_when_the_tuned_one_does_not_beat_it():
    from nichetune.eval.evaluators.baselines import simpler_model_warning

    majority = {"id": "majority", "baseline": "majority class", "verdict": "not significantly different"}
    svm = {"id": "tfidf-svm", "baseline": "TF-IDF + linear SVM (the stronger of two on validation)",
           "verdict": "not significantly different", "metric": "macro_f1"}
    said = simpler_model_warning([majority, svm])
    assert said.startswith("The tuned model does not beat TF-IDF + linear SVM on macro-F1")
    assert "simpler model is the better choice" in said
    assert "is worse than TF-IDF + linear SVM on accuracy" in simpler_model_warning([{**svm, "verdict": "worse",
                                                                               "metric": "accuracy"}])
    assert simpler_model_warning([majority, {**svm, "verdict": "better"}]) == ""
    # beaten words, unbeaten base model: the training showed no gain over the untrained model
    base = {"id": "zero-shot-base", "verdict": "not significantly different", "metric": "macro_f1",
            "baseline": "zero-shot base model (labels worded as 'This text is {}.', chosen on 24 training rows)"}
    said = simpler_model_warning([majority, {**svm, "verdict": "better"}, base])
    assert said.startswith("The tuned model does not beat its own base model untrained (zero-shot base model "
                           "(labels worded as 'This text is {}.'") and "training showed no gain" in said
    assert simpler_model_warning([{**svm, "verdict": "better"}, {**base, "verdict": "better"}]) == ""
    assert "The tuned model does not beat TF-IDF" in simpler_model_warning([svm, base])  # the words come first


def test_scoring_builds_the_vectorizer_once(data, monkeypatch):
    """A served request once rebuilt the vocabulary and copied the transposed coefficients (200 ms a call on
    FOLDOC's 117k terms); both are built on the first call and reused, with the same scores."""
    import nichetune.tasks.lexical as lexical

    (tr, y_tr), _, (te, _) = data
    model = fit_lexical(tr, y_tr, 3, kinds=("logreg",))
    built = []
    real = lexical._vectorizer
    monkeypatch.setattr(lexical, "_vectorizer", lambda vocabulary=None: built.append(1) or real(vocabulary))
    first = model.scores(te[:5])
    for _ in range(3):
        np.testing.assert_array_equal(model.scores(te[:5]), first)
    assert len(built) == 1
