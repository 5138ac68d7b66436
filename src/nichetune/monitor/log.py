"""Reading the prediction log the server writes (``nichetune.prediction_log``): classified items joined with their
feedback, experiments, retention, and feedback exported as training data."""

from __future__ import annotations

import json
import time
from pathlib import Path

import sqlalchemy as sa

from ..errors import NichetuneError
from ..prediction_log import EXPERIMENTS, FEEDBACK, ITEMS, METADATA, PREDICTIONS, database_url


def _engine(target: str | Path):
    url = database_url(target)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise NichetuneError(f"{target}: no prediction log there",
                             hint="serve with --prediction-log FILE (the default is predictions.sqlite)")
    engine = sa.create_engine(url)
    METADATA.create_all(engine)  # a log from before a table existed gains it, empty
    return engine


def read_items(target: str | Path, *, model: str | None = None, experiment: str | None = None,
               shadow: bool | None = None, since: float | None = None, until: float | None = None) -> list[dict]:
    """Classified items, oldest first, each with its newest feedback (``true_label``, ``grade``; None without)."""
    engine = _engine(target)
    query = sa.select(ITEMS).order_by(ITEMS.c.ts, ITEMS.c.id)
    for column, value in ((ITEMS.c.model, model), (ITEMS.c.experiment, experiment), (ITEMS.c.shadow, shadow)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(ITEMS.c.ts >= since)
    if until is not None:
        query = query.where(ITEMS.c.ts < until)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        feedback = _feedback(conn)
    engine.dispose()
    for r in rows:
        r["probabilities"] = json.loads(r["probabilities"])
        r["prediction_set"] = json.loads(r["prediction_set"]) if r["prediction_set"] else None
        r["slices"] = json.loads(r["slices"] or "{}")
        fb = feedback.get((r["request_id"], r["idx"]), {})
        r["true_label"], r["grade"] = fb.get("label"), fb.get("grade")
    return rows


def _feedback(conn) -> dict[tuple[str, int], dict]:
    """The newest feedback per (request id, index)."""
    out: dict[tuple[str, int], dict] = {}
    for row in conn.execute(sa.select(FEEDBACK).order_by(FEEDBACK.c.ts, FEEDBACK.c.id)).mappings():
        out[(row["request_id"], row["idx"])] = dict(row)
    return out


def read_experiment(target: str | Path, name: str) -> dict:
    """The newest definition of experiment ``name``: ``{"name", "arms": {arm: share}, "salt", "ts"}``.

    Raises:
        NichetuneError: the log never recorded it.
    """
    engine = _engine(target)
    with engine.connect() as conn:
        row = conn.execute(sa.select(EXPERIMENTS).where(EXPERIMENTS.c.name == name)
                           .order_by(EXPERIMENTS.c.id.desc())).mappings().first()
    engine.dispose()
    if row is None:
        raise NichetuneError(f"{target} records no experiment {name!r}",
                             hint="start the server with --experiment NAME=ARM:WEIGHT,ARM:WEIGHT")
    return {**row, "arms": json.loads(row["arms"])}


def prune(target: str | Path, *, keep_days: float | None = None, max_items: int | None = None,
          now: float | None = None) -> dict[str, int]:
    """Retention: delete requests, items and feedback older than ``keep_days``, then the oldest items beyond
    ``max_items`` (with their requests and feedback). Returns the rows deleted per table."""
    engine = _engine(target)
    deleted = {"predictions": 0, "items": 0, "feedback": 0}
    with engine.begin() as conn:
        if keep_days is not None:
            cutoff = (time.time() if now is None else now) - keep_days * 86400
            for name, table in (("predictions", PREDICTIONS), ("items", ITEMS), ("feedback", FEEDBACK)):
                deleted[name] += conn.execute(table.delete().where(table.c.ts < cutoff)).rowcount
        if max_items is not None:
            total = conn.execute(sa.select(sa.func.count()).select_from(ITEMS)).scalar()
            if total > max_items:
                edge = conn.execute(sa.select(ITEMS.c.id).order_by(ITEMS.c.id.desc())
                                    .offset(max_items).limit(1)).scalar()
                old = sa.select(ITEMS.c.request_id).where(ITEMS.c.id <= edge)
                deleted["feedback"] += conn.execute(FEEDBACK.delete().where(FEEDBACK.c.request_id.in_(old))).rowcount
                deleted["predictions"] += conn.execute(
                    PREDICTIONS.delete().where(PREDICTIONS.c.request_id.in_(old))).rowcount
                deleted["items"] += conn.execute(ITEMS.delete().where(ITEMS.c.id <= edge)).rowcount
    engine.dispose()
    return deleted


def export_feedback(target: str | Path, out: str | Path, *, model: str | None = None) -> int:
    """Items that have a true label, as classification rows (``text``, ``label``, their slice fields, ``id``) in a
    JSONL that ``nichetune data validate`` reads; shadow answers are left out (the same texts are logged twice).
    Returns the rows written."""
    from ..atomic import atomic_write_text
    from ..data.provenance import record_step

    rows = [{"id": f"{r['request_id']}-{r['idx']}", "text": r["text"], "label": r["true_label"],
             **{k: v for k, v in r["slices"].items() if k not in ("id", "text", "label")}}
            for r in read_items(target, model=model, shadow=False) if r["true_label"] is not None]
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    source = Path(database_url(target).removeprefix("sqlite:///"))
    record_step("feedback-export", inputs=[source] if source.is_file() else [], outputs={"data": (out, len(rows))},
                params={"log": str(target), "model": model}, rows_in=len(rows))
    return len(rows)
