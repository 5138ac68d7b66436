"""``train.zero_shot_prior``: after the head is fitted, add the encoder's zero-shot label similarities to its logits
(``models.similarity_prior``), weighted on validation.

The labels are worded as the zero-shot baseline words them (the template under which the training rows' labels are
likeliest, ``infer.label_wording``) and embedded by the run's own encoder, which with method freeze over every block
is the pretrained one: the prior is then exactly the base model's zero-shot. The weight is the one of ``WEIGHTS``
with the best validation score on the run's headline metric (ties keep the smaller: 0 is the head alone, so a prior
that does not help on validation is not used).
"""

from __future__ import annotations

import time

import numpy as np

from ..models.similarity_prior import SimilarityPrior, detach
from ..stats.classification import classification_metrics
from ..tasks.scoring import autocast_for, classifier_logits

WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


def fit_zero_shot_prior(model, tokenizer, train: list[dict], validation: list[dict], labels: list[str], *,
                        max_length: int, metric: str, dtype, device: str) -> dict:
    """Choose the wording and the weight, attach the prior to ``model`` (left attached, also at weight 0, where it
    adds nothing) and return what the manifest records: template, weight, each weight's validation score."""
    from ..infer.classify import sentence_vectors
    from ..infer.label_wording import choose_wording

    started = time.perf_counter()
    model.eval()
    detach(model)
    embed = lambda texts: sentence_vectors(model, tokenizer, texts, max_length=max_length)[0]  # noqa: E731
    wording = choose_wording(embed, train, labels)
    template = wording.template if wording else "{}"
    vectors = embed(list(wording.of(labels).values()) if wording else labels).astype(np.float64)
    texts = [r["text"] for r in validation]
    y = np.array([labels.index(r["label"]) for r in validation])

    def logits() -> np.ndarray:
        with autocast_for(dtype, device):
            return classifier_logits(model, tokenizer, texts, max_length=max_length)

    head = logits()
    SimilarityPrior(vectors, 1.0, template).attach(model)
    similarity = logits() - head  # exactly what the hooks add at weight 1, truncation and pooling included
    scores = {w: float(classification_metrics(y, (head + w * similarity).argmax(1), labels)[metric])
              for w in WEIGHTS}
    weight = max(WEIGHTS, key=lambda w: (scores[w], -w))
    SimilarityPrior(vectors, weight, template).attach(model)
    return {"template": template, "weight": weight, "metric": metric,
            "validation": {str(w): round(v, 4) for w, v in scores.items()},
            "seconds": round(time.perf_counter() - started, 2)}
