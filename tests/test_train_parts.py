"""Unit tests for the training engine's parts: schedule, loss arithmetic, packing, encoding,
parameter groups, checkpoints."""

import math

import pytest
import torch
import torch.nn.functional as F

from nichetune.config.recipe import TrainSection
from nichetune.models.loading import load_tokenizer
from nichetune.models.resolve import resolve_model
from nichetune.models.task_model import load_base
from nichetune.tasks.batching import bucket_width, collate_causal, length_grouped_order, pack, token_slices
from nichetune.tasks.encode import IGNORE, Example, check_eos, encode_sft
from nichetune.tasks.loss import (
    causal_loss_per_example,
    causal_loss_sum,
    classification_loss_sum,
    inverse_frequency_weights,
)
from nichetune.train.checkpoint import find_resumable, load_checkpoint, save_checkpoint
from nichetune.train.optim import build_optimizer, param_groups
from nichetune.train.schedule import lr_factor, warmup_steps


def test_schedule():
    assert warmup_steps(0.1, 200) == 20 and warmup_steps(15, 200) == 15
    assert [lr_factor(s, 100, 4, "cosine") for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 100, 4, "cosine") == 1.0 and lr_factor(100, 100, 4, "cosine") == pytest.approx(0.0)
    assert lr_factor(52, 100, 4, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(52, 100, 4, "linear") == pytest.approx(0.5) and lr_factor(90, 100, 0, "constant") == 1.0


@pytest.fixture(scope="module")
def lm(tiny_llama_dir):
    torch.manual_seed(0)
    return load_base(resolve_model(tiny_llama_dir), "causal", None)


def _examples(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        length = 4 + 3 * i
        ids = torch.randint(9, 40, (length,), generator=g).tolist()
        # the first two tokens are "prompt"; one example is fully supervised (completion-style), so packing
        # must not let its first token be predicted from the previous example's last one
        labels = list(ids) if i == 0 else [IGNORE] * 2 + ids[2:]
        out.append(Example(ids, labels))
    return out


def test_causal_loss_sum_matches_mean_times_count(lm):
    batch = collate_causal(_examples(), pad_id=0)
    logits = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    total, count = causal_loss_sum(logits, batch["labels"])
    mean = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1),
                           ignore_index=IGNORE)
    assert count == sum(len(e.input_ids) - 2 for e in _examples()) + 1  # example 0: all but its first token
    assert float(total) == pytest.approx(float(mean) * count, rel=1e-5)


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_accumulation_normalises_by_the_real_token_count(lm):
    """Two micro-batches with different token counts give exactly the full batch's gradient."""
    examples = _examples(6)
    lm.zero_grad()
    full = collate_causal(examples, 0)
    loss, count = causal_loss_sum(lm(input_ids=full["input_ids"], attention_mask=full["attention_mask"]).logits,
                                  full["labels"])
    (loss / count).backward()
    expected = _grads(lm)
    lm.zero_grad()
    parts = [collate_causal(examples[:2], 0), collate_causal(examples[2:], 0)]
    total = sum(int((p["labels"][:, 1:] != IGNORE).sum()) for p in parts)
    for p in parts:
        loss, _ = causal_loss_sum(lm(input_ids=p["input_ids"], attention_mask=p["attention_mask"]).logits,
                                  p["labels"])
        (loss / total).backward()
    got = _grads(lm)
    for name, grad in expected.items():
        assert torch.allclose(got[name], grad, atol=1e-6), name
    # the naive mean of micro-batch means is *not* the same (why the arithmetic lives in one place)
    lm.zero_grad()
    for p in parts:
        loss, n = causal_loss_sum(lm(input_ids=p["input_ids"], attention_mask=p["attention_mask"]).logits,
                                  p["labels"])
        (loss / n / 2).backward()
    assert not all(torch.allclose(_grads(lm)[n], g, atol=1e-6) for n, g in expected.items())
    lm.zero_grad()


def test_packed_and_unpacked_batches_give_the_same_per_example_loss(lm):
    examples = _examples(5)
    bins = pack(examples, max_length=20)
    assert len(bins) < len(examples) and all(sum(len(e.input_ids) for e in b) <= 20 for b in bins)
    packed = collate_causal(bins, pad_id=0)
    assert "attention_mask" not in packed and packed["position_ids"][0, 0] == 0
    segments = torch.zeros_like(packed["input_ids"])
    order = []
    for b, row in enumerate(bins):
        at = 0
        for ex in row:
            segments[b, at : at + len(ex.input_ids)] = len(order)
            order.append(ex)
            at += len(ex.input_ids)
        segments[b, at:] = -1
    with torch.no_grad():
        logits = lm(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits
    per = causal_loss_per_example(logits, packed["labels"], segments)
    for k, ex in enumerate(order):
        single = collate_causal([ex], 0)
        with torch.no_grad():
            alone = lm(input_ids=single["input_ids"], attention_mask=single["attention_mask"]).logits
        loss, count = causal_loss_sum(alone, single["labels"])
        assert per[k][1] == count
        assert per[k][0] == pytest.approx(float(loss), abs=1e-4), k


def test_classification_loss_matches_torch_weighted_mean():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(10, 3, generator=g), torch.tensor([0, 1, 2, 0, 0, 0, 1, 2, 0, 0])
    weights = inverse_frequency_weights(labels.tolist(), 3)
    assert weights.tolist() == pytest.approx([10 / (3 * 6), 10 / (3 * 2), 10 / (3 * 2)])
    total, denom = classification_loss_sum(logits, labels, class_weights=weights)
    assert float(total / denom) == pytest.approx(float(F.cross_entropy(logits, labels, weight=weights)), rel=1e-6)


def test_sft_labels_cover_only_assistant_turns_and_end_with_eos(tiny_llama_dir):
    tok = load_tokenizer(tiny_llama_dir)
    rows = [{"messages": [{"role": "system", "content": "kernel"},
                          {"role": "user", "content": "what does compiler mean"},
                          {"role": "assistant", "content": "source code into machine code"}]}]
    (ex,) = encode_sft(rows, tok, max_length=128)
    supervised = [t for t, lab in zip(ex.input_ids, ex.labels, strict=True) if lab != IGNORE]
    assert supervised[-1] == tok.eos_token_id  # the end-of-turn token is a target
    assert tok.decode(supervised, skip_special_tokens=True) == "source code into machine code"
    (short,) = encode_sft(rows, tok, max_length=10)
    assert len(short.input_ids) == 10 and short.input_ids[-1] == tok.eos_token_id
    check_eos([short], tok.eos_token_id)
    everything = encode_sft(rows, tok, max_length=128, loss_on="all")[0]
    assert everything.labels == everything.input_ids


def test_param_groups_decay_and_layerwise_lr(tiny_classifier_dir):
    model = load_base(resolve_model(tiny_classifier_dir), "classification", ["a", "b"])
    cfg = TrainSection(lr=1e-3, head_lr=5e-3, layer_decay=0.5, weight_decay=0.1)
    lrs = {n: g["lr"] for g in param_groups(model, cfg) for n in g["names"]}
    decay = {n: g["weight_decay"] for g in param_groups(model, cfg) for n in g["names"]}
    assert lrs["classifier.weight"] == 5e-3
    assert lrs["bert.encoder.layer.1.attention.self.query.weight"] == pytest.approx(1e-3 * 0.5)
    assert lrs["bert.encoder.layer.0.attention.self.query.weight"] == pytest.approx(1e-3 * 0.25)
    assert lrs["bert.embeddings.word_embeddings.weight"] == pytest.approx(1e-3 * 0.125)
    assert decay["bert.encoder.layer.0.attention.self.query.bias"] == 0.0
    assert decay["bert.encoder.layer.0.attention.output.LayerNorm.weight"] == 0.0
    assert decay["bert.encoder.layer.0.attention.self.query.weight"] == 0.1


def test_checkpoint_round_trip_restores_weights_moments_and_rng(tiny_classifier_dir, tmp_path):
    import random

    model = load_base(resolve_model(tiny_classifier_dir), "classification", ["a", "b"])
    opt = build_optimizer(model, TrainSection(lr=1e-2))
    batch = {"input_ids": torch.randint(9, 40, (2, 6)), "labels": torch.tensor([0, 1])}
    model(**batch).loss.backward()
    opt.step()
    random.seed(5)
    torch.manual_seed(5)
    path = save_checkpoint(tmp_path, model, opt, {"step": 1, "epoch": 0, "window": 1})
    expected = (random.random(), float(torch.rand(1)), {n: p.clone() for n, p in model.named_parameters()})
    fresh = load_base(resolve_model(tiny_classifier_dir), "classification", ["a", "b"])
    fresh_opt = build_optimizer(fresh, TrainSection(lr=1e-2))
    state, _ = load_checkpoint(find_resumable(tmp_path)[0], fresh, fresh_opt)
    assert state["step"] == 1 and (random.random(), float(torch.rand(1))) == expected[:2]
    for n, p in fresh.named_parameters():
        assert torch.equal(p, expected[2][n]), n
    # the next optimiser step is identical too (moments restored)
    for m, o in ((model, opt), (fresh, fresh_opt)):
        o.zero_grad()
        m(**batch).loss.backward()
        o.step()
    for (n, a), (_, b) in zip(model.named_parameters(), fresh.named_parameters(), strict=True):
        assert torch.equal(a, b), n
    # a corrupted newer checkpoint is skipped
    newer = save_checkpoint(tmp_path, model, opt, {"step": 2, "epoch": 0, "window": 2})
    (newer / "trainable.safetensors").write_bytes(b"corrupt")
    assert find_resumable(tmp_path)[0] == path


def test_length_grouping_is_deterministic_and_complete():
    lengths = [5, 50, 7, 48, 6, 49, 8, 47]
    a = length_grouped_order(lengths, 2, seed=3, group=True)
    assert a == length_grouped_order(lengths, 2, seed=3, group=True) and sorted(a) == list(range(8))
    pairs = [sorted(lengths[i] for i in a[k : k + 2]) for k in range(0, 8, 2)]
    assert all(hi - lo <= 3 for lo, hi in pairs)  # each batch holds similar lengths


def test_pii_mask_reaches_every_split_and_the_provenance(tmp_path):
    from nichetune.config.recipe import load_recipe
    from nichetune.train.data import load_splits
    from tiny_data import review_rows, write_jsonl

    rows = review_rows(60, seed=0, own=3, noise=2)
    for i, r in enumerate(rows):
        if i % 3 == 0:
            r["text"] += f" mail me at jane.doe{i}@example.com"
    write_jsonl(tmp_path / "d.jsonl", rows)
    recipe = load_recipe(data={"task": "classification", "output_dir": str(tmp_path / "run"),
                               "data": {"train": str(tmp_path / "d.jsonl"), "pii": "mask"}, "method": {"name": "full"}})
    splits = load_splits(recipe, tmp_path / "data")
    everything = [*splits.train, *splits.validation, *splits.test]
    assert len(everything) == 60 and not [r for r in everything if "@example.com" in r["text"]]
    assert sum("[EMAIL]" in r["text"] for r in everything) == 20
    masked = next(s for s in splits.sources if s.get("kind") == "transform")
    assert masked["rows"] == 20


def test_bucket_width_rounds_up_by_at_most_an_eighth_and_never_past_the_cap():
    assert [bucket_width(n, 512) for n in (7, 100, 130, 300, 400, 416, 511, 512)] == [8, 104, 144, 320, 416, 416, 512,
                                                                                      512]
    assert bucket_width(500, 416) == 500  # a row longer than the cap keeps its length
    assert bucket_width(100, None) == 100  # no known cap: no rounding
    widths = {bucket_width(n, 416) for n in range(200, 417)}
    assert len(widths) <= 10  # few shapes for the allocator to reuse
    assert all(n <= bucket_width(n, 10_000) <= n * 1.125 for n in range(64, 5000))  # shorter: steps of 8


def test_token_slices_cover_the_batch_within_the_budget():
    items = [Example([1] * n, 0) for n in (300, 50, 416, 120, 416, 200, 90, 10)]
    parts = token_slices(items, 1000)
    assert sorted(id(e) for p in parts for e in p) == sorted(id(e) for e in items)
    assert all(len(p) * max(len(e.input_ids) for e in p) <= 1000 for p in parts)
    assert len(parts) == 4  # 8 rows x 416 tokens = 3328 padded tokens: 4 even slices of 2
    assert token_slices(items, None) == [items] and token_slices(items, 10**6) == [items]


def test_a_sliced_batch_gives_the_whole_batch_gradient(tiny_classifier_dir):
    """The loop runs a batch over the token budget in slices: the summed, once-scaled loss has the same gradient."""
    from nichetune.tasks.classification import ClassificationTask

    model = load_base(resolve_model(tiny_classifier_dir), "classification", ["a", "b"])
    model.eval()  # no dropout: the two passes must see the same function
    task = ClassificationTask(["a", "b"], class_weights=True)
    g = torch.Generator().manual_seed(0)
    rows = [{"text": " ".join(["word"] * int(n)), "label": "ab"[i % 2]}
            for i, n in enumerate(torch.randint(3, 40, (9,), generator=g))]
    items = task.items(task.encode(rows, load_tokenizer(tiny_classifier_dir), 32, train=True), 32, False)
    units = sum(task.units(it) for it in items)

    def grads(parts):
        model.zero_grad()
        for part in parts:
            loss, _ = task.loss_sum(model, task.collate(part, 0))
            (loss / units).backward()
        return _grads(model)

    whole, sliced = grads([items]), grads(token_slices(items, 64))
    assert len(token_slices(items, 64)) > 2
    for name, grad in whole.items():
        assert torch.allclose(sliced[name], grad, atol=1e-6), name


def test_causal_scoring_in_chunks_equals_the_whole_batch_at_once(lm):
    """Evaluation takes the fp32 softmax 256 supervised positions at a time; the sums are the whole batch's."""
    from nichetune.tasks.causal import CausalTask
    from nichetune.tasks.loss import LOGIT_CHUNK

    task = CausalTask(chat=False)
    examples = _examples(24)  # 24 examples of 4..73 tokens: over 600 supervised positions
    batch = collate_causal(examples, 0)
    with torch.no_grad():
        logits = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss, count = causal_loss_sum(logits, batch["labels"])
        sums = task.eval_sums(lm, batch)
    assert count > 2 * LOGIT_CHUNK
    targets = batch["labels"][:, 1:]
    correct = int((logits[:, :-1].argmax(-1) == targets)[targets != IGNORE].sum())
    assert sums.tolist() == pytest.approx([float(loss), float(count), float(correct)], rel=1e-5)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_chunked_linear_cross_entropy_equals_the_logits_path_in_value_and_gradients(smoothing):
    """The loss made from hidden states in chunks (with its gradients computed in the forward pass) against
    ``F.cross_entropy`` on the whole (N, V) logits: same sum, same gradient for the hidden states and the weight."""
    from nichetune.tasks.loss import LOGIT_CHUNK, linear_cross_entropy_sum

    g = torch.Generator().manual_seed(0)
    n, d, v = 2 * LOGIT_CHUNK + 37, 16, 300  # three chunks, the last one partial
    hidden = torch.randn(n, d, generator=g, requires_grad=True)
    weight = torch.randn(v, d, generator=g, requires_grad=True)
    targets = torch.randint(0, v, (n,), generator=g)
    expected = F.cross_entropy(hidden @ weight.T, targets, reduction="sum", label_smoothing=smoothing)
    (3.0 * expected).backward()
    want_h, want_w = hidden.grad.clone(), weight.grad.clone()
    hidden.grad, weight.grad = None, None
    got = linear_cross_entropy_sum(hidden, weight, targets, smoothing)
    (3.0 * got).backward()  # the incoming gradient scales what the forward pass computed
    assert float(got) == pytest.approx(float(expected), rel=1e-6)
    assert torch.allclose(hidden.grad, want_h, rtol=1e-4, atol=1e-5)
    assert torch.allclose(weight.grad, want_w, rtol=1e-4, atol=1e-5)

    frozen = weight.detach()  # a frozen output layer (LoRA): no weight gradient is made
    hidden.grad = None
    linear_cross_entropy_sum(hidden, frozen, targets, smoothing).backward()
    assert torch.allclose(hidden.grad, want_h / 3.0, rtol=1e-4, atol=1e-5)


def test_causal_training_loss_equals_the_whole_models_logits(lm):
    """``loss_sum`` runs the body and the chunked loss (no hook, no full logits): its value and every parameter's
    gradient equal cross entropy on the full model's logits."""
    from nichetune.tasks.causal import CausalTask

    task = CausalTask(chat=False)
    batch = collate_causal(_examples(8), 0)
    lm.zero_grad()
    logits = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected, count = causal_loss_sum(logits, batch["labels"])
    expected.backward()
    want = _grads(lm)
    lm.zero_grad()
    loss, units = task.loss_sum(lm, batch)
    loss.backward()
    got = _grads(lm)
    lm.zero_grad()
    assert (float(loss), units) == (pytest.approx(float(expected), rel=1e-5), count)
    assert got.keys() == want.keys() and "lm_head.weight" in got  # the output layer's weight trains too
    for name, grad in want.items():
        assert torch.allclose(got[name], grad, rtol=1e-4, atol=1e-6), name


def test_models_that_cap_logits_after_the_head_are_scored_through_the_whole_model():
    """Gemma 2 soft-caps logits after its output layer: the body-and-head shortcut would skip the cap, so the task
    takes the model's own logits there, and its loss is the capped one."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    from nichetune.models.task_model import plain_output_head
    from nichetune.tasks.causal import CausalTask

    torch.manual_seed(0)
    config = Gemma2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=8, final_logit_softcapping=0.5)
    model = Gemma2ForCausalLM(config).eval()
    assert plain_output_head(model) is None
    batch = collate_causal(_examples(4), 0)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        expected, _ = causal_loss_sum(logits, batch["labels"])
        loss, _ = CausalTask(chat=False).loss_sum(model, batch)
    assert logits.abs().max() <= 0.5  # the cap is in force: a loss without it would differ
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_cast_frozen_adapters_make_no_fp32_copies_of_their_inputs(tiny_llama_dir):
    """With the base in bf16, PEFT would cast each LoRA layer's bf16 input up to fp32 for its fp32 weights and
    autocast would cast it back down: ``cast_frozen`` turns that off. The outputs are the same; the copies are gone."""
    import peft
    from torch.utils._python_dispatch import TorchDispatchMode

    from nichetune.train.model_setup import cast_frozen

    class UpCasts(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is torch.ops.aten._to_copy.default and args[0].dtype == torch.bfloat16 \
                    and kwargs.get("dtype") == torch.float32 and args[0].dim() == 3:
                self.count += 1  # an activation (B, T, d) copied up to fp32
            return func(*args, **kwargs)

    torch.manual_seed(0)
    model = peft.get_peft_model(load_base(resolve_model(tiny_llama_dir), "causal", None),
                                peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    batch = collate_causal(_examples(3), 0)

    def forward():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), UpCasts() as casts:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return logits, casts.count

    for p in model.parameters():
        if not p.requires_grad:
            p.data = p.data.to(torch.bfloat16)  # what cast_frozen does to the weights, without the switch
    before, upcasts_before = forward()
    assert cast_frozen(model, torch.bfloat16) == 0  # nothing left to cast; the switch is still set
    after, upcasts_after = forward()
    assert upcasts_before >= 4  # two LoRA layers per block, two blocks: the copies this removes
    assert upcasts_after < upcasts_before - 3
    assert torch.equal(before, after)


def test_the_cpu_token_budget_shrinks_with_the_body_and_stays_above_the_floor():
    """4096 tokens for a MiniLM-sized body, scaled down by layers x width, never under 1024; a recipe's own value
    and a GPU's no-limit win."""
    from types import SimpleNamespace

    from nichetune.train.loop import batch_tokens

    def body(layers, width):
        return SimpleNamespace(num_hidden_layers=layers, hidden_size=width)

    assert batch_tokens(None, "cpu", body(6, 384)) == 4096  # MiniLM-L6
    assert batch_tokens(None, "cpu", body(3, 384)) == 4096  # smaller bodies are capped, not raised
    assert batch_tokens(None, "cpu", body(12, 384)) == 2048  # twice the depth: half the tokens
    assert batch_tokens(None, "cpu", body(12, 768)) == 1024  # BERT-base: a quarter
    assert batch_tokens(None, "cpu", body(30, 576)) == 1024  # SmolLM2-135M: 546 by the ratio, the floor
    assert batch_tokens(None, "cpu", None) == 4096  # no config to read
    assert batch_tokens(700, "cpu", body(30, 576)) == 700
    assert batch_tokens(None, "cuda", body(30, 576)) is None


def test_a_biased_output_layer_is_scored_from_one_body_pass(tiny_llama_dir):
    """An output layer with a bias takes the whole-logits loss, from the same single pass of the body (it once ran
    the body twice: once to find the head, once more to score)."""
    from nichetune.models.task_model import body
    from nichetune.tasks.causal import CausalTask

    torch.manual_seed(0)
    model = load_base(resolve_model(tiny_llama_dir), "causal", None)
    old = model.lm_head
    model.lm_head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    batch = collate_causal(_examples(4), 0)
    passes = []
    handle = body(model).register_forward_hook(lambda *_: passes.append(1))
    try:
        with torch.no_grad():
            loss, _ = CausalTask(chat=False).loss_sum(model, batch)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    finally:
        handle.remove()
    assert len(passes) == 2  # one for loss_sum, one for the reference
    expected, _ = causal_loss_sum(logits, batch["labels"])
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
