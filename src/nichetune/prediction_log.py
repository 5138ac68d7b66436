"""The prediction log: every served request and its answer, in SQLite (or any SQLAlchemy database).

The server writes it (``PredictionLog.write`` never blocks: records go through a bounded queue to one writer
thread, and a full queue drops and counts instead of waiting); monitoring reads it (``read_predictions``).
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
              response, key_name: str | None = None) -> None:
        record = {"ts": time.time(), "request_id": request_id, "model": model, "route": route, "status": status,
                  "latency_ms": latency_ms, "key_name": key_name, "request": request, "response": response}
        try:
            self._queue.put_nowait(record)
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

    def _store(self, batch: list[dict]) -> None:
        rows = [{**r, "request": json.dumps(self.mask(r["request"])), "response": json.dumps(self.mask(r["response"]))}
                for r in batch]
        try:
            with self.engine.begin() as conn:
                conn.execute(PREDICTIONS.insert(), rows)
            self.written += len(rows)
        except Exception:  # a failing database must not stop the server; the loss is counted and logged
            self.dropped += len(rows)
            logging.getLogger("nichetune.serve").exception("prediction log write failed")

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout)
        self.engine.dispose()


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
