"""Errors that tell the user what went wrong and how to fix it."""

from __future__ import annotations


class NichetuneError(Exception):
    """An error meant for a person: ``message`` says what failed, ``hint`` how to fix it.

    The CLI prints both and exits non-zero without a traceback.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  how to fix: {self.hint}"


class ModelNotAvailableError(NichetuneError):
    """A model name or path could not be resolved to local files."""


class UnsafeModelError(NichetuneError):
    """A model folder would need pickle deserialisation or remote code to load."""


class AssetMissingError(NichetuneError):
    """A registry package or Debian package holding embedded data is not installed."""


class DataValidationError(NichetuneError, ValueError):
    """Input data is malformed (raised in strict mode, or when nothing usable remains)."""
