"""The training loop: one function, every task and method, one process or many.

A step covers ``grad_accum x world`` micro-batches of the epoch's global order; this process
runs its share. Each micro-batch's loss *sum* is scaled by the step's real unit count (known
in advance on every process, so no extra communication), gradients are averaged across
processes once, clipped, and AdamW steps with the scheduled LR. Validation reduces per batch.
Checkpoints hold everything needed to continue bit-for-bit: weights, optimizer, RNG, the data
position (the step; the order is a pure function of seed and epoch) and selection state.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..hardware import peak_rss_mb, rss_mb
from ..models.task_model import body
from ..run.metrics_log import read_metrics, truncate_after
from ..run.paths import RunPaths
from ..tasks.batching import batches, item_tokens, token_slices
from ..tasks.loss import step_scale
from ..tasks.scoring import autocast_for, score
from .checkpoint import (
    PREFIX,
    checkpoint_step,
    checkpoint_weights,
    find_resumable,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    trainable_weights,
)
from .distributed import Dist, all_reduce_sum, average_gradients, barrier, broadcast_flag
from .optim import build_optimizer, managed_params
from .schedule import lr_factor, warmup_steps
from .selection import BestTracker, StartBlend, WeightAverager
from .tracking import Tracker


@dataclass
class FitResult:
    steps: int
    total_steps: int
    stopped_early: bool
    final_weights: str  # "last", "best" or "swa"; "+wise0.5" when blended with the start (train.wise_ft)
    best: dict
    final_eval: dict | None
    base_eval: dict | None
    resumed_from: str | None
    train_seconds: float
    supervised_tokens: float
    input_tokens: int
    history: list[dict] = field(default_factory=list)

    @property
    def supervised_tokens_per_s(self) -> float:
        return self.supervised_tokens / max(self.train_seconds, 1e-9)


CPU_BATCH_TOKENS = 4096  # for a MiniLM-sized body (6 layers of 384); deeper and wider bodies get fewer
CPU_REFERENCE_UNITS = 6 * 384
CPU_MIN_BATCH_TOKENS = 1024  # below this the slices' own overhead starts to show


def batch_tokens(configured: int | None, device: str, config=None) -> int | None:
    """Padded tokens per forward pass: the recipe's ``train.max_batch_tokens``; else, on a CPU, 4096 tokens scaled
    down by the body's layers x width against MiniLM's (activation memory per token grows with both), never under
    1024 (SmolLM2-135M, 30 layers of 576: 1024); else no limit."""
    if configured is not None or device != "cpu":
        return configured
    layers = getattr(config, "num_hidden_layers", None)
    width = getattr(config, "hidden_size", None)
    if not (isinstance(layers, int) and isinstance(width, int)):
        return CPU_BATCH_TOKENS
    scaled = CPU_BATCH_TOKENS * CPU_REFERENCE_UNITS // (layers * width)
    return max(CPU_MIN_BATCH_TOKENS, min(CPU_BATCH_TOKENS, scaled // 256 * 256))


def steps_per_epoch(n_items: int, cfg, world: int) -> int:
    micro = math.ceil(n_items / cfg.batch_size)
    return max(1, math.ceil(micro / (cfg.grad_accum * world)))


def epoch_plan(items: list, cfg, seed: int, epoch: int, world: int) -> list[list[list]]:
    """The epoch's steps, each a list of global micro-batches (a pure function of seed and epoch)."""
    micro = list(batches(items, cfg.batch_size, seed * 1000 + epoch, group_by_length=cfg.group_by_length))
    per_step = cfg.grad_accum * world
    return [micro[i : i + per_step] for i in range(0, len(micro), per_step)]


def _to(batch: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()} if device != "cpu" else batch


def evaluate(model, task, items: list, *, batch_size: int, pad_id: int, ctx: Dist, dtype: torch.dtype,
             max_tokens: int | None = None) -> dict:
    """Validation metrics: this process's share scored by ``tasks.scoring``, the sums added across processes."""

    def across_processes(sums: torch.Tensor) -> torch.Tensor:
        return all_reduce_sum(sums.to(ctx.device) if ctx.device.startswith("cuda") else sums, ctx).cpu()

    return score(model, task, items[ctx.rank :: ctx.world], batch_size=batch_size, pad_id=pad_id, device=ctx.device,
                 dtype=dtype, reduce=across_processes, max_tokens=max_tokens)


@dataclass
class FitSpec:
    """What ``fit`` needs besides the model and data; built by ``train.run`` from a recipe."""

    cfg: object  # the recipe's TrainSection
    seed: int
    run_dir: Path
    ctx: Dist
    pad_id: int
    dtype: torch.dtype
    eval_batch_size: int = 32
    metric: str = "loss"
    mode: str = "min"
    on_epoch: Callable[[torch.nn.Module, int], None] | None = None
    tracker: Tracker | None = None
    resume: bool = True
    eval_before: bool = True  # score the untrained model first: the baseline every later number is read against
    on_eval: Callable[[int, dict], None] | None = None  # after each validation (hyperparameter search prunes here)
    on_step: Callable[[int], None] | None = None  # after each optimizer step and its checkpoint (fault-injection tests)
    blend_start: dict[str, torch.Tensor] | None = None  # train.wise_from: pretrained, the weights it names
    after_blend: Callable[[torch.nn.Module], None] | None = None  # after the WiSE-FT blend, before the final eval


def _named_in(weights: dict[str, torch.Tensor] | None, optimizer) -> dict[str, torch.Tensor]:
    """Those of ``weights`` the optimizer trains (a start given by name may also hold frozen weights)."""
    trained = managed_params(optimizer)
    return {n: t for n, t in (weights or {}).items() if n in trained}


def fit(model, task, train_items: list, val_items: list, spec: FitSpec) -> FitResult:
    """Train ``model`` in place and leave the chosen final weights in it (see ``FitResult.final_weights``)."""
    cfg, ctx = spec.cfg, spec.ctx
    per_epoch = steps_per_epoch(len(train_items), cfg, ctx.world)
    total = cfg.max_steps or math.ceil(cfg.epochs * per_epoch)
    if spec.on_epoch is not None:  # unfreezing only opens more: the last epoch's trainable set is the widest
        spec.on_epoch(model, (total - 1) // per_epoch)
    optimizer = build_optimizer(model, cfg)
    if spec.on_epoch is not None:
        spec.on_epoch(model, 0)
    params = managed_params(optimizer)
    warm = warmup_steps(cfg.warmup, total)
    eval_every = cfg.eval_every or per_epoch
    save_every = cfg.save_every or eval_every
    patience = cfg.early_stopping.patience if cfg.early_stopping else None
    best = BestTracker(spec.metric, spec.mode, patience)
    swa = WeightAverager(cfg.swa_last_k)
    start = StartBlend(cfg.wise_ft)
    scaler = torch.amp.GradScaler("cuda") if spec.dtype == torch.float16 and ctx.device.startswith("cuda") else None
    if cfg.compile:  # in place, on the body every task calls (a causal task calls it directly, not the model)
        body(model).compile()
    budget = batch_tokens(cfg.max_batch_tokens, ctx.device, getattr(model, "config", None))
    ckpt_dir = RunPaths(spec.run_dir).checkpoints

    step, resumed_from = 0, None
    latest, skipped = find_resumable(ckpt_dir) if spec.resume else (None, [])
    if ctx.main and (latest is not None or skipped):
        said = f"resuming from checkpoints/{latest.name}" if latest else "no checkpoint verifies: starting over"
        print(said + "".join(f"; skipped {s}" for s in skipped), file=sys.stderr)
    if latest is not None:
        saved_step = checkpoint_step(latest)
        if spec.on_epoch is not None:
            spec.on_epoch(model, saved_step // per_epoch)
        state, extra = load_checkpoint(latest, model, optimizer)
        step, resumed_from = state["step"], latest.name
        best.load(state["best"])
        swa.load(extra)
        start.load(extra)
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if ctx.main:
            truncate_after(RunPaths(spec.run_dir).metrics, step)

    def log(values: dict) -> None:
        if spec.tracker is not None and ctx.main:
            spec.tracker.log(step, values)

    if step == 0:
        start.remember(trainable_weights(optimizer) | _named_in(spec.blend_start, optimizer))
    base_eval = None
    if val_items and step == 0 and spec.eval_before:
        base_eval = evaluate(model, task, val_items, batch_size=spec.eval_batch_size, pad_id=spec.pad_id,
                             ctx=ctx, dtype=spec.dtype, max_tokens=budget)
        log({"eval_before": base_eval})
    elif resumed_from is not None:
        base_eval = next((r["eval_before"] for r in read_metrics(spec.run_dir) if "eval_before" in r), None)
    model.train()
    bar = tqdm(total=total, initial=step, disable=not ctx.main, desc="train", unit="step", dynamic_ncols=True)
    plan_epoch, plan = -1, []
    stopped = False
    seconds, supervised, input_tokens = 0.0, 0.0, 0
    window_t, window_units, window_inputs = time.perf_counter(), 0.0, 0
    while step < total:
        epoch, within = divmod(step, per_epoch)
        if epoch != plan_epoch:
            if spec.on_epoch is not None:
                spec.on_epoch(model, epoch)
            plan, plan_epoch = epoch_plan(train_items, cfg, spec.seed, epoch, ctx.world), epoch
        started = time.perf_counter()
        micro = plan[within]
        units = sum(task.units(item) for mb in micro for item in mb)
        scale = step_scale(units, ctx.world)
        factor = lr_factor(step, total, warm, cfg.schedule)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor
        loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)  # one host sync per step, not per batch
        step_inputs = sum(item_tokens(it) for mb in micro for it in mb)
        for mb in micro[ctx.rank :: ctx.world]:
            for part in token_slices(mb, budget):
                batch = _to(task.collate(part, spec.pad_id), ctx.device)
                with autocast_for(spec.dtype, ctx.device):
                    loss, _ = task.loss_sum(model, batch)
                scaled = loss * scale
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
                loss_sum += loss.detach().double()
        trainable = [p for p in params.values() if p.requires_grad]
        average_gradients(trainable, ctx)
        if scaler is not None:
            scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm or float("inf"))
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step_loss = float(all_reduce_sum(loss_sum.reshape(1), ctx)[0]) / max(units, 1.0)
        step += 1
        seconds += time.perf_counter() - started
        supervised += units
        input_tokens += step_inputs
        window_units += units
        window_inputs += step_inputs
        lr = optimizer.param_groups[0]["lr"]
        bar.update(1)
        if step % cfg.log_every == 0 or step == total:
            elapsed = max(time.perf_counter() - window_t, 1e-9)
            rate = window_inputs / elapsed
            log({"loss": step_loss, "lr": lr, "grad_norm": float(grad_norm), "epoch": round(step / per_epoch, 4),
                 "supervised_tokens": units, "tokens_per_s": round(rate, 1),
                 "supervised_per_s": round(window_units / elapsed, 1), "rss_mb": round(rss_mb()),
                 "peak_rss_mb": round(peak_rss_mb())})
            window_t, window_units, window_inputs = time.perf_counter(), 0.0, 0
            bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{rate:.0f}")
        evaluated = False
        if val_items and (step % eval_every == 0 or step == total):
            metrics = evaluate(model, task, val_items, batch_size=spec.eval_batch_size, pad_id=spec.pad_id,
                               ctx=ctx, dtype=spec.dtype, max_tokens=budget)
            improved = best.update(step, metrics)
            swa.add(trainable_weights(optimizer))
            log({"eval": metrics, "best": improved})
            bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()), file=sys.stderr)
            stopped = broadcast_flag(best.should_stop, ctx)
            evaluated = True
            if spec.on_eval is not None:
                spec.on_eval(step, metrics)
        if evaluated or step % save_every == 0 or step == total:
            if ctx.main:
                protect = {f"{PREFIX}{best.best_step:07d}"} if best.best_step is not None else set()
                state = {"step": step, "epoch": epoch, "best": best.state(),
                         "scaler": scaler.state_dict() if scaler is not None else None}
                save_checkpoint(ckpt_dir, model, optimizer, state, swa.tensors() | start.tensors(),
                                keep=cfg.keep_checkpoints, protect=protect)
            barrier(ctx)
        if spec.on_step is not None:
            spec.on_step(step)
        if stopped:
            break
    bar.close()

    final, final_eval = "last", None
    if swa.enabled and len(swa.snapshots) >= 2:
        load_weights(model, swa.average())
        final = "swa"
    elif cfg.early_stopping is not None and best.best_step is not None:
        best_dir = ckpt_dir / f"{PREFIX}{best.best_step:07d}"
        load_weights(model, checkpoint_weights(best_dir))
        final = "best"
    if start.enabled:
        load_weights(model, start.blend(trainable_weights(optimizer)))
        final += f"+wise{start.share:g}"
        if spec.after_blend is not None:
            spec.after_blend(model)
    if val_items:
        final_eval = evaluate(model, task, val_items, batch_size=spec.eval_batch_size, pad_id=spec.pad_id,
                              ctx=ctx, dtype=spec.dtype, max_tokens=budget)
        log({"final_eval": final_eval, "final_weights": final})
    return FitResult(step, total, stopped, final, best.state(), final_eval, base_eval, resumed_from, seconds,
                     supervised, input_tokens)
