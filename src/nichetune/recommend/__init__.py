"""``nichetune recommend``: from constraints and a data audit to a commented, ready-to-train recipe."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..atomic import atomic_write_text
from ..errors import NichetuneError
from .evidence import Constraints, Evidence, gather
from .rules import RULES, decide

__all__ = ["RULES", "Constraints", "Evidence", "recommend", "recipe_yaml"]


def recommend(data: str, constraints: Constraints | None = None, *, task: str | None = None,
              out: str | Path | None = None, output_dir: str | None = None, time_it: bool = True,
              validation: str | None = None, test: str | None = None) -> dict:
    """Audit ``data``, apply the rules, validate the recipe, time a few training steps of it on this machine (unless
    ``time_it`` is false; ``constraints.budget_minutes`` then shrinks it to fit), and (with ``out``) write it as
    commented YAML. With ``validation`` and ``test`` files every row of ``data`` trains and no split is decided.

    Returns ``{"evidence", "decisions", "recipe", "yaml", "estimate"}``.
    """
    from dataclasses import asdict

    from ..config.recipe import load_recipe, merge_dicts

    constraints = constraints or Constraints()
    _check_held_out(data, validation, test)
    evidence = gather(data, task, constraints.model, validation=validation)
    fragment, decisions = decide(evidence, constraints)
    name = Path(data).stem if evidence.dataset is None else evidence.dataset
    source = {"dataset": evidence.dataset} if evidence.dataset else {"train": str(data)}
    source |= {"validation": validation, "test": test} if validation else {}
    raw = merge_dicts({"task": evidence.task, "output_dir": output_dir or f"runs/{name}-recommended", "seed": 0,
                       "data": source}, fragment)
    recipe = load_recipe(data=raw)  # the recipe must validate before anyone sees it
    timing = None
    if time_it:
        raw, timing, decisions = _timed(raw, evidence, constraints, decisions)
        recipe = load_recipe(data=raw)
    text = recipe_yaml(raw, decisions, evidence, constraints, Path(out).name if out else "RECIPE.yaml", timing)
    if out:
        atomic_write_text(out, text)
    return {"evidence": asdict(evidence), "decisions": decisions, "recipe": recipe.model_dump(), "yaml": text,
            "estimate": asdict(timing) if timing else None}


def _timed(raw: dict, evidence: Evidence, constraints: Constraints, decisions: list[dict]):
    """The recipe's training time from a few timed steps, shrunk to ``constraints.budget_minutes`` if it is over."""
    from ..config.recipe import load_recipe, merge_dicts
    from .estimate import estimate, fit_budget
    from .rules import flatten, long_inputs

    def recipe_of(tree: dict):
        return load_recipe(data=tree)

    if constraints.budget_minutes is None:
        return raw, estimate(recipe_of(raw), evidence), decisions
    before = raw
    raw, timing, changes = fit_budget(raw, recipe_of, evidence, constraints.budget_minutes)
    raw = merge_dicts(raw, long_inputs(evidence, recipe_of(raw).model.max_length))  # shorter windows cut more rows
    if changes:
        changed = {k: v for k, v in flatten(raw).items() if flatten(before).get(k) != v}
        decisions = [*decisions, {"rule": "time budget", "settings": changed,
                                  "because": f"a budget of {constraints.budget_minutes:g} minutes: "
                                             + "; ".join(changes)}]
    return raw, timing, decisions


def recipe_yaml(raw: dict, decisions: list[dict], evidence: Evidence, constraints: Constraints,
                name: str = "RECIPE.yaml", timing=None) -> str:
    """The recipe as YAML, each decided key followed by a comment naming the rule that set it."""
    why = {}
    for d in decisions:  # the last rule to set a key is the one that counts
        for key in d["settings"]:
            why[key] = d["rule"]
    c = constraints
    head = [f"# Recommended by `nichetune recommend` for {evidence.source} ({evidence.rows} rows, {evidence.task}).",
            f"# Constraints: sensitivity={c.sensitivity}, latency_ms={c.latency_ms}, compute={c.compute}, "
            f"consequence={c.consequence}, knowledge={c.knowledge}, target={c.target}.",
            f"# Run with: nichetune train {name}"]
    if timing is not None:
        head.append(f"# Estimated training time: {timing.sentence()}.")
    head.append("# Decisions (rule: evidence):")
    head += [f"#   - {d['rule']}: {d['because']}" for d in decisions]
    return "\n".join(head) + "\n" + "\n".join(_emit(raw, "", 0, why)) + "\n"


def _scalar(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()


def _emit(tree: dict, prefix: str, depth: int, why: dict) -> list[str]:
    lines = []
    pad = "  " * depth
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{key}:")
            lines += _emit(value, f"{path}.", depth + 1, why)
            continue
        line = f"{pad}{key}: {_scalar(value)}"
        lines.append(f"{line:<44}  # {why[path]}" if path in why else line)
    return lines


def _check_held_out(data: str, validation: str | None, test: str | None) -> None:
    from ..data.catalog import CATALOG

    if (validation is None) != (test is None):
        raise NichetuneError("--validation and --test come together: the recipe either splits the data or names "
                             "both held-out files", hint="pass both files, or neither")
    if validation and data in CATALOG:
        raise NichetuneError(f"{data} is a built-in dataset with its own split; --validation and --test take the "
                             "held-out rows of a data file", hint=f"nichetune data export {data} --out FILE, then "
                             "recommend --data FILE --validation ... --test ...")
    for path in (validation, test):
        if path and not Path(path).is_file():
            raise NichetuneError(f"{path}: no such file", hint="pass the held-out rows as a data file")
