"""An A/B test read from the prediction log: per-arm accuracy from feedback (and the mean grade, a KPI), a
sample-ratio-mismatch check, and an always-valid comparison (``stats.sequential``) looked at once per window, so
that reading the report every day does not inflate false positives; a stop rule and a verdict sentence; and the
registry move that promotes the winner."""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import NichetuneError
from ..stats.sequential import SequentialTest, sample_ratio_mismatch

SRM_ALPHA = 0.001  # the split is declared broken below this (the usual, strict level: it is checked every look)


def _arm_stats(items: list[dict]) -> dict:
    labelled = [i for i in items if i["true_label"] is not None]
    graded = [i["grade"] for i in items if i["grade"] is not None]
    right = sum(i["true_label"] == i["label"] for i in labelled)
    return {"items": len(items), "units": len({i["unit"] or i["request_id"] for i in items}),
            "labelled": len(labelled), "correct": right,
            "accuracy": right / len(labelled) if labelled else None,
            "mean_grade": sum(graded) / len(graded) if graded else None,
            "versions": sorted({i["version"] for i in items if i["version"]})}


def ab_report(log: str | Path, experiment: str, *, control: str | None = None, alpha: float = 0.05,
              look_s: float = 86400.0, min_labelled: int = 100, max_labelled: int | None = None) -> dict:
    """Arms, SRM, and the sequential test of accuracy (treatment - control) looked at every ``look_s``.

    Stop rule: stop when the always-valid p-value falls below ``alpha`` (the better arm wins), or when both arms
    have ``max_labelled`` labelled items without a difference; otherwise keep collecting.

    Raises:
        NichetuneError: the experiment is unknown, has no items, or ``control`` is not one of its arms.
    """
    from .log import read_experiment, read_items

    definition = read_experiment(log, experiment)
    arms = sorted(definition["arms"])
    control = control or arms[0]
    if control not in arms or len(arms) != 2:
        raise NichetuneError(f"{experiment}: control {control!r} must be one of exactly two arms ({', '.join(arms)})",
                             hint="give --control ARM")
    treatment = next(a for a in arms if a != control)
    items = read_items(log, experiment=experiment, shadow=False)
    if not items:
        raise NichetuneError(f"{log} has no answers for experiment {experiment!r} yet",
                             hint=f"send classify requests to model {experiment!r} with a 'user'")
    stats = {a: _arm_stats([i for i in items if i["arm"] == a]) for a in arms}
    srm = sample_ratio_mismatch({a: stats[a]["units"] for a in arms}, definition["arms"])
    test, looks = SequentialTest(alpha=alpha), []
    counts = {a: [0, 0] for a in arms}  # (correct, labelled) so far, per arm
    # read_items gives them in time order; an arm a later definition dropped is not compared
    labelled = [i for i in items if i["true_label"] is not None and i["arm"] in counts]
    edge, n = math.floor(items[0]["ts"] / look_s) * look_s + look_s, 0
    while True:  # one look per window, on everything labelled by its end
        while n < len(labelled) and labelled[n]["ts"] < edge:
            counts[labelled[n]["arm"]][0] += labelled[n]["true_label"] == labelled[n]["label"]
            counts[labelled[n]["arm"]][1] += 1
            n += 1
        state = test.look(*counts[control], *counts[treatment])
        looks.append({"at": edge, **{f"n_{a}": counts[a][1] for a in arms}, **state})
        if edge > items[-1]["ts"]:
            break
        edge += look_s
    last = looks[-1]
    enough = min(stats[a]["labelled"] for a in arms)
    if srm < SRM_ALPHA:
        decision, winner = "stop: the split is broken", None
        got = ", ".join(f"{a} {stats[a]['units']}" for a in arms)
        sentence = (f"Sample ratio mismatch (p = {srm:.2g}): the arms did not get their shares of users ({got}), so "
                    "no comparison can be trusted; fix the assignment or the logging first.")
    elif test.stopped_at is not None and enough >= min_labelled:
        winner = treatment if last["difference"] > 0 else control
        loser = control if winner == treatment else treatment
        decision = f"stop: promote {winner}" if winner == treatment else f"stop: keep {control}"
        sentence = (f"{winner} is better than {loser} on accuracy: {stats[winner]['accuracy']:.3f} against "
                    f"{stats[loser]['accuracy']:.3f} ({last['difference']:+.3f} for {treatment}, always-valid 95% "
                    f"interval {last['ci_low']:+.3f} to {last['ci_high']:+.3f}, p = {test.p_value:.2g} after "
                    f"{len(looks)} looks, first below {alpha:g} at look {test.stopped_at}).")
    elif max_labelled is not None and enough >= max_labelled:
        decision, winner = "stop: no difference", None
        sentence = (f"No difference found after {enough} labelled answers per arm (interval {last['ci_low']:+.3f} to "
                    f"{last['ci_high']:+.3f}): keep {control}, the simpler choice.")
    else:
        decision, winner = "continue", None
        sentence = (f"Not decided yet: {treatment} - {control} = {_signed(last['difference'])} on accuracy "
                    f"(always-valid interval {last['ci_low']:+.3f} to {last['ci_high']:+.3f}, p = {test.p_value:.2g} "
                    f"after {len(looks)} looks); keep collecting feedback (at least {min_labelled} per arm).")
    return {"experiment": experiment, "arms": definition["arms"], "salt": definition["salt"], "control": control,
            "treatment": treatment, "stats": stats, "srm_p_value": srm, "looks": looks, "p_value": test.p_value,
            "decision": decision, "winner": winner, "sentence": sentence}


def _signed(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:+.3f}"


def promote(report: dict, registry, *, alias: str = "champion", who: str | None = None) -> dict:
    """Move ``alias`` to the winning arm's registry version (from its logged ``version``, ``NAME@N``).

    Raises:
        NichetuneError: no winner, or the winner was not served from the registry.
    """
    winner = report["winner"]
    if winner is None:
        raise NichetuneError(f"{report['experiment']} has no winner: {report['sentence']}",
                             hint="wait for the test to stop, then promote")
    versions = [v for v in report["stats"][winner]["versions"] if "@" in v and not v.startswith(("run:", "export:"))]
    if len(versions) != 1:
        raise NichetuneError(f"{winner} was not served as one registry version ({', '.join(versions) or 'none'})",
                             hint="serve the arms as registry references (NAME@VERSION) to promote from a test")
    return registry.set_alias(versions[0], alias, who=who, why=f"A/B {report['experiment']}: {report['sentence']}",
                              action="promote")
