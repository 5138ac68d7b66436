"""What a search leaves behind: ``best.yaml``, ``trials.csv`` and ``tune.html`` (history and importance)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..atomic import atomic_write_text
from ..html_report import esc, page, table


def trials_table(study) -> list[dict]:
    rows = []
    for t in study.trials:
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        last = max(t.intermediate_values) if t.intermediate_values else None
        rows.append({"trial": t.number, "state": t.state.name.lower(),
                     "value": t.value if t.value is not None else (
                         t.intermediate_values[last] if last is not None else None),
                     **{k: v for k, v in t.params.items()}, "seconds": round(duration, 1) if duration else None,
                     "worker": t.user_attrs.get("worker"), "run_dir": t.user_attrs.get("run_dir")})
    return rows


def _history_plot(study, metric: str) -> str:
    from ..eval.plots import figure, png

    fig, ax = figure(6.0, 3.2)
    done = [t for t in study.trials if t.value is not None]
    pruned = [t for t in study.trials if t.state.name == "PRUNED" and t.intermediate_values]
    if done:
        ax.plot([t.number for t in done], [t.value for t in done], "o", label="finished trial")
        best, line = None, []
        sign = 1 if study.direction.name == "MAXIMIZE" else -1
        for t in sorted(done, key=lambda t: t.number):
            best = t.value if best is None or sign * t.value > sign * best else best
            line.append((t.number, best))
        ax.step(*zip(*line, strict=True), where="post", label="best so far")
    if pruned:
        ax.plot([t.number for t in pruned], [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
                "x", color="grey", label="pruned (last report)")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.grid(alpha=0.3)
    ax.legend()
    return png(fig)


def importances(study) -> dict[str, float]:
    """fANOVA importance of each parameter over finished trials (empty when there are too few)."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < 3:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError):
        return {}


def _importance_plot(values: dict[str, float]) -> str:
    from ..eval.plots import figure, png

    fig, ax = figure(6.0, 0.4 * len(values) + 1.0)
    ax.barh(list(values), list(values.values()))
    ax.invert_yaxis()
    ax.set_xlabel("importance (fANOVA, share of the metric's variance)")
    return png(fig)


def write_outputs(study, recipe, folder: Path, metric: str, storage_url: str) -> dict:
    from ..eval.report import _IMAGE_CHECK
    from ..run.directory import recipe_text
    from .search import trial_recipe

    rows = trials_table(study)
    buf = io.StringIO()
    if rows:
        columns = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(buf, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(folder / "trials.csv", buf.getvalue())
    result: dict = {"study": study.study_name, "storage": storage_url, "metric": metric,
                    "direction": study.direction.name.lower(), "trials": rows, "folder": str(folder)}
    try:
        best = study.best_trial
    except ValueError:
        best = None
    sections = []
    if best is not None:
        best_recipe = trial_recipe(recipe, best.params, f"{recipe.output_dir}-best", test=True)
        header = (f"# Best of study {study.study_name!r}: trial {best.number}, validation {metric} {best.value:.6g}\n"
                  f"# Run with: nichetune train {folder / 'best.yaml'}\n")
        atomic_write_text(folder / "best.yaml", header + recipe_text(best_recipe))
        result.update(best_trial=best.number, best_value=best.value, best_params=best.params,
                      best_recipe=str(folder / "best.yaml"))
        sections.append(("Best", f"<p>Trial {best.number}: validation {esc(metric)} <b id='best-value'>"
                                 f"{best.value:.6g}</b> with {esc(best.params)}. Recipe: <code>"
                                 f"{esc(folder / 'best.yaml')}</code></p>"))
    imp = importances(study)
    result["importance"] = imp
    sections.append(("Optimisation history", _history_plot(study, metric)))
    if imp:
        sections.append(("Parameter importance", _importance_plot(imp)))
    columns = list(dict.fromkeys(k for r in rows for k in r if k != "run_dir"))
    sections.append(("Trials", table([{k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()}
                                      for r in rows], columns)))
    html = page(f"nichetune tune: {study.study_name}", sections, subtitle=f"storage {storage_url}")
    atomic_write_text(folder / "tune.html", html.replace("</body>", _IMAGE_CHECK + "</body>"))
    result["page"] = str(folder / "tune.html")
    atomic_write_text(folder / "result.json", json.dumps(result, indent=1, default=str) + "\n")
    return result
