"""The server's settings, validated once at the edge (the CLI builds one; ``--workers`` passes it as JSON)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .experiments import Experiment

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _default_budget_mb() -> int:
    """Half of the machine's memory: room for the served models beside the process itself."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 / 2)
    except (ValueError, OSError, AttributeError):
        return 8192


class ServeConfig(BaseModel):
    """Everything ``nichetune serve`` takes.

    Attributes:
        targets: ``[NAME=]TARGET`` entries (run directory, export folder, registry ``NAME@ALIAS``, model).
        api_keys: the key file (``nichetune keys create``); every route but ``/health`` needs one of its keys.
        max_body_bytes: larger request bodies get 413 before they are read in full.
        max_tokens: the most tokens one request may ask to generate (more: 422).
        max_inputs: the most texts in one classify or embeddings request (more: 422).
        concurrency: model requests in flight at once; the next gets 429 at once.
        timeout_s: a request running longer gets 504 and its generation is stopped.
        memory_budget_mb: parameter memory the loaded models may hold; idle ones are evicted to stay under.
        batch_size: the most texts one micro-batched classifier forward pass takes.
        max_streams_per_batch: the most sequences decoded together in one ``generate`` call.
        prediction_log: where requests and answers are logged (a file for SQLite, or a SQLAlchemy URL); None: off.
        log_pii: ``mask`` replaces PII in logged texts with typed placeholders; ``keep`` stores them as sent.
        dtype: generators' dtype (``auto``: bf16 where the CPU or GPU has it); classifiers always run in fp32,
            so served probabilities equal ``nichetune classify``.
        indexes: retrieval indexes by name (``nichetune index build``); a chat request names one in its
            ``retrieval`` field and gets the answer with its citations checked.
        retrieve: models whose chat requests are answered from an index (model name -> index name) when the
            request does not name one itself.
        experiments: classify requests to an experiment's name are answered by one of its arms (served models),
            assigned by a sticky hash of the request's ``user``; each answer is logged with its arm.
        shadows: model -> challenger: the challenger classifies the same texts in the background; logged only.
        runtime: classifiers that load alone (not adapters sharing a base) are compiled to ONNX at load and run
            by onnxruntime when its logits match torch's within 1e-4 on probe texts (``auto``, ``onnx``), or stay
            in torch (``torch``).
    """

    model_config = ConfigDict(extra="forbid")

    targets: list[str] = Field(min_length=1)
    api_keys: Path
    registry: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    max_tokens: int = Field(1024, ge=1)
    max_inputs: int = Field(64, ge=1)
    concurrency: int = Field(64, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    memory_budget_mb: int = Field(default_factory=_default_budget_mb, ge=1)
    batch_size: int = Field(32, ge=1)
    max_streams_per_batch: int = Field(8, ge=1)
    prediction_log: str | None = "predictions.sqlite"
    log_pii: Literal["mask", "keep"] = "mask"
    dtype: Literal["auto", "fp32", "bf16"] = "auto"
    runtime: Literal["auto", "torch", "onnx"] = "auto"
    preload: bool = False
    indexes: dict[str, str] = Field(default_factory=dict)
    retrieve: dict[str, str] = Field(default_factory=dict)
    experiments: dict[str, Experiment] = Field(default_factory=dict)
    shadows: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_indexes(self) -> ServeConfig:
        unknown = sorted(set(self.retrieve.values()) - set(self.indexes))
        if unknown:
            raise ValueError(f"--retrieve names the index {unknown[0]!r}, which is not served; add --index "
                             f"{unknown[0]}=DIR")
        return self

    @property
    def loopback_only(self) -> bool:
        return self.host in LOOPBACK
