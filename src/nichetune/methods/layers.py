"""Find a transformer's blocks, embeddings and task head by structure, not by model class."""

from __future__ import annotations

import re

from torch import nn

from ..models.heads import HEADS

HEAD_NAMES = ("classifier", "score", "lm_head")
_LAYER = re.compile(r"\.(?:layers?|h|blocks)\.(\d+)\.")


def layer_index(param_name: str) -> int | None:
    match = _LAYER.search(param_name)
    return int(match.group(1)) if match else None


def num_layers(model: nn.Module) -> int:
    indices = [layer_index(n) for n, _ in model.named_parameters()]
    return max((i for i in indices if i is not None), default=-1) + 1


def is_head(param_name: str) -> bool:
    return param_name.split(".")[0] in HEAD_NAMES or any(f".{h}." in param_name for h in ("classifier", "score"))


def is_embedding(param_name: str) -> bool:
    return "embed" in param_name and layer_index(param_name) is None


def is_no_decay(param_name: str) -> bool:
    """Biases and normalisation weights get no weight decay."""
    lowered = param_name.lower()
    return lowered.endswith("bias") or "norm" in lowered


def task_head_params(model: nn.Module, head: str) -> list[str]:
    """Names of the freshly initialised head parameters (a classifier's; an LM head is pretrained)."""
    if not HEADS[head].fresh:
        return []
    return [n for n, _ in model.named_parameters() if n.split(".")[0] in ("classifier", "score")]
