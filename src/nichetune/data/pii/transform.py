"""Mask or pseudonymise PII spans; pseudonyms come from a keyed hash so they are stable per project."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from .detectors import Finding


def mask_text(text: str, findings: list[Finding]) -> str:
    """Replace each finding with a typed placeholder such as ``[EMAIL]``."""
    return _replace(text, findings, lambda f: f"[{f.type}]")


def surrogate(value: str, type_: str, key: bytes) -> str:
    """A consistent pseudonym: the same (type, value, key) always gives the same surrogate.

    Only white space is normalised: case is kept, so a vault gives back exactly what was written
    (``Jane@Example.com`` and ``jane@example.com`` are two values, each reversed to itself).
    """
    normalised = " ".join(value.split())
    digest = hmac.new(key, f"{type_}\x00{normalised}".encode(), hashlib.sha256).hexdigest()[:10]
    return f"[{type_}_{digest}]"


def pseudonymize_text(text: str, findings: list[Finding], key: bytes,
                      record: Callable[[str, str, str], None] | None = None) -> str:
    """Replace each finding with its keyed surrogate; ``record(surrogate, type, value)`` feeds a vault."""

    def sub(f: Finding) -> str:
        s = surrogate(f.value, f.type, key)
        if record:
            record(s, f.type, f.value)
        return s

    return _replace(text, findings, sub)


def _replace(text: str, findings: list[Finding], make: Callable[[Finding], str]) -> str:
    out, pos = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        out.append(text[pos : f.start])
        out.append(make(f))
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def masked_sample(text: str, finding: Finding, context: int = 30) -> str:
    """Show a finding in context without revealing it: ``...call [PHONE: +4*********9] today...``."""
    value = finding.value
    hidden = value[0] + "*" * max(len(value) - 2, 1) + value[-1] if len(value) > 2 else "*" * len(value)
    left = text[max(0, finding.start - context) : finding.start]
    right = text[finding.end : finding.end + context]
    return f"...{left}[{finding.type}: {hidden}]{right}..."
