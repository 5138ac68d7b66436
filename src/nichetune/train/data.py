"""The rows a run trains and evaluates on, written into the run directory with their provenance.

Sources are a built-in dataset (split here, group-aware and stratified) or files. Bad rows in
files are quarantined next to the run's data (never dropped silently). Each split is written
to ``RUN/data/<split>.jsonl`` with a manifest carrying its lineage, plus a fingerprint of the
test split so later steps can check that nothing they train on appears in it.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_write_text
from ..data.provenance import record_step
from ..data.rows import load_rows, write_rows
from ..data.split import fingerprint, split_rows
from ..errors import DataValidationError
from ..tasks import task_spec


@dataclass
class Splits:
    train: list[dict]
    validation: list[dict]
    test: list[dict]
    labels: list[str] | None
    sources: list[dict] = field(default_factory=list)
    quarantined: int = 0

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def _subsample(rows: list[dict], limit: int | None, seed: int) -> list[dict]:
    if limit is None or len(rows) <= limit:
        return rows
    picked = random.Random(seed).sample(range(len(rows)), limit)
    return [rows[i] for i in sorted(picked)]


def _split(rows: list[dict], ratios: tuple[float, ...], split_cfg, task: str) -> dict[str, list[dict]]:
    group = split_cfg.group_field
    if group and not any(r.get(group) not in (None, "") for r in rows):
        group = None  # no row has the field: nothing to keep together
    labelled = task_spec(task).labelled
    result = split_rows(rows, ratios, stratify=split_cfg.stratify and labelled, group_field=group,
                        seed=split_cfg.seed, join_copies=labelled)
    return result.splits


def _load_file(path: str, task: str, fields, quarantine: Path) -> tuple[list[dict], int, dict]:
    loaded = load_rows(path, task=task, fields=fields, quarantine=quarantine)
    if not loaded.rows:
        raise DataValidationError(f"{path}: no usable rows ({loaded.report.quarantined} quarantined in {quarantine})",
                                  hint=f"run `nichetune data validate {path} --task {task}` to see why")
    if not loaded.report.quarantined:
        quarantine.unlink(missing_ok=True)
    return loaded.rows, loaded.report.quarantined, {"kind": "file", "path": str(Path(path).resolve())}


def _mask_pii(rows: list[dict]) -> dict:
    """Replace detected PII in every string field with its [TYPE], in place; the counts for provenance."""
    from ..data.pii.apply import apply_to_rows
    from ..data.pii.detectors import PiiDetector

    tally = apply_to_rows(rows, "mask", PiiDetector())
    by_field = {f: dict(c) for f, c in sorted(tally.by_field.items())}
    return {"kind": "transform", "name": "PII masked (data.pii: mask)", "rows": tally.rows_with,
            "source": f"{tally.rows_with} rows masked: {dict(tally.by_type)}; by field: {by_field}"}


def load_splits(recipe, data_dir: Path) -> Splits:
    """Read, validate and split the recipe's data (nothing written except quarantine files)."""
    from ..data.catalog import get_spec, load_dataset

    d, task = recipe.data, recipe.task
    data_dir.mkdir(parents=True, exist_ok=True)
    quarantined = 0
    sources: list[dict] = []
    if d.dataset is not None:
        spec = get_spec(d.dataset)
        if spec.task != task:
            raise DataValidationError(f"data.dataset {d.dataset!r} is a {spec.task} dataset but task is {task!r}",
                                      hint=f"set task: {spec.task}, or choose another dataset")
        rows = load_dataset(d.dataset)
        sources.append({"kind": "dataset", "name": d.dataset, "source": spec.source, "rows": len(rows)})
        parts = _split(rows, d.split.ratios, d.split, task)
    else:
        rows, bad, src = _load_file(d.train, task, d.fields, data_dir / "quarantine-train.jsonl")
        quarantined += bad
        sources.append(src)
        given = {}
        for name in ("validation", "test"):
            path = getattr(d, name)
            if path is not None:
                given[name], bad, src = _load_file(path, task, d.fields, data_dir / f"quarantine-{name}.jsonl")
                quarantined += bad
                sources.append(src)
        if "validation" in given:
            parts = {"train": rows, **given}
        elif "test" in given:  # carve validation out of train
            carved = _split(rows, (0.9, 0.1), d.split, task)
            parts = {"train": carved["train"], "validation": carved["test"], "test": given["test"]}
        else:
            parts = _split(rows, d.split.ratios, d.split, task)
    train = _subsample(parts.get("train", []), d.limit, recipe.seed)
    validation = _subsample(parts.get("validation", []), d.eval_limit, recipe.seed)
    test = _subsample(parts.get("test", []), d.eval_limit, recipe.seed)
    if d.pii == "mask":
        sources.append(_mask_pii([*train, *validation, *test]))
    labels = None
    if task_spec(task).labelled:
        labels = sorted({r["label"] for r in train})
        unseen = Counter(r["label"] for r in validation + test if r["label"] not in set(labels))
        if unseen:
            raise DataValidationError(f"labels {dict(unseen)} appear in validation/test but never in train",
                                      hint="add training rows for them, or split with stratification")
        if len(labels) < 2:
            raise DataValidationError(f"{task} needs at least 2 labels in train, found {labels}")
    return Splits(train, validation, test, labels, sources, quarantined)


def write_splits(splits: Splits, recipe, data_dir: Path) -> dict[str, Path]:
    """Write each split and its manifest into ``data_dir``; return the paths."""
    paths: dict[str, Path] = {}
    for name, rows in (("train", splits.train), ("validation", splits.validation), ("test", splits.test)):
        if rows:
            paths[name] = data_dir / f"{name}.jsonl"
            write_rows(paths[name], rows)
    if splits.test:
        atomic_write_text(data_dir / "test.fingerprint.json", json.dumps(fingerprint(splits.test)) + "\n")
    file_inputs = [s["path"] for s in splits.sources if s["kind"] == "file"]
    record_step("train-data", inputs=file_inputs,
                outputs={name: (p, len(getattr(splits, name))) for name, p in paths.items()},
                params={"data": recipe.data.model_dump(mode="json"), "seed": recipe.seed,
                        "datasets": [s for s in splits.sources if s["kind"] == "dataset"]},
                rows_in=sum(splits.sizes().values()), quarantined=splits.quarantined)
    return paths
