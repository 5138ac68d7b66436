"""Classify texts with a trained classifier, or zero-shot with a base model and a label list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import NichetuneError
from ..models.loading import load_encoder
from ..models.resolve import ResolvedModel
from ..models.similarity_prior import mean_pool
from ..run.loading import read_run
from .calibrated import calibrated_predictions, read_calibration
from .label_wording import similarity_logits
from .loading import load_causal_lm, load_sequence_classifier, resolve, run_folder


@dataclass(frozen=True)
class Prediction:
    """The predicted label and a probability for every label, highest first.

    A classifier run that was evaluated also gives its conformal ``prediction_set`` and whether to ``abstain``
    (see ``infer.calibrated``); its scores are then temperature-scaled.
    """

    label: str
    scores: dict[str, float]
    method: str
    prediction_set: list[str] | None = None
    abstain: bool = False
    abstain_reason: str | None = None


def _softmax(values):
    import torch

    return torch.softmax(torch.as_tensor(values, dtype=torch.float32), dim=-1).tolist()


def _ranked(labels: list[str], probs: list[float], method: str) -> Prediction:
    scores = dict(sorted(zip(labels, probs, strict=True), key=lambda kv: -kv[1]))
    return Prediction(label=next(iter(scores)), scores=scores, method=method)


def head_labels(model) -> list[str]:
    """A sequence classifier's labels in logit order."""
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    return [id2label[i] for i in range(len(id2label))]


def _with_head(resolved: ResolvedModel, texts: list[str], device: str) -> list[Prediction]:
    from ..tasks.lexical import load_stack
    from ..tasks.scoring import classifier_logits

    model, tokenizer = load_sequence_classifier(resolved, device=device)
    run_dir = run_folder(resolved)
    calibration = read_calibration(run_dir) if run_dir else None
    max_length = read_run(run_dir)[1].model.max_length if run_dir else tokenizer.model_max_length
    stack = load_stack(resolved.path) if Path(resolved.path).is_dir() else None
    logits = classifier_logits(model, tokenizer, texts, max_length=min(max_length, 100_000), lexical=stack)
    method = "classifier head" + (", temperature-scaled" if calibration else "")
    out = []
    for answer in calibrated_predictions(logits, head_labels(model), calibration):
        ranked = _ranked(list(answer["probabilities"]), list(answer["probabilities"].values()), method)
        out.append(Prediction(ranked.label, ranked.scores, method, answer["prediction_set"], answer["abstain"],
                              answer["abstain_reason"]))
    return out


def _by_label_likelihood(resolved, texts, names, verbalised, dtype, device, calibrate: bool,
                         shots: Sequence[tuple[str, str]] = ()) -> list[Prediction]:
    from .label_scoring import LabelScorer, calibrated_scores

    model, tokenizer = load_causal_lm(resolved, dtype=dtype, device=device)
    scorer = LabelScorer(model, tokenizer, verbalised, shots=shots)
    priors = scorer.priors() if calibrate else [0.0] * len(names)
    method = ("label likelihood" + (f", {len(shots)}-shot" if shots else "")
              + (", calibrated" if calibrate else ""))
    return [_ranked(names, _softmax(calibrated_scores(scorer.scores(t), priors)), method) for t in texts]


def sentence_vectors(model, tokenizer, texts: list[str], *, max_length: int | None = None,
                     batch_size: int = 32):
    """``((N, d) float32 unit vectors, tokens read)``: mean-pooled last hidden states of an encoder, or of the
    encoder inside a classifier (through its hidden states). The server's embeddings, retrieval's dense index
    and zero-shot similarity all use this."""
    import numpy as np
    import torch

    device = next(model.parameters()).device
    out, tokens = [], 0
    for i in range(0, len(texts), batch_size):
        batch = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt").to(device)
        with torch.inference_mode():
            result = model(**batch, output_hidden_states=True)
            hidden = getattr(result, "last_hidden_state", None)
            hidden = result.hidden_states[-1] if hidden is None else hidden  # (B, T, d)
            pooled = mean_pool(hidden, batch["attention_mask"]).float()
        out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
        tokens += int(batch["attention_mask"].sum())
    return (np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)), tokens


def _by_similarity(resolved, texts, names, verbalised, device) -> list[Prediction]:
    model, tokenizer = load_encoder(resolved, device=device)
    logits = similarity_logits(sentence_vectors(model, tokenizer, texts)[0],
                               sentence_vectors(model, tokenizer, verbalised)[0])
    return [_ranked(names, _softmax(row.tolist()), "embedding similarity") for row in logits]


def classify(
    model: str,
    texts: list[str],
    *,
    labels: Sequence[str] | Mapping[str, str] | None = None,
    dtype: str = "auto",
    device: str = "auto",
    calibrate: bool = True,
    shots: Sequence[tuple[str, str]] = (),
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> list[Prediction]:
    """Classify ``texts``.

    A model or run with a classification head uses its own labels. A base causal LM scores
    each of ``labels`` by likelihood, minus the label's likelihood on content-free inputs when
    ``calibrate`` (small LMs have strong label priors); a bare encoder compares embeddings.
    ``labels`` may map each label to a description that is scored in its place
    (``{"positive": "The medication worked well for me."}``), which helps encoders a lot.
    ``shots`` are ``(text, label)`` examples shown to a causal LM before each text (k-shot
    in-context classification); encoders ignore them.

    Raises:
        NichetuneError: a base model was given without ``labels``.
    """
    resolved = resolve(model, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    if resolved.is_sequence_classifier:
        return _with_head(resolved, texts, device)
    if not labels:
        raise NichetuneError(
            f"{model} has no classification head, so it needs candidate labels",
            hint='pass --labels "label one,label two" (zero-shot), or a run trained for classification',
        )
    names = list(labels)
    verbalised = [labels[n] for n in names] if isinstance(labels, Mapping) else names
    if resolved.is_causal_lm:
        return _by_label_likelihood(resolved, texts, names, verbalised, dtype, device, calibrate, shots)
    return _by_similarity(resolved, texts, names, verbalised, device)
