"""Domain vocabulary: characteristic terms, words the tokenizer shatters (jargon), train/test coverage."""

from __future__ import annotations

import math
import re
from collections import Counter

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_TERM = re.compile(r"(?<!['’])\b[A-Za-z][A-Za-z0-9+#-]{2,}\b(?!['’])")
JARGON_PIECES = 3


def terms(text: str) -> set[str]:
    return {t.lower().strip("-") for t in _TERM.findall(text)} - ENGLISH_STOP_WORDS


def doc_freq(texts: list[str]) -> Counter:
    df: Counter = Counter()
    for text in texts:
        df.update(terms(text))
    return df


def distinctive_by_label(texts: list[str], labels: list[str], top: int = 8) -> dict[str, list[str]]:
    """Per label, the terms with the highest smoothed log-odds of appearing in it versus the rest."""
    per_label: dict[str, Counter] = {}
    sizes = Counter(labels)
    for text, label in zip(texts, labels, strict=True):
        per_label.setdefault(label, Counter()).update(terms(text))
    total = doc_freq(texts)
    out = {}
    for label, df in per_label.items():
        n_in, n_out = sizes[label], len(texts) - sizes[label]
        scored = [(math.log((df[t] + 0.5) / (n_in - df[t] + 0.5)) -
                   math.log((total[t] - df[t] + 0.5) / (n_out - (total[t] - df[t]) + 0.5)), t)
                  for t in df if df[t] >= 3]
        out[label] = [t for _, t in sorted(scored, reverse=True)[:top]]
    return out


def vocab_section(train: list[str], tests: dict[str, list[str]], tokenizer=None, top: int = 40,
                  labels: list[str] | None = None) -> dict:
    df = doc_freq(train)
    common = df.most_common(top * 5)
    rows = []
    for term, count in common:
        pieces = len(tokenizer.tokenize(" " + term)) if tokenizer is not None else None
        rows.append({"term": term, "doc_freq": count, "pieces": pieces})
    jargon = sorted((r for r in rows if r["pieces"] and r["pieces"] >= JARGON_PIECES),
                    key=lambda r: (-r["doc_freq"], r["term"]))[:top]
    out: dict = {"top_terms": rows[:top], "jargon_terms": jargon, "vocabulary_size": len(df)}
    if labels is not None:
        out["distinctive_by_label"] = distinctive_by_label(train, labels)
    coverage = {}
    for name, texts in tests.items():
        tdf = doc_freq(texts)
        seen = sum(c for t, c in tdf.items() if t in df)
        unseen = [t for t, _ in tdf.most_common() if t not in df][:20]
        coverage[name] = {"term_occurrences_seen_in_train": round(seen / max(sum(tdf.values()), 1), 4),
                          "top_unseen_terms": unseen,
                          "jargon_coverage": {r["term"]: {"train": df[r["term"]], name: tdf[r["term"]]}
                                              for r in jargon[:15]}}
    out["coverage"] = coverage
    return out


def slice_section(rows: list[dict], fields: list[str], min_count: int = 20) -> dict:
    """Counts per value of each slice field (and per tag in a ``tags`` list), flagging thin slices."""
    out = {}
    keys = list(fields) + (["tags"] if any(isinstance(r.get("tags"), list) for r in rows) else [])
    for key in keys:
        counts: Counter = Counter()
        for r in rows:
            value = r.get(key)
            for v in (value if isinstance(value, list) else [value]):
                counts["(missing)" if v in (None, "") else str(v)] += 1
        out[key] = {"values": dict(counts.most_common()), "distinct": len(counts),
                    "under_minimum": sorted(k for k, v in counts.items() if v < min_count), "minimum": min_count}
    return out
