"""Adaptation methods behind a registry: one module per method, one contract test table."""

from .method import Method, register_method
from .registry import METHODS, apply_method, check_method, get_method

__all__ = ["METHODS", "Method", "apply_method", "check_method", "get_method", "register_method"]
