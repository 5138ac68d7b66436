"""The evaluator contract, one row per evaluator: known inputs give known numbers, each checked against
an independent reference (scikit-learn, scipy, a hand computation or a direct forward pass); every
evaluator's scores are plain numbers holding its primary metric; stable ids, never display text."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.pipeline import make_pipeline

from nichetune.eval.evaluators import EVALUATORS, ClassifierInputs, GeneratorInputs, evaluators_for, run_evaluators

LABELS = ["negative", "neutral", "positive"]
WORDS = {0: "awful pain nausea", 1: "fine okay average", 2: "great relief helped"}


def _rows(rng, n: int, y: np.ndarray) -> list[dict]:
    conditions = ["acne", "pain", "insomnia"]
    return [{"id": f"r{i}", "text": f"{WORDS[int(c)]} {rng.choice(['the drug', 'this pill', 'it'])} day {i}",
             "label": LABELS[int(c)], "condition": conditions[i % 3]} for i, c in enumerate(y)]


def _logits(rng, y: np.ndarray, signal: float) -> np.ndarray:
    z = rng.normal(size=(len(y), len(LABELS)))
    z[np.arange(len(y)), y] += signal
    return z * 2.0  # overconfident on purpose: temperature scaling has something to fix


@pytest.fixture(scope="module")
def cls_inputs() -> ClassifierInputs:
    rng = np.random.default_rng(0)
    y, y_val, y_train = rng.integers(0, 3, 300), rng.integers(0, 3, 200), rng.choice(3, 150, p=[0.5, 0.3, 0.2])
    return ClassifierInputs(labels=LABELS, rows=_rows(rng, 300, y), y=y, logits=_logits(rng, y, 1.2), y_val=y_val,
                            logits_val=_logits(rng, y_val, 1.2), train_rows=_rows(rng, 150, y_train), alpha=0.1,
                            target_accuracy=0.8, metric="accuracy", slice_fields=["condition"], min_count=20)


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _reference_temperature(x: ClassifierInputs) -> float:
    return minimize_scalar(lambda t: log_loss(x.y_val, _softmax(x.logits_val / t), labels=[0, 1, 2]),
                           bounds=(0.05, 20.0), method="bounded", options={"xatol": 1e-8}).x


def ref_metrics(x: ClassifierInputs) -> dict:
    pred = x.logits.argmax(1)
    return {"accuracy": accuracy_score(x.y, pred), "macro_f1": f1_score(x.y, pred, average="macro"),
            "micro_f1": f1_score(x.y, pred, average="micro"), "weighted_f1": f1_score(x.y, pred, average="weighted")}


def ref_comparisons(x: ClassifierInputs) -> dict:
    tuned = accuracy_score(x.y, x.logits.argmax(1))
    train_text, train_y = [r["text"] for r in x.train_rows], [LABELS.index(r["label"]) for r in x.train_rows]
    majority = DummyClassifier(strategy="most_frequent").fit(train_text, train_y).predict(x.texts)
    logreg = LogisticRegression(max_iter=2000, C=10.0, solver="newton-cg")
    tfidf = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
                          logreg).fit(train_text, train_y).predict(x.texts)
    deltas = {"delta_majority": tuned - accuracy_score(x.y, majority),
              "delta_tfidf-logreg": tuned - accuracy_score(x.y, tfidf)}
    return {**deltas, "min_delta": min(deltas.values())}


def ref_calibration(x: ClassifierInputs) -> dict:
    t = _reference_temperature(x)
    p = _softmax(x.logits / t)
    conf, correct = p.max(1), (p.argmax(1) == x.y)
    bins = np.clip(np.ceil(conf * 15).astype(int) - 1, 0, 14)  # (lo, hi] bins of width 1/15
    ece = sum(abs(correct[bins == b].mean() - conf[bins == b].mean()) * (bins == b).sum()
              for b in range(15) if (bins == b).any()) / len(x.y)
    return {"ece": ece, "temperature": t, "nll": log_loss(x.y, p, labels=[0, 1, 2]),
            "brier": float(((p - np.eye(3)[x.y]) ** 2).sum(1).mean())}


def ref_conformal(x: ClassifierInputs) -> dict:
    t = x.scaler.temperature_  # checked against scipy in the calibration row; here the sets are under test
    p, p_val = _softmax(x.logits / t), _softmax(x.logits_val / t)
    n = len(x.y_val)
    # the ceil((n+1)(1-alpha))-th smallest score (inverted CDF: the k-th order statistic for q = k/n)
    qhat = np.quantile(1 - p_val[np.arange(n), x.y_val], math.ceil((n + 1) * 0.9) / n, method="inverted_cdf")
    sets = 1 - p <= qhat
    return {"lac_coverage": sets[np.arange(len(x.y)), x.y].mean(), "lac_mean_set_size": sets.sum(1).mean()}


def ref_selective(x: ClassifierInputs) -> dict:
    p = _softmax(x.logits / x.scaler.temperature_)
    conf, correct = p.max(1), p.argmax(1) == x.y
    reached = [(conf >= c).mean() for c in conf if correct[conf >= c].mean() >= x.target_accuracy]
    return {"coverage_at_target": max(reached, default=0.0)}


def ref_copies(x: ClassifierInputs) -> dict:
    # the fixture's texts share words, a pill and a day number, so some evaluation rows equal a training row exactly
    train = {r["text"] for r in x.train_rows}
    mask = np.array([r["text"] in train for r in x.rows])
    assert 0 < mask.sum() < len(mask)
    pred = x.logits.argmax(1)
    return {"share_copied": mask.mean(), "rows_copied": mask.sum(),
            "accuracy_without": accuracy_score(x.y[~mask], pred[~mask]),
            "macro_f1_without": f1_score(x.y[~mask], pred[~mask], average="macro", labels=[0, 1, 2]),
            "accuracy_on_copies": accuracy_score(x.y[mask], pred[mask])}


def ref_slices(x: ClassifierInputs) -> dict:
    pred, cond = x.logits.argmax(1), np.array([r["condition"] for r in x.rows])
    acc = {c: accuracy_score(x.y[cond == c], pred[cond == c]) for c in set(cond)}
    return {"worst_condition": min(acc.values()), "gap_condition": max(acc.values()) - min(acc.values())}


def ref_errors(x: ClassifierInputs) -> dict:
    p = _softmax(x.logits / x.scaler.temperature_)
    wrong = p.argmax(1) != x.y
    return {"error_rate": wrong.mean(), "confident_error_rate": (wrong & (p.max(1) >= 0.9)).mean()}


# --- generators: a tiny Llama scored directly, and fixed answers with hand-computed metrics -----------------------

TEXTS = [{"text": "compilers translate source code"}, {"text": "a kernel schedules processes and memory"}]
QA = [{"messages": [{"role": "user", "content": "What does a compiler do?"},
                    {"role": "assistant", "content": "compilers translate source code"}]},
      {"messages": [{"role": "user", "content": "What is a daemon?"},
                    {"role": "assistant", "content": "background process"}]}]
ANSWERS = {"tuned": ["compilers translate code", "background process"], "base": ["interpreters run code", "unsure"]}


def _direct_perplexity(model, tokenizer, rows) -> float:
    """exp(mean next-token NLL) of each text + EOS, one forward pass per row: no batching, no packing."""
    nll, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([tokenizer(row["text"], add_special_tokens=False)["input_ids"]
                                + [tokenizer.eos_token_id]])
            logits = model(input_ids=ids).logits[0, :-1].float()
            nll += float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))
            count += ids.shape[1] - 1
    return math.exp(nll / count)


@pytest.fixture(scope="module")
def gen_inputs(tiny_llama_dir) -> GeneratorInputs:
    from nichetune.models.loading import load_causal_lm
    from nichetune.tasks.causal import CausalTask
    from nichetune.tasks.scoring import score_rows

    model, tok = load_causal_lm(str(tiny_llama_dir), dtype="fp32", device="cpu")
    torch.manual_seed(1)
    other, _ = load_causal_lm(str(tiny_llama_dir), dtype="fp32", device="cpu")
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))  # a different "tuned" model
    plain = CausalTask(chat=False)

    def score(m, t, task, rows):
        return score_rows(m, task, t, rows, 64)

    return GeneratorInputs(rows=TEXTS, tuned=(other, tok), base=(model, tok), task=plain, chat=False, score=score,
                           answer=None, plain_text_task=plain, general_rows=TEXTS, general_text="texts")


def ref_perplexity(x: GeneratorInputs) -> dict:
    tuned, base = _direct_perplexity(*x.tuned, x.rows), _direct_perplexity(*x.base, x.rows)
    return {"perplexity": tuned, "base_perplexity": base, "relative_change": tuned / base - 1}


def ref_forgetting(x: GeneratorInputs) -> dict:
    return ref_perplexity(x)


def answer_inputs(_gen) -> GeneratorInputs:
    def answer(model, tokenizer, rows):
        return ANSWERS[model][: len(rows)]

    return GeneratorInputs(rows=QA, tuned=("tuned", None), base=("base", None), task=None, chat=True, score=None,
                           answer=answer, samples=2, glossary=["compilers"])


def ref_answers(_x) -> dict:
    # ROUGE-L F by hand: "compilers translate code" vs "compilers translate source code": LCS 3, P 1, R 3/4
    tuned = [2 * 1 * 0.75 / 1.75, 1.0]
    base = [2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4), 0.0]  # LCS 1 ("code"): P 1/3, R 1/4
    return {"rouge_l": np.mean(tuned), "rouge_l_delta": np.mean(tuned) - np.mean(base),
            "token_f1": np.mean([2 * 0.75 / 1.75, 1.0]), "exact_match": 0.5, "term_recall": 1.0}


# evaluator id -> (inputs fixture, reference, tolerance)
CONTRACT = {
    "metrics": ("cls_inputs", ref_metrics, 1e-12),
    "comparisons": ("cls_inputs", ref_comparisons, 1e-12),
    "calibration": ("cls_inputs", ref_calibration, 1e-4),
    "conformal": ("cls_inputs", ref_conformal, 1e-12),
    "selective": ("cls_inputs", ref_selective, 1e-12),
    "copies": ("cls_inputs", ref_copies, 1e-12),
    "slices": ("cls_inputs", ref_slices, 1e-12),
    "errors": ("cls_inputs", ref_errors, 1e-12),
    "perplexity": ("gen_inputs", ref_perplexity, 1e-4),
    "answers": ("answer_inputs", ref_answers, 1e-12),
    "forgetting": ("gen_inputs", ref_forgetting, 1e-4),
}


def test_every_registered_evaluator_has_a_contract_row():
    assert set(CONTRACT) == set(EVALUATORS)


@pytest.mark.parametrize("evaluator_id", sorted(CONTRACT))
def test_evaluator_contract(evaluator_id, request):
    fixture, reference, tol = CONTRACT[evaluator_id]
    ev = EVALUATORS[evaluator_id]
    x = answer_inputs(None) if fixture == "answer_inputs" else request.getfixturevalue(fixture)
    section = ev.evaluate(x)
    scores = ev.scores(section)
    assert ev.primary in scores and all(isinstance(v, float | int) for v in scores.values())
    expected = reference(x)
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value, rel=tol, abs=tol), key
    assert isinstance(ev.greater_is_better, bool) and ev.title and ev.id.isidentifier()
    assert ev.id not in {e.title for e in EVALUATORS.values()}  # display text is never an identifier


def test_run_evaluators_keys_sections_by_id_and_summarises_scores(cls_inputs):
    out = run_evaluators("classification", cls_inputs)
    ids = [e.id for e in evaluators_for("classification")]
    assert list(out)[:-1] == ids and out["scores"]["calibration"]["primary"] == "ece"
    assert out["scores"]["metrics"]["scores"]["accuracy"] == out["metrics"]["accuracy"]
    assert [c["id"] for c in out["comparisons"]] == ["majority", "tfidf-logreg"]
    assert [c["baseline"] for c in out["comparisons"]] == ["majority class", "TF-IDF + logistic regression"]


def test_an_evaluator_that_does_not_apply_leaves_no_section():
    x = answer_inputs(None)
    x.chat = False
    assert EVALUATORS["answers"].evaluate(x) is None


def test_copies_name_none_when_training_shares_no_text_and_the_scores_without_them_otherwise(cls_inputs):
    from dataclasses import replace

    from nichetune.eval.evaluators.copies import sentence

    fresh = replace(cls_inputs, train_rows=[{**r, "text": r["text"] + " elsewhere"} for r in cls_inputs.train_rows])
    none = EVALUATORS["copies"].evaluate(fresh)
    assert none == {"rows": 0, "of": 300, "share": 0.0} and sentence(none).startswith("No evaluation row")
    # case and punctuation do not hide a copy
    shouted = replace(cls_inputs, train_rows=[{**r, "text": r["text"].upper() + "!"} for r in cls_inputs.rows[:30]])
    got = EVALUATORS["copies"].evaluate(shouted)
    assert got["rows"] == 30 and "30 of the 300 evaluation rows (10.0%)" in sentence(got)
    assert got["accuracy_without"] == pytest.approx(float(np.mean(shouted.pred[30:] == shouted.y[30:])))
    assert got["in_groups"] == 0 and "All of them have no group" in sentence(got) and "named group" not in sentence(got)
    # copies under a named group (FOLDOC's definitions shared by two terms): the advice names the groups
    grouped = replace(shouted, rows=[{**r, "group": "term-a"} if i < 10 else r for i, r in enumerate(shouted.rows)])
    got = EVALUATORS["copies"].evaluate(grouped)
    assert got["in_groups"] == 10 and got["rows"] == 30
    assert "10 of them sit in a named group" in sentence(got) and "20 of them have no group" in sentence(got)
    everyone = replace(shouted, rows=[{**r, "group": "term-a"} for r in shouted.rows])
    got = EVALUATORS["copies"].evaluate(everyone)
    assert "All of them sit in a named group" in sentence(got) and "no group" not in sentence(got)
    assert EVALUATORS["copies"].evaluate(replace(cls_inputs, train_rows=[])) is None
