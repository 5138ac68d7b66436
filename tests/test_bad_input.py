"""Hostile and careless input: one clear error (file, reason, how to fix) or a quarantine row, never a
traceback, a hang, or a half-written output."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import errno
import gzip
import io
import json
import os
import pickle
import resource
import signal
import struct
import subprocess
import sys

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from nichetune.cli import main
from nichetune.data.readers import read_records
from nichetune.data.validate import validate_file
from nichetune.errors import DataValidationError, UnsafeModelError
from tiny_data import review_rows, write_jsonl

CLI = [sys.executable, "-m", "nichetune"]


def _cli(args, **kwargs):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, **kwargs)


def test_parquet_with_timestamp_decimal_and_bytes_columns_writes_json(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({
        "text": ["hello there", "good day"], "label": ["a", "b"],
        "seen": [dt.datetime(2024, 1, 2, 3, 4, 5), None], "day": [dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
        "amount": pa.array([decimal.Decimal("1.50"), decimal.Decimal("2.25")], pa.decimal128(5, 2)),
        "blob": [b"\xff\x00", b"ok"], "score": [float("nan"), 0.5]}), tmp_path / "x.parquet")
    report = validate_file(tmp_path / "x.parquet", task="classification", out=tmp_path / "o.jsonl")
    assert (report.valid, report.quarantined) == (2, 0)
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert rows[0]["seen"] == "2024-01-02T03:04:05" and rows[1]["seen"] is None and rows[0]["day"] == "2024-01-02"
    assert [r["amount"] for r in rows] == ["1.50", "2.25"]  # exact, not a float
    assert rows[0]["blob"] == {"base64": "/wA="} and rows[1]["blob"] == "ok"
    assert rows[0]["score"] is None and rows[1]["score"] == 0.5


def test_a_damaged_parquet_row_group_is_quarantined_row_by_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": [f"row {i}" for i in range(200)], "label": ["ab"[i % 2] for i in range(200)]}),
                   path, row_group_size=100, use_dictionary=False)
    start = pq.ParquetFile(path).metadata.row_group(1).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[start:start + 12] = b"\xff" * 12  # the page header of the second row group
    path.write_bytes(bytes(data))
    q = tmp_path / "q.jsonl"
    report = validate_file(path, task="classification", quarantine=q, out=tmp_path / "o.jsonl")
    assert (report.total, report.valid, report.quarantined) == (200, 100, 100)
    bad = [json.loads(line) for line in q.read_text().splitlines()]
    assert [b["line"] for b in bad] == list(range(101, 201)) and {b["reason"] for b in bad} == {"corrupt_data"}
    assert "row group 1 (rows 101-200)" in bad[0]["message"]


def test_a_fifo_is_refused_at_once_instead_of_hanging(tmp_path):
    os.mkfifo(tmp_path / "pipe.jsonl")
    os.mkfifo(tmp_path / "pipe.yaml")
    res = _cli(["data", "validate", str(tmp_path / "pipe.jsonl"), "--task", "classification"], cwd=tmp_path)
    assert res.returncode == 1 and "is a FIFO (named pipe), not a regular file" in res.stderr
    res = _cli(["train", str(tmp_path / "pipe.yaml"), "--check"], cwd=tmp_path)
    assert res.returncode == 1 and "FIFO" in res.stderr and "Traceback" not in res.stderr


def test_compressed_input_is_named(tmp_path, capsys):
    (tmp_path / "d.jsonl").write_bytes(gzip.compress(b'{"text": "a", "label": "x"}\n'))
    assert main(["data", "validate", str(tmp_path / "d.jsonl"), "--task", "classification",
                 "--quarantine", str(tmp_path / "q.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "gzip-compressed" in err and "gunzip -k" in err


def test_an_unreadable_file_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    target = tmp_path / "secret.jsonl"
    write_jsonl(target, [{"text": "a", "label": "x"}])
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if str(file) == str(target):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    with pytest.raises(DataValidationError, match=r"secret.jsonl: cannot be read \(Permission denied\)"):
        list(read_records(target))


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))


def test_a_full_disk_is_a_clear_error_and_leaves_no_partial_output(tmp_path):
    write_jsonl(tmp_path / "big.jsonl", [{"text": "word " * 60 + str(i), "label": "ab"[i % 2]} for i in range(2000)])
    res = subprocess.run([*CLI, "data", "validate", "big.jsonl", "--task", "classification", "--out", "out.jsonl"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size)
    assert res.returncode == 1, res.stderr
    assert "File too large" in res.stderr and "free disk space" in res.stderr and "Traceback" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.jsonl"]  # no out.jsonl, no temporary files


def test_a_safetensors_header_that_lies_is_refused(tmp_path, capsys):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert"}))
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 100 << 30) + b"{}")
    assert main(["models", "show", str(folder)]) == 1
    assert "header claims 107,374,182,400 bytes" in capsys.readouterr().err
    header = json.dumps({"w": {"dtype": "F32", "shape": [25 << 30], "data_offsets": [0, 100 << 30]}}).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 64)
    assert main(["models", "show", str(folder)]) == 1
    assert "tensors claim 107,374,182,400 bytes but the file holds 64" in capsys.readouterr().err


class _Trap:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_swapped_into_a_runs_adapter_is_refused(tmp_path, tiny_bert_dir, monkeypatch):
    import torch

    from nichetune.config.recipe import load_recipe
    from nichetune.hashing import write_manifest
    from nichetune.run import load_run
    from nichetune.train.run import train

    write_jsonl(tmp_path / "d.jsonl", review_rows(32, seed=0, own=3, noise=1))
    train(load_recipe(data={"task": "classification", "output_dir": str(tmp_path / "run"),
                            "model": {"name": str(tiny_bert_dir)}, "method": {"name": "lora", "r": 2},
                            "data": {"train": str(tmp_path / "d.jsonl"), "split": {"group_field": None}},
                            "train": {"epochs": 1, "batch_size": 8, "precision": "fp32"}}))
    adapter = tmp_path / "run" / "adapter"
    (adapter / "adapter_model.safetensors").unlink()
    (adapter / "adapter_model.bin").write_bytes(pickle.dumps(_Trap(str(tmp_path / "pwned"))))
    write_manifest(adapter, extra={"kind": "nichetune-weights", "method": "lora"})  # the manifest rewritten to match
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was reached"))
    with pytest.raises(UnsafeModelError, match="adapter_model.bin"):
        load_run(tmp_path / "run")
    assert not (tmp_path / "pwned").exists()


@given(st.text(max_size=40))
def test_review_cells_never_start_a_formula_and_restore_exactly(text):
    from nichetune.eval.review import neutralise_cell, restore_cell

    cell = neutralise_cell(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert restore_cell(cell) == text


def test_review_export_neutralises_formulas_from_the_data(tmp_path):
    from nichetune.eval.review import export_review, restore_cell

    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    texts = ['=HYPERLINK("http://evil.example","click")', "+1 555 0100", "-2 pills", "@SUM(A1)", "'quoted", "plain"]
    preds = [{"id": f"-{i}", "text": t, "predicted": "a", "label": "=b", "confidence": 0.5 + i / 20}
             for i, t in enumerate(texts)]
    (run / "eval" / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    (run / "eval" / "metrics.json").write_text(json.dumps({"task": "classification", "slices": {}}))
    path = export_review(run, n=6, graders=1)
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert sorted(restore_cell(r["text"]) for r in body) == sorted(texts)
    assert {restore_cell(r["reference_label"]) for r in body} == {"=b"}
    assert sorted(restore_cell(r["id"]) for r in body) == sorted(p["id"] for p in preds)


def test_generate_refuses_a_model_that_cannot_generate(capsys):
    assert main(["generate", "minilm-l6", "hi"]) == 1
    err = capsys.readouterr().err
    assert "not a causal language model" in err and "smollm2-135m-instruct" in err


def test_commands_print_no_library_load_reports_unless_verbose(tmp_path, tiny_classifier_dir):
    """A 3-label classifier trained on 2 labels: transformers replaces the head and reports it."""
    write_jsonl(tmp_path / "d.jsonl", review_rows(24, seed=0, own=3, noise=1))
    recipe = {"task": "classification", "output_dir": str(tmp_path / "run"),
              "model": {"name": str(tiny_classifier_dir)},
              "data": {"train": str(tmp_path / "d.jsonl"), "split": {"group_field": None}}, "method": {"name": "full"},
              "train": {"epochs": 1, "batch_size": 8, "precision": "fp32"}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    quiet = _cli(["train", str(tmp_path / "r.yaml")], cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "LOAD REPORT" not in quiet.stderr and "FutureWarning" not in quiet.stderr
    # torchao (imported by transformers) logs CUDA-only kernels it cannot load, torch a pytree deprecation
    assert "Failed to load" not in quiet.stderr and "Enum subclass" not in quiet.stderr
    loud = _cli(["-v", "train", str(tmp_path / "r.yaml"), "--fresh"], cwd=tmp_path)
    assert loud.returncode == 0 and "LOAD REPORT" in loud.stderr  # the same load does report when asked
