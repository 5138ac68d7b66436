"""What a base model can do, read from its config alone: the module tree is built on the meta
device, so no weight is read and a recipe can be checked against the model before anything loads."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from ..errors import ModelNotAvailableError
from .heads import HEADS
from .resolve import ResolvedModel


@dataclass(frozen=True)
class ModelFacts:
    """The parts of a model a method's or recipe's check needs.

    ``forward_params`` are the keyword arguments the task model's ``forward`` accepts, together with
    those of its backbone (``model.bert``, ``model.model``): what PEFT inspects for prefix tuning.
    """

    head: str  # a key of models.heads.HEADS
    model_type: str
    module_names: tuple[str, ...]
    linear_names: tuple[str, ...]
    forward_params: frozenset[str]
    max_positions: int | None

    def has_module(self, key: str) -> bool:
        """PEFT's rule for a target name: the module's full name, or its last dotted parts."""
        return any(name == key or name.endswith("." + key) for name in self.module_names)


def _params(fn) -> set[str]:
    return set(inspect.signature(fn).parameters)


def model_facts(resolved: ResolvedModel, head: str, *, trust_remote_code: bool = False) -> ModelFacts:
    """Build ``resolved`` with ``head`` (a key of ``HEADS``) on the meta device and describe it.

    Raises:
        ModelNotAvailableError: transformers cannot build the architecture from its config.
    """
    import torch
    import transformers
    from torch import nn

    auto = HEADS[head].auto()
    try:
        config = transformers.AutoConfig.from_pretrained(resolved.path, trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            model = auto.from_config(config, trust_remote_code=trust_remote_code)
    except (ValueError, KeyError, OSError) as exc:
        raise ModelNotAvailableError(
            f"{resolved.reference}: transformers {transformers.__version__} cannot build a "
            f"{head} model from {resolved.path}/config.json ({exc})",
            hint="use a model whose architecture this transformers version knows (nichetune models list)",
        ) from None
    params = _params(model.forward)
    backbone = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if isinstance(backbone, nn.Module) and backbone is not model:
        params |= _params(backbone.forward)
    names = tuple(n for n, _ in model.named_modules() if n)
    linears = tuple(n for n, m in model.named_modules() if isinstance(m, nn.Linear))
    return ModelFacts(head=head, model_type=getattr(config, "model_type", ""), module_names=names, linear_names=linears,
                      forward_params=frozenset(params),
                      max_positions=getattr(config, "max_position_embeddings", None))
