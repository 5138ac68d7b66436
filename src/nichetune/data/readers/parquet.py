"""Parquet, read in record batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ...errors import DataValidationError
from ..records import Location, RawRecord

BATCH_ROWS = 2048


def read_parquet(path: Path, *, encoding: str, max_line_bytes: int) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise DataValidationError(f"{path}: not a readable Parquet file: {exc}") from None
    row = 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        for value in batch.to_pylist():
            row += 1
            yield RawRecord(Location(str(path), row), value, None)
