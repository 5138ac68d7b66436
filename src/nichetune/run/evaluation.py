"""``RUN/eval/metrics.json``: what ``eval`` wrote, with a ``schema_version``; older files are upgraded on read.

Version 1 (no ``schema_version``) named baselines only by their display text; version 2 gives each a stable
``id`` and adds ``scores`` (each evaluator's flat numbers) when the evaluation is rerun.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import NichetuneError

SCHEMA_VERSION = 2
# version 1's display names of the baselines, and the stable ids they have had since
_V1_BASELINES = {"majority class": "majority", "TF-IDF + logistic regression": "tfidf-logreg",
                 "zero-shot base model": "zero-shot-base"}


def _v1_baseline_id(name: str) -> str:
    if name in _V1_BASELINES:
        return _V1_BASELINES[name]
    return "zero-shot-prompt" if name.startswith("zero-shot ") else "k-shot-prompt"


def upgrade(metrics: dict) -> dict:
    version = metrics.get("schema_version", 1)
    if version > SCHEMA_VERSION:
        raise NichetuneError(f"eval/metrics.json schema_version {version} is newer than this nichetune knows "
                             f"({SCHEMA_VERSION})", hint="upgrade nichetune, or re-evaluate the run")
    if version == 1:
        comparisons = [{"id": _v1_baseline_id(c["baseline"]), **c} for c in metrics.get("comparisons", [])]
        metrics = {**metrics, "schema_version": 2, **({"comparisons": comparisons} if comparisons else {})}
    return metrics


def write_eval_metrics(path: Path, metrics: dict) -> None:
    atomic_write_text(path, json.dumps({"schema_version": SCHEMA_VERSION, **metrics}, indent=1) + "\n")


def read_eval_metrics(path: Path) -> dict:
    """The evaluation at ``path``, upgraded to the current schema."""
    return upgrade(json.loads(Path(path).read_text(encoding="utf-8")))
