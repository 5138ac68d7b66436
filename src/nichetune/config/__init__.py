"""Typed recipes: one pydantic model per section, validated once at load."""

from .recipe import Recipe, load_recipe, parse_overrides

__all__ = ["Recipe", "load_recipe", "parse_overrides"]
