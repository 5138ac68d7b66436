"""How long a recipe will train on this machine, from a few timed optimizer steps of the real model, and the
changes that fit it into a time budget.

The steps run the recipe's model, method, precision and batch size on batches as long as the data's typical row
(token lengths clipped at ``max_length``), with the task's own loss, the training loop's AdamW groups and autocast.
The total is steps x seconds per step, plus one validation pass per epoch (a forward pass costs about a third of a
training step) and the test pass.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

TIMED_STEPS = 5
BUDGET_SHARE = 0.85  # plan to this share of a budget: timed steps varied by 10% between calls, and the
# whole run (data, evaluation passes, the lexical stack's fits, saving) ran 7-20% past its estimate on BBC News
FORWARD_SHARE = 1 / 3    # a no-grad forward pass against a training step
MIN_EPOCHS = 1
MIN_LENGTH = 128


def minutes_words(minutes: float) -> str:
    """``about 6 minutes``, ``about a minute``, ``under a minute`` (not "about 0 minutes", which read as broken)."""
    whole = round(minutes)
    return "under a minute" if whole < 1 else "about a minute" if whole == 1 else f"about {whole} minutes"


@dataclass(frozen=True)
class Estimate:
    seconds_per_step: float
    steps: int
    minutes: float
    tokens_per_row: float  # the mean token count a row is trained on (clipped at max_length)

    def sentence(self) -> str:
        return (f"{minutes_words(self.minutes)} on this machine ({self.steps} steps x "
                f"{self.seconds_per_step:.2f} s, timed over {TIMED_STEPS} steps, plus evaluation)")


def clipped_mean(quantiles: tuple[float, ...], max_length: int) -> float:
    """The mean of ``min(length, max_length)`` over rows, from the length distribution's quantiles (0..100%)."""
    q = np.minimum(np.asarray(quantiles, dtype=float), max_length)
    return float((q[:-1] + q[1:]).mean() / 2) if len(q) > 1 else float(q[0])


def time_step(recipe, labels: list[str], tokens: int) -> float:
    """Seconds per optimizer step of ``recipe`` on batches of ``tokens`` tokens per row (median of timed steps)."""
    import torch

    from ..hardware import pick_dtype
    from ..methods.registry import METHODS, apply_method
    from ..models.resolve import resolve_model
    from ..models.task_model import load_base
    from ..tasks import build_task, task_spec
    from ..tasks.encode import Example
    from ..tasks.scoring import autocast_for
    from ..train.model_setup import cast_frozen
    from ..train.optim import build_optimizer

    t = recipe.train
    head = task_spec(recipe.task).head
    resolved = resolve_model(recipe.model.name, allow_pickle=recipe.model.allow_pickle,
                             trust_remote_code=recipe.model.trust_remote_code)
    base = load_base(resolved, head, labels or None, dropout=t.dropout, attention_dropout=t.attention_dropout)
    model = apply_method(base, recipe.method, head)
    dtype = pick_dtype(t.precision, "cpu")
    if dtype != torch.float32:
        cast_frozen(model, dtype)
    # a method with virtual tokens (prompt tuning) widens every row: the task scores every position, as in training
    task = build_task(recipe.task, labels or None, t, virtual_tokens=METHODS[recipe.method.name].virtual_tokens)
    optimizer = build_optimizer(model, t)
    vocab = int(model.config.vocab_size)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (t.batch_size, max(tokens, 2)), generator=gen).tolist()
    items = [Example(row, i % max(len(labels), 1) if labels else list(row)) for i, row in enumerate(ids)]
    batch = task.collate(items, 0)
    model.train()
    times = []
    for _ in range(TIMED_STEPS + 1):  # the first step warms caches and allocators up; it is not counted
        start = time.perf_counter()
        with autocast_for(dtype, "cpu"):
            loss, _units = task.loss_sum(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def training_rows(recipe, evidence) -> int:
    """The rows the recipe trains on: its split's training share of the data, or the audit's count when the recipe
    names its own validation and test files."""
    d = recipe.data
    if d.validation is None and d.test is None:
        return int(evidence.rows * d.split.ratios[0])
    return evidence.rows if d.train else evidence.train_rows


def estimate(recipe, evidence, seconds_per_step: float | None = None) -> Estimate:
    """The training time of ``recipe`` on ``evidence``'s data; ``seconds_per_step`` reuses a timing."""
    t = recipe.train
    tokens = clipped_mean(evidence.length_quantiles, recipe.model.max_length)
    if seconds_per_step is None:
        seconds_per_step = time_step(recipe, list(evidence.labels), max(2, round(tokens)))
    train_rows = training_rows(recipe, evidence)
    per_epoch = math.ceil(train_rows / (t.batch_size * t.grad_accum)) * t.grad_accum
    steps = t.max_steps or math.ceil(per_epoch * t.epochs)
    held_out = evidence.given_validation or evidence.rows - train_rows
    eval_steps = (math.ceil(t.epochs) + 1) * held_out / t.batch_size * FORWARD_SHARE
    return Estimate(seconds_per_step, steps, (steps + eval_steps) * seconds_per_step / 60, tokens)


def _fewer_epochs(floor: int):
    def lever(r, raw: dict, share: float) -> tuple[dict, str] | None:
        epochs = max(floor, min(math.ceil(r.train.epochs) - 1, math.floor(r.train.epochs * share)))
        if epochs >= r.train.epochs:
            return None
        return {"train": {"epochs": epochs}}, f"epochs {r.train.epochs:g} -> {epochs}"
    return lever


def _shorter(floor: int):
    def lever(r, raw: dict, share: float) -> tuple[dict, str] | None:
        if r.model.max_length <= floor:
            return None
        length = max(floor, r.model.max_length // 2)
        return {"model": {"max_length": length}}, f"max_length {r.model.max_length} -> {length}"
    return lever


def _lora_not_full(r, raw: dict, share: float) -> tuple[dict, str] | None:
    if r.method.name != "full":
        return None
    return ({"method": {"name": "lora", "r": 16, "alpha": 32, "target_modules": "all-linear"},
             "train": {"lr": 1e-3, "layer_decay": 1.0}}, "full fine-tuning -> LoRA r=16")


# tried in order while the estimate is over budget: keep two epochs and 256 tokens as long as possible
LEVERS = (_fewer_epochs(2), _shorter(256), _fewer_epochs(MIN_EPOCHS), _shorter(MIN_LENGTH), _lora_not_full)


def fit_budget(raw: dict, recipe_of, evidence, budget_minutes: float) -> tuple[dict, Estimate, list[str]]:
    """Shrink the recipe ``raw`` until its estimate fits ``BUDGET_SHARE`` of ``budget_minutes`` (``LEVERS`` in order:
    fewer epochs down to two, inputs down to 256 tokens, one epoch, 128 tokens, then LoRA instead of full
    fine-tuning; a new length or method is timed again), then give back epochs where a shorter window left room.
    Returns the recipe, its estimate and what changed. ``recipe_of(raw)`` validates a recipe dict."""
    from ..config.recipe import merge_dicts

    changes: list[str] = []
    target = budget_minutes * BUDGET_SHARE
    current = estimate(recipe_of(raw), evidence)
    first_epochs = recipe_of(raw).train.epochs
    levers = list(LEVERS)
    while current.minutes > target and levers:
        r = recipe_of(raw)
        step = levers[0](r, raw, target / current.minutes)
        if step is None:
            levers.pop(0)
            continue
        update, change = step
        if "method" in update:
            raw = {k: v for k, v in raw.items() if k != "method"}
        raw = merge_dicts(raw, update)
        changes.append(change)
        # fewer epochs keep the step time; a new length or method is timed again (on this CPU a step at 512 tokens
        # cost 3.7x one at 256, not 2x: per-token cost is not constant across lengths)
        current = estimate(recipe_of(raw), evidence, current.seconds_per_step if set(update) == {"train"} else None)
    # a shorter window can leave room: give epochs back (same step time) up to what the recipe first asked
    r = recipe_of(raw)
    if changes and current.minutes < target and r.train.epochs < first_epochs:
        step_s = current.seconds_per_step
        epochs = min(math.floor(first_epochs), math.floor(r.train.epochs * target / current.minutes))
        while epochs > r.train.epochs and estimate(recipe_of(merge_dicts(raw, {"train": {"epochs": epochs}})),
                                                   evidence, step_s).minutes > target:
            epochs -= 1
        if epochs > r.train.epochs:
            changes.append(f"epochs {r.train.epochs:g} -> {epochs} (room left in the budget)")
            raw = merge_dicts(raw, {"train": {"epochs": epochs}})
            current = estimate(recipe_of(raw), evidence, step_s)
    if current.minutes > target:
        changes.append(f"still about {current.minutes:.0f} minutes at the smallest settings, over the "
                       f"{target:.3g} planned ({BUDGET_SHARE:.0%} of the budget of {budget_minutes:g} minutes, "
                       "a margin for timing noise): it needs less data (data.limit) or a smaller model")
    return raw, current, changes
