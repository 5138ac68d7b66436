"""PII findings by type with counts and masked samples."""

from __future__ import annotations

from collections import Counter, defaultdict

from ..pii import PiiDetector
from ..pii.transform import masked_sample
from ..rows import row_text


def pii_section(rows: list[dict], detector: PiiDetector | None = None, samples: int = 3) -> dict:
    detector = detector or PiiDetector()
    counts: Counter = Counter()
    rows_with: Counter = Counter()
    shown: dict[str, list[str]] = defaultdict(list)
    affected = 0
    for row in rows:
        text = row_text(row)
        found = detector.find(text)
        if found:
            affected += 1
        for t in {f.type for f in found}:
            rows_with[t] += 1
        for f in found:
            counts[f.type] += 1
            if len(shown[f.type]) < samples:
                shown[f.type].append(f"{row['id']}: {masked_sample(text, f)}")
    return {"rows_with_pii": affected, "share_of_rows": round(affected / max(len(rows), 1), 4),
            "by_type": {t: {"findings": counts[t], "rows": rows_with[t], "masked_samples": shown[t]}
                        for t, _ in counts.most_common()}}
