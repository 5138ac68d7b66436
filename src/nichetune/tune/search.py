"""Hyperparameter search with Optuna: TPE sampling (or a grid), pruning on the validation metric, resumable storage.

Each trial is the recipe with the sampled settings applied, trained into ``DIR/trial-NNNN`` with
``eval.test`` off, so the search never sees the test split; its objective is the validation
metric that picks the best checkpoint. The study lives in SQLite under ``DIR`` by default, so a
killed search resumes; any database URL Optuna accepts lets workers on several machines share
one study. A trial whose worker died (no heartbeat for twice ``tune.heartbeat_s``) is marked
failed and retried once.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config.recipe import Recipe, load_recipe, merge_dicts
from ..errors import NichetuneError

STUDY_FILE = "study.db"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise NichetuneError("nichetune tune needs Optuna", hint='pip install "nichetune[hpo]"') from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def tune_dir(recipe: Recipe) -> Path:
    return Path(recipe.output_dir).with_name(Path(recipe.output_dir).name + "-tune")


def _nest(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _method_fields(name: str) -> set[str]:
    from ..methods import METHODS

    return set(METHODS[name].config.model_fields) if name in METHODS else set()


def sample(trial, space: dict, method: str) -> dict:
    """Sample ``space`` (key path -> SearchParam); ``method.*`` keys only where the chosen method has them."""
    params = {}
    keys = sorted(space, key=lambda k: k != "method.name")  # the method first: the others depend on it
    for key in keys:
        p = space[key]
        if key.startswith("method.") and key != "method.name":
            chosen = params.get("method.name", method)
            if key.split(".", 1)[1] not in _method_fields(chosen):
                continue
        if p.type == "categorical":
            params[key] = trial.suggest_categorical(key, p.choices)
        elif p.type == "int":
            params[key] = trial.suggest_int(key, int(p.low), int(p.high), log=p.log)
        else:
            params[key] = trial.suggest_float(key, p.low, p.high, log=p.log)
    return params


def trial_recipe(base: Recipe, params: dict, output_dir: str, *, test: bool = False) -> Recipe:
    """The base recipe with ``params`` applied, no ``tune`` section, writing to ``output_dir``."""
    raw = base.model_dump(mode="json", exclude={"tune"})
    if "method.name" in params and params["method.name"] != raw["method"]["name"]:
        raw["method"] = {}  # another method: the old method's settings do not apply to it
    raw = merge_dicts(raw, _nest(params))
    raw["output_dir"] = output_dir
    raw["eval"]["test"] = test
    return load_recipe(data=raw)


def pruning_report(trial, metric: str, prune_after: int, pruned: type[Exception]):
    """The ``on_eval(step, metrics)`` hook of one trial: every evaluation goes to the study, and from the
    ``prune_after + 1``-th on the pruner may stop the trial (raising ``pruned``). In a drug-reviews study 5 of 7
    trials were pruned at their first evaluation, 10-epoch schedules judged against 5-epoch ones after one epoch."""
    reported = 0

    def report(step: int, metrics: dict) -> None:
        nonlocal reported
        trial.report(metrics[metric], step)
        reported += 1
        if reported > prune_after and trial.should_prune():
            raise pruned(f"pruned at step {step}: {metric} {metrics[metric]:.4g}")

    return report


def _storage(url: str | None, folder: Path, heartbeat: int):
    from optuna.storages import RDBStorage, RetryFailedTrialCallback

    url = url or f"sqlite:///{(folder / STUDY_FILE).resolve()}"
    return RDBStorage(url, heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
                      heartbeat_stale_trial_callback=RetryFailedTrialCallback(max_retry=1)), url


def _reaped(exc: BaseException, optuna) -> bool:
    """Whether ``exc`` (or what it arose from) says the trial was already finished by someone else."""
    while exc is not None:
        if isinstance(exc, optuna.exceptions.UpdateFinishedTrialError) or "Cannot tell a FAIL trial" in str(exc):
            return True
        exc = exc.__context__
    return False


def run_search(recipe: Recipe, *, trials: int | None = None, timeout: float | None = None,
               storage: str | None = None, study_name: str | None = None, progress=print, on_step=None) -> dict:
    """Run (or resume, or join) the study until it holds ``trials`` finished trials; write the outputs.

    ``on_step(step)`` is passed to every trial's training (tests kill a worker there).
    """
    optuna = _optuna()
    from .. import train_recipe as train

    if recipe.tune is None or not recipe.tune.space:
        raise NichetuneError("the recipe has no tune.space to search",
                             hint="add a tune: section, e.g. tune: {space: {train.lr: {type: float, low: 1e-4, "
                                  "high: 3e-3, log: true}}}")
    cfg = recipe.tune
    folder = tune_dir(recipe)
    folder.mkdir(parents=True, exist_ok=True)
    metric, direction = objective_metric(recipe)
    store, url = _storage(storage, folder, cfg.heartbeat_s)
    name = study_name or Path(recipe.output_dir).name
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=cfg.startup_trials) if cfg.pruner == "median"
              else optuna.pruners.NopPruner())
    study = optuna.create_study(study_name=name, storage=store, load_if_exists=True, pruner=pruner,
                                direction="minimize" if direction == "min" else "maximize",
                                sampler=_sampler(cfg, optuna))
    target = trials or cfg.trials
    if cfg.sampler == "grid":
        target = min(target, cfg.grid_size())

    def objective(trial) -> float:
        params = sample(trial, cfg.space, recipe.method.name)
        out = folder / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(out))
        trial.set_user_attr("worker", f"{os.uname().nodename}:{os.getpid()}")
        progress(f"trial {trial.number}: {params}")

        report = pruning_report(trial, metric, cfg.prune_after, optuna.TrialPruned)
        manifest = train(trial_recipe(recipe, params, str(out)), fresh=True, on_eval=report, on_step=on_step)
        value = manifest.result.validation[metric]  # the final weights: what retraining reproduces
        progress(f"trial {trial.number}: {metric} {value:.4g}")
        return float(value)

    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    callbacks = [optuna.study.MaxTrialsCallback(target, states=finished)]
    for _ in range(max(1, 2 * target)):
        done = sum(t.state in finished for t in study.trials)
        if done >= target:
            break
        try:
            study.optimize(objective, n_trials=target - done, timeout=timeout, callbacks=callbacks,
                           catch=(NichetuneError,))
            break
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as exc:
            # another worker found this worker's heartbeat late and failed its running trial (retrying it);
            # this worker's result can no longer be recorded, so it carries on with the study
            if not _reaped(exc, optuna):
                raise
            progress(f"a trial of this worker was marked failed by another worker (its heartbeat came late): "
                     f"{exc}; it is retried, and this worker carries on")
    from .page import write_outputs

    return write_outputs(study, recipe, folder, metric, url)


def _sampler(cfg, optuna):
    """TPE (seeded per worker, so two workers do not propose the same settings), or the grid of every categorical
    combination (Optuna hands each worker a point no trial has taken)."""
    if cfg.sampler == "grid":
        return optuna.samplers.GridSampler({k: list(p.choices) for k, p in cfg.space.items()}, seed=cfg.seed)
    return optuna.samplers.TPESampler(seed=cfg.seed + os.getpid() % 1000)


def objective_metric(recipe: Recipe) -> tuple[str, str]:
    """``tune.metric``, else the metric that picks the best checkpoint; and its direction."""
    return recipe.objective_metric()
