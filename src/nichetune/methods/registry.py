"""The method registry. Adding a method = one module that calls ``register_method`` + one line here + one
row in the method contract table (tests/test_methods.py)."""

from __future__ import annotations

from torch import nn

from ..models.architecture import ModelFacts
from . import adapter, freeze, full, ia3, lora, p_tuning, prefix_tuning, prompt_tuning  # noqa: F401  (register)
from .method import METHODS, Method, MethodConfigBase


def get_method(name: str) -> Method:
    return METHODS[name]


def check_method(cfg: MethodConfigBase, facts: ModelFacts) -> None:
    """Refuse, before any weight loads, a model the method cannot adapt (``facts`` carry the head).

    Raises:
        NichetuneError: the reason, and what to use instead.
    """
    method = METHODS[cfg.name]
    if method.check is not None:
        method.check(cfg, facts)


def apply_method(model: nn.Module, cfg: MethodConfigBase, head: str) -> nn.Module:
    """Return ``model`` adapted by ``cfg`` with exactly the method's parameters trainable.

    ``head`` is a key of ``models.heads.HEADS``: a fresh classification head always trains.
    """
    return METHODS[cfg.name].apply(model, cfg, head)
