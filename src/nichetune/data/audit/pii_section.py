"""PII findings by type and by field, with counts and masked samples."""

from __future__ import annotations

from ..pii import PiiDetector
from ..pii.apply import apply_to_rows


def pii_section(rows: list[dict], detector: PiiDetector | None = None, samples: int = 3) -> dict:
    """What ``data pii --action report`` would find in ``rows``, every string field included."""
    return apply_to_rows(rows, "report", detector or PiiDetector(), samples=samples).summary(len(rows))
