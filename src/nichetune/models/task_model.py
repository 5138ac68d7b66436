"""The model a recipe adapts: a base from the registry of models, with the task's head."""

from __future__ import annotations

from torch import nn

from ..errors import NichetuneError
from .heads import HEADS
from .loading import load_tokenizer
from .resolve import ResolvedModel

ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")


def load_base(resolved: ResolvedModel, head: str, labels: list[str] | None, *, dropout: float | None = None,
              attention_dropout: float | None = None, trust_remote_code: bool = False,
              allow_pickle: bool = False) -> nn.Module:
    """The base model in fp32 (master weights) with ``head`` (a key of ``HEADS``).

    A fresh head (a classifier's) is sized by ``labels``. ``dropout`` sets every dropout the config names;
    ``attention_dropout`` then sets the attention weights' own (``None`` leaves the model's).
    """
    import torch

    kwargs: dict = {"dtype": torch.float32, "use_safetensors": not allow_pickle,
                    "trust_remote_code": trust_remote_code}
    if dropout is not None:
        for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "attention_dropout", "dropout"):
            if key in resolved.config:
                kwargs[key] = dropout
    if attention_dropout is not None:
        for key in ATTENTION_DROPOUT_KEYS:
            if key in resolved.config:
                kwargs[key] = attention_dropout
    spec = HEADS[head]
    if spec.fresh:
        id2label = dict(enumerate(labels or []))
        cls = spec.auto()
        # a classifier checkpoint may come with another label set: its head is replaced, not reused
        model = cls.from_pretrained(resolved.path, num_labels=len(id2label), id2label=id2label,
                                    label2id={v: k for k, v in id2label.items()}, ignore_mismatched_sizes=True,
                                    **kwargs)
        if model.config.pad_token_id is None:
            tok = load_tokenizer(resolved)
            model.config.pad_token_id = tok.pad_token_id
    else:
        model = spec.auto().from_pretrained(resolved.path, **kwargs)
    if getattr(model, "hf_quantizer", None) is not None:  # a GGUF-loaded model must be dequantised to train
        model.hf_quantizer.remove_quantization_config(model)
    return model


def body(model: nn.Module) -> nn.Module:
    """The transformer body inside a (PEFT-wrapped, or ``torch.compile``-wrapped) model with a head: what the head
    reads. Adapter layers live inside it, so calling it runs them."""
    model = getattr(model, "_orig_mod", model)
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    return hf.base_model  # transformers' own accessor: the module named by ``base_model_prefix``


LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling")  # config keys that change logits


def plain_output_head(model: nn.Module) -> nn.Linear | None:
    """The output layer when the model's logits are exactly ``head(hidden states)``: a plain ``nn.Linear`` (not an
    adapter-wrapped one) on a config that neither caps nor scales logits afterwards; ``None`` otherwise."""
    model = getattr(model, "_orig_mod", model)
    head = model.get_output_embeddings()
    config = model.config
    if type(head) is not nn.Linear or any(getattr(config, k, None) not in (None, 1, 1.0) for k in LOGIT_TRANSFORMS):
        return None
    return head


def output_layer(model) -> nn.Linear:
    """The linear layer that makes a sequence classifier's logits (``classifier``, ``score``,
    ``classifier.out_proj``; PEFT's trained copy, not the frozen original)."""
    n = model.config.num_labels
    found = [m for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and m.out_features == n and "original_module" not in name
             and any(part in ("classifier", "score", "out_proj") for part in name.split("."))]
    if not found:
        raise NichetuneError(f"train.head_init: logistic found no output layer with {n} outputs in "
                             f"{type(model).__name__}", hint="use train.head_init: random for this model")
    return found[-1]
