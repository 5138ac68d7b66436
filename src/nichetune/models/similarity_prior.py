"""The base encoder's zero-shot as a prior on a classifier head, computed in the classifier's own forward pass.

A run with ``train.zero_shot_prior`` keeps its encoder as pretrained, so the mean of its last hidden states is the
base model's sentence embedding. Its logits become

    head(x) + weight * cos(mean_pool(x), label_vector_c) / SIMILARITY_TEMPERATURE

where each label vector is the encoder's embedding of the label worded as the zero-shot baseline words it (chosen on
the training rows). Adding logits multiplies the two models' probabilities (a product of experts): the head says what
the few examples taught, the prior what the label's words mean to the pretrained encoder. One pass, one encoder: two
forward hooks (on the encoder, on the output layer) put the term into every call of the model, so the run, its torch
exports, the server and a traced ONNX graph compute the same logits. Saved beside the weights as safetensors
(``FILE``; no pickle); whoever loads a folder that holds it calls ``attach_saved``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

FILE = "zero_shot_prior.safetensors"
SIMILARITY_TEMPERATURE = 0.05  # cosine similarities of sentence embeddings -> logits (SimCSE-style encoders' scale)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of token embeddings over real tokens: (B, T, d), (B, T) -> (B, d)."""
    mask = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@dataclass
class SimilarityPrior:
    """Unit label vectors (C, d) in the head's label order, the weight on their similarity logits, and the wording
    template they were embedded under."""

    vectors: np.ndarray
    weight: float
    template: str = "{}"

    def logits(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, C): ``weight`` x the cosine similarity of each row's mean-pooled ``hidden`` to each label vector,
        over the temperature (fp32)."""
        import torch

        if mask is None:
            mask = torch.ones(hidden.shape[:2], device=hidden.device)
        pooled = torch.nn.functional.normalize(mean_pool(hidden.float(), mask), dim=-1)
        vectors = torch.as_tensor(self.vectors, dtype=torch.float32, device=hidden.device)
        return pooled @ vectors.T * (self.weight / SIMILARITY_TEMPERATURE)

    def attach(self, model) -> list:
        """Add the prior to every forward of ``model`` (a sequence classifier); returns the hook handles.
        ``model.nichetune_prior`` names it, so whoever saves or exports the model can carry it."""
        from .task_model import body, output_layer

        detach(model)
        pending: list = []

        def keep(_module, args, kwargs, output):
            mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
            pending[:] = [self.logits(output[0], mask)]

        def add(_module, _args, output):
            return output + pending.pop().to(output.dtype) if pending else output

        handles = [body(model).register_forward_hook(keep, with_kwargs=True),
                   output_layer(model).register_forward_hook(add)]
        model.nichetune_prior, model._nichetune_prior_hooks = self, handles
        return handles

    def save(self, folder: str | Path) -> None:
        from safetensors.numpy import save_file

        save_file({"vectors": np.ascontiguousarray(self.vectors, dtype=np.float32)}, str(Path(folder) / FILE),
                  metadata={"weight": json.dumps(self.weight), "template": self.template,
                            "temperature": json.dumps(SIMILARITY_TEMPERATURE)})


def detach(model) -> None:
    """Remove a prior ``attach`` added to ``model`` (none: nothing happens)."""
    for handle in getattr(model, "_nichetune_prior_hooks", []):
        handle.remove()
    model._nichetune_prior_hooks, model.nichetune_prior = [], None


def load_prior(folder: str | Path) -> SimilarityPrior | None:
    """The prior saved in ``folder``, or None."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
        vectors = f.get_tensor("vectors")
    return SimilarityPrior(vectors.astype(np.float64), float(json.loads(meta.get("weight", "0"))),
                           meta.get("template", "{}"))


def attach_saved(model, folder: str | Path):
    """``model`` with the prior saved in ``folder`` attached, where the folder holds one."""
    prior = load_prior(folder) if Path(folder).is_dir() else None
    if prior is not None:
        prior.attach(model)
    return model
