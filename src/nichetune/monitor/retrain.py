"""The improvement loop: new rows (and feedback) -> a checked dataset -> a challenger trained with the champion's
recipe -> compared with the champion on the champion's own test rows -> registered -> the next experiment.

Each step writes its files under one folder (``retrain.json`` records what each produced) and is skipped on a
second run when its inputs have not changed, so a failure can be fixed and the loop re-run from where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..errors import NichetuneError
from ..hashing import sha256_file
from ..run.paths import RunPaths

STATE = "retrain.json"


def _state(folder: Path) -> dict:
    path = folder / STATE
    return json.loads(path.read_text()) if path.is_file() else {}


def _save(folder: Path, state: dict) -> None:
    from ..atomic import atomic_write_text

    atomic_write_text(folder / STATE, json.dumps(state, indent=1, default=str) + "\n")


def _step(folder: Path, state: dict, name: str, key: str, fn: Callable[[], dict], say) -> dict:
    """Run ``fn`` unless the step already ran with the same ``key`` (its inputs' fingerprint)."""
    done = state.get(name)
    if done and done.get("key") == key:
        say(f"{name}: done before with the same inputs (reused)")
        return done
    say(f"{name} ...")
    result = {"key": key, **fn()}
    state[name] = result
    for later in [s for s in STEPS[STEPS.index(name) + 1:] if s in state]:  # what came after is stale now
        del state[later]
    _save(folder, state)
    return result


STEPS = ["data", "train", "compare", "register"]


def _texts_in(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.open(encoding="utf-8") if line.strip()]


def _data(folder: Path, champion: Path, new_data: str, feedback: str | None, task: str) -> dict:
    """Validate the new rows (and exported feedback), drop those that repeat the champion's test rows (leakage:
    exact or near duplicates), and write the challenger's training file: the champion's training split + these."""
    from ..atomic import atomic_write_text
    from ..data.near_dup import near_pairs, normalise_text
    from ..data.provenance import record_step
    from ..data.validate import validate_file

    sources = [Path(new_data)]
    if feedback:
        from .log import export_feedback

        export_feedback(feedback, folder / "feedback.jsonl")
        sources.append(folder / "feedback.jsonl")
    rows, quarantined = [], 0
    for n, source in enumerate(sources):
        report = validate_file(source, task=task, quarantine=folder / f"quarantine-{n}.jsonl",
                               out=folder / f"valid-{n}.jsonl")
        quarantined += report.quarantined
        rows += [json.loads(line) for line in (folder / f"valid-{n}.jsonl").open(encoding="utf-8")]
    test = _texts_in(RunPaths(champion).split("test"))
    seen = {normalise_text(t) for t in test}
    exact = {i for i, r in enumerate(rows) if normalise_text(r["text"]) in seen}
    pairs = near_pairs([r["text"] for r in rows] + test, threshold=0.8)
    near = {i for i, j, _ in pairs if i < len(rows) <= j}
    leaked = sorted(exact | near)
    kept = [r for i, r in enumerate(rows) if i not in leaked]
    if not kept:
        raise NichetuneError(f"no usable new rows in {', '.join(map(str, sources))} ({quarantined} quarantined, "
                             f"{len(leaked)} repeat the champion's test rows)", hint="see the quarantine files in "
                             f"{folder}")
    train = [json.loads(line) for line in RunPaths(champion).split("train").open(encoding="utf-8")]
    out = folder / "train.jsonl"
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in train + kept))
    atomic_write_text(folder / "leakage.json", json.dumps([{"row": rows[i], "reason": "repeats a test row of "
                                                            "the champion" + (" (near duplicate)" if i in near and
                                                                              i not in exact else "")}
                                                           for i in leaked], indent=1) + "\n")
    record_step("retrain-data", inputs=[*sources, RunPaths(champion).split("train")],
                outputs={"train": (out, len(train) + len(kept))}, params={"champion": str(champion)},
                rows_in=len(rows) + len(train), quarantined=quarantined + len(leaked))
    return {"train_file": str(out), "new_rows": len(kept), "champion_rows": len(train), "quarantined": quarantined,
            "leaked": len(leaked)}


def retrain(recipe_path: str | Path, new_data: str | Path, *, feedback: str | None = None,
            champion: str | None = None, registry: str | None = None, name: str | None = None,
            out: str | Path | None = None, say=print) -> dict:
    """Run (or resume) the loop; returns ``retrain.json``'s content with ``next``: the command that starts the
    shadow experiment.

    Raises:
        NichetuneError: the champion is not a finished, evaluated run, or no new row survives the checks.
    """
    from .. import train_recipe
    from ..config.recipe import load_recipe
    from ..eval.compare import compare
    from .reference import _run_dir

    recipe = load_recipe(recipe_path)
    champion_dir = _run_dir(champion, registry) if champion else Path(recipe.output_dir)
    if not RunPaths(champion_dir).finished:
        raise NichetuneError(f"the champion {champion_dir} is not a finished run",
                             hint="train the recipe first, or name the champion with --champion")
    folder = Path(out or f"{recipe.output_dir}-retrain")
    folder.mkdir(parents=True, exist_ok=True)
    state = _state(folder)
    key = "|".join([sha256_file(Path(new_data)), str(feedback), str(champion_dir),
                    sha256_file(RunPaths(champion_dir).manifest)])
    data = _step(folder, state, "data", key,
                 lambda: _data(folder, champion_dir, str(new_data), feedback, recipe.task), say)
    test = RunPaths(champion_dir).split("test")
    challenger_dir = folder / "challenger"
    challenger = recipe.model_copy(update={
        "output_dir": str(challenger_dir),
        "data": recipe.data.model_copy(update={"dataset": None, "train": data["train_file"], "limit": None,
                                                "validation": str(RunPaths(champion_dir).split("validation")),
                                                "test": str(test)})})
    trained = _step(folder, state, "train", key + sha256_file(Path(data["train_file"])),
                    lambda: {"run": str(challenger_dir),
                             "result": train_recipe(challenger, fresh=True).model_dump(mode="json").get("result")}, say)
    versus = _step(folder, state, "compare", trained["key"],
                   lambda: {"comparison": compare(challenger_dir, str(champion_dir), data=str(test))}, say)
    if registry and name:
        from ..registry import open_registry

        entry = _step(folder, state, "register", trained["key"],
                      lambda: {"version": open_registry(registry).register(
                          challenger_dir, name, note=f"retrained with {data['new_rows']} new rows")["version"]}, say)
        following = (f"nichetune serve champion={name}@champion challenger={name}@{entry['version']} "
                     f"--registry {registry} --shadow champion=challenger --api-keys KEYS")
    else:
        following = (f"nichetune serve champion={champion_dir} challenger={challenger_dir} "
                     "--shadow champion=challenger --api-keys KEYS")
    return {**state, "challenger": str(challenger_dir), "champion": str(champion_dir), "next": following,
            "verdict": versus["comparison"]["sentence"]}
