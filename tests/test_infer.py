import pytest
import torch

from nichetune.errors import NichetuneError
from nichetune.hardware import pick_dtype
from nichetune.infer.classify import classify, mean_pool
from nichetune.infer.generate import chat_input_ids, generate
from nichetune.infer.label_scoring import LabelScorer, label_log_likelihoods
from nichetune.infer.label_wording import SIMILARITY_TEMPERATURE
from nichetune.models.loading import load_causal_lm, load_encoder


def test_generate_streams_the_same_text_as_plain_greedy_decoding(tiny_llama_dir):
    pieces: list[str] = []
    text = generate(tiny_llama_dir, "what does compiler mean", max_new_tokens=12, dtype="fp32",
                    on_text=pieces.append)
    assert "".join(pieces) == text and len(pieces) >= 2

    model, tok = load_causal_lm(tiny_llama_dir, dtype="fp32")
    ids = chat_input_ids(tok, "what does compiler mean")
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                         pad_token_id=tok.pad_token_id)
    assert text == tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def test_chat_template_is_applied(tiny_llama_dir):
    _, tok = load_causal_lm(tiny_llama_dir, dtype="fp32")
    ids = chat_input_ids(tok, "kernel", system="assistant").tolist()[0]
    start, end = tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    assert ids.count(start) == 3 and ids.count(end) == 2  # system, user, and the open assistant turn
    raw = chat_input_ids(tok, "kernel", use_template=False).tolist()[0]
    assert start not in raw


def test_sampling_is_reproducible_with_a_seed(tiny_llama_dir):
    a = generate(tiny_llama_dir, "kernel", max_new_tokens=10, temperature=1.0, seed=3, dtype="fp32")
    b = generate(tiny_llama_dir, "kernel", max_new_tokens=10, temperature=1.0, seed=3, dtype="fp32")
    assert a == b


def test_classifier_head_probabilities_match_manual_softmax(tiny_classifier_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = ["the drug helped my pain", "terrible nausea"]
    preds = classify(str(tiny_classifier_dir), texts)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_classifier_dir)
    with torch.no_grad():
        probs = torch.softmax(model(**tok(texts, padding=True, return_tensors="pt")).logits, -1)
    for pred, row in zip(preds, probs, strict=True):
        expected = {model.config.id2label[i]: float(p) for i, p in enumerate(row)}
        assert pred.method == "classifier head"
        assert pred.scores == pytest.approx(expected, abs=1e-6)
        assert pred.label == max(expected, key=expected.get)
        assert list(pred.scores.values()) == sorted(pred.scores.values(), reverse=True)


def test_label_likelihood_matches_one_forward_pass_per_label(tiny_llama_dir):
    model, tok = load_causal_lm(tiny_llama_dir, dtype="fp32")
    labels = ["positive", "negative", "neutral source"]
    got = label_log_likelihoods(model, tok, "the drug helped", labels)
    prompt = LabelScorer(None, tok, labels).prompt_ids("the drug helped")
    assert prompt == tok.apply_chat_template([{"role": "user", "content": LabelScorer(None, tok, labels).instruction
                                               + "\n\nText: the drug helped"}], add_generation_prompt=True)["input_ids"]
    for label, score in zip(labels, got, strict=True):
        cont = tok(label, add_special_tokens=False).input_ids
        ids = torch.tensor([prompt + cont])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0], -1)
        expected = sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(cont))
        assert score == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("chat", [True, False])
def test_few_shot_scores_on_the_cached_prefix_equal_full_forward_passes(tiny_llama_dir, chat):
    model, tok = load_causal_lm(tiny_llama_dir, dtype="fp32")
    if not chat:
        tok.chat_template = None
    labels = ["positive", "negative", "neutral source"]
    shots = [("great relief from pain", "positive"), ("awful nausea all week", "negative")]
    scorer = LabelScorer(model, tok, labels, shots=shots)
    prompt = scorer.prompt_ids("the drug helped")
    assert prompt[: len(scorer.prefix_ids)] == scorer.prefix_ids and len(scorer.prefix_ids) > 10
    assert tok.decode(prompt).count("nausea") == 1
    for _ in range(2):  # the second call reuses the cached prefix, which must stay unmodified
        got = scorer.scores("the drug helped")
        for label, score, cont in zip(labels, got, scorer.continuations, strict=True):
            ids = torch.tensor([prompt + cont])
            with torch.no_grad():
                logp = torch.log_softmax(model(ids).logits[0], -1)
            expected = sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(cont))
            assert score == pytest.approx(expected, abs=1e-4), label


def test_zero_shot_with_a_causal_lm_removes_the_label_prior(tiny_llama_dir):
    labels = ["positive", "negative"]
    (pred,) = classify(str(tiny_llama_dir), ["the drug helped"], labels=labels, dtype="fp32")
    (raw,) = classify(str(tiny_llama_dir), ["the drug helped"], labels=labels, dtype="fp32", calibrate=False)
    assert pred.method == "label likelihood, calibrated" and raw.method == "label likelihood"
    model, tok = load_causal_lm(tiny_llama_dir, dtype="fp32")
    scores = label_log_likelihoods(model, tok, "the drug helped", labels)
    prior = [sum(label_log_likelihoods(model, tok, t, labels)[i] for t in ("N/A", "[MASK]", "")) / 3 for i in (0, 1)]
    expected = torch.softmax(torch.tensor([scores[0] - prior[0], scores[1] - prior[1]]), -1)
    assert pred.scores == pytest.approx({"positive": float(expected[0]), "negative": float(expected[1])}, abs=1e-5)
    expected_raw = torch.softmax(torch.tensor(scores), -1)
    assert raw.scores == pytest.approx({"positive": float(expected_raw[0]), "negative": float(expected_raw[1])},
                                       abs=1e-5)


def test_embedding_similarity_matches_hand_computation(tiny_bert_dir):
    texts, labels = ["kernel memory processes"], ["sport", "tech"]
    (pred,) = classify(str(tiny_bert_dir), texts, labels=labels)
    model, tok = load_encoder(tiny_bert_dir)

    def embed(items):
        batch = tok(items, padding=True, return_tensors="pt")
        with torch.no_grad():
            h = model(**batch).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).float()
        v = (h * m).sum(1) / m.sum(1)
        return v / v.norm(dim=-1, keepdim=True)

    sims = (embed(texts) @ embed(labels).T)[0]
    expected = torch.softmax(sims / SIMILARITY_TEMPERATURE, -1)
    assert pred.scores == pytest.approx({"sport": float(expected[0]), "tech": float(expected[1])}, abs=1e-5)


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0]]


def test_base_model_without_labels_asks_for_them(tiny_bert_dir):
    with pytest.raises(NichetuneError) as err:
        classify(str(tiny_bert_dir), ["x"])
    assert "--labels" in err.value.hint


def test_dtype_names():
    assert pick_dtype("fp32") is torch.float32 and pick_dtype("bf16") is torch.bfloat16
    assert pick_dtype("auto", "cpu") in (torch.float32, torch.bfloat16)
    with pytest.raises(ValueError):
        pick_dtype("int3")


def test_label_descriptions_are_scored_in_place_of_names(tiny_bert_dir):
    described = classify(str(tiny_bert_dir), ["kernel memory"], labels={"os": "kernel processes", "med": "pain drug"})
    direct = classify(str(tiny_bert_dir), ["kernel memory"], labels=["kernel processes", "pain drug"])
    assert set(described[0].scores) == {"os", "med"}
    assert described[0].scores["os"] == pytest.approx(direct[0].scores["kernel processes"], abs=1e-6)
