"""``nichetune demo``: the whole domain fine-tuning lifecycle on the embedded models and datasets.

Part 1 (drug reviews) goes from raw data to a recommended, trained, calibrated and compared
classifier; part 2 (computing jargon) instruction-tunes SmolLM2 and checks it against its base;
part 3 (ship) exports both with parity reports and registers them with an alias history and model cards;
part 4 (serve) serves the champions over the OpenAI-compatible API and asks them a few questions;
part 5 (retrieval) indexes FOLDOC entries the jargon run never saw and measures what retrieval adds to its answers;
part 6 (watch) replays drug-review traffic in two phases, reports drift, runs a shadow and an A/B test, and promotes.
Both end in reports that one index page links, with a summary table. Prepared models, exported
data and finished runs of an identical recipe are reused on a second run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from . import jargon, knowledge, medical, serving, ship, watch
from .steps import SKIPPED, Steps
from .summary import index_html, markdown_table, summary_rows


@dataclass(frozen=True)
class Budget:
    """How much each part trains and evaluates: the full demo (~15 min on 2 CPU cores) or ``--quick``."""

    name: str
    medical: tuple[str, ...]       # recipe overrides for every drug-review run
    recommended: tuple[str, ...]   # ... for the recommended run
    comparison: tuple[str, ...]    # ... for the two comparison runs (short budgets)
    few_shot: tuple[str, ...]      # ... for the few-shot run (8 reviews a label)
    jargon: tuple[str, ...]        # ... for the FOLDOC run
    samples: int                   # held-out terms answered by both models
    general_rows: int              # BBC articles both language models score (forgetting)
    latency: bool
    latency_requests: int = 20
    parity_rows: int = 64          # held-out FOLDOC rows each language-model export is checked on
    parity_tolerance: float = 0.5  # the largest metric drop an export may show, in points (the CLI's default)
    index_entries: int = 2000      # FOLDOC entries in the retrieval index (all held-out terms among them)
    retrieval_answers: int = 48    # held-out questions the jargon model answers with and without retrieval
    ab_users: int = 2000           # simulated users in the A/B test


FULL = Budget("full", medical=(), recommended=("train.epochs=4",), comparison=("train.epochs=2",), few_shot=(),
              jargon=("data.limit=300",), samples=8, general_rows=40, latency=True)
QUICK = Budget("quick", medical=("data.limit=200", "data.eval_limit=100", "model.max_length=96"),
               recommended=("train.epochs=3",), comparison=("train.epochs=2",),
               few_shot=(),  # the few-shot recipe is short either way: 24 rows, or no training steps at all
               jargon=("data.limit=24", "data.eval_limit=12", "model.max_length=96", "train.max_steps=3"),
               samples=2, general_rows=6, latency=False, parity_rows=8, index_entries=150,
               # 8 rows of a 3-step model: a token is 0.6 points and the 95% CI spans 2 points either way, so a
               # 0.5-point gate there is a coin toss on rounding (its int8 export read 0.0, then -1.25 points)
               parity_tolerance=2.0,
               retrieval_answers=4, ab_users=300)
MODELS = ("minilm-l6", "smollm2-135m-instruct")


def run_demo(out: str | Path = "demo-out", *, quick: bool = False, fresh: bool = False, log=None) -> dict:
    """Run both parts; write ``OUT/index.html`` and ``OUT/demo-summary.json``; return the summary."""
    from ..atomic import atomic_write_text
    from ..hardware import steady_allocator

    steady_allocator()  # one process trains, evaluates and serves in turn: large blocks go back between parts
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    budget = QUICK if quick else FULL
    total = len(MODELS) + medical.STEPS + jargon.STEPS + ship.STEPS + serving.STEPS + knowledge.STEPS + watch.STEPS
    steps = Steps(total=total, **({"out": log} if log else {}))
    steps.say(f"nichetune demo ({budget.name}): writing to {out}/")
    prepared = [steps.run(f"prepare the embedded model {name}", lambda n=name: _prepare(n),
                          command=f"nichetune models prepare {name}") for name in MODELS]
    parts = {"medical": medical.run_medical(steps, out, budget, fresh=fresh)
             if prepared[0] is not SKIPPED else {"runs": {}, "report": out / "missing"},
             "jargon": jargon.run_jargon(steps, out, budget, fresh=fresh)
             if prepared[1] is not SKIPPED else {"runs": {}, "report": out / "missing"}}
    shipped = ship.run_ship(steps, out, budget, parts["medical"], parts["jargon"], fresh=fresh)
    served = serving.run_serving(steps, out, shipped)
    retrieved = knowledge.run_knowledge(steps, out, budget, parts["jargon"], fresh=fresh)
    watched = watch.run_watch(steps, out, shipped, budget)
    seconds = time.perf_counter() - steps.started
    rows = summary_rows(parts["medical"], parts["jargon"])
    page = index_html(out, rows, parts["medical"], parts["jargon"], steps.failures, steps.commands, seconds,
                      budget.name, shipped=shipped, served=_plain(served),
                      retrieved={k: _plain(v) for k, v in retrieved.items()},
                      watched={k: _plain(v) for k, v in watched.items()})
    atomic_write_text(out / "index.html", page)
    summary = {"mode": budget.name, "seconds": round(seconds, 1), "summary": rows, "failures": steps.failures,
               "commands": steps.commands, "reports": {k: str(p["report"]) for k, p in parts.items()},
               "audit": _plain(parts["medical"].get("audit")),
               "exports": {k: _plain(v) for k, v in shipped["exports"].items()},
               "exports_left_out": shipped["left_out"],
               "registry": _plain(shipped["registry"]), "served": _plain(served),
               "retrieval": {k: _plain(v) for k, v in retrieved.items()},
               "watch": {k: _plain(v) for k, v in watched.items()}}
    atomic_write_text(out / "demo-summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    atomic_write_text(out / "summary.md", markdown_table(rows) + "\n")
    return summary


def _prepare(name: str) -> Path:
    from ..models.prepare import prepare_model

    return prepare_model(name)


def _plain(value):
    return None if value is SKIPPED else value
