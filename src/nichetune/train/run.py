"""``nichetune train``: from a validated recipe to a finished run directory."""

from __future__ import annotations

import os
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_write_text
from ..errors import NichetuneError
from ..hardware import allocator, pick_device, pick_dtype, steady_allocator
from ..methods.registry import METHODS, apply_method, check_method
from ..models.architecture import model_facts
from ..models.heads import HEADS
from ..models.resolve import ResolvedModel, resolve_model
from ..models.task_model import load_base
from ..run.directory import (
    check_output_dir,
    clear_run,
    recipe_text,
    remove_partials,
    run_lock,
    save_final,
    write_run_manifest,
)
from ..run.manifest import RunManifest
from ..run.paths import RunPaths
from ..tasks import build_task, task_names, task_spec
from ..truncation import set_truncation
from .data import load_splits, write_splits
from .distributed import barrier, init_from_env, shutdown
from .loop import FitSpec, batch_tokens, evaluate, fit
from .model_setup import cast_frozen, checkpoint_activations
from .tracking import Tracker


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)


def check_recipe(recipe) -> ResolvedModel:
    """Combinations that type checks alone cannot catch, refused before any work starts.

    The base model is resolved and its module tree built on the meta device (no weights read), so a
    method the model cannot take or a target module it lacks is refused here, by ``train --check`` too.

    Returns:
        The resolved base model, so training does not resolve it again.
    """
    method = METHODS[recipe.method.name]
    t = recipe.train
    task = task_spec(recipe.task)
    if t.packing and not task.packable:
        packable = ", ".join(n for n in task_names() if task_spec(n).packable)
        raise NichetuneError(f"train.packing applies to {packable}, not {recipe.task}",
                             hint=f"remove train.packing ({recipe.task} batches are padded per batch)")
    if recipe.model.truncation != "head" and not HEADS[task.head].fresh:
        raise NichetuneError(f"model.truncation={recipe.model.truncation} applies to classifiers, not {recipe.task}",
                             hint="remove model.truncation (generators keep the start of a conversation)")
    if t.contrastive and not HEADS[task.head].fresh:
        raise NichetuneError(f"train.contrastive pairs texts by label; {recipe.task} has no labels",
                             hint="remove train.contrastive")
    if t.label_anchors and not t.contrastive:
        raise NichetuneError("train.label_anchors adds rows to the contrastive pair stage, which is off",
                             hint="set train.contrastive (e.g. 20) or remove train.label_anchors")
    if t.head_init == "logistic" and not HEADS[task.head].fresh:
        raise NichetuneError(f"train.head_init: logistic fits a classifier's head; {recipe.task} has none",
                             hint="remove train.head_init")
    if t.wise_from == "pretrained" and not (t.wise_ft and t.head_init == "logistic"):
        raise NichetuneError("train.wise_from: pretrained blends the body with its pretrained weights and fits the "
                             "head again on the blend, which needs train.wise_ft and train.head_init: logistic",
                             hint="set train.wise_ft (e.g. 0.5) and train.head_init: logistic, or remove "
                                  "train.wise_from")
    if t.zero_shot_prior and not (HEADS[task.head].fresh and method.whole_model):
        raise NichetuneError("train.zero_shot_prior adds the base encoder's label similarities to a classifier's "
                             f"logits inside its own forward pass; {recipe.task} with {recipe.method.name} is not a "
                             "whole-model classifier", hint="use method freeze (every block) or full, or remove "
                                                             "train.zero_shot_prior")
    if t.lexical == "stack" and not HEADS[task.head].fresh:
        raise NichetuneError(f"train.lexical=stack combines a classifier with TF-IDF; {recipe.task} has no labels",
                             hint="remove train.lexical")
    if t.packing and method.virtual_tokens:
        raise NichetuneError(f"{recipe.method.name} adds virtual tokens, which packed rows cannot share",
                             hint="set train.packing=false for this method")
    no_validation = recipe.data.dataset is None and recipe.data.validation is None and len(recipe.data.split.ratios) < 2
    wanted = {"train.early_stopping": t.early_stopping is not None, "train.lexical": t.lexical == "stack",
              "train.zero_shot_prior": t.zero_shot_prior}
    for name, needs in wanted.items():
        if needs and no_validation:
            raise NichetuneError(f"{name} needs validation data",
                                 hint="give data.validation, or data.split.ratios with a validation share")
    resolved = resolve_model(recipe.model.name, allow_pickle=recipe.model.allow_pickle,
                             trust_remote_code=recipe.model.trust_remote_code)
    check_method(recipe.method, model_facts(resolved, task.head, trust_remote_code=recipe.model.trust_remote_code))
    return resolved


def _stack(model, tokenizer, splits, recipe, max_length: int, dtype, device: str):
    """The lexical stack and what the manifest records of it; the stack's test metrics under ``stack_test``."""
    from .lexical_stage import fit_lexical_stage

    if not splits.validation:
        raise NichetuneError("train.lexical=stack fits its weight on validation rows and this run has none",
                             hint="give data.validation, or data.split.ratios with a validation share")
    started = time.perf_counter()
    stack, encoder_test, stack_test = fit_lexical_stage(
        model, tokenizer, splits, max_length=max_length, metric=recipe.headline_metric(), dtype=dtype, device=device,
        batch_size=recipe.eval.batch_size)
    print(f"lexical stack: {stack.model.name} (validation {stack.model.validation}), weight {stack.weight:.2f}; "
          f"validation {stack.summary['validation']}", file=sys.stderr)
    return stack, {"kind": stack.model.kind, "weight": stack.weight, "w_encoder": stack.w_encoder,
                   "w_lexical": stack.w_lexical, **stack.summary, "seconds": round(time.perf_counter() - started, 2),
                   "encoder_test": encoder_test, "stack_test": stack_test}


def _prior(model, tokenizer, splits, recipe, max_length: int, dtype, device: str) -> dict:
    """``train.zero_shot_prior``: fit its weight on validation and attach it (the test metrics then include it)."""
    from .prior_stage import fit_zero_shot_prior

    if not splits.validation:
        raise NichetuneError("train.zero_shot_prior fits its weight on validation rows and this run has none",
                             hint="give data.validation, or data.split.ratios with a validation share")
    summary = fit_zero_shot_prior(model, tokenizer, splits.train, splits.validation, splits.labels,
                                  max_length=max_length, metric=recipe.headline_metric(), dtype=dtype, device=device)
    print(f"zero-shot prior: labels worded as '{summary['template']}', weight {summary['weight']:g} (validation "
          f"{summary['metric']} {summary['validation'][str(summary['weight'])]:.3f}, head alone "
          f"{summary['validation']['0.0']:.3f})", file=sys.stderr)
    return summary


def _extras(*parts):
    """One ``save_final`` extra writing each of ``parts`` that is there (a lexical stack, a zero-shot prior)."""
    present = [p for p in parts if p is not None]
    return (lambda folder: [p.save(folder) for p in present]) if present else None


def train(recipe, *, fresh: bool = False, on_eval=None, on_step=None) -> RunManifest | None:
    """Train ``recipe`` (a validated ``Recipe``) and return the run's manifest.

    An unfinished run in ``output_dir`` with the same recipe resumes from its newest verified
    checkpoint. Under ``torchrun`` / ``accelerate launch`` every process calls this.
    ``on_eval(step, metrics)`` is called after every validation (a search uses it to prune), and
    ``on_step(step)`` after every optimizer step and its checkpoint (tests inject faults there).

    Raises:
        NichetuneError: bad combinations, data or model problems, each with a hint.
    """
    resolved = check_recipe(recipe)
    run_dir = Path(recipe.output_dir)
    steady_allocator()
    ctx = init_from_env(pick_device("auto"))
    try:
        with run_lock(run_dir) if ctx.main else nullcontext():
            return _train(recipe, resolved, run_dir, ctx, fresh, on_eval, on_step)
    finally:
        shutdown(ctx)


def _train(recipe, resolved: ResolvedModel, run_dir: Path, ctx, fresh: bool, on_eval=None, on_step=None) -> dict:
    t = recipe.train
    paths = RunPaths(run_dir)
    mode = check_output_dir(run_dir, recipe, fresh=fresh) if ctx.main else "resume"
    barrier(ctx)
    if ctx.main:
        if mode == "new":
            kept = clear_run(run_dir)
            if kept:
                print(f"note: {run_dir} keeps files no run writes: {', '.join(kept[:5])}", file=sys.stderr)
        else:
            for stale in remove_partials(run_dir):
                print(f"removed {stale}, left half-written by an interrupted run", file=sys.stderr)
        atomic_write_text(paths.recipe, recipe_text(recipe))
    barrier(ctx)
    started = time.time()
    seed_everything(recipe.seed, deterministic=t.deterministic)
    splits = load_splits(recipe, paths.data)
    if ctx.main:
        write_splits(splits, recipe, paths.data)
    from ..models.loading import load_tokenizer

    tokenizer = load_tokenizer(resolved, allow_pickle=recipe.model.allow_pickle,
                               trust_remote_code=recipe.model.trust_remote_code)
    set_truncation(tokenizer, recipe.model.truncation)  # saved with the weights: every reader cuts texts alike
    method = METHODS[recipe.method.name]
    task = build_task(recipe.task, splits.labels, t, virtual_tokens=method.virtual_tokens)
    max_length = min(recipe.model.max_length, int(getattr(tokenizer, "model_max_length", 10**9) or 10**9))
    train_examples = task.encode(splits.train, tokenizer, max_length, train=True)
    val_examples = task.encode(splits.validation, tokenizer, max_length, train=False)
    train_items = task.items(train_examples, max_length, t.packing)
    val_items = task.items(val_examples, max_length, False)

    head = task_spec(recipe.task).head
    model = load_base(resolved, head, splits.labels, dropout=t.dropout, attention_dropout=t.attention_dropout,
                      trust_remote_code=recipe.model.trust_remote_code, allow_pickle=recipe.model.allow_pickle)
    model = apply_method(model, recipe.method, head)
    model.to(ctx.device)
    if t.gradient_checkpointing:
        checkpoint_activations(model, t.gradient_checkpointing)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total_params = sum(p.numel() for p in model.parameters())
    seed_everything(recipe.seed * 7919 + ctx.rank)  # dropout streams differ per process, same weights everywhere
    dtype = pick_dtype(t.precision, ctx.device)
    if dtype != torch.float32 and not method.whole_model:
        cast_frozen(model, dtype)
    on_epoch = (lambda m, e: method.on_epoch(m, recipe.method, e)) if method.on_epoch else None
    metric, direction = recipe.selection_metric()
    tracker = Tracker(run_dir, t.tracking, run_name=run_dir.name,
                      params={"method": recipe.method.name, "model": recipe.model.name, "lr": t.lr}) \
        if ctx.main else None
    spec = FitSpec(cfg=t, seed=recipe.seed, run_dir=run_dir, ctx=ctx, pad_id=tokenizer.pad_token_id, dtype=dtype,
                   eval_batch_size=recipe.eval.batch_size, metric=metric, mode=direction, on_epoch=on_epoch,
                   tracker=tracker, on_eval=on_eval, on_step=on_step)
    contrastive, head_fit, refit = None, None, {}
    fresh_start = not (mode == "resume" and any(paths.checkpoints.glob("step-*")))
    if t.wise_ft and t.wise_from == "pretrained":
        from .contrastive import blend_with_pretrained, fit_head_logistic

        blend_with_pretrained(spec, model, fresh_start, lambda m: refit.update(fit_head_logistic(
            m, tokenizer, splits.train, splits.labels, max_length=max_length, dtype=dtype, device=ctx.device)))
    if t.contrastive and fresh_start:
        from .contrastive import anchors_for, contrastive_stage

        anchors = anchors_for(model, tokenizer, splits.train, splits.labels, t.anchor_wording, max_length) \
            if t.label_anchors else []
        contrastive = contrastive_stage(model, tokenizer, splits.train + anchors, splits.labels, max_length=max_length,
                                        iterations=t.contrastive, lr=t.lr, batch_size=t.batch_size, seed=recipe.seed,
                                        dtype=dtype, device=ctx.device)
        contrastive["anchors"] = [r["text"] for r in anchors]
    if t.head_init == "logistic" and fresh_start:
        from .contrastive import fit_head_logistic

        head_fit = fit_head_logistic(model, tokenizer, splits.train, splits.labels, max_length=max_length,
                                     dtype=dtype, device=ctx.device)
    try:
        result = fit(model, task, train_items, val_items, spec)
        prior = _prior(model, tokenizer, splits, recipe, max_length, dtype, ctx.device) if t.zero_shot_prior else {}
        test_metrics = None
        if recipe.eval.test and splits.test:
            test_items = task.items(task.encode(splits.test, tokenizer, max_length, train=False), max_length, False)
            test_metrics = evaluate(model, task, test_items, batch_size=recipe.eval.batch_size,
                                    pad_id=tokenizer.pad_token_id, ctx=ctx, dtype=dtype,
                                    max_tokens=batch_tokens(t.max_batch_tokens, ctx.device, model.config))
            if tracker is not None:
                tracker.log(result.steps, {"test": test_metrics})
    finally:
        if tracker is not None:
            tracker.close()
    if not ctx.main:
        return None
    stack, lexical = None, None
    if t.lexical == "stack":
        stack, lexical = _stack(model, tokenizer, splits, recipe, max_length, dtype, ctx.device)
        test_metrics = lexical.pop("stack_test") or test_metrics
    save_final(model, tokenizer, recipe, head, run_dir, extra=_extras(stack, getattr(model, "nichetune_prior", None)))
    info = {
        "task": recipe.task, "head": head, "seed": recipe.seed, "labels": splits.labels,
        "base_model": {"reference": recipe.model.name, "path": str(resolved.path), "source": resolved.source,
                       "architectures": resolved.architectures},
        "method": recipe.method.model_dump(mode="json"),
        "parameters": {"trainable": trainable, "total": total_params,
                       "trainable_share": round(trainable / max(total_params, 1), 6)},
        "hardware": {"device": ctx.device, "precision": str(dtype).removeprefix("torch."), "world_size": ctx.world,
                     "threads": torch.get_num_threads(), "allocator": allocator()},
        "data": {"sources": splits.sources, "rows": splits.sizes(), "quarantined": splits.quarantined,
                 "train_items": len(train_items), "packed": t.packing},
        "result": {"steps": result.steps, "planned_steps": result.total_steps, "stopped_early": result.stopped_early,
                   "final_weights": result.final_weights, "best": result.best,
                   "validation_before": result.base_eval, "validation": result.final_eval,
                   "test": test_metrics, "resumed_from": result.resumed_from,
                   "train_seconds": round(result.train_seconds, 2), "wall_seconds": round(time.time() - started, 2),
                   "supervised_tokens_per_s": round(result.supervised_tokens_per_s, 1),
                   **({"lexical": lexical} if lexical else {}),
                   **({"contrastive": contrastive} if contrastive else {}),
                   **({"head_fit": head_fit} if head_fit else {}),
                   **({"head_refit": refit} if refit else {}),
                   **({"zero_shot_prior": prior} if prior else {})},
    }
    return write_run_manifest(run_dir, info)
