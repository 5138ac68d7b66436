import json
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nichetune.data.readers import read_records
from nichetune.data.validate import validate_file
from nichetune.errors import DataValidationError


def issues(path, task="classification", **kw):
    """(line, reason, field) of every quarantined row, read back from the quarantine file."""
    q = path.parent / (path.name + ".q.jsonl")
    report = validate_file(path, task=task, quarantine=q, **kw)
    entries = [json.loads(line) for line in q.read_text().splitlines()]
    assert len(entries) == report.quarantined and report.valid + report.quarantined == report.total
    return report, [(e["line"], e["reason"], e["field"]) for e in entries], entries


def test_jsonl_planted_rows(tmp_path):
    p = tmp_path / "d.jsonl"
    lines = [
        b'{"text": "good", "label": "a"}',
        b'{"text": "bad \xff\xfe", "label": "a"}',
        b'{"text": "x", "label": }',
        b"",
        b'{"label": "a"}',
        b'{"text": "  ", "label": "a"}',
        b'{"text": 7, "label": "a"}',
        b'{"text": "tab\\tok but bell \\u0007", "label": "a"}',
        b'{"text": "ok", "label": "c"}',
        b'{"text": "nan", "label": "a", "weight": NaN}',
        b'"just a string"',
        b'{"text": "x" ' + b"y" * 300 + b"}",
        b'{"text": "fine", "label": 1, "weight": 2}',
    ]
    p.write_bytes(b"\n".join(lines) + b"\n")
    report, found, entries = issues(p, labels={"a", "1"}, max_line_bytes=200)
    assert found == [
        (2, "invalid_utf8", None), (3, "invalid_json", None), (5, "missing_field", "text"),
        (6, "empty_field", "text"), (7, "wrong_type", "text"), (8, "control_characters", "text"),
        (9, "unknown_label", "label"), (10, "invalid_json", None), (11, "not_an_object", None),
        (12, "line_too_long", None),
    ]
    assert report.valid == 2 and report.blank_lines == 1 and report.labels == {"a": 1, "1": 1}
    utf8 = entries[0]
    bad_byte = len(lines[0]) + 1 + lines[1].index(b"\xff")
    assert utf8["byte_offset"] == len(lines[0]) + 1 and f"byte offset {bad_byte} (0xff)" in utf8["message"]
    assert entries[-1]["raw_truncated"] is True


def test_json_array_scanner_handles_strings_nesting_and_errors(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(
        '[\n'
        '  {"text": "brackets ] } [ { and \\"quotes\\", commas", "label": "a", "meta": {"k": [1, {"x": 2}]}},\n'
        '  {"text": 5, "label": "a"},\n'
        '  {oops},\n'
        '  ,\n'
        '  {"text": "last", "label": "b"}\n'
        ']\n'
    )
    report, found, _ = issues(p)
    assert found == [(3, "wrong_type", "text"), (4, "invalid_json", None), (5, "invalid_json", None)]
    rows = [r.value for r in read_records(p) if r.value]
    assert rows[0]["text"] == 'brackets ] } [ { and "quotes", commas' and rows[0]["meta"] == {"k": [1, {"x": 2}]}
    assert report.valid == 2


@pytest.mark.parametrize(
    "content, message",
    [('{"text": "a"}', "one array"), ("", "empty"), ('[{"text": "a", "label": "b"}] trailing', "after the closing"),
     ('[{"text": "a", "label": "b"}, {"text": "c"', "end of file")],
)
def test_json_array_file_level_problems(tmp_path, content, message):
    p = tmp_path / "d.json"
    p.write_text(content)
    _, found, entries = issues(p)
    assert found[-1][1] == "invalid_json" and message in entries[-1]["message"]


def test_json_array_escapes_apply_to_the_next_byte_only(tmp_path):
    p = tmp_path / "d.json"
    p.write_text('[{"text": "\\u00a1 and \\\\", "label": "a"}, {"text": "b\\"]", "label": "b"}]')
    assert [r.value["text"] for r in read_records(p)] == ["\u00a1 and \\", 'b"]']


def test_json_array_is_split_across_read_chunks(tmp_path):
    p = tmp_path / "big.json"
    rows = [{"text": f"row {i} " + 'é[,]\\"' * (i % 50), "label": str(i % 3)} for i in range(3000)]
    for ascii_only in (False, True):  # multi-byte UTF-8 and \\u escapes both straddle chunk edges
        p.write_text(json.dumps(rows, ensure_ascii=ascii_only, indent=1))
        assert [r.value for r in read_records(p)] == rows


def test_csv_multiline_quotes_columns_and_encoding(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes(
        b'text,label,weight\n'
        b'"multi\nline, with comma",a,1\n'
        b'caf\xe9,a,1\n'
        b'short,a\n'
        b'neg,b,-1\n'
        b'\n'
        b'"ok ""quoted""",c,\n'
    )
    report, found, _ = issues(p)
    assert found == [(4, "invalid_utf8", None), (5, "invalid_csv", None), (6, "invalid_value", "weight")]
    assert report.valid == 2 and report.blank_lines == 1
    out = tmp_path / "latin.jsonl"
    latin = validate_file(p, task="classification", encoding="latin-1", out=out)
    assert latin.reasons["invalid_utf8"] == 0 and "café" in out.read_text(encoding="utf-8")


def test_csv_header_problems_name_the_file_and_line(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,text\nx,y\n")
    with pytest.raises(DataValidationError, match=r"d\.csv, line 1: the header has duplicate columns"):
        validate_file(p, task="classification")


def test_tsv_with_custom_fields(tmp_path):
    from nichetune.data.schema import FieldMap

    p = tmp_path / "d.tsv"
    p.write_text("review\trating\tcondition\nfine drug\tpositive\tPain\n")
    out = tmp_path / "o.jsonl"
    validate_file(p, task="classification", fields=FieldMap(text="review", label="rating"), out=out)
    assert json.loads(out.read_text()) == {"condition": "Pain", "text": "fine drug", "label": "positive"}


def test_parquet_rows_and_types(tmp_path):
    p = tmp_path / "d.parquet"
    table = pa.table({"text": ["good", None, "also good"], "label": ["a", "a", "b"], "weight": [1.0, 1.0, -2.0]})
    pq.write_table(table, p)
    _, found, _ = issues(p)
    assert found == [(2, "missing_field", "text"), (3, "invalid_value", "weight")]


def test_text_folder(tmp_path):
    root = tmp_path / "docs"
    (root / "sport").mkdir(parents=True)
    (root / "tech").mkdir()
    (root / "sport" / "1.txt").write_text("A match report\n")
    (root / "tech" / "2.txt").write_bytes(b"line one\nbad \xff byte")
    (root / "tech" / "3.pdf").write_bytes(b"%PDF")
    (root / "stray.txt").write_text("no label folder")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.txt").write_text("ignored: hidden")
    report, found, entries = issues(root)
    reasons = sorted((e["source"].split("docs/")[1], e["reason"]) for e in entries)
    assert reasons == [("stray.txt", "unsupported_file"), ("tech/2.txt", "invalid_utf8"),
                       ("tech/3.pdf", "unsupported_file")]
    utf8 = next(e for e in entries if e["reason"] == "invalid_utf8")
    assert utf8["line"] == 2 and utf8["byte_offset"] == 13
    assert report.valid == 1 and report.labels == {"sport": 1}


def test_strict_stops_at_the_first_bad_row_naming_file_line_and_field(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "ok", "label": "a"}\n{"text": "", "label": "a"}\n{"oops"\n')
    with pytest.raises(DataValidationError) as err:
        validate_file(p, task="classification", strict=True, out=tmp_path / "o.jsonl")
    assert "d.jsonl, line 2" in err.value.message and "'text'" in err.value.message
    assert not (tmp_path / "o.jsonl").exists()  # no partial output left looking complete


def test_reading_is_bounded_in_memory(tmp_path):
    p = tmp_path / "big.jsonl"
    with open(p, "w") as fh:
        for i in range(60_000):
            fh.write(json.dumps({"text": f"row {i} " + "x" * 200, "label": "a"}) + "\n")
        fh.write('{"text": "' + "y" * 3_000_000 + '", "label": "a"}\n')
    assert p.stat().st_size > 15_000_000
    tracemalloc.start()
    n = sum(1 for _ in read_records(p, max_line_bytes=1_000_000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 60_001
    assert peak < 4_000_000, f"peak {peak} bytes while streaming a {p.stat().st_size} byte file"


def _one_file(tmp_path, data: bytes, suffix=".jsonl"):
    path = tmp_path / f"d{suffix}"
    path.write_bytes(data)
    return path


def test_a_utf8_bom_does_not_cost_the_first_row(tmp_path):
    p = _one_file(tmp_path, b'\xef\xbb\xbf{"text": "first", "label": "a"}\n{"text": "second", "label": "b"}\n')
    records = list(read_records(p))
    assert [r.value["text"] for r in records] == ["first", "second"]
    assert records[1].location.byte_offset == 3 + len(b'{"text": "first", "label": "a"}\n')


def test_lone_cr_line_ends_are_lines(tmp_path):
    p = _one_file(tmp_path, b'{"text": "a", "label": "x"}\r{"text": "b", "label": "y"}\r{"text": "c", "label": "x"}')
    records = list(read_records(p))
    assert [(r.location.line, r.value["text"]) for r in records] == [(1, "a"), (2, "b"), (3, "c")]
    csv_file = _one_file(tmp_path, b"text,label\rhello,a\rworld,b\r", ".csv")
    assert [r.value for r in read_records(csv_file)] == [{"text": "hello", "label": "a"},
                                                          {"text": "world", "label": "b"}]


def test_duplicate_json_keys_are_quarantined_not_resolved_silently(tmp_path):
    p = _one_file(tmp_path, b'{"text": "ok", "label": "a"}\n{"text": "one", "text": "two", "label": "a"}\n')
    q = tmp_path / "q.jsonl"
    report = validate_file(p, task="classification", quarantine=q)
    assert (report.valid, report.quarantined) == (1, 1)
    bad = json.loads(q.read_text())
    assert bad["line"] == 2 and bad["reason"] == "invalid_json" and "duplicate key 'text'" in bad["message"]


def test_a_lone_surrogate_is_quarantined_and_the_output_is_written(tmp_path):
    p = _one_file(tmp_path, b'{"text": "ok", "label": "a"}\n{"text": "bad \\ud800 half", "label": "a"}\n'
                            b'{"text": "pair \\ud83d\\ude00 ok", "label": "a"}\n')
    q, out = tmp_path / "q.jsonl", tmp_path / "out.jsonl"
    report = validate_file(p, task="classification", quarantine=q, out=out)
    assert (report.valid, report.quarantined) == (2, 1)
    bad = json.loads(q.read_text())
    assert (bad["line"], bad["reason"], bad["field"]) == (2, "invalid_unicode", "text")
    written = [json.loads(line)["text"] for line in out.read_text("utf-8").split("\n") if line]
    assert written == ["ok", "pair \U0001f600 ok"]


def test_project_files_are_read_with_the_same_line_rules(tmp_path):
    """The eval crash: a raw U+0085 inside a JSON string split by str.splitlines()."""
    from nichetune.data.readers import read_json_lines
    from nichetune.errors import DataValidationError

    rows = [{"id": "1", "text": "before\u0085after"}, {"id": "2", "text": "a\u2028b\u2029c"}]
    p = _one_file(tmp_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
    assert len(p.read_text().splitlines()) == 5  # what the old reader split it into
    assert read_json_lines(p) == rows
    p.write_text(p.read_text() + '{"id": 3, "text": \n')
    with pytest.raises(DataValidationError, match="line 3"):
        read_json_lines(p)
