"""The SetFit-style stage: pairs drawn as described, and on a tiny encoder the stage pulls same-label texts together
(cosine loss falls) before the head trains, recorded in the run's manifest."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from nichetune.config.recipe import load_recipe
from nichetune.data.label_words import anchor_rows, anchor_text, reads_as_words
from nichetune.errors import NichetuneError
from nichetune.train.contrastive import fit_head_logistic, logistic_to_softmax, pair_indices
from nichetune.train.run import train
from tiny_data import review_rows, write_jsonl


def test_pairs_give_each_row_one_same_label_and_one_other_label_partner_per_iteration():
    labels = [0, 0, 0, 1, 1, 2]
    pairs = pair_indices(labels, iterations=5, seed=0)
    assert len(pairs) == 2 * len(labels) * 5
    for i, j, target in pairs:
        assert (labels[i] == labels[j]) == (target == 1.0)
        if target == 1.0 and labels.count(labels[i]) > 1:
            assert i != j
    assert Counter((i, t) for i, _, t in pairs) == {(i, t): 5 for i in range(6) for t in (0.0, 1.0)}
    assert pairs == pair_indices(labels, iterations=5, seed=0) and pairs != pair_indices(labels, 5, seed=1)
    # a label with a single row pairs with itself as its positive
    assert all(j == 5 for i, j, t in pair_indices(labels, 3, 0) if i == 5 and t == 1.0)


def _pair_recipe(tmp_path, model_dir, **train_settings):
    """48 alternating reviews, half for training, a full fine-tune of ``model_dir`` with ``train_settings``."""
    write_jsonl(tmp_path / "d.jsonl", review_rows(48, seed=2, own=3, noise=1))
    return load_recipe(data={
        "task": "classification", "output_dir": str(tmp_path / "run"), "model": {"name": str(model_dir)},
        "data": {"train": str(tmp_path / "d.jsonl"), "split": {"ratios": [0.5, 0.25, 0.25]}},
        "method": {"name": "full"}, "train": {"batch_size": 8, "lr": 1e-2, "precision": "fp32", **train_settings}})


def test_the_stage_pulls_labels_apart_before_the_head_trains(tmp_path, tiny_bert_dir):
    manifest = train(_pair_recipe(tmp_path, tiny_bert_dir, epochs=2, contrastive=10))
    stage = manifest.result.contrastive
    assert stage["pairs"] == 2 * 24 * 10 and stage["steps"] == 60
    assert stage["loss_last"] < 0.5 * stage["loss_first"]


@pytest.mark.parametrize(("label", "text"), [
    ("positive", "positive"), ("side_effects", "side effects"), ("sci.space", "sci space"), ("Not-spam", "Not spam"),
    ("LABEL_3", None), ("class 2", None), ("42", None), ("c1", None), ("B", None), ("__", None)])
def test_a_label_name_anchors_only_when_it_reads_as_words(label, text):
    assert anchor_text(label) == text


def test_anchor_rows_keep_each_label_and_skip_codes():
    assert anchor_rows(["negative", "LABEL_1", "very_positive"]) == [
        {"text": "negative", "label": "negative"}, {"text": "very positive", "label": "very_positive"}]
    assert anchor_rows(["LABEL_1", "very_positive"], "It is {}.") == [{"text": "It is very positive.",
                                                                       "label": "very_positive"}]


def test_labels_read_as_words_when_at_least_half_do():
    assert reads_as_words(["negative", "neutral", "positive"]) and reads_as_words(["spam", "LABEL_1"])
    assert not reads_as_words(["LABEL_0", "LABEL_1", "ham"]) and not reads_as_words([])


def test_label_anchors_join_the_pairs_and_the_manifest_names_them(tmp_path, tiny_bert_dir):
    stage = train(_pair_recipe(tmp_path, tiny_bert_dir, epochs=1, contrastive=3, label_anchors=True)).result.contrastive
    assert stage["anchors"] == ["negative", "positive"]
    assert stage["pairs"] == 2 * (24 + 2) * 3  # the two anchors pair like rows


def test_chosen_anchor_wording_is_the_zero_shot_baselines_on_the_untrained_encoder(tmp_path, tiny_bert_dir):
    """``anchor_wording: chosen``: the anchors read as the template ``choose_wording`` picks with the base encoder on
    the training rows (computed here by hand on a fresh copy of the base), before the pair stage moves a weight."""
    from nichetune.data.readers import read_json_lines
    from nichetune.infer.classify import sentence_vectors
    from nichetune.infer.label_wording import choose_wording
    from nichetune.models.loading import load_encoder

    stage = train(_pair_recipe(tmp_path, tiny_bert_dir, epochs=1, contrastive=2, label_anchors=True,
                               anchor_wording="chosen")).result.contrastive
    encoder, tokenizer = load_encoder(tiny_bert_dir)
    rows = read_json_lines(tmp_path / "run" / "data" / "train.jsonl")
    wording = choose_wording(lambda texts: sentence_vectors(encoder, tokenizer, texts, max_length=256)[0], rows,
                             ["negative", "positive"])
    assert stage["anchors"] == list(wording.of(["negative", "positive"]).values())


def test_label_anchors_without_the_pair_stage_are_refused(tmp_path, tiny_bert_dir):
    write_jsonl(tmp_path / "d.jsonl", review_rows(16, seed=2, own=3, noise=1))
    recipe = load_recipe(data={
        "task": "classification", "output_dir": str(tmp_path / "run"), "model": {"name": str(tiny_bert_dir)},
        "data": {"train": str(tmp_path / "d.jsonl")}, "method": {"name": "full"},
        "train": {"label_anchors": True}})
    with pytest.raises(NichetuneError, match="label_anchors") as err:
        train(recipe)
    assert "train.contrastive" in err.value.hint


def test_a_generator_has_no_labels_to_pair(tmp_path, tiny_llama_dir):
    (tmp_path / "x.jsonl").write_text("")
    recipe = load_recipe(data={"task": "sft", "output_dir": str(tmp_path / "r"), "model": {"name": str(tiny_llama_dir)},
                               "data": {"train": str(tmp_path / "x.jsonl")}, "method": {"name": "full"},
                               "train": {"contrastive": 5}})
    with pytest.raises(NichetuneError, match="contrastive"):
        train(recipe)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("classes", [[0, 1, 2], [0, 1], [0, 2]])
def test_the_head_written_from_a_logistic_regression_gives_its_probabilities(classes):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    y = rng.choice(classes, size=60)
    x = rng.normal(size=(60, 5)) + y[:, None]
    lr = LogisticRegression(max_iter=2000).fit(x, y)
    weight, bias = logistic_to_softmax(lr.coef_, lr.intercept_, lr.classes_, n_labels=4)
    assert weight.shape == (4, 5) and bias.shape == (4,)
    probs = _softmax(x @ weight.T + bias)
    np.testing.assert_allclose(probs[:, lr.classes_], lr.predict_proba(x), atol=1e-6)
    unseen = [c for c in range(4) if c not in classes]
    assert probs[:, unseen].max() < 1e-9  # a label absent from the rows is never predicted


def test_the_fitted_head_is_sklearns_logistic_regression_on_what_the_head_reads(tiny_bert_dir):
    import torch
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    rows = review_rows(20, seed=4, own=2, noise=1)
    for i, row in enumerate(rows):  # lengths that differ, so batches by length reorder the rows
        row["text"] = " ".join([row["text"]] * (1 + i % 4))
    labels = ["negative", "positive"]
    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    summary = fit_head_logistic(model, tok, rows, labels, max_length=64, dtype=torch.float32, device="cpu")
    model.eval()
    with torch.no_grad():  # one text at a time: no batching or padding in the reference
        single = [tok(r["text"], return_tensors="pt", truncation=True, max_length=64) for r in rows]
        x = np.stack([model.bert(**enc).pooler_output[0].numpy() for enc in single])
        logits = np.stack([model(**enc).logits[0].numpy() for enc in single])
    y = np.array([labels.index(r["label"]) for r in rows])
    reference = LogisticRegression(max_iter=5000).fit(x, y)
    np.testing.assert_allclose(_softmax(logits.astype(np.float64)), reference.predict_proba(x), atol=1e-4)
    assert summary["train_accuracy"] == pytest.approx(reference.score(x, y))


def test_a_logistic_head_starts_the_loop_from_a_fitted_classifier(tmp_path, tiny_bert_dir):
    write_jsonl(tmp_path / "d.jsonl", review_rows(48, seed=2, own=3, noise=1))
    before = {}
    for head_init in ("random", "logistic"):
        recipe = load_recipe(data={
            "task": "classification", "output_dir": str(tmp_path / head_init), "model": {"name": str(tiny_bert_dir)},
            "data": {"train": str(tmp_path / "d.jsonl"), "split": {"ratios": [0.5, 0.25, 0.25]}},
            "method": {"name": "full"}, "train": {"epochs": 1, "batch_size": 8, "lr": 1e-2, "precision": "fp32",
                                                  "contrastive": 10, "head_init": head_init}})
        result = train(recipe).result
        before[head_init] = result.validation_before
        assert (getattr(result, "head_fit", None) is not None) == (head_init == "logistic")
    # same contrastive stage, same seed: only the head differs when the loop starts
    assert before["logistic"]["accuracy"] >= 0.9
    assert before["logistic"]["loss"] < 0.5 * before["random"]["loss"]


def test_only_a_classifier_has_a_head_to_fit(tmp_path, tiny_llama_dir):
    (tmp_path / "x.jsonl").write_text("")
    recipe = load_recipe(data={"task": "sft", "output_dir": str(tmp_path / "r"), "model": {"name": str(tiny_llama_dir)},
                               "data": {"train": str(tmp_path / "x.jsonl")}, "method": {"name": "full"},
                               "train": {"head_init": "logistic"}})
    with pytest.raises(NichetuneError, match="head_init"):
        train(recipe)


def test_a_model_without_a_classifier_output_layer_gets_a_clear_error(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    from nichetune.models.task_model import output_layer

    with pytest.raises(NichetuneError, match="no output layer with 2 outputs") as err:
        output_layer(AutoModelForCausalLM.from_pretrained(tiny_llama_dir))
    assert "head_init: random" in err.value.hint


def test_wise_from_pretrained_blends_the_body_with_its_pretrained_weights_and_refits_the_head(tmp_path, tiny_bert_dir):
    """train.wise_from: pretrained: body = (1 - a) * trained + a * pretrained (before the pair stage), and the head
    is the logistic regression of the blended body's features (sklearn's, refitted), not a blend of heads."""
    import torch
    from safetensors.torch import load_file
    from sklearn.linear_model import LogisticRegression

    from nichetune.infer.loading import load_sequence_classifier
    from nichetune.train.contrastive import head_inputs

    settings = {"epochs": 1, "contrastive": 3, "head_init": "logistic"}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    plain = train(_pair_recipe(tmp_path / "a", tiny_bert_dir, **settings))
    assert plain.result.final_weights == "last" and getattr(plain.result, "head_refit", None) is None
    blended = train(_pair_recipe(tmp_path / "b", tiny_bert_dir, **settings, wise_ft=0.5, wise_from="pretrained"))
    assert blended.result.final_weights == "last+wise0.5" and blended.result.head_refit["rows"] == 24
    a = load_file(str(tmp_path / "a" / "run" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "run" / "model" / "model.safetensors"))
    base = load_file(str(tiny_bert_dir / "model.safetensors"))
    for name in ("bert.encoder.layer.0.attention.self.query.weight", "bert.embeddings.word_embeddings.weight"):
        assert not torch.allclose(a[name], base[name.removeprefix("bert.")], atol=1e-4)  # the pair stage moved it
        assert torch.allclose(b[name], 0.5 * a[name] + 0.5 * base[name.removeprefix("bert.")], atol=1e-6)
    model, tokenizer = load_sequence_classifier(tmp_path / "b" / "run" / "model", device="cpu")
    split = (tmp_path / "b" / "run" / "data" / "train.jsonl").read_text().splitlines()
    train_rows = [json.loads(line) for line in split]
    x = head_inputs(model, tokenizer, [r["text"] for r in train_rows], max_length=64, dtype=torch.float32,
                    device="cpu")
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    y = np.array([labels.index(r["label"]) for r in train_rows])
    weight, bias = logistic_to_softmax(*(lambda m: (m.coef_, m.intercept_, m.classes_))(
        LogisticRegression(max_iter=5000).fit(x, y)), len(labels))
    np.testing.assert_allclose(b["classifier.weight"].numpy(), weight, atol=2e-3)
    np.testing.assert_allclose(b["classifier.bias"].numpy(), bias, atol=2e-3)


def test_wise_from_pretrained_needs_a_blend_and_a_fitted_head(tmp_path, tiny_bert_dir):
    with pytest.raises(NichetuneError, match="wise_from") as err:
        train(_pair_recipe(tmp_path, tiny_bert_dir, epochs=1, wise_ft=0.5, wise_from="pretrained"))
    assert "head_init: logistic" in err.value.hint
