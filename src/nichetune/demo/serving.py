"""Demo part 4: serve. Start the server on 127.0.0.1 with the registry's champions (the drug-review ONNX export and
the FOLDOC merged export) and the drug-review LoRA run, then ask them through the official ``openai`` client:
a chat answer, a streamed one, and calibrated classifications of held-out reviews with their prediction sets."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from .steps import Steps

STEPS = 1
QUESTIONS = ("What is a compiler?", "What does FTP stand for?")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Background:
    """A uvicorn server in a thread of this process, stopped on exit."""

    def __init__(self, app, port: int):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="demo-server", daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(60)


def held_out_reviews(run_dir: Path, per_label: int = 1) -> list[dict]:
    """The first ``per_label`` reviews of each label in the run's test split (rows it never trained on)."""
    import json

    from ..run.paths import RunPaths

    picked: dict[str, list[dict]] = {}
    with open(RunPaths(run_dir).split("test"), encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if len(picked.setdefault(row["label"], [])) < per_label:
                picked[row["label"]].append(row)
    return [row for label in sorted(picked) for row in picked[label]]


def _ask(out: Path, say) -> dict:
    import openai

    from ..serve.app import create_app
    from ..serve.config import ServeConfig
    from ..serve.keys import create_key

    folder = out / "serve"
    keys = folder / "keys.json"
    keys.unlink(missing_ok=True)  # the demo's own key file, made anew each run; the key is never printed
    folder.mkdir(parents=True, exist_ok=True)
    key = create_key(keys, "demo")
    targets = ["drug-reviews@champion", "foldoc-jargon@champion",
               f"drug-reviews-lora={out / 'runs' / 'drug-reviews-recommended'}"]
    config = ServeConfig(targets=targets, api_keys=keys, registry=str(out / "registry"), port=_free_port(),
                         prediction_log=str(folder / "predictions.sqlite"))
    app = create_app(config)
    reviews = held_out_reviews(out / "runs" / "drug-reviews-recommended", per_label=2)
    texts = [r["text"] for r in reviews]
    answers: dict = {"targets": targets, "chat": [], "classify": {}, "texts": texts,
                     "true_labels": [r["label"] for r in reviews]}
    with _Background(app, config.port):
        url = f"http://127.0.0.1:{config.port}/v1"
        say(f"  serving {', '.join(targets)} at {url} (key in {keys}, stored hashed)")
        client = openai.OpenAI(api_key=key, base_url=url, max_retries=0)
        say(f"  GET /v1/models: {', '.join(m.id for m in client.models.list().data)}")
        reply = client.chat.completions.create(model="foldoc-jargon", temperature=0, max_tokens=60,
                                               messages=[{"role": "user", "content": QUESTIONS[0]}])
        say(f"  chat  > {QUESTIONS[0]}\n          < {reply.choices[0].message.content.strip()}  "
            f"[{reply.usage.completion_tokens} tokens, {reply.choices[0].finish_reason}]")
        answers["chat"].append({"question": QUESTIONS[0], "answer": reply.choices[0].message.content})
        pieces = []
        for chunk in client.chat.completions.create(model="foldoc-jargon", temperature=0, max_tokens=60, stream=True,
                                                    messages=[{"role": "user", "content": QUESTIONS[1]}]):
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
        say(f"  stream > {QUESTIONS[1]}\n          < {''.join(pieces).strip()}  [{len(pieces)} streamed pieces]")
        answers["chat"].append({"question": QUESTIONS[1], "answer": "".join(pieces), "pieces": len(pieces)})
        for model in ("drug-reviews", "drug-reviews-lora"):
            body = client.post("/classify", cast_to=object, body={"model": model, "input": texts})
            answers["classify"][model] = body["data"]
            cal = body["calibration"]
            say(f"  POST /v1/classify {model} on held-out test reviews (temperature {cal['temperature']:.2f}, "
                f"{100 * cal['coverage']:.0f}% sets):")
            for row, a in zip(reviews, body["data"], strict=True):
                verdict = "ABSTAIN" if a["abstain"] else "answer"
                say(f"    true {row['label']:8s} -> {a['label']:8s} p={a['confidence']:.2f} "
                    f"set={{{', '.join(a['prediction_set'])}}} {verdict}: {row['text'][:50]}...")
    return answers


def run_serving(steps: Steps, out: Path, shipped: dict) -> dict:
    reg = out / "registry"
    return steps.run(
        "serve the champions and ask them through the openai client: chat, streaming, calibrated /v1/classify",
        lambda: _ask(out, steps.say), needs=(shipped["registry"],),
        command=(f"nichetune keys create {out / 'serve' / 'keys.json'} --name demo && nichetune serve "
                 f"drug-reviews@champion foldoc-jargon@champion "
                 f"drug-reviews-lora={out / 'runs' / 'drug-reviews-recommended'} --registry {reg} "
                 f"--api-keys {out / 'serve' / 'keys.json'}"))
