"""Synthetic rows: EDA operations, slot-filled templates, optional LM paraphrases.

Every synthetic row carries ``synthetic: true``, its ``parent_id`` and the ``augmentation``
that made it, keeps its parent's label and group (so group-aware splits keep families
together), and the synthetic share of the output is capped.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

EDA_OPS = ("synonym", "swap", "delete", "insert")


@dataclass
class AugmentResult:
    rows: list[dict]
    synthetic: int
    real: int
    capped: int  # candidates dropped to respect the share cap
    by_op: dict[str, int] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return self.synthetic / max(self.synthetic + self.real, 1)


def _synonyms(word: str, glossary: dict[str, list[str]]) -> list[str]:
    return glossary.get(word.lower(), [])


def eda(text: str, op: str, rng: random.Random, alpha: float, glossary: dict[str, list[str]]) -> str | None:
    """Apply one EDA operation to about ``alpha`` of the words; None when it cannot change the text."""
    words = text.split()
    if len(words) < 2:
        return None
    n = max(1, round(alpha * len(words)))
    if op == "synonym":
        spots = [i for i, w in enumerate(words) if _synonyms(w.strip(".,;:!?"), glossary)]
        if not spots:
            return None
        for i in rng.sample(spots, min(n, len(spots))):
            core = words[i].strip(".,;:!?")
            words[i] = words[i].replace(core, rng.choice(_synonyms(core, glossary)))
    elif op == "swap":
        for _ in range(n):
            i, j = rng.sample(range(len(words)), 2)
            words[i], words[j] = words[j], words[i]
    elif op == "delete":
        keep = [w for w in words if rng.random() > alpha]
        words = keep if keep else [rng.choice(words)]
    elif op == "insert":
        candidates = [s for w in words for s in _synonyms(w.strip(".,;:!?"), glossary)]
        if not candidates:
            return None
        for _ in range(n):
            words.insert(rng.randrange(len(words) + 1), rng.choice(candidates))
    else:
        raise ValueError(f"unknown augmentation {op!r}; use {', '.join(EDA_OPS)}")
    out = " ".join(words)
    return out if out != text else None


def _with_text(row: dict, text: str) -> dict:
    child = {k: v for k, v in row.items() if k not in ("id",)}
    if "text" in row:
        child["text"] = text
    else:  # sft: vary the last user message
        messages = [dict(m) for m in row["messages"]]
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        messages[last_user]["content"] = text
        child["messages"] = messages
    return child


def _source_text(row: dict) -> str:
    if "text" in row:
        return row["text"]
    return [m for m in row["messages"] if m["role"] == "user"][-1]["content"]


def from_templates(spec: dict, rng: random.Random) -> list[dict]:
    """Rows from ``{"slots": {name: [values]}, "templates": [{"text": "...{name}...", ...}], "n": 50}``."""
    slots: dict[str, list[str]] = spec.get("slots", {})
    out = []
    for t_index, template in enumerate(spec.get("templates", [])):
        names = [n for n in slots if "{" + n + "}" in template["text"]]
        combos = list(itertools.product(*(slots[n] for n in names)))
        rng.shuffle(combos)
        for k, combo in enumerate(combos[: spec.get("n", 20)]):
            row = {key: v for key, v in template.items() if key != "text"}
            row.update(text=template["text"].format(**dict(zip(names, combo, strict=True))),
                       id=f"template{t_index}~{k}", parent_id=f"template:{t_index}", augmentation="template")
            out.append(row)
    return out


def augment_rows(rows: list[dict], *, ops: tuple[str, ...] = ("swap", "delete"), per_row: int = 1,
                 alpha: float = 0.1, glossary: dict[str, list[str]] | None = None, templates: dict | None = None,
                 paraphrase=None, max_share: float = 0.3, seed: int = 0) -> AugmentResult:
    """Return the real rows followed by synthetic ones (at most ``max_share`` of the output).

    ``paraphrase`` is an optional callable ``text -> text`` (an LM paraphraser).
    """
    if not 0 < max_share < 1:
        raise ValueError("max_share must be between 0 and 1")
    rng = random.Random(seed)
    glossary = {k.lower(): v for k, v in (glossary or {}).items()}
    real = [r for r in rows if not r.get("synthetic")]
    candidates: list[dict] = []
    for row in real:
        base = _source_text(row)
        for op in ops:
            for k in range(per_row):
                text = paraphrase(base) if op == "paraphrase" else eda(base, op, rng, alpha, glossary)
                if text and text.strip() and text.strip() != base.strip():
                    child = _with_text(row, text.strip())
                    child.update(id=f"{row['id']}~{op}{k}", synthetic=True, parent_id=row["id"], augmentation=op)
                    candidates.append(child)
    for row in from_templates(templates or {}, rng):
        candidates.append({**row, "synthetic": True})
    limit = int(max_share / (1 - max_share) * len(real))
    capped = max(len(candidates) - limit, 0)
    if capped:
        keep = sorted(rng.sample(range(len(candidates)), limit))
        candidates = [candidates[i] for i in keep]
    by_op: dict[str, int] = {}
    for c in candidates:
        by_op[c["augmentation"]] = by_op.get(c["augmentation"], 0) + 1
    return AugmentResult(real + candidates, len(candidates), len(real), capped, by_op)


__all__ = ["EDA_OPS", "AugmentResult", "augment_rows", "eda", "from_templates"]
