"""The method contract, one row per method: parameter count, only the method's parameters change
after a step, save + reload gives identical outputs, merge gives identical outputs."""

import pytest
import torch
from pydantic import TypeAdapter
from torch import nn

from nichetune.errors import NichetuneError
from nichetune.methods.configs import MethodConfig
from nichetune.methods.registry import METHODS, apply_method, check_method
from nichetune.methods.storage import load_adapted, merge_adapted, save_adapted
from nichetune.models.architecture import model_facts
from nichetune.models.resolve import resolve_model
from nichetune.models.task_model import load_base

LABELS = ["negative", "positive", "neutral"]
CFG = TypeAdapter(MethodConfig)


def _linears(model, suffixes):
    return [m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.endswith(tuple(suffixes))]


def _head(model):
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith("classifier"))


def _lora(model, targets, r, dora=False):
    return sum(r * (m.in_features + m.out_features) + (m.out_features if dora else 0)
               for m in _linears(model, targets))


def _ia3(model, kind):
    """IA3 scales key/value outputs (out_features each) and feed-forward inputs (in_features). PEFT's
    BERT default counts every ``output.dense`` as feed-forward, the attention output's included."""
    kv = ("key", "value") if kind == "cls" else ("k_proj", "v_proj")
    ff = _linears(model, ("output.dense",) if kind == "cls" else ("down_proj",))
    return sum(m.out_features for m in _linears(model, kv)) + sum(m.in_features for m in ff)


def _not_frozen(model):
    """Everything but the embeddings and block 0 (freeze: layers=1, embeddings=True)."""
    return sum(p.numel() for n, p in model.named_parameters()
               if not ("embed" in n or ".layer.0." in n or ".layers.0." in n))


def _adapter(model, kind, m=8):
    """Per site: down (d*m + m) + up (m*d + d); Houlsby sites: attention output and FFN output."""
    sites = ("attention.output.dense", "layer.0.output.dense", "layer.1.output.dense") if kind == "cls" \
        else ("o_proj", "down_proj")
    return sum(2 * m * lin.out_features + m + lin.out_features for lin in _linears(model, sites))


# expected trainable parameters, from the *base* model's shapes (head added by the test)
EXPECTED = {
    "full": lambda m, kind: sum(p.numel() for p in m.parameters()),
    "freeze": lambda m, kind: _not_frozen(m),
    "lora": lambda m, kind: _lora(m, ("query", "value") if kind == "cls" else ("q_proj", "v_proj"), 4),
    "dora": lambda m, kind: _lora(m, ("query", "value") if kind == "cls" else ("q_proj", "v_proj"), 4, dora=True),
    "adapter": _adapter,
    "prompt_tuning": lambda m, kind: 4 * m.config.hidden_size,
    "ia3": _ia3,
}
HEAD_INCLUDED = {"full", "freeze"}  # these count the head already; for the others it is added on top


ROWS = [
    ("full", {"name": "full"}),
    ("freeze", {"name": "freeze", "layers": 1, "embeddings": True}),
    ("lora", {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0}),
    ("dora", {"name": "dora", "r": 4, "alpha": 8, "dropout": 0.0}),
    ("adapter", {"name": "adapter", "bottleneck": 8}),
    ("prompt_tuning", {"name": "prompt_tuning", "num_virtual_tokens": 4}),
    ("prefix_tuning", {"name": "prefix_tuning", "num_virtual_tokens": 4}),
    ("p_tuning", {"name": "p_tuning", "num_virtual_tokens": 4, "encoder_hidden_size": 16}),
    ("ia3", {"name": "ia3"}),
]


def test_every_registered_method_has_a_contract_row():
    assert {name for name, _ in ROWS} == set(METHODS)


def _base(kind, tiny_classifier_dir, tiny_llama_dir):
    torch.manual_seed(0)
    if kind == "cls":
        return load_base(resolve_model(tiny_classifier_dir), "classification", LABELS)
    return load_base(resolve_model(tiny_llama_dir), "causal", None)


def _batch(kind):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(9, 40, (2, 7), generator=g)
    if kind == "cls":
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor([0, 2])}
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}


def _outputs(model, kind):
    model.eval()
    batch = _batch(kind)
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


@pytest.mark.parametrize("kind", ["cls", "lm"])
@pytest.mark.parametrize("name, raw", ROWS, ids=[r[0] for r in ROWS])
def test_method_contract(name, raw, kind, tiny_classifier_dir, tiny_llama_dir, tmp_path):
    cfg = CFG.validate_python(raw)
    task = "classification" if kind == "cls" else "causal"
    base = _base(kind, tiny_classifier_dir, tiny_llama_dir)
    facts = model_facts(resolve_model(tiny_classifier_dir if kind == "cls" else tiny_llama_dir), task)
    try:
        check_method(cfg, facts)
    except NichetuneError as refusal:  # a refusal must be honest: the method really fails on this model
        assert refusal.hint, "a refusal says what to use instead"
        with pytest.raises(Exception):  # noqa: B017 - whatever PEFT or torch raise
            adapted = apply_method(base, cfg, task)
            adapted.train()
            adapted(**_batch(kind)).loss.backward()
        return
    head = _head(base) if kind == "cls" else 0
    expected = None
    if name in EXPECTED:
        expected = EXPECTED[name](base, kind) + (0 if name in HEAD_INCLUDED else head)
    model = apply_method(base, cfg, task)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    count = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad)
    assert count > 0
    if expected is not None:
        assert count == expected, (name, kind, count, expected)
    if name in ("prefix_tuning", "p_tuning"):  # formula from PEFT's own resolved config
        pc = model.peft_config["default"]
        virtual = pc.num_virtual_tokens * pc.num_transformer_submodules
        if name == "prefix_tuning":
            assert count == pc.num_virtual_tokens * pc.num_layers * 2 * pc.token_dim + head
        else:
            h, d = pc.encoder_hidden_size, pc.token_dim
            assert count == virtual * d + (d * h + h) + (h * h + h) + (h * d + d) + head

    # one optimisation step: exactly the trainable parameters may change
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    model(**_batch(kind)).loss.backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable, sorted(changed - trainable)[:5]

    # save + reload on a fresh base gives identical outputs
    out = _outputs(model, kind)
    saved = save_adapted(model, cfg, task, tmp_path / "saved")
    assert not list(saved.glob("*.bin")) and list(saved.glob("*.safetensors"))
    # a whole saved model (full, freeze) never builds the base; the others load on a fresh one
    reloaded = load_adapted(lambda: _base(kind, tiny_classifier_dir, tiny_llama_dir), cfg, task, saved)
    assert torch.allclose(_outputs(reloaded, kind), out, atol=1e-6)

    # merge gives identical outputs where the method allows it, and says why not elsewhere
    if METHODS[name].mergeable:
        merged = merge_adapted(reloaded, cfg)
        assert not any("lora_" in n or "ia3_" in n for n, _ in merged.named_parameters())
        assert torch.allclose(_outputs(merged, kind), out, atol=1e-5)
    else:
        with pytest.raises(ValueError, match="cannot be merged"):
            merge_adapted(reloaded, cfg)


def test_adapter_starts_as_the_identity(tiny_classifier_dir, tiny_llama_dir):
    for kind in ("cls", "lm"):
        base = _base(kind, tiny_classifier_dir, tiny_llama_dir)
        before = _outputs(base, kind)
        adapted = apply_method(base, CFG.validate_python({"name": "adapter", "placement": "pfeiffer"}),
                               "classification" if kind == "cls" else "causal")
        assert torch.equal(_outputs(adapted, kind), before)


def test_progressive_unfreezing_opens_one_block_per_epoch(tiny_llama_dir):
    from nichetune.methods.freeze import on_epoch

    cfg = CFG.validate_python({"name": "freeze", "progressive": True})
    model = apply_method(load_base(resolve_model(tiny_llama_dir), "causal", None), cfg, "causal")

    def open_layers():
        return sorted({int(n.split(".layers.")[1].split(".")[0]) for n, p in model.named_parameters()
                       if p.requires_grad and ".layers." in n})

    assert open_layers() == []
    on_epoch(model, cfg, 1)
    assert open_layers() == [1]
    on_epoch(model, cfg, 2)
    assert open_layers() == [0, 1]


def test_a_refusal_comes_from_the_models_capabilities_not_its_name(tiny_classifier_dir):
    """Prefix tuning of a classifier needs ``past_key_values`` in forward; the check reads only that."""
    from dataclasses import replace

    facts = model_facts(resolve_model(tiny_classifier_dir), "classification")
    cfg = CFG.validate_python({"name": "prefix_tuning"})
    with_kv = replace(facts, forward_params=facts.forward_params | {"past_key_values"})
    without_kv = replace(facts, forward_params=facts.forward_params - {"past_key_values"})
    check_method(cfg, with_kv)
    check_method(cfg, replace(without_kv, head="causal"))  # causal LMs take the prefix through their own path
    with pytest.raises(NichetuneError, match="past_key_values"):
        check_method(cfg, without_kv)


@pytest.mark.parametrize("raw, match", [
    ({"name": "lora", "target_modules": ["nosuch"]}, r"\['nosuch'\] match no module"),
    ({"name": "dora", "target_modules": ["query", "nosuch"]}, r"\['nosuch'\]"),
    ({"name": "ia3", "target_modules": ["key", "value"], "feedforward_modules": ["zzz"]}, "feedforward_modules"),
])
def test_target_modules_are_checked_against_the_model(raw, match, tiny_classifier_dir):
    facts = model_facts(resolve_model(tiny_classifier_dir), "classification")
    with pytest.raises(NichetuneError, match=match):
        check_method(CFG.validate_python(raw), facts)
    check_method(CFG.validate_python({"name": "lora", "target_modules": ["query", "attention.self.value"]}), facts)
