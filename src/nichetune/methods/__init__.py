"""Adaptation methods behind a registry: one module per method, one contract test table."""

from .registry import METHODS, Method, apply_method, get_method

__all__ = ["METHODS", "Method", "apply_method", "get_method"]
