"""Fuzzed readers: they never crash, and quarantine counts are exact."""

import csv
import io
import json
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nichetune.data.readers import read_records
from nichetune.data.validate import validate_file
from nichetune.errors import DataValidationError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Unicode line separators that JSON allows raw inside strings and str.splitlines() would break at
SEPARATORS = "\u0085\u2028\u2029"
clean_text = st.text(st.one_of(st.characters(blacklist_categories=("Cc", "Cs")), st.sampled_from("\u0085\u2028\u2029")),
                     min_size=1, max_size=30).filter(str.strip)

# Each defect: how to damage a valid row, and the reason validation must give.
DEFECTS = {
    "invalid_json": lambda row: json.dumps(row)[:-1].encode(),
    "invalid_utf8": lambda row: json.dumps(row).encode()[:-2] + b"\xff\"}",
    "missing_field": lambda row: json.dumps({"label": row["label"]}).encode(),
    "empty_field": lambda row: json.dumps({"text": " ", "label": row["label"]}).encode(),
    "wrong_type": lambda row: json.dumps({"text": 12, "label": row["label"]}).encode(),
    "control_characters": lambda row: json.dumps({"text": "a\x00b", "label": row["label"]}).encode(),
    "unknown_label": lambda row: json.dumps({"text": row["text"], "label": "zzz"}).encode(),
    "not_an_object": lambda row: b"[1, 2]",
    "invalid_unicode": lambda row: json.dumps({"text": row["text"] + "\ud800", "label": row["label"]}).encode(),
}
rows_strategy = st.lists(
    st.tuples(clean_text, st.sampled_from(["a", "b"]), st.sampled_from([None, *DEFECTS])), min_size=1, max_size=40
)


def _tmp(suffix: str, data: bytes) -> Path:
    folder = Path(tempfile.mkdtemp())
    path = folder / f"data{suffix}"
    path.write_bytes(data)
    return path


@SETTINGS
@given(rows_strategy)
def test_jsonl_quarantines_exactly_the_planted_rows(rows):
    lines, planted = [], {}
    for i, (text, label, defect) in enumerate(rows, start=1):
        row = {"text": text, "label": label}
        lines.append(DEFECTS[defect](row) if defect else json.dumps(row).encode())
        if defect:
            planted[i] = defect
    path = _tmp(".jsonl", b"\n".join(lines) + b"\n")
    q = path.parent / "q.jsonl"
    report = validate_file(path, task="classification", labels={"a", "b"}, quarantine=q)
    found = {e["line"]: e["reason"] for e in map(json.loads, q.read_text().splitlines())}
    assert found == planted
    assert report.quarantined == len(planted) and report.valid == len(rows) - len(planted)


@SETTINGS
@given(rows_strategy)
def test_csv_quarantines_exactly_the_planted_rows(rows):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["text", "label"])
    planted = 0
    for text, label, defect in rows:
        if defect in ("empty_field", "unknown_label", "control_characters"):
            planted += 1
            writer.writerow({"empty_field": [" ", label], "unknown_label": [text, "zzz"],
                             "control_characters": ["a\x01b", label]}[defect])
        else:
            writer.writerow([text, label])
    path = _tmp(".csv", buf.getvalue().encode())
    report = validate_file(path, task="classification", labels={"a", "b"})
    assert report.quarantined == planted and report.valid == len(rows) - planted


@SETTINGS
@given(st.binary(max_size=400), st.sampled_from([".jsonl", ".json", ".csv", ".tsv"]))
def test_readers_never_crash_on_arbitrary_bytes(data, suffix):
    path = _tmp(suffix, data)
    try:
        records = list(read_records(path, max_line_bytes=64))
    except DataValidationError as exc:
        # clear, file-level errors: a broken CSV header, or bytes that open like a compressed container
        assert suffix in (".csv", ".tsv") or "compressed" in exc.message, exc.message
        return
    for record in records:
        assert record.blank or (record.value is None) == (record.issue is not None)
    if suffix == ".jsonl":  # lines end at LF, CRLF or a lone CR; a leading UTF-8 BOM is not content
        body = data.removeprefix(b"\xef\xbb\xbf")
        ends_with_break = bool(re.search(rb"[\r\n]\Z", body))
        physical_lines = len(re.split(rb"\r\n|\r|\n", body)) - ends_with_break if body else 0
        assert len(records) == physical_lines  # every line is a record, a quarantined row, or counted blank


@SETTINGS
@given(st.lists(st.tuples(clean_text, st.sampled_from(SEPARATORS)), min_size=1, max_size=20))
def test_unicode_separators_inside_strings_never_split_a_row(items):
    """U+0085 / U+2028 and friends are legal raw inside JSON strings: every reader keeps the row whole."""
    from nichetune.data.readers import read_json_lines

    rows = [{"text": f"{text}{sep}{text}", "label": "a"} for text, sep in items]
    path = _tmp(".jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
    assert read_json_lines(path) == rows
    report = validate_file(path, task="classification", out=path.parent / "out.jsonl")
    assert report.valid == len(rows) and report.quarantined == 0
    assert [r["text"] for r in read_json_lines(path.parent / "out.jsonl")] == [r["text"] for r in rows]


@SETTINGS
@given(st.lists(st.dictionaries(st.sampled_from(["text", "label", "x"]),
                                st.one_of(st.none(), st.integers(), clean_text, st.lists(st.integers(), max_size=2)),
                                max_size=3), max_size=20))
def test_json_array_of_random_values_counts_every_element(values):
    path = _tmp(".json", json.dumps(values, indent=1).encode())
    report = validate_file(path, task="classification")
    assert report.total == len(values) and report.valid + report.quarantined == len(values)
