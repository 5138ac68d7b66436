"""Label names that read as words: the text a label's name gives the few-shot pair stage as an anchor row
(``train.label_anchors``), and what ``recommend`` checks before it turns the anchors on."""

from __future__ import annotations

import re

_CODE_LIKE = re.compile(r"^(label|class|cat|category|c|l)?[\W_]*\d+$", re.IGNORECASE)


def anchor_text(label: str) -> str | None:
    """The words a label's name reads as (``side_effects`` -> ``side effects``), or None for a code."""
    text = " ".join(re.sub(r"[_\-./:]+", " ", label).split())
    if _CODE_LIKE.match(label.strip()) or not re.search(r"[^\W\d_]{2}", text):
        return None
    return text


def anchor_rows(labels: list[str], template: str = "{}") -> list[dict]:
    """One row per label whose name reads as words: the name as the text (put in ``template``), the label as the
    label."""
    return [{"text": template.format(text), "label": label} for label in labels if (text := anchor_text(label))]


def reads_as_words(labels) -> bool:
    """At least half of ``labels`` have names that read as words."""
    labels = list(labels)
    return bool(labels) and 2 * len(anchor_rows(labels)) >= len(labels)
