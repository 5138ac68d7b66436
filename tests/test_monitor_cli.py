"""`nichetune monitor report | export | prune` against an evaluated run, a log in SQLite and in PostgreSQL, and
the drift page in a real browser."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from nichetune.cli import main
from nichetune.config.recipe import load_recipe
from nichetune.eval.run import evaluate_run
from nichetune.prediction_log import PredictionLog
from nichetune.train.run import train
from tiny_data import review_rows, write_jsonl


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_bert_dir) -> Path:
    root = tmp_path_factory.mktemp("monitored")
    rows = review_rows(400, seed=5, own=2, noise=3, choices={"condition": ["acne", "pain"]})
    data = write_jsonl(root / "reviews.jsonl", rows)
    recipe = load_recipe(data={
        "task": "classification", "output_dir": str(root / "run"), "model": {"name": str(tiny_bert_dir),
                                                                            "max_length": 64},
        "data": {"train": str(data)}, "method": {"name": "lora", "r": 4, "target_modules": ["query", "value"]},
        "train": {"epochs": 2, "batch_size": 16, "lr": 2e-2, "precision": "fp32"}})
    train(recipe)
    evaluate_run(root / "run", zero_shot=False, latency=False, audit=False, progress=lambda *a, **k: None)
    return root / "run"


def _replay(log: PredictionLog, rows: list[dict], day: int, start: int) -> None:
    for i, r in enumerate(rows):
        log.write(request_id=f"d{day}-{start + i}", model="reviews", route="/v1/classify", status=200,
                  latency_ms=4.0, request={}, response=[], ts=day * 86400 + i,
                  items=[{"text": r["text"], "label": r["predicted"], "confidence": r["confidence"],
                          "probabilities": r["probabilities"], "slices": r["slices"]}])


def _stream(run_dir: Path, target) -> None:
    """Two stable days replaying the run's own test predictions, then a day of only 'pain' reviews twice as long
    with words the model never saw."""
    test = [json.loads(line) for line in (run_dir / "eval" / "predictions.jsonl").open()]
    rng = random.Random(0)
    log = PredictionLog(target, mask_pii=False)
    for day in (0, 1):
        _replay(log, [rng.choice(test) for _ in range(120)], day, 0)
    shifted = [{**r, "text": r["text"] + " " + " ".join(f"zz{rng.randrange(500)}" for _ in range(12)),
                "slices": {"condition": "pain"}} for r in (rng.choice(test) for _ in range(120))]
    _replay(log, shifted, 2, 0)
    log.close()


def test_monitor_report_flags_the_shifted_day_and_writes_a_page_a_browser_renders(run_dir, tmp_path, capsys,
                                                                                   chromium):
    _stream(run_dir, tmp_path / "log.sqlite")
    out = tmp_path / "drift"
    code = main(["monitor", "report", str(tmp_path / "log.sqlite"), "--reference", str(run_dir), "--window", "1d",
                 "--out", str(out), "--no-embeddings", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 3 and summary["alarms"] > 0 and summary["windows"] == 3
    alarmed = {(a["window"], a["slice"], a["check"]) for a in summary["alarm_list"]}
    assert {w for w, _, _ in alarmed} == {2 * 86400}  # only the shifted day
    assert (2 * 86400, "all", "mix of condition") in alarmed
    assert (2 * 86400, "all", "out-of-vocabulary rate") in alarmed
    report = json.loads((out / "drift.json").read_text())
    assert report["tests"] == sum(c["p_adjusted"] is not None for c in report["checks"])
    dom = chromium(out / "drift.html")
    assert "drift alarms" in dom and dom.count("<svg") >= 10 and "Slice condition=pain" in dom


def test_a_stable_log_exits_zero(run_dir, tmp_path, capsys):
    test = [json.loads(line) for line in (run_dir / "eval" / "predictions.jsonl").open()]
    log = PredictionLog(tmp_path / "log.sqlite", mask_pii=False)
    _replay(log, test, 0, 0)
    log.close()
    assert main(["monitor", "report", str(tmp_path / "log.sqlite"), "--reference", str(run_dir),
                 "--no-embeddings"]) == 0
    assert capsys.readouterr().out.startswith("No drift alarm")


def test_the_log_works_the_same_in_postgresql(postgres_url, run_dir, tmp_path, capsys):
    import sqlalchemy as sa

    from nichetune.monitor.log import export_feedback, read_items
    from nichetune.prediction_log import METADATA

    engine = sa.create_engine(postgres_url)
    METADATA.drop_all(engine)  # a clean log in the shared test database
    engine.dispose()
    _stream(run_dir, postgres_url)
    log = PredictionLog(postgres_url, mask_pii=False)
    log.feedback(request_id="d2-5", label="negative")
    log.close()
    items = read_items(postgres_url)
    assert len(items) == 360 and items[-115]["true_label"] == "negative"
    assert export_feedback(postgres_url, tmp_path / "fb.jsonl") == 1
    assert main(["monitor", "report", postgres_url, "--reference", str(run_dir), "--no-embeddings"]) == 3
    assert main(["monitor", "prune", postgres_url, "--max-items", "100"]) == 0
    assert len(read_items(postgres_url)) == 100


def test_retrain_checks_new_rows_trains_compares_registers_and_resumes(run_dir, tmp_path, capsys):
    champion_test = [json.loads(line) for line in (run_dir / "data" / "test.jsonl").open()]
    new = review_rows(80, seed=11, own=2, noise=3, choices={"condition": ["acne", "pain"]})
    leaked = [{k: r[k] for k in ("text", "label")} for r in champion_test[:5]]
    rows = [json.dumps(r) for r in new + leaked] + ['{"text": "no label"}', "not json", '{"label": "positive"}']
    (tmp_path / "new.jsonl").write_text("\n".join(rows) + "\n")
    args = ["retrain", str(run_dir / "recipe.yaml"), "--new-data", str(tmp_path / "new.jsonl"),
            "--out", str(tmp_path / "loop"), "--registry", str(tmp_path / "registry"), "--name", "reviews", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["data"]["quarantined"] == 3 and result["data"]["leaked"] >= 5
    assert result["data"]["new_rows"] == 80 and result["data"]["champion_rows"] == len(
        (run_dir / "data" / "train.jsonl").read_text().splitlines())
    challenger = Path(result["challenger"])
    test_rows = (challenger / "data" / "test.jsonl").read_text()
    assert test_rows == (run_dir / "data" / "test.jsonl").read_text()  # compared on the champion's own test rows
    comparison = result["compare"]["comparison"]
    assert comparison["n"] == len(champion_test) and result["verdict"] == comparison["sentence"]
    assert result["register"]["version"] == 1 and "--shadow champion=challenger" in result["next"]
    stamp = (challenger / "manifest.json").stat().st_mtime
    assert main(args) == 0  # a second run reuses every finished step
    assert capsys.readouterr().err.count("done before with the same inputs") == 4
    assert (challenger / "manifest.json").stat().st_mtime == stamp


def test_alarms_are_posted_to_the_webhook(run_dir, tmp_path, capsys):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the standard library's name)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _stream(run_dir, tmp_path / "log.sqlite")
    try:
        code = main(["monitor", "report", str(tmp_path / "log.sqlite"), "--reference", str(run_dir),
                     "--no-embeddings", "--webhook", f"http://127.0.0.1:{server.server_port}/hook"])
    finally:
        server.shutdown()
    assert code == 3 and len(received) == 1
    assert received[0]["alarms"] == len(received[0]["alarm_list"]) > 0 and "drift alarms" in received[0]["summary"]
    assert "webhook" in capsys.readouterr().err


def test_classify_on_the_command_line_logs_like_the_server(run_dir, tmp_path, capsys):
    from nichetune.monitor.log import read_items

    log = tmp_path / "cli.sqlite"
    assert main(["classify", str(run_dir), "good good", "mail jane.doe@example.com bad", "--log", str(log),
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    items = read_items(log)
    assert [i["label"] for i in items] == [p["label"] for p in printed]
    assert items[1]["text"] == "mail [EMAIL] bad" and items[0]["version"] == f"cli:{run_dir.name}"
    assert items[0]["probabilities"] == pytest.approx(printed[0]["scores"])
    assert items[0]["set_size"] == len(printed[0]["prediction_set"])


def test_a_tuned_classifier_run_is_an_index_encoder(run_dir, tmp_path):
    """`index build --encoder RUN`: the run's own encoder (its adapter applied) embeds the chunks, as the
    server's /v1/embeddings embeds with it."""
    from nichetune.infer.classify import sentence_vectors
    from nichetune.infer.loading import load_sequence_classifier
    from nichetune.retrieval.index import build_index, load_index

    docs = write_jsonl(tmp_path / "docs.jsonl", [{"id": "a", "text": "good good great"},
                                                 {"id": "b", "text": "awful bad terrible"}])
    build_index([docs], tmp_path / "idx", encoder=str(run_dir))
    index = load_index(tmp_path / "idx")
    model, tokenizer = load_sequence_classifier(str(run_dir), device="cpu")
    expected = sentence_vectors(model, tokenizer, [c["text"] for c in index.chunks], max_length=256)[0]
    assert index.vectors == pytest.approx(expected, abs=1e-5)
    assert index.manifest["encoder"] == str(run_dir)
