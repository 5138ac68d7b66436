"""Find personal data in text, then report, mask or pseudonymise it (with an optional vault)."""

from .detectors import DEFAULT_TYPES, Finding, PiiDetector
from .transform import mask_text, pseudonymize_text

__all__ = ["DEFAULT_TYPES", "Finding", "PiiDetector", "mask_text", "pseudonymize_text"]
