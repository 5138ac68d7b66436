"""What a method is: one ``Method`` (config, apply, save, load, merge or the reason it cannot), registered
with one ``register_method`` call from the method's own module (like PEFT's ``register_peft_method``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from torch import nn

from ..models.architecture import ModelFacts
from ..models.heads import HEADS
from ..registries import add_unique


class MethodConfigBase(BaseModel):
    """A method's recipe section; ``name`` selects the method."""

    model_config = ConfigDict(extra="forbid")


def save_pretrained(model: nn.Module, cfg, head: str, out: Path) -> None:
    """The saved form of PEFT adapters and whole models alike: safetensors through ``save_pretrained``."""
    model.save_pretrained(out, safe_serialization=True)


def load_whole(folder: Path, cfg, head: str, base: Callable[[], nn.Module]) -> nn.Module:
    """A whole saved model (full, freeze) needs no base: it is the model (with the zero-shot prior it was saved
    with, ``models.similarity_prior``)."""
    import torch

    from ..models.similarity_prior import attach_saved

    return attach_saved(HEADS[head].auto().from_pretrained(folder, dtype=torch.float32, use_safetensors=True), folder)


def unchanged(model: nn.Module, cfg) -> nn.Module:
    """Merging a method that changed the weights in place (full, freeze) is the model itself."""
    return model


@dataclass(frozen=True)
class Method:
    """One adaptation method.

    Attributes:
        name: the recipe's ``method.name``.
        config: its pydantic section (with ``name: Literal[...]``).
        apply: ``apply(model, cfg, head) -> model`` with exactly the method's parameters trainable
            (``head``: a key of ``models.heads.HEADS``; a fresh classifier head always trains).
        save: ``save(model, cfg, head, folder)`` writes safetensors only.
        load: ``load(folder, cfg, head, base) -> model``; ``base()`` builds the fresh base model when needed.
        merge: ``merge(model, cfg) -> plain model`` with identical outputs, or None (then ``cannot_merge`` says why).
        whole_model: the saved form is a complete model (its base is not frozen, nor loaded separately).
        on_epoch: ``on_epoch(model, cfg, epoch)`` between epochs (progressive unfreezing).
        virtual_tokens: prepends learned tokens: rows cannot be packed, sequence positions shift.
        check: ``check(cfg, facts)`` refuses, from the model's facts alone, a model this method cannot adapt.
    """

    name: str
    config: type[MethodConfigBase]
    apply: Callable[[nn.Module, MethodConfigBase, str], nn.Module]
    load: Callable[[Path, MethodConfigBase, str, Callable[[], nn.Module]], nn.Module]
    save: Callable[[nn.Module, MethodConfigBase, str, Path], None] = save_pretrained
    merge: Callable[[nn.Module, MethodConfigBase], nn.Module] | None = None
    cannot_merge: str = ""
    whole_model: bool = False
    on_epoch: Callable[[nn.Module, MethodConfigBase, int], None] | None = None
    virtual_tokens: bool = False
    check: Callable[[MethodConfigBase, ModelFacts], None] | None = None

    @property
    def mergeable(self) -> bool:
        return self.merge is not None


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Make ``method`` available to recipes under ``method.name``."""
    if method.merge is None and not method.cannot_merge:
        raise ValueError(f"method {method.name!r} cannot merge: say why in cannot_merge")
    return add_unique(METHODS, method.name, method, "method")
