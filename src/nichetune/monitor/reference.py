"""What production is compared with: the run's held-out test predictions (texts, predicted labels, calibrated
confidences, true labels, slice fields) and its training vocabulary, from a run directory or a registry
reference; and the recipe's monitoring thresholds."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NichetuneError
from ..run.paths import RunPaths

WORD = re.compile(r"[a-z0-9']+")
VOCABULARY = 20_000  # the most frequent training words; others count as out of vocabulary


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


@dataclass
class Reference:
    name: str
    run_dir: Path
    rows: list[dict]  # the test split's predictions: text, label, predicted, confidence, slices[, probabilities]
    labels: list[str]
    vocabulary: set[str]
    qhat: float | None = None  # the conformal threshold: a label is in the set when 1 - p <= qhat
    thresholds: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return sum(r["label"] == r["predicted"] for r in self.rows) / len(self.rows)

    def set_sizes(self) -> list[int] | None:
        if self.qhat is None or not all("probabilities" in r for r in self.rows):
            return None
        return [sum(1 - p <= self.qhat for p in r["probabilities"].values()) for r in self.rows]


def _run_dir(ref: str, registry: str | None) -> Path:
    path = Path(ref)
    if RunPaths(path).manifest.is_file():
        return path
    if "@" in ref and not path.exists():
        from ..registry import open_registry

        return _run_of_record(Path(open_registry(registry).resolve(ref)["path"]), ref)
    raise NichetuneError(f"{ref} is neither a run directory nor a registry reference (NAME@ALIAS)",
                         hint="give the evaluated run the served model came from, or its registry entry")


def _with_group_field(rows: list[dict], test_split: Path, field: str | None) -> list[dict]:
    """Add the split's group field (e.g. ``drug``) to each prediction's slices, from the test split by id."""
    if not field or not test_split.is_file():
        return rows
    values = {}
    for line in test_split.open(encoding="utf-8"):
        row = json.loads(line)
        if row.get("id") is not None and row.get(field) is not None:
            values[str(row["id"])] = row[field]
    return [{**r, "slices": {**(r.get("slices") or {}), field: values[str(r["id"])]}}
            if str(r.get("id")) in values else r for r in rows]


def _run_of_record(artifact: Path, ref: str) -> Path:
    """A registry entry keeps the run's evidence but not its rows: the run it was registered from, when it is still
    there and its manifest is byte-identical to the registered one, holds the test predictions."""
    from ..config.recipe import load_recipe
    from ..hashing import sha256_file

    record = artifact / "run"
    if RunPaths(record).predictions.is_file():
        return record
    candidates = [Path(load_recipe(RunPaths(record).recipe).output_dir)]
    export = artifact / "model" / "nichetune-manifest.json"
    if export.is_file():
        candidates.insert(0, Path(json.loads(export.read_text()).get("source", {}).get("run", "")))
    want = sha256_file(RunPaths(record).manifest)
    for run in candidates:
        paths = RunPaths(run)
        if paths.predictions.is_file() and paths.manifest.is_file() and sha256_file(paths.manifest) == want:
            return run
    raise NichetuneError(f"{ref}: the registry keeps the run's evidence, not its test rows, and the run it came from "
                         f"is not at {', '.join(map(str, candidates))}",
                         hint="give the evaluated run directory as --reference")


def load_reference(ref: str, *, registry: str | None = None) -> Reference:
    """The evaluated run behind ``ref`` (a run directory or ``NAME@alias`` in ``registry``); its slice fields are the
    evaluation's (e.g. ``condition``) and the split's group field (e.g. ``drug``), so a new group shows up.

    Raises:
        NichetuneError: not a run, or never evaluated (no test predictions to compare with).
    """
    from ..config.recipe import load_recipe
    from ..infer.calibrated import read_calibration

    run_dir = _run_dir(ref, registry)
    paths = RunPaths(run_dir)
    if not paths.predictions.is_file():
        raise NichetuneError(f"{run_dir} has no test predictions to compare production with",
                             hint=f"evaluate it first: nichetune eval {run_dir}")
    rows = [json.loads(line) for line in paths.predictions.open(encoding="utf-8") if line.strip()]
    if not rows or "predicted" not in rows[0]:
        raise NichetuneError(f"{run_dir} is not an evaluated classifier run", hint="monitoring compares classifiers")
    counts: Counter = Counter()
    train = paths.split("train")
    if train.is_file():
        for line in train.open(encoding="utf-8"):
            counts.update(words(json.loads(line).get("text", "")))
    recipe = load_recipe(paths.recipe)
    calibration = read_calibration(run_dir)
    labels = sorted({r["label"] for r in rows} | {r["predicted"] for r in rows})
    rows = _with_group_field(rows, paths.split("test"), recipe.data.split.group_field)
    return Reference(name=ref, run_dir=run_dir, rows=rows, labels=labels,
                     vocabulary={w for w, _ in counts.most_common(VOCABULARY)},
                     qhat=calibration.qhat if calibration else None,
                     thresholds=recipe.deploy.monitor.model_dump())
