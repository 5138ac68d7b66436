"""The prediction log: every served request and its answer, in SQLite (or any SQLAlchemy database).

Three tables: ``predictions`` (one row per request: route, status, latency, the request and response as JSON),
``items`` (one row per classified text: model and version, experiment arm, the text, label, calibrated
probabilities, conformal set, slice fields) and ``feedback`` (true labels or grades for logged items, by request
id and index). The server writes them (``PredictionLog.write`` never blocks: records go through a bounded queue
to one writer thread, and a full queue drops and counts instead of waiting); ``nichetune.monitor`` reads them.
Texts can be masked for PII before they are stored.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from pathlib import Path

import sqlalchemy as sa

METADATA = sa.MetaData()
PREDICTIONS = sa.Table(
    "predictions", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False, index=True),  # unix seconds
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("route", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("key_name", sa.String(200)),
    sa.Column("request", sa.Text, nullable=False),  # JSON
    sa.Column("response", sa.Text, nullable=False),  # JSON
)
ITEMS = sa.Table(
    "items", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("idx", sa.Integer, nullable=False),  # the text's position in its request
    sa.Column("model", sa.String(200), nullable=False, index=True),  # the served name
    sa.Column("version", sa.String(200)),  # what answered: a registry version, an export, a run
    sa.Column("experiment", sa.String(200), index=True),
    sa.Column("arm", sa.String(200)),
    sa.Column("unit", sa.String(200)),  # who was assigned (the request's user), for sticky experiments
    sa.Column("shadow", sa.Boolean, nullable=False, default=False),  # answered in the background, never returned
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("probabilities", sa.Text, nullable=False),  # JSON {label: p}
    sa.Column("set_size", sa.Integer),
    sa.Column("prediction_set", sa.Text),  # JSON [labels]
    sa.Column("abstain", sa.Boolean),
    sa.Column("slices", sa.Text, nullable=False, default="{}"),  # JSON {field: value}
    sa.Column("latency_ms", sa.Float, nullable=False),
)
FEEDBACK = sa.Table(
    "feedback", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("label", sa.String(200)),  # the true label
    sa.Column("grade", sa.Float),  # or a grade (a KPI, a rating)
    sa.Column("key_name", sa.String(200)),
)
EXPERIMENTS = sa.Table(
    "experiments", METADATA,  # one row each time a server starts with an experiment: the newest one counts
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("name", sa.String(200), nullable=False, index=True),
    sa.Column("arms", sa.Text, nullable=False),  # JSON {arm: share}
    sa.Column("salt", sa.String(200), nullable=False),
)
TABLES = {"predictions": PREDICTIONS, "items": ITEMS, "feedback": FEEDBACK, "experiments": EXPERIMENTS}


def database_url(target: str | Path) -> str:
    text = str(target)
    return text if "://" in text else f"sqlite:///{Path(text).expanduser().resolve()}"


def _masker():
    from .data.pii.detectors import PiiDetector
    from .data.pii.transform import mask_text

    detector = PiiDetector()

    def mask(value):
        if isinstance(value, str):
            return mask_text(value, detector.find(value))
        if isinstance(value, list):
            return [mask(v) for v in value]
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        return value
    return mask


class PredictionLog:
    """Append-only log of requests and answers, written off the request path.

    Args:
        target: a file path (SQLite) or a SQLAlchemy URL.
        mask_pii: replace PII in every stored string with a typed placeholder (``[EMAIL]``).
        capacity: records waiting to be written before new ones are dropped (and counted in ``dropped``).
    """

    def __init__(self, target: str | Path, *, mask_pii: bool = True, capacity: int = 10_000):
        self.url = database_url(target)
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(self.url)
        METADATA.create_all(self.engine)
        self.mask = _masker() if mask_pii else (lambda v: v)
        self.dropped = 0
        self.written = 0
        self._queue: queue.Queue = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def write(self, *, request_id: str, model: str, route: str, status: int, latency_ms: float, request,
              response, key_name: str | None = None, items: list[dict] | None = None,
              ts: float | None = None) -> None:
        """Queue one request (and its classified ``items``: ``text``, ``label``, ``confidence``, ``probabilities``
        and optionally ``prediction_set``, ``abstain``, ``slices``, ``version``, ``experiment``, ``arm``,
        ``unit``, ``shadow``) for writing; drops and counts it when the queue is full."""
        ts = time.time() if ts is None else ts
        record = {"ts": ts, "request_id": request_id, "model": model, "route": route, "status": status,
                  "latency_ms": latency_ms, "key_name": key_name, "request": request, "response": response}
        rows = [_item(ts, request_id, model, latency_ms, i, item) for i, item in enumerate(items or [])]
        self._put(("request", record, rows))

    def experiment(self, name: str, shares: dict[str, float], salt: str) -> None:
        """Record an experiment's arms and their shares (written at once: reports need them to check the split)."""
        with self.engine.begin() as conn:
            conn.execute(EXPERIMENTS.insert(), [{"ts": time.time(), "name": name, "arms": json.dumps(shares),
                                                 "salt": salt}])

    def feedback(self, *, request_id: str, idx: int = 0, label: str | None = None, grade: float | None = None,
                 key_name: str | None = None) -> None:
        """Queue a true label or a grade for a logged item."""
        self._put(("feedback", {"ts": time.time(), "request_id": request_id, "idx": idx, "label": label,
                                "grade": grade, "key_name": key_name}, []))

    def _put(self, entry) -> None:
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < 256:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._store(batch)
                    return
                batch.append(item)
            self._store(batch)

    def _store(self, batch: list[tuple]) -> None:
        requests = [{**r, "request": json.dumps(self.mask(r["request"])),
                     "response": json.dumps(self.mask(r["response"]))} for kind, r, _ in batch if kind == "request"]
        items = [{**i, "text": self.mask(i["text"])} for kind, _, rows in batch if kind == "request" for i in rows]
        feedback = [r for kind, r, _ in batch if kind == "feedback"]
        try:
            with self.engine.begin() as conn:
                for table, rows in ((PREDICTIONS, requests), (ITEMS, items), (FEEDBACK, feedback)):
                    if rows:
                        conn.execute(table.insert(), rows)
            self.written += len(batch)
        except Exception:  # a failing database must not stop the server; the loss is counted and logged
            self.dropped += len(batch)
            logging.getLogger("nichetune.serve").exception("prediction log write failed")

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout)
        self.engine.dispose()


def _item(ts: float, request_id: str, model: str, latency_ms: float, idx: int, item: dict) -> dict:
    prediction_set = item.get("prediction_set")
    return {"ts": ts, "request_id": request_id, "idx": idx, "model": model, "version": item.get("version"),
            "experiment": item.get("experiment"), "arm": item.get("arm"), "unit": item.get("unit"),
            "shadow": bool(item.get("shadow", False)), "text": item["text"], "label": item["label"],
            "confidence": float(item["confidence"]), "probabilities": json.dumps(item["probabilities"]),
            "set_size": None if prediction_set is None else len(prediction_set),
            "prediction_set": None if prediction_set is None else json.dumps(prediction_set),
            "abstain": item.get("abstain"), "slices": json.dumps(item.get("slices") or {}),
            "latency_ms": latency_ms}


def read_predictions(target: str | Path, *, model: str | None = None, since: float | None = None) -> list[dict]:
    """Logged records, oldest first, with ``request`` and ``response`` decoded."""
    engine = sa.create_engine(database_url(target))
    query = sa.select(PREDICTIONS).order_by(PREDICTIONS.c.id)
    if model is not None:
        query = query.where(PREDICTIONS.c.model == model)
    if since is not None:
        query = query.where(PREDICTIONS.c.ts >= since)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    engine.dispose()
    return [{**r, "request": json.loads(r["request"]), "response": json.loads(r["response"])} for r in rows]
