"""Parquet, read in record batches, row group by row group."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
from collections.abc import Iterator
from pathlib import Path

from ...errors import DataValidationError
from ..records import Issue, Location, RawRecord

BATCH_ROWS = 2048


def jsonable(value):
    """Parquet's typed values as JSON: timestamps and dates as ISO 8601, decimals as exact strings,
    binary as UTF-8 text (or ``{"base64": ...}``), NaN/Inf as null (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_parquet(path: Path, *, encoding: str, max_line_bytes: int) -> Iterator[RawRecord]:
    """Rows numbered from 1; a row group that cannot be decoded quarantines each of its rows."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise DataValidationError(f"{path}: not a readable Parquet file: {exc}") from None
    row = 0
    for group in range(parquet.num_row_groups):
        size = parquet.metadata.row_group(group).num_rows
        first = row
        try:
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=[group]):
                for value in batch.to_pylist():
                    row += 1
                    yield RawRecord(Location(str(path), row), jsonable(value), None)
        except Exception as exc:  # pyarrow raises OSError / ArrowInvalid for damaged pages
            issue = Issue("corrupt_data", f"row group {group} (rows {first + 1}-{first + size}) cannot be decoded: "
                                          f"{str(exc)[:200]}")
            while row < first + size:
                row += 1
                yield RawRecord(Location(str(path), row), None, None, issue)
