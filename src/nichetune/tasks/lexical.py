"""The lexical model a practitioner tries first (TF-IDF + a linear classifier), and the stack that combines it with
a tuned encoder so the specialist is never worse than the words alone where the words carry the label.

Both candidates (logistic regression and a linear SVM) are fitted on the training split and the one scoring higher
on validation is kept. The stack adds the two models' logits with weights fitted on validation: the lexical side's
share of them, and an overall scale (a share of 0 is the encoder alone, 1 the lexical model alone). Saved without
pickle: the vocabulary as JSON, the IDF weights and coefficients as safetensors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import NichetuneError

VECTORIZER = {"ngram_range": (1, 2), "min_df": 1, "sublinear_tf": True}
KINDS = {"logreg": "TF-IDF + logistic regression", "svm": "TF-IDF + linear SVM"}
SOLVER = "newton-cg"
ABSENT_SCORE = -30.0  # the score of a label the training split never showed
FILES = ("lexical.json", "lexical.safetensors")


def _classifier(kind: str):
    """Newton-CG rather than scikit-learn's default L-BFGS: on FOLDOC's 122 subjects x 117k n-grams L-BFGS kept ten
    past gradients of 14M coefficients (4.1 GB, 139 s); Newton-CG reached a lower objective in 54 s and 1.4 GB,
    and on drug-reviews (equal to five figures) and BBC News (lower) the same optimum 3-8x faster."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    return LogisticRegression(max_iter=2000, C=10.0, solver=SOLVER) if kind == "logreg" else LinearSVC(C=1.0)


def _vectorizer(vocabulary: dict[str, int] | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(vocabulary=vocabulary, **VECTORIZER)


@dataclass
class LexicalModel:
    """A fitted TF-IDF linear classifier: ``scores(texts)`` are (N, C) logits over every label of the run."""

    kind: str
    terms: list[str]
    idf: np.ndarray        # (F,)
    coef: np.ndarray       # (C, F)
    intercept: np.ndarray  # (C,)
    validation: dict = field(default_factory=dict)  # each candidate's validation score

    @property
    def name(self) -> str:
        return KINDS[self.kind]

    @cached_property
    def _scorer(self):
        """The vectorizer and the (F, C) coefficients, built once: per call they cost a served request 200 ms on
        FOLDOC's 117k terms x 122 subjects (the vocabulary dict, and a contiguous copy of the transposed matrix)."""
        vec = _vectorizer({t: i for i, t in enumerate(self.terms)})
        vec.idf_ = self.idf
        return vec, np.ascontiguousarray(self.coef.T)

    def scores(self, texts: list[str]) -> np.ndarray:
        vec, coef_t = self._scorer
        x = vec.transform(texts)  # (N, F) sparse
        return np.asarray(x @ coef_t, dtype=np.float64) + self.intercept

    def predict(self, texts: list[str]) -> np.ndarray:
        return self.scores(texts).argmax(1)


def _full_rows(clf, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(C, F) coefficients and (C,) intercepts over every label, from a classifier that saw ``clf.classes_``."""
    classes = np.asarray(clf.classes_)
    coef, intercept = np.asarray(clf.coef_, dtype=np.float64), np.asarray(clf.intercept_, dtype=np.float64)
    full_coef = np.zeros((n_labels, coef.shape[1]))
    full_intercept = np.full(n_labels, ABSENT_SCORE)
    if len(classes) == 2:  # one score s for the second class: logits (-s/2, s/2) give the same softmax
        full_coef[classes] = np.vstack([-coef[0] / 2, coef[0] / 2])
        full_intercept[classes] = [-intercept[0] / 2, intercept[0] / 2]
    else:
        full_coef[classes], full_intercept[classes] = coef, intercept
    return full_coef, full_intercept


def fit_lexical(train_texts: list[str], train_y: np.ndarray, n_labels: int, *, val_texts: list[str] | None = None,
                val_y: np.ndarray | None = None, metric: Callable | None = None,
                kinds: tuple[str, ...] = ("logreg", "svm")) -> LexicalModel:
    """Fit every kind in ``kinds`` on the training texts; keep the best on validation by ``metric(y, pred)``
    (accuracy when None). Without validation rows the first kind is kept.

    Raises:
        NichetuneError: the training split holds fewer than two labels.
    """
    train_y = np.asarray(train_y)
    if len(set(train_y.tolist())) < 2:
        raise NichetuneError("a lexical model needs at least two labels in the training split",
                             hint="check the split: one label holds every training row")
    metric = metric or (lambda y, p: float(np.mean(y == p)))
    vec = _vectorizer()
    x = vec.fit_transform(train_texts)
    terms = [""] * len(vec.vocabulary_)
    for term, i in vec.vocabulary_.items():
        terms[i] = term
    best, scores = None, {}
    for kind in kinds if val_texts else kinds[:1]:
        coef, intercept = _full_rows(_classifier(kind).fit(x, train_y), n_labels)
        model = LexicalModel(kind, terms, np.asarray(vec.idf_, dtype=np.float64), coef, intercept)
        if val_texts:
            scores[kind] = round(metric(np.asarray(val_y), model.predict(val_texts)), 6)
        if best is None or scores[kind] > scores[best.kind]:
            best = model
    best.validation = scores
    return best


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


@dataclass
class LexicalStack:
    """The encoder's logits and the lexical model's scores, each scaled by a weight fitted on validation and added:
    ``w_encoder * encoder_logits + w_lexical * lexical_scores`` (a product of experts)."""

    model: LexicalModel
    w_encoder: float
    w_lexical: float
    summary: dict = field(default_factory=dict)

    @property
    def weight(self) -> float:
        """The lexical side's share of the two weights (0: the encoder alone, 1: the words alone)."""
        return self.w_lexical / max(self.w_encoder + self.w_lexical, 1e-12)

    def mix(self, encoder_logits: np.ndarray, lexical_scores: np.ndarray) -> np.ndarray:
        return self.w_encoder * np.asarray(encoder_logits, dtype=np.float64) + self.w_lexical * lexical_scores

    def apply(self, texts: list[str], encoder_logits: np.ndarray) -> np.ndarray:
        """(N, C) stacked logits for ``texts`` given the encoder's (N, C) logits."""
        return self.mix(encoder_logits, self.model.scores(texts))

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        save_file({"idf": self.model.idf.astype(np.float32), "coef": self.model.coef.astype(np.float32),
                   "intercept": self.model.intercept.astype(np.float32)}, str(Path(folder) / FILES[1]))
        meta = {"kind": self.model.kind, "vectorizer": VECTORIZER, "w_encoder": self.w_encoder,
                "w_lexical": self.w_lexical, "validation": self.model.validation,
                "summary": self.summary, "terms": self.model.terms}
        (Path(folder) / FILES[0]).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def load_stack(folder: str | Path) -> LexicalStack | None:
    """The stack saved in a weights folder, or None when the run has none."""
    folder = Path(folder)
    if not (folder / FILES[0]).is_file():
        return None
    from safetensors.numpy import load_file

    meta = json.loads((folder / FILES[0]).read_text(encoding="utf-8"))
    arrays = load_file(str(folder / FILES[1]))
    model = LexicalModel(meta["kind"], meta["terms"], arrays["idf"].astype(np.float64),
                         arrays["coef"].astype(np.float64), arrays["intercept"].astype(np.float64),
                         meta.get("validation", {}))
    return LexicalStack(model, float(meta["w_encoder"]), float(meta["w_lexical"]), meta.get("summary", {}))


SHARES = np.linspace(0.0, 1.0, 21)  # the lexical side's share of the weights tried on validation


def fit_stack(model: LexicalModel, encoder_val: np.ndarray, lexical_val: np.ndarray, y_val: np.ndarray,
              metric: Callable | None = None) -> LexicalStack:
    """The stack scoring highest on validation by ``metric`` (accuracy when None; ties go to the lower log-loss):
    weights ``scale * (1 - share)`` and ``scale * share`` for each share in ``SHARES``, the scale fitted per share by
    log-loss (above zero, so the stack never degenerates to a constant answer when both sides are overconfident).
    Shares 0 and 1 are the encoder and the lexical model alone, so on validation the stack is never worse than
    either. ``summary`` holds each side's and the stack's validation score and log-loss."""
    from scipy.optimize import minimize_scalar

    metric = metric or (lambda y, p: float(np.mean(y == p)))
    y_val = np.asarray(y_val)
    enc, lex = np.asarray(encoder_val, dtype=np.float64), np.asarray(lexical_val, dtype=np.float64)
    rows = np.arange(len(y_val))

    def fitted(share: float) -> tuple[float, float]:
        def loss(log_scale: float) -> float:
            z = np.exp(log_scale) * ((1 - share) * enc + share * lex)
            return float(-log_softmax(z)[rows, y_val].mean())

        best = minimize_scalar(loss, bounds=(np.log(1e-3), np.log(1e3)), method="bounded")
        return float(best.fun), float(np.exp(best.x))

    fits = [fitted(share) for share in SHARES]
    losses = [loss for loss, _ in fits]
    scores = [metric(y_val, ((1 - share) * enc + share * lex).argmax(1)) for share in SHARES]
    i = max(range(len(SHARES)), key=lambda k: (scores[k], -losses[k]))
    share, scale = float(SHARES[i]), fits[i][1]
    stack = LexicalStack(model, scale * (1 - share), scale * share)
    stack.summary = {"validation": {"encoder": scores[0], "lexical": scores[-1], "stack": scores[i]},
                     "validation_log_loss": {"encoder": losses[0], "lexical": losses[-1], "stack": losses[i]}}
    return stack
