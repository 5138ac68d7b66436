"""The benchmarks' child-process memory figure is the child's own, not the high-water mark of whoever started it
(Linux carries that across fork and exec into ``ru_maxrss``: TF-IDF fits read 1,053 MB instead of 415 MB)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _child_peak():
    spec = importlib.util.spec_from_file_location("child_peak", ROOT / "benchmarks" / "child_peak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_childs_peak_is_its_own_and_its_exit_code_comes_back(tmp_path):
    run_measured = _child_peak().run_measured
    held = np.ones(400 * 2**20 // 8)  # this process's high-water mark is at least 400 MB above a bare Python's
    small = run_measured([sys.executable, "-c", "pass"], tmp_path / "small.log")
    big = run_measured([sys.executable, "-c", "b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096])"],
                       tmp_path / "big.log")
    failed = run_measured([sys.executable, "-c", "print('bad'); raise SystemExit(3)"], tmp_path / "failed.log")
    assert held.sum() > 0
    assert small["code"] == big["code"] == 0 and small["peak_mb"] < 60
    assert 200 <= big["peak_mb"] < 200 + 60
    assert failed["code"] == 3 and (tmp_path / "failed.log").read_text().strip() == "bad"
