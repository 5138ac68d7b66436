"""What ``recommend`` knows: the user's constraints and the evidence read from their data."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from ..errors import NichetuneError

Sensitivity = Literal["none", "internal", "regulated"]
Compute = Literal["cpu", "gpu", "cluster"]
Consequence = Literal["low", "high"]
Change = Literal["rarely", "often", "changing"]  # "often" and "changing" are the same
Target = Literal["server", "edge", "batch"]

# the embedded defaults per task
DEFAULT_MODEL = {"classification": "minilm-l6", "sft": "smollm2-135m-instruct", "completion": "smollm2-135m-instruct"}


@dataclass(frozen=True)
class Constraints:
    """The user's situation, given on the command line."""

    sensitivity: Sensitivity = "none"
    latency_ms: float | None = None
    compute: Compute = "cpu"
    consequence: Consequence = "low"
    knowledge: Change = "rarely"
    target: Target = "server"
    model: str | None = None
    docs: tuple[str, ...] = ()  # domain documents for the index plan, when knowledge changes
    budget_minutes: float | None = None  # the longest training the user will wait for

    @property
    def knowledge_changes(self) -> bool:
        return self.knowledge in ("often", "changing")


@dataclass(frozen=True)
class Evidence:
    """Facts from the data audit that the rules read."""

    source: str
    task: str
    rows: int
    train_rows: int                      # the rows training will see after a held-out split
    given_validation: int = 0            # rows of a validation file of its own (no split is taken); 0: none
    classes: int = 0
    min_class: int = 0
    imbalance_ratio: float = 1.0
    p95_tokens: float = 0.0
    redundant_share: float = 0.0
    pii_rows: int = 0
    pii_types: tuple[str, ...] = ()
    group_field: str | None = None
    slices: tuple[str, ...] = ()
    labels: dict = field(default_factory=dict)
    dataset: str | None = None           # a built-in dataset name, else None (a file)
    model: str = ""
    model_layers: int = 0
    model_params: int = 0                # weights of the base, from its config (0: unknown)
    window: int = 512                    # the most tokens the model reads at once
    encoder: bool = True                 # a bidirectional encoder (MiniLM), not a causal LM
    length_quantiles: tuple[float, ...] = ()  # token lengths at 0, 5, ..., 100%
    lexical: dict = field(default_factory=dict)  # TF-IDF's held-out accuracy and macro-F1 (classification)
    zero_shot: dict = field(default_factory=dict)  # the base encoder's, labels worded (few-shot classification)


TRAIN_SHARE = 0.8  # the default split keeps 80% for training


def gather(data: str, task: str | None, model: str | None = None, validation: str | None = None) -> Evidence:
    """Read ``data`` (a file or a built-in dataset name) and audit what the rules need.

    ``model`` defaults to the embedded model for the task the data turns out to have. With ``validation`` (a file)
    every row of ``data`` trains, and the lexical baseline is scored on the validation rows.
    """
    import numpy as np

    from ..data.audit.duplicates import duplicate_section
    from ..data.audit.overview import overview_section
    from ..data.audit.pii_section import pii_section
    from ..data.catalog import CATALOG, get_spec, load_dataset
    from ..data.rows import load_rows, row_text
    from ..models.loading import load_tokenizer

    if data in CATALOG:
        spec = get_spec(data)
        if task and task != spec.task:
            raise NichetuneError(f"{data} is a {spec.task} dataset, not {task}", hint=f"use --task {spec.task}")
        rows, task, dataset = load_dataset(data), spec.task, data
        group, slices = spec.group_field, spec.slices
    else:
        if not Path(data).exists():
            raise NichetuneError(f"{data}: no such file or built-in dataset",
                                 hint="pass a data file, or a name from `nichetune data list`")
        loaded = load_rows(data, task=task)
        rows, task, dataset = loaded.rows, loaded.task, None
        keys = {k for r in rows[:1000] for k in r}
        group = next((k for k in ("group", "patient_id", "user_id", "document_id") if k in keys), None)
        slices = tuple(k for k in ("condition", "source", "subject", "slice") if k in keys)
    if not rows:
        raise NichetuneError(f"{data} has no usable rows", hint="nichetune data validate shows why")
    model = model or DEFAULT_MODEL[task]
    overview = overview_section(rows, task)
    texts = [row_text(r) for r in rows]
    tok = load_tokenizer(model)
    lengths = [len(tok(t, add_special_tokens=True, truncation=False)["input_ids"]) for t in texts]
    dup = duplicate_section(rows, 0.8)
    pii = pii_section(rows)
    counts = overview.get("labels", {})
    config = _model_config(model)
    held_out = load_rows(validation, task=task).rows if validation else None
    lexical = lexical_strength(rows, held_out=held_out) if len(counts) > 1 else {}
    evidence = Evidence(source=data, task=task, rows=len(rows),
                        train_rows=len(rows) if validation else int(len(rows) * TRAIN_SHARE),
                        given_validation=len(held_out or []),
                        classes=len(counts), min_class=int(min(counts.values())) if counts else 0,
                        imbalance_ratio=float(overview.get("imbalance_ratio", 1.0)),
                        p95_tokens=float(np.percentile(lengths, 95)),
                        redundant_share=dup["redundant_rows"] / len(rows), pii_rows=int(pii["rows_with_pii"]),
                        pii_types=tuple(pii["by_type"]), group_field=group, slices=tuple(slices), labels=counts,
                        dataset=dataset, model=model, model_layers=int(getattr(config, "num_hidden_layers", 0)),
                        model_params=weights_of(config),
                        window=int(getattr(config, "max_position_embeddings", 512) or 512),
                        encoder=not any(a.endswith("ForCausalLM")
                                        for a in (getattr(config, "architectures", None) or [])),
                        length_quantiles=tuple(float(v) for v in np.percentile(lengths, range(0, 101, 5))),
                        lexical=lexical)
    from .rules import few_shot

    if few_shot(evidence) and len(counts) > 1:
        return replace(evidence, zero_shot=zero_shot_strength(rows, model, held_out=held_out))
    return evidence


CV_FOLDS = 4  # folds of the cross-validated zero-shot / head comparison on few-shot rows


def zero_shot_strength(rows: list[dict], model: str, held_out: list[dict] | None = None) -> dict:
    """How far the untrained base encoder goes: zero-shot by embedding similarity, its labels worded by the template
    chosen on ``rows`` (``infer.label_wording``), scored on ``held_out`` rows where given, else on ``rows`` (then
    the wording was chosen on the rows it is scored on: one pick among a few templates, a small optimism). With
    ``held_out`` rows, also ``cross_validated``: on ``rows`` and ``held_out`` together, the zero-shot's macro-F1 and
    that of logistic regression on the untrained encoder's embeddings by stratified ``CV_FOLDS``-fold
    cross-validation (what the examples alone teach a head; a SetFit-style tuned encoder scored within a point of
    such a head on nine drug-review and two BBC News samples, benchmarks/README.md). Twice the rows of the
    validation file alone, whose 24 rows were too few to tell drug reviews (the zero-shot level with the head)
    from BBC News (the head 6-8 points ahead on test) apart."""
    import time
    from collections import Counter

    import numpy as np

    from ..infer.classify import sentence_vectors
    from ..infer.label_wording import choose_wording, similarity_logits
    from ..models.loading import load_encoder
    from ..stats.classification import classification_metrics

    start = time.perf_counter()
    encoder, tokenizer = load_encoder(model)

    def embed(texts: list[str]) -> np.ndarray:
        return sentence_vectors(encoder, tokenizer, texts)[0]

    labels = sorted({r["label"] for r in rows + (held_out or [])})
    wording = choose_wording(embed, rows, labels)
    scored = held_out or rows
    y = np.array([labels.index(r["label"]) for r in scored])
    vectors, label_vectors = embed([r["text"] for r in scored]), embed(list(wording.of(labels).values()))
    m = classification_metrics(y, similarity_logits(vectors, label_vectors).argmax(1), labels)
    pooled = rows + (held_out or [])
    folds = min(CV_FOLDS, *Counter(r["label"] for r in pooled).values())
    cross = {}
    if held_out and folds >= 2 and len({r["label"] for r in pooled}) > 1:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        x = np.concatenate([embed([r["text"] for r in rows]), vectors])
        y_all = np.array([labels.index(r["label"]) for r in pooled])
        head = cross_val_predict(LogisticRegression(C=1.0, max_iter=5000), x, y_all,
                                 cv=StratifiedKFold(folds, shuffle=True, random_state=0))
        cross = {"cross_validated": {
            "rows": len(pooled), "folds": folds,
            "zero_shot_macro_f1": round(classification_metrics(y_all, similarity_logits(x, label_vectors).argmax(1),
                                                               labels)["macro_f1"], 4),
            "head_macro_f1": round(classification_metrics(y_all, head, labels)["macro_f1"], 4)}}
    return {"template": wording.template, "chosen_on": wording.rows, "accuracy": round(m["accuracy"], 4),
            "macro_f1": round(m["macro_f1"], 4), **cross,
            "scored_on": f"{len(scored)} validation rows" if held_out else f"the {len(scored)} rows it was chosen on",
            "seconds": round(time.perf_counter() - start, 1)}


def zero_shot_words(zs: dict) -> str:
    """``zero_shot_strength``'s figures as one clause, as `recommend` and the demo print them."""
    return (f"the base model untrained (zero-shot, labels worded as '{zs['template']}', chosen on {zs['chosen_on']} "
            f"training rows; scored on {zs['scored_on']}): accuracy {zs['accuracy']:.3f}, macro-F1 "
            f"{zs['macro_f1']:.3f}")


def lexical_strength(rows: list[dict], seed: int = 0, held_out: list[dict] | None = None) -> dict:
    """How far words alone go: TF-IDF + logistic regression and + a linear SVM fitted on a stratified 80% of the
    rows and scored on the other 20%, or fitted on all of them and scored on ``held_out`` rows (accuracy and
    macro-F1 of each; ``best`` names the higher on accuracy)."""
    import time

    import numpy as np
    from sklearn.model_selection import train_test_split

    from ..stats.classification import classification_metrics
    from ..tasks.lexical import KINDS, fit_lexical

    start = time.perf_counter()
    every = rows + (held_out or [])
    labels = sorted({r["label"] for r in every})
    texts = [r["text"] for r in every]
    y = np.array([labels.index(r["label"]) for r in every])
    if held_out:
        tr, te = np.arange(len(rows)), np.arange(len(rows), len(texts))
    else:
        smallest = int(np.bincount(y).min())
        tr, te = train_test_split(np.arange(len(rows)), test_size=0.2, random_state=seed,
                                  stratify=y if smallest >= 2 else None)
    out: dict = {"held_out": len(te), "scored_on": f"{len(te)} validation rows" if held_out else "held-out 20%"}
    for kind in KINDS:
        model = fit_lexical([texts[i] for i in tr], y[tr], len(labels), kinds=(kind,))
        m = classification_metrics(y[te], model.predict([texts[i] for i in te]), labels)
        out[kind] = {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4)}
    out["best"] = max(KINDS, key=lambda k: (out[k]["accuracy"], out[k]["macro_f1"]))
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def weights_of(config) -> int:
    """A transformer's weight count from its config: embeddings, then per block attention (4 h^2) and the MLP
    (2 h i); biases and norms left out (MiniLM-L6: 22.3M of its 22.7M). 0 where the config lacks a size."""
    h, layers = getattr(config, "hidden_size", 0) or 0, getattr(config, "num_hidden_layers", 0) or 0
    inner = getattr(config, "intermediate_size", 0) or 4 * h
    return int((getattr(config, "vocab_size", 0) or 0) * h + layers * (4 * h * h + 2 * h * inner))


def _model_config(model: str):
    from transformers import AutoConfig

    from ..models.resolve import resolve_model

    return AutoConfig.from_pretrained(resolve_model(model).path)
