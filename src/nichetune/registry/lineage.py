"""From a registered version down to its data: the version's manifest, the run it came from, the data files
the run trained and was tested on (sha256, rows) and each file's provenance chain."""

from __future__ import annotations

import json
from pathlib import Path

from ..run.paths import RunPaths


def lineage(row: dict) -> list[dict]:
    """Steps from the version to its data, each ``{"level", "what", "sha256", "detail"}``."""
    folder = Path(row["path"])
    steps = [{"level": 0, "what": f"{row['name']}@{row['version']} ({row['kind']} {row['format']})",
              "sha256": row["manifest_sha256"], "detail": f"registered from {row['source']}"}]
    record = RunPaths(folder / "run")  # the run's record, kept in the run's layout
    if not record.finished:
        return steps
    run = json.loads(record.manifest.read_text())
    steps.append({"level": 1, "what": f"run {run.get('task')} {run.get('method', {}).get('name')} on "
                                      f"{run.get('base_model', {}).get('reference')}",
                  "sha256": None, "detail": f"finished {run.get('finished')}, seed {run.get('seed')}"})
    artifacts = run.get("artifacts", {})
    for split in ("train", "validation", "test"):
        data_manifest = record.split_manifest(split)
        if not data_manifest.is_file():
            continue
        data = json.loads(data_manifest.read_text())
        steps.append({"level": 2, "what": f"data/{split}.jsonl ({data.get('rows')} rows)",
                      "sha256": artifacts.get(f"data/{split}.jsonl") or data.get("sha256"),
                      "detail": ", ".join(s.get("name") or s.get("path") or s.get("kind", "?")
                                          for s in data.get("sources", [])) or "from the run's split"})
        for step in data.get("lineage", []):
            inputs = step.get("params", {}).get("datasets") or step.get("inputs") or []
            described = "; ".join(f"{i.get('name') or i.get('path')}" + (f" ({i['source']})" if i.get("source") else "")
                                  for i in inputs)
            steps.append({"level": 3, "what": f"step {step.get('step')}", "sha256": None,
                          "detail": described or "no recorded inputs"})
    return steps


def lineage_text(steps: list[dict]) -> str:
    lines = []
    for s in steps:
        digest = f" sha256 {s['sha256'][:12]}..." if s["sha256"] else ""
        lines.append(f"{'  ' * s['level']}{'└ ' if s['level'] else ''}{s['what']}{digest}: {s['detail']}")
    return "\n".join(lines)
