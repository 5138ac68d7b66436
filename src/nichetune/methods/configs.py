"""The recipe's ``method`` section: the union of every registered method's config, selected by ``name``."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from .registry import METHODS

MethodConfig = Annotated[Union[tuple(m.config for m in METHODS.values())], Field(discriminator="name")]  # noqa: UP007
