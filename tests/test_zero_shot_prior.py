"""``train.zero_shot_prior``: the encoder's label similarities added to a classifier's logits inside its own forward
pass. The hooks' arithmetic against a hand computation (padding included), the weight chosen on validation against
a grid computed by hand, and a run whose saved, reloaded, merged and ONNX forms all give the prior's logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nichetune.config.recipe import load_recipe
from nichetune.errors import NichetuneError
from nichetune.models.similarity_prior import SIMILARITY_TEMPERATURE, SimilarityPrior, attach_saved, detach, load_prior
from nichetune.train.run import train
from tiny_data import review_rows, write_jsonl

TEXTS = ["great relief, no side effects", "awful", "it did nothing for my pain and made me dizzy all day", "ok"]


def _classifier(model_dir, labels=2):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    return (AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=labels).eval(),
            AutoTokenizer.from_pretrained(model_dir))


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(rows, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_the_prior_adds_the_weighted_similarity_of_each_rows_mean_embedding_to_each_label(tiny_bert_dir):
    model, tok = _classifier(tiny_bert_dir)
    batch = tok(TEXTS, padding=True, return_tensors="pt")  # rows of different lengths: padding must not count
    with torch.no_grad():
        plain = model(**batch).logits.numpy()
        hidden = model.bert(**batch).last_hidden_state.numpy()
    vectors = _unit(2, hidden.shape[-1], seed=1)
    expected = plain.copy()
    for i, mask in enumerate(batch["attention_mask"].numpy()):
        pooled = hidden[i][mask == 1].mean(0)
        expected[i] += 0.7 * (vectors @ (pooled / np.linalg.norm(pooled))) / SIMILARITY_TEMPERATURE
    SimilarityPrior(vectors, 0.7).attach(model)
    with torch.no_grad():
        np.testing.assert_allclose(model(**batch).logits.numpy(), expected, rtol=1e-5, atol=1e-4)
        single = model(**tok(TEXTS[2], return_tensors="pt")).logits.numpy()[0]  # alone, no padding: the same row
    np.testing.assert_allclose(single, expected[2], rtol=1e-5, atol=1e-4)
    detach(model)
    with torch.no_grad():
        np.testing.assert_allclose(model(**batch).logits.numpy(), plain, atol=1e-6)
    assert model.nichetune_prior is None


def test_a_saved_prior_rides_with_the_weights_and_is_attached_on_loading(tmp_path, tiny_bert_dir):
    from nichetune.methods.method import load_whole

    model, tok = _classifier(tiny_bert_dir, labels=3)
    prior = SimilarityPrior(_unit(3, model.config.hidden_size, seed=2), 0.5, "It is {}.")
    prior.attach(model)
    model.save_pretrained(tmp_path, safe_serialization=True)
    prior.save(tmp_path)
    loaded = load_prior(tmp_path)
    assert loaded.weight == 0.5 and loaded.template == "It is {}."
    np.testing.assert_allclose(loaded.vectors, prior.vectors, atol=1e-7)  # stored as float32
    batch = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        again = load_whole(tmp_path, None, "classification", base=None)(**batch).logits
        np.testing.assert_allclose(again.numpy(), model(**batch).logits.numpy(), atol=1e-4)
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.bin"))
    empty = tmp_path / "none"
    empty.mkdir()
    assert load_prior(empty) is None and attach_saved(model, empty) is model


def _recipe(tmp_path, model_dir, method=None, ratios=(0.5, 0.25, 0.25), **train_settings):
    write_jsonl(tmp_path / "d.jsonl", review_rows(48, seed=2, own=3, noise=1))
    return load_recipe(data={
        "task": "classification", "output_dir": str(tmp_path / "run"), "model": {"name": str(model_dir)},
        "data": {"train": str(tmp_path / "d.jsonl"), "split": {"ratios": list(ratios)}},
        "method": method or {"name": "freeze", "layers": 2},
        "train": {"epochs": 0, "head_init": "logistic", "zero_shot_prior": True, "precision": "fp32",
                  **train_settings}})


def _drug_reviews(tmp_path, seed: int = 0) -> dict:
    """8 real drug reviews a label for training, 8 for validation, 60 others for test (few_shot.py's draw)."""
    from nichetune.data.catalog import load_dataset
    from nichetune.data.split import first_per_label

    rows = [{"text": r["text"], "label": r["label"]} for r in load_dataset("drug-reviews")]
    order = np.random.default_rng(seed).permutation(len(rows))
    labels = [r["label"] for r in rows]
    train_idx = first_per_label(labels, 8, order)
    val_idx = first_per_label(labels, 8, order, skip=set(train_idx))
    test_idx = [int(i) for i in order if i not in set(train_idx) | set(val_idx)][:60]
    paths = {}
    for split, idx in (("train", train_idx), ("validation", val_idx), ("test", test_idx)):
        paths[split] = str(tmp_path / f"{split}.jsonl")
        write_jsonl(tmp_path / f"{split}.jsonl", [rows[i] for i in idx])
    return paths


def test_a_prior_run_chooses_its_weight_on_validation_and_every_form_of_it_serves_the_same_logits(tmp_path):
    """MiniLM on real drug reviews (the tiny random encoder's label similarities are noise): every block frozen and
    no steps, so the label vectors are the base encoder's; the weight is the grid's best on validation (recomputed
    here by hand), and the run, its merged export and its ONNX graph give the same logits on the test rows."""
    from nichetune.data.readers import read_json_lines
    from nichetune.export.export import export_run
    from nichetune.export.registry import FORMATS
    from nichetune.infer.classify import sentence_vectors
    from nichetune.infer.label_wording import choose_wording, similarity_logits
    from nichetune.models.loading import load_encoder
    from nichetune.run.loading import load_run
    from nichetune.stats.classification import classification_metrics
    from nichetune.tasks.scoring import classifier_logits
    from nichetune.train.prior_stage import WEIGHTS

    recipe = load_recipe(data={
        "task": "classification", "output_dir": str(tmp_path / "run"), "model": {"name": "minilm-l6",
                                                                              "max_length": 128},
        "data": _drug_reviews(tmp_path), "method": {"name": "freeze", "layers": 6}, "eval": {"metric": "macro_f1"},
        "train": {"epochs": 0, "head_init": "logistic", "zero_shot_prior": True, "precision": "fp32"}})
    manifest = train(recipe)
    prior = manifest.result.zero_shot_prior
    assert manifest.result.steps == 0 and prior["metric"] == "macro_f1" and prior["weight"] > 0
    rows = {s: read_json_lines(tmp_path / f"{s}.jsonl") for s in ("train", "validation", "test")}
    labels = manifest.labels
    encoder, tokenizer = load_encoder("minilm-l6")  # the untrained base, loaded apart from the run
    embed = lambda texts: sentence_vectors(encoder, tokenizer, texts, max_length=128)[0]  # noqa: E731
    wording = choose_wording(embed, rows["train"], labels)
    run = load_run(tmp_path / "run")
    attached = run.model.nichetune_prior
    assert attached.weight == prior["weight"] and attached.template == prior["template"] == wording.template
    np.testing.assert_allclose(attached.vectors, embed(list(wording.of(labels).values())), atol=1e-5)
    texts = [r["text"] for r in rows["validation"]]
    y = np.array([labels.index(r["label"]) for r in rows["validation"]])
    detach(run.model)
    head = classifier_logits(run.model, run.tokenizer, texts, max_length=128)
    similarity = similarity_logits(embed(texts), attached.vectors)
    scores = {w: classification_metrics(y, (head + w * similarity).argmax(1), labels)["macro_f1"] for w in WEIGHTS}
    assert prior["validation"] == {str(w): pytest.approx(v, abs=1e-4) for w, v in scores.items()}
    assert prior["weight"] == max(WEIGHTS, key=lambda w: (scores[w], -w))
    # the run's test figure is the prior's, and the merged and ONNX exports reproduce its logits
    attached.attach(run.model)
    test_texts = [r["text"] for r in rows["test"]]
    served = classifier_logits(run.model, run.tokenizer, test_texts, max_length=128)
    y_test = np.array([labels.index(r["label"]) for r in rows["test"]])
    assert manifest.result.test["macro_f1"] == pytest.approx(
        classification_metrics(y_test, served.argmax(1), labels)["macro_f1"])
    detach(run.model)
    assert (classifier_logits(run.model, run.tokenizer, test_texts, max_length=128) != served).any()
    for fmt in ("merged", "onnx"):
        export_run(tmp_path / "run", fmt, tmp_path / fmt, progress=None)
        logits = FORMATS[fmt].load(tmp_path / fmt, "classification", 128).logits(test_texts)
        np.testing.assert_allclose(logits, served, atol=1e-3)
    assert (tmp_path / "merged" / "zero_shot_prior.safetensors").is_file()
    assert not (tmp_path / "onnx" / "zero_shot_prior.safetensors").exists()  # traced into the graph


def test_a_prior_needs_a_whole_model_classifier_and_validation_rows(tmp_path, tiny_bert_dir):
    with pytest.raises(NichetuneError, match="zero_shot_prior") as err:
        train(_recipe(tmp_path, tiny_bert_dir, method={"name": "lora", "r": 2}, epochs=1))
    assert "freeze" in err.value.hint
    with pytest.raises(NichetuneError, match="zero_shot_prior needs validation"):
        train(_recipe(tmp_path, tiny_bert_dir, ratios=(1.0,)))
