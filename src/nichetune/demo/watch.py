"""Demo part 6: watch it in production and improve it safely.

The server answers drug-review traffic in two phases, time-compressed into windows of ``WINDOW`` seconds: first
the held-out test reviews as they are, then mostly Birth Control reviews of drugs the reference never saw.
The champion answers, a shadow challenger (the full fine-tuning run) answers the same texts in the background,
and every answer gets its true label back through ``/v1/feedback``. The drift report should flag the second
phase and nothing in the first. Then an A/B experiment splits simulated users between the earlier head-only
model (``reviews-live@1``, the champion) and the recommended model (``reviews-live@2``); the always-valid test
decides, and the winner is promoted in the registry.
"""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .serving import _Background, _free_port
from .steps import SKIPPED, Steps

STEPS = 4
WINDOW = 20  # seconds per drift window: the demo compresses days into seconds
LIVE = "reviews-live"
SHIFTED_CONDITION = "Birth Control"


def _rows(run_dir: Path, split: str) -> list[dict]:
    from ..run.paths import RunPaths

    return [json.loads(line) for line in RunPaths(run_dir).split(split).open(encoding="utf-8")]


def _register(out: Path, say) -> dict:
    """reviews-live@1: the head-only run (what runs today); @2: the recommended run (the challenger)."""
    from ..registry import open_registry

    registry = open_registry(out / "registry")
    if LIVE not in {m["name"] for m in registry.list()} or len(registry.versions(LIVE)) < 2:
        registry.register(out / "runs" / "drug-reviews-head-only", LIVE, note="the model in production")
        registry.register(out / "runs" / "drug-reviews-recommended", LIVE, note="the challenger")
    event = registry.set_alias(f"{LIVE}@1", "champion", why="the demo starts from the head-only model")
    say(f"  {LIVE}@1 = the head-only run (champion), {LIVE}@2 = the recommended run")
    return {"versions": [v["version"] for v in registry.versions(LIVE)], "alias": event}


def _wait_for_window(say) -> None:
    pause = WINDOW - time.time() % WINDOW + 0.5
    say(f"  waiting {pause:.0f} s for the next {WINDOW}-second window")
    time.sleep(pause)


def _post(url: str, key: str, body: dict) -> tuple[dict, dict]:
    """``(JSON reply, headers)`` of a POST to the demo's own server (the routes beyond OpenAI's: plain HTTP)."""
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read()), dict(response.headers)


def _traffic(out: Path, users: int, say) -> dict:
    from ..serve.app import create_app
    from ..serve.config import ServeConfig
    from ..serve.experiments import Experiment
    from ..serve.keys import create_key

    folder = out / "watch"
    folder.mkdir(parents=True, exist_ok=True)
    for own in ("keys.json", "predictions.sqlite"):  # the demo's own files, made anew each run
        (folder / own).unlink(missing_ok=True)
    key = create_key(folder / "keys.json", "demo")
    run = out / "runs" / "drug-reviews-recommended"
    config = ServeConfig(
        targets=["drug-reviews@champion", f"shadow={out / 'runs' / 'drug-reviews-full'}",
                 f"live-champion={LIVE}@1", f"live-challenger={LIVE}@2"],
        api_keys=folder / "keys.json", registry=str(out / "registry"), port=_free_port(), concurrency=64,
        prediction_log=str(folder / "predictions.sqlite"), shadows={"drug-reviews": "shadow"},
        experiments={"reviews-ab": Experiment(arms={"live-champion": 1, "live-challenger": 1}, salt="demo")})
    test = _rows(run, "test")
    test_drugs = {r["drug"] for r in test}
    shifted = [r for r in _rows(run, "train") + _rows(run, "validation")
               if r["condition"] == SHIFTED_CONDITION and r["drug"] not in test_drugs]
    rng = random.Random(0)
    others = [r for r in test if r["condition"] != SHIFTED_CONDITION]
    phase2 = rng.sample(shifted, min(120, len(shifted))) + rng.sample(others, min(40, len(others)))
    rng.shuffle(phase2)
    held_out = test + _rows(run, "validation")
    with _Background(create_app(config), config.port):
        url = f"http://127.0.0.1:{config.port}/v1"

        def send(model: str, rows: list[dict], user: str | None = None) -> dict:
            body, headers = _post(f"{url}/classify", key, {
                "model": model, "input": [r["text"] for r in rows], "user": user,
                "slices": [{"condition": r["condition"], "drug": r["drug"]} for r in rows]})
            for i, r in enumerate(rows):  # the true label comes back later, as feedback would
                _post(f"{url}/feedback", key, {"request_id": headers["x-request-id"], "index": i,
                                               "label": r["label"]})
            return body

        _wait_for_window(say)
        phases = {}
        for phase, rows in (("phase 1: held-out reviews as they are", test),
                            (f"phase 2: mostly {SHIFTED_CONDITION}, drugs the reference never saw", phase2)):
            started = time.time()
            for i in range(0, len(rows), 8):
                send("drug-reviews", rows[i:i + 8])
            phases[phase] = {"start": started, "end": time.time(), "reviews": len(rows)}
            say(f"  {phase}: {len(rows)} reviews with feedback in {time.time() - started:.1f} s")
            if phase.startswith("phase 1"):
                _wait_for_window(say)
        started = time.time()
        picks = [(f"user-{u}", rng.choice(held_out)) for u in range(users)]
        with ThreadPoolExecutor(8) as pool:
            arms = list(pool.map(lambda p: send("reviews-ab", [p[1]], user=p[0])["model"], picks))
        say(f"  A/B: {users} simulated users, each sending one held-out review (drawn with replacement): "
            f"{arms.count('live-champion')} to live-champion, {arms.count('live-challenger')} to live-challenger "
            f"in {time.time() - started:.1f} s")
    return {"log": str(folder / "predictions.sqlite"), "phases": phases}


def _drift(out: Path, traffic: dict, say) -> dict:
    from ..monitor.drift import drift_report
    from ..monitor.embedding import minilm_embedder
    from ..monitor.log import read_items
    from ..monitor.page import write_drift_page
    from ..monitor.reference import load_reference

    log = traffic["log"]
    ref = load_reference("drug-reviews@champion", registry=str(out / "registry"))
    items = read_items(log, model="drug-reviews", shadow=False)
    report = drift_report(items, ref, window_s=WINDOW, thresholds={"min_items": 20}, embed=minilm_embedder())
    page = write_drift_page(out / "watch", report, "drug-reviews")
    (out / "watch" / "drift.json").write_text(json.dumps(report, indent=1) + "\n")
    say(f"  {report['summary']}")
    phase2 = traffic["phases"][next(p for p in traffic["phases"] if p.startswith("phase 2"))]["start"]
    alarms = [{**a, "phase": "phase 2" if a["window"] + WINDOW > phase2 else "phase 1"} for a in report["alarms"]]
    for a in alarms[:10]:
        say(f"    ALARM ({a['phase']}) {a['slice']}: {a['check']} (effect {a['effect']:.3f}, "
            f"p = {a['p_adjusted']:.2g})")
    shadow = {(i["request_id"], i["idx"]): i for i in read_items(log, model="shadow", shadow=True)}
    pairs = [(i, shadow[(i["request_id"], i["idx"])]) for i in items if (i["request_id"], i["idx"]) in shadow]
    agree = sum(a["label"] == b["label"] for a, b in pairs) / max(len(pairs), 1)
    accuracy = {who: sum(x["label"] == x["true_label"] for x in side) / max(len(side), 1)
                for who, side in (("champion", [a for a, _ in pairs]), ("shadow", [b for a, b in pairs]))}
    say(f"  shadow (full fine-tuning run): answered the same {len(pairs)} reviews in the background, agreed with "
        f"the champion on {agree:.0%}; accuracy from feedback {accuracy['shadow']:.3f} against the champion's "
        f"{accuracy['champion']:.3f}")
    return {"page": page, "summary": report["summary"], "alarms": alarms, "tests": report["tests"],
            "windows": report["windows"], "phase2_start": phase2,
            "shadow": {"pairs": len(pairs), "agreement": agree, "accuracy": accuracy}}


def _ab(out: Path, traffic: dict, say) -> dict:
    from ..monitor.ab import ab_report, promote
    from ..registry import open_registry

    report = ab_report(traffic["log"], "reviews-ab", control="live-champion", look_s=5.0)
    for arm, s in report["stats"].items():
        say(f"  {arm}: {s['units']} users, accuracy {s['accuracy']:.3f} on {s['labelled']} labelled answers")
    say(f"  sample ratio mismatch p = {report['srm_p_value']:.2g}; {len(report['looks'])} looks; {report['decision']}")
    say(f"  {report['sentence']}")
    moved = None
    if report["winner"] == "live-challenger":
        moved = promote(report, open_registry(out / "registry"))
        say(f"  promoted: {LIVE}@champion {moved['from_version']} -> {moved['to_version']}")
    return {k: report[k] for k in ("stats", "srm_p_value", "decision", "winner", "sentence", "p_value")} | {
        "looks": len(report["looks"]), "promoted": moved}


def run_watch(steps: Steps, out: Path, shipped: dict, budget) -> dict:
    registry = out / "registry"
    log = out / "watch" / "predictions.sqlite"
    registered = steps.run(
        f"register the head-only run and the recommended run as {LIVE}@1 (champion) and @2",
        lambda: _register(out, steps.say), needs=(shipped["registry"],),
        command=f"nichetune registry register {out / 'runs' / 'drug-reviews-head-only'} --name {LIVE} --root "
                f"{registry} && nichetune registry register {out / 'runs' / 'drug-reviews-recommended'} --name {LIVE} "
                f"--root {registry}")
    traffic = steps.run(
        "replay drug-review traffic through the server in two phases, with a shadow challenger, an A/B "
        "experiment and feedback",
        lambda: _traffic(out, budget.ab_users, steps.say), needs=(registered,),
        command=f"nichetune serve drug-reviews@champion shadow={out / 'runs' / 'drug-reviews-full'} "
                f"live-champion={LIVE}@1 live-challenger={LIVE}@2 --registry {registry} --shadow drug-reviews=shadow "
                f"--experiment reviews-ab=live-champion:1,live-challenger:1,salt=demo --prediction-log {log} "
                f"--api-keys {out / 'watch' / 'keys.json'}")
    drift = steps.run(
        "drift report per window and slice against the champion's test predictions; the shadow's agreement",
        lambda: _drift(out, traffic, steps.say), needs=(traffic,),
        command=f"nichetune monitor report {log} --reference drug-reviews@champion --registry {registry} "
                f"--window {WINDOW}s --min-items 20 --out {out / 'watch'}")
    ab = steps.run(
        "A/B verdict from the always-valid test, and the promotion it allows",
        lambda: _ab(out, traffic, steps.say), needs=(traffic,),
        command=f"nichetune ab report reviews-ab --log {log} --control live-champion --look 5s && "
                f"nichetune ab promote reviews-ab --log {log} --control live-champion --look 5s --registry {registry}")
    return {"registered": registered, "drift": drift, "ab": ab,
            "page": out / "watch" / "drift.html" if drift is not SKIPPED else None}
