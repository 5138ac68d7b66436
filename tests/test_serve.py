"""`nichetune serve` as a server: a real uvicorn on 127.0.0.1 serving tiny runs, spoken to with the official
`openai` client, walked route by route for keys, fuzzed from its OpenAPI spec, and checked number by number
against `nichetune classify`, scipy and transformers."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import sqlite3
import time
from pathlib import Path

import numpy as np
import openai
import pytest
from scipy.special import softmax

from nichetune.cli import main
from nichetune.config.recipe import load_recipe
from nichetune.errors import NichetuneError
from nichetune.eval.run import evaluate_run
from nichetune.train.run import train
from serving import running_server
from tiny_data import chat_rows, review_rows, write_jsonl

pytestmark = pytest.mark.slow


def _train(root: Path, model_dir: Path, task: str, rows, name: str, seed: int = 0, **train_extra) -> Path:
    data = write_jsonl(root / f"{name}.jsonl", rows)
    method = {"name": "lora", "r": 4, **({"target_modules": ["query", "value", "dense"]} if task != "sft" else {})}
    recipe = load_recipe(data={
        "task": task, "output_dir": str(root / name), "seed": seed,
        "model": {"name": str(model_dir), "max_length": 64}, "data": {"train": str(data)}, "method": method,
        "train": {"epochs": 3, "batch_size": 8, "lr": 2e-2, "precision": "fp32", **train_extra}})
    train(recipe)
    return Path(recipe.output_dir)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bert_dir, tiny_llama_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve-runs")
    # stacked with TF-IDF: the server, `classify` and the merged export must all answer with the stack
    reviews = _train(root, tiny_bert_dir, "classification", review_rows(160, seed=3, own=2, noise=4), "reviews",
                     lexical="stack")
    evaluate_run(reviews, zero_shot=False, latency=False, audit=False, progress=lambda *a, **k: None)
    other = _train(root, tiny_bert_dir, "classification", review_rows(120, seed=9, own=3, noise=1), "other", seed=1)
    chat = _train(root, tiny_llama_dir, "sft", chat_rows(40), "chat")
    from nichetune.export.export import export_run

    export_run(reviews, "merged", root / "reviews-merged", rows=20)
    from nichetune.retrieval.index import build_index

    docs = write_jsonl(root / "docs.jsonl", [
        {"id": "kernel", "text": "The kernel manages memory and processes for every program."},
        {"id": "ftp", "text": "FTP moves files between hosts over networks."},
        {"id": "mutex", "text": "A mutex guards shared memory between threads."}])
    build_index([docs], root / "index", encoder=str(tiny_bert_dir))
    return {"index": root / "index", "reviews": reviews, "other": other, "chat": chat, "encoder": tiny_bert_dir,
            "raw": tiny_llama_dir, "merged": root / "reviews-merged"}


@pytest.fixture(scope="module")
def server(runs, tmp_path_factory):
    targets = [str(runs["reviews"]), str(runs["other"]), str(runs["chat"]), f"encoder={runs['encoder']}",
               f"raw={runs['raw']}", f"merged={runs['merged']}", f"cited={runs['raw']}"]
    with running_server(tmp_path_factory.mktemp("serve"), targets, "--concurrency", "16",
                        "--index", f"docs={runs['index']}", "--retrieve", "cited=docs",
                        "--experiment", "ab=reviews:1,other:1,salt=s1", "--shadow", "merged=other") as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(api_key=server.key, base_url=server.v1, max_retries=0)


# --- the OpenAI contract, through the official client ---------------------------------------------------------

def test_models_lists_every_target_with_what_it_answers(client):
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {"reviews", "other", "chat", "encoder", "raw", "merged", "cited"}
    assert models["reviews"].capabilities == ["classify", "embeddings"]
    assert models["chat"].capabilities == ["chat", "completions"]
    assert models["encoder"].capabilities == ["embeddings"]
    assert models["reviews"].calibration["coverage"] == pytest.approx(1 - models["reviews"].calibration["alpha"])
    assert models["other"].calibration is None  # never evaluated: served uncalibrated, and says so


def test_chat_counts_tokens_with_the_models_own_template(client, runs):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(runs["chat"] / "adapter")
    messages = [{"role": "user", "content": "what does kernel mean in computing"}]
    reply = client.chat.completions.create(model="chat", messages=messages, max_tokens=12, temperature=0)
    expected_prompt = len(tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"])
    assert reply.usage.prompt_tokens == expected_prompt
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert 1 <= reply.usage.completion_tokens <= 12
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason in ("stop", "length")
    again = client.chat.completions.create(model="chat", messages=messages, max_tokens=12, temperature=0)
    assert again.choices[0].message.content == reply.choices[0].message.content  # greedy is deterministic


def test_streaming_joins_to_the_same_answer_and_reports_usage_exactly_as_specified(client):
    messages = [{"role": "user", "content": "what does compiler mean in computing"}]
    whole = client.chat.completions.create(model="chat", messages=messages, max_tokens=16, temperature=0)
    chunks = list(client.chat.completions.create(model="chat", messages=messages, max_tokens=16, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.usage is None for c in chunks[:-1])  # usage: null on every chunk but the last
    last = chunks[-1]
    assert last.choices == [] and last.usage.completion_tokens == whole.usage.completion_tokens
    assert last.usage.prompt_tokens == whole.usage.prompt_tokens
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == \
        [whole.choices[0].finish_reason]
    plain = list(client.chat.completions.create(model="chat", messages=messages, max_tokens=4, stream=True))
    assert all(c.usage is None for c in plain) and all(c.choices for c in plain)  # no usage chunk unasked


def test_completions_honour_stop_seed_n_and_max_tokens(client):
    """On the untrained tiny Llama (a plain model target), which rarely says end-of-text."""
    base = client.completions.create(model="raw", prompt="kernel compiler", max_tokens=12, temperature=0)
    text = base.choices[0].text
    assert base.usage.completion_tokens == 12 and base.choices[0].finish_reason == "length"
    stop = text[3:6]
    assert stop.strip(), text
    cut = client.completions.create(model="raw", prompt="kernel compiler", max_tokens=12, temperature=0, stop=stop)
    assert cut.choices[0].text == text[: text.index(stop)] and cut.choices[0].finish_reason == "stop"
    one = client.completions.create(model="raw", prompt="kernel", max_tokens=8, temperature=1.0, seed=7, n=2)
    two = client.completions.create(model="raw", prompt="kernel", max_tokens=8, temperature=1.0, seed=7, n=2)
    assert [c.text for c in one.choices] == [c.text for c in two.choices] and len(one.choices) == 2
    assert [c.index for c in one.choices] == [0, 1]
    assert one.usage.completion_tokens == 16


def test_embeddings_are_mean_pooled_unit_vectors_in_both_encodings(client, runs):
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = ["good drug no pain", "terrible side effects"]
    floats = client.embeddings.create(model="encoder", input=texts, encoding_format="float")
    packed = client.embeddings.create(model="encoder", input=texts)  # the client asks for base64 by default
    got = np.array([d.embedding for d in floats.data])
    np.testing.assert_allclose(np.array([d.embedding for d in packed.data]), got, rtol=0, atol=1e-6)
    tok, model = AutoTokenizer.from_pretrained(runs["encoder"]), AutoModel.from_pretrained(runs["encoder"])
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert floats.usage.prompt_tokens == int(batch["attention_mask"].sum())


def test_concurrent_generations_are_decoded_together(client, server):
    from concurrent.futures import ThreadPoolExecutor

    prompts = [f"kernel {'compiler ' * i}" for i in range(6)]
    calls_before = server.metric("nichetune_generation_batch_streams_count")
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda p: client.completions.create(model="raw", prompt=p, max_tokens=24,
                                                                   temperature=0), prompts))
    calls = server.metric("nichetune_generation_batch_streams_count") - calls_before
    assert calls < len(prompts)  # requests that arrived while the model was busy shared a generate call
    assert all(r.usage.completion_tokens <= 24 and r.choices[0].text for r in replies)


def test_chat_from_an_index_returns_the_citations_and_their_checks(client, server):
    """Questions whose words only one document holds, so BM25 puts it first whatever the untrained encoder says."""
    from nichetune.prediction_log import read_predictions

    reply = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "moves files hosts networks"}], max_tokens=8,
        temperature=0, extra_body={"retrieval": {"index": "docs", "k": 2}})
    citations = reply.model_extra["citations"]
    assert [c["n"] for c in citations] == [1, 2] and citations[0]["doc"] == "ftp"
    assert citations[0]["text"] == "FTP moves files between hosts over networks."
    checks = reply.model_extra["citation_checks"]
    assert len(checks) == 1 and all(c["kind"] in ("quote", "citation", "marker", "answer") for c in checks[0])
    chunks = list(client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "guards shared threads"}], max_tokens=4,
        temperature=0, stream=True, extra_body={"retrieval": {"index": "docs", "k": 1}}))
    assert chunks[-1].choices == [] and chunks[-1].model_extra["citations"][0]["doc"] == "mutex"
    for _ in range(50):  # the prediction log records which chunks the answer was given
        used = [r["request"]["retrieval"] for r in read_predictions(server.predictions, model="chat")
                if "retrieval" in r["request"]]
        if len(used) >= 2:
            break
        time.sleep(0.1)
    assert used[0] == {"index": "docs", "chunks": [citations[0]["chunk"], citations[1]["chunk"]]}
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}],
                                       extra_body={"retrieval": {"index": "nope"}})
    assert missing.value.body["code"] == "index_not_found"
    # a model served with --retrieve answers from its index by default; another model does not
    cited = client.chat.completions.create(model="cited", messages=[{"role": "user", "content": "moves files hosts"}],
                                           max_tokens=4, temperature=0)
    assert cited.model_extra["citations"][0]["doc"] == "ftp"
    plain = client.chat.completions.create(model="raw", messages=[{"role": "user", "content": "moves files hosts"}],
                                           max_tokens=4, temperature=0)
    assert "citations" not in (plain.model_extra or {})


def test_errors_follow_openais_schema(client, server):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["code"] == "model_not_found" and missing.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as wrong:
        client.chat.completions.create(model="reviews", messages=[{"role": "user", "content": "x"}])
    assert wrong.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.UnprocessableEntityError) as capped:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}], max_tokens=5000)
    assert capped.value.body["code"] == "max_tokens_over_limit"
    with pytest.raises(openai.UnprocessableEntityError) as context:  # the tiny model's context is 128 tokens
        client.completions.create(model="chat", prompt="kernel " * 60, max_tokens=100)
    assert context.value.body["code"] == "context_length_exceeded"
    bad = openai.OpenAI(api_key="nt-wrong", base_url=server.v1, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        bad.models.list()
    assert denied.value.body["code"] == "invalid_api_key"


# --- /v1/classify -------------------------------------------------------------------------------------------

def test_classify_serves_exactly_what_nichetune_classify_prints(server, runs, capsys):
    texts = ["good great relief", "awful pain nausea worse", "good pain"]
    assert main(["classify", str(runs["reviews"]), *texts, "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    status, body, _ = server.request("POST", "/v1/classify", {"model": "reviews", "input": texts})
    assert status == 200
    for row, served in zip(cli, body["data"], strict=True):
        assert served["label"] == row["label"]
        for label, p in row["scores"].items():
            assert served["probabilities"][label] == pytest.approx(p, abs=1e-6)
        assert served["prediction_set"] == row["prediction_set"] and served["abstain"] == row["abstain"]


def test_classify_applies_the_fitted_temperature_and_the_conformal_rule(server, runs):
    """Reference: logits from a forward pass of the run and its lexical stack, scipy's softmax at the temperature
    in metrics.json, and the LAC set {label: 1 - p <= qhat} with the selective threshold, computed here by hand."""
    from nichetune.run.loading import load_run
    from nichetune.tasks.scoring import classifier_logits

    metrics = json.loads((runs["reviews"] / "eval" / "metrics.json").read_text())
    temperature, qhat = metrics["calibration"]["temperature"], metrics["conformal"]["lac"]["qhat"]
    threshold = (metrics["selective"]["target"] or {}).get("confidence_threshold")
    texts = ["good relief great", "pain worse awful", "good worse", "nausea", "great"]
    run = load_run(runs["reviews"])
    assert run.lexical is not None  # the run's TF-IDF stack is part of what it answers
    stacked = run.lexical.apply(texts, classifier_logits(run.model, run.tokenizer, texts, max_length=64))
    probs = softmax(stacked / temperature, axis=1)
    labels = run.manifest.labels
    _, body, _ = server.request("POST", "/v1/classify", {"model": "reviews", "input": texts})
    assert body["calibration"]["temperature"] == pytest.approx(temperature)
    for p, served in zip(probs, body["data"], strict=True):
        np.testing.assert_allclose([served["probabilities"][lab] for lab in labels], p, atol=1e-6)
        members = {lab for lab, pi in zip(labels, p, strict=True) if 1 - pi <= qhat + 1e-12}
        assert set(served["prediction_set"]) == members
        abstain = len(members) > 1 or threshold is None or p.max() < threshold
        assert served["abstain"] is bool(abstain)
    uncalibrated = server.request("POST", "/v1/classify", {"model": "other", "input": "good"})[1]
    assert uncalibrated["data"][0]["calibrated"] is False and uncalibrated["calibration"] is None


def test_concurrent_classify_requests_share_forward_passes_and_each_gets_its_own_answer(server):
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"good {'pain ' * (i % 5)}great {i}" for i in range(24)]
    alone = {t: server.request("POST", "/v1/classify", {"model": "reviews", "input": t})[1]["data"][0]
             for t in texts[:4]}
    passes_before = server.metric("nichetune_classify_batch_texts_count")
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda t: server.request("POST", "/v1/classify",
                                                         {"model": "reviews", "input": t})[1]["data"][0], texts))
    passes = server.metric("nichetune_classify_batch_texts_count") - passes_before
    assert passes < len(texts)  # requests that arrived together went through one pass
    for t in texts[:4]:
        answer = answers[texts.index(t)]
        for label, p in alone[t]["probabilities"].items():
            assert answer["probabilities"][label] == pytest.approx(p, abs=1e-5)


def test_a_classifier_loaded_alone_runs_in_onnxruntime_and_still_answers_as_the_cli(server, runs, capsys):
    """The merged export is compiled to ONNX at load (parity-checked against torch on probe texts) and serves the
    probabilities `nichetune classify` prints for the run it came from, and its calibration."""
    texts = ["good great relief", "awful pain nausea worse"]
    assert main(["classify", str(runs["reviews"]), *texts, "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    _, body, _ = server.request("POST", "/v1/classify", {"model": "merged", "input": texts})
    server.request("POST", "/v1/classify", {"model": "reviews", "input": texts})
    for row, served in zip(cli, body["data"], strict=True):
        for label, p in row["scores"].items():
            assert served["probabilities"][label] == pytest.approx(p, abs=1e-5)
        assert served["prediction_set"] == row["prediction_set"]
    held = {m["model"]: m for m in server.request("GET", "/admin/models", key="admin")[1]["models"]}
    assert held["merged"]["runtime"].startswith("onnx (max logit difference")
    assert held["reviews"]["runtime"] == "torch"  # adapters that share a base stay in torch


# --- several adapters on one base ---------------------------------------------------------------------------

def test_adapters_on_one_base_share_it_and_answer_as_when_served_alone(server, runs, capsys):
    status, before, _ = server.request("GET", "/admin/models", key="admin")
    assert status == 200
    server.request("POST", "/v1/classify", {"model": "other", "input": "warm up"})
    held = {m["model"]: m for m in server.request("GET", "/admin/models", key="admin")[1]["models"]}
    assert held["other"]["shares_base_with"] == ["reviews"] and held["reviews"]["shares_base_with"] == ["other"]
    text = "good great pain"
    assert main(["classify", str(runs["other"]), text, "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)[0]["scores"]
    for _ in range(2):  # switching back and forth changes nothing
        for name, expected in (("other", alone), ("reviews", None)):
            served = server.request("POST", "/v1/classify", {"model": name, "input": text})[1]["data"][0]
            if expected:
                for label, p in expected.items():
                    assert served["probabilities"][label] == pytest.approx(p, abs=1e-6)
    unloaded = server.request("POST", "/admin/models/other/unload", key="admin")[1]
    assert unloaded["unloaded"] is True
    state = {m["model"]: m for m in unloaded["models"]}
    assert not state["other"]["loaded"] and state["reviews"]["loaded"]
    served = server.request("POST", "/v1/classify", {"model": "other", "input": text})[1]["data"][0]
    assert served["probabilities"]["positive"] == pytest.approx(alone["positive"], abs=1e-6)  # loads again
    assert server.request("POST", "/admin/models/nope/load", key="admin")[0] == 404
    assert server.request("POST", "/admin/models/other/load", key="user")[0] == 403


# --- security -----------------------------------------------------------------------------------------------

def test_every_route_but_health_needs_a_key(server, runs, tmp_path):
    from nichetune.serve import ServeConfig, create_app
    from nichetune.serve.keys import create_key
    from nichetune.serve.routes import walk

    create_key(tmp_path / "k.json", "x")
    app = create_app(ServeConfig(targets=[str(runs["reviews"])], api_keys=tmp_path / "k.json",
                                 prediction_log=None))
    routes = walk(app.routes)
    assert {("GET", "/health"), ("POST", "/v1/classify"), ("GET", "/metrics"), ("POST", "/admin/models/{model}/load"),
            ("GET", "/openapi.json"), ("POST", "/v1/chat/completions"), ("POST", "/v1/embeddings")} <= set(routes)
    checked = 0
    for method, path in routes:
        concrete = path.replace("{model}", "reviews")
        for key in (None, "nt-not-a-key", server.key[:-1]):
            status, body, headers = server.request(method, concrete, {} if method == "POST" else None, key=key)
            if path == "/health":
                assert status == 200
                continue
            assert status == 401, (method, path, status)
            assert body["error"]["code"] == "invalid_api_key" and headers.get("www-authenticate") == "Bearer"
            checked += 1
    assert checked == 3 * (len(routes) - 1) and len(routes) >= 12
    assert server.request("GET", "/does-not-exist", key=None)[0] == 401  # even a 404 is behind the key
    assert server.request("GET", "/docs", key="user")[0] == 404  # no interactive pages


def test_keys_are_stored_hashed_and_never_logged(server):
    stored = json.loads((server.log.parent / "keys.json").read_text())
    assert server.key not in json.dumps(stored)
    assert hashlib.sha256(server.key.encode()).hexdigest() in [k["sha256"] for k in stored["keys"]]
    server.request("GET", "/v1/models", key="nt-attempted-wrong-key")
    request_id = server.request("POST", "/v1/classify", {"model": "reviews", "input": "good"})[2]["x-request-id"]
    log = server.log.read_text()
    assert "Bearer" not in log and server.key not in log and server.admin_key not in log
    assert "nt-attempted-wrong-key" not in log
    db = sqlite3.connect(server.predictions)
    for _ in range(50):  # the log is written off the request path
        logged = "\n".join(str(r) for r in db.execute("select * from predictions"))
        if request_id in logged:
            break
        time.sleep(0.1)
    assert request_id in logged and server.key not in logged and "tests" in logged  # the key's name, not the key


def test_body_over_the_cap_is_refused_before_it_is_read(server):
    """Announce 2 MiB and send none of it: a server that waited for the body would time out instead."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall((f"POST /v1/classify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.key}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 2097152\r\n\r\n").encode())
        answer = b""
        while b"body_too_large" not in answer and (chunk := sock.recv(4096)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b'"code": "body_too_large"' in answer


def test_inputs_over_the_cap_and_malformed_bodies_get_422_not_500(server):
    status, body, _ = server.request("POST", "/v1/classify", {"model": "reviews", "input": ["x"] * 65})
    assert status == 422 and body["error"]["code"] == "too_many_inputs"
    status, body, _ = server.request("POST", "/v1/chat/completions", b"{not json")
    assert status == 422 and body["error"]["type"] == "invalid_request_error"
    status, body, _ = server.request("POST", "/v1/chat/completions", {"model": "chat", "messages": [],
                                                                      "temperature": 9})
    assert status == 422 and "temperature" in body["error"]["message"]


# --- the prediction log -------------------------------------------------------------------------------------

def test_requests_and_answers_are_logged_with_pii_masked(server):
    from nichetune.prediction_log import read_predictions

    body = {"model": "reviews", "input": "mail jane.doe@example.com good"}
    _, _, headers = server.request("POST", "/v1/classify", body)
    request_id = headers["x-request-id"]
    for _ in range(50):
        rows = [r for r in read_predictions(server.predictions, model="reviews") if r["request_id"] == request_id]
        if rows:
            break
        time.sleep(0.1)
    assert rows, "the classify request was not logged"
    assert "jane.doe@example.com" not in json.dumps(read_predictions(server.predictions))
    assert rows[-1]["route"] == "/v1/classify" and rows[-1]["status"] == 200
    assert rows[-1]["request"] == {"input": ["mail [EMAIL] good"]}
    assert rows[-1]["response"][0]["label"] in ("negative", "positive")


# --- fuzzing the published spec -----------------------------------------------------------------------------

def test_no_request_the_spec_allows_yields_a_500(server):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    _, spec, _ = server.request("GET", "/openapi.json")
    schema = schemathesis.openapi.from_dict(spec)
    served = {"/v1/chat/completions": "raw", "/v1/completions": "raw", "/v1/classify": "reviews",
              "/v1/embeddings": "encoder"}
    requests_before = sum(server.metric("nichetune_requests_total", route=r, status="200") for r in served)
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            auth = {"Authorization": f"Bearer {server.key}"}
            response = case.call(base_url=server.url, headers=auth, timeout=60)
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
            if isinstance(case.body, dict) and case.path in served:  # the same fuzzed body on a model that exists
                case.body["model"] = served[case.path]
                response = case.call(base_url=server.url, headers=auth, timeout=60)
                assert response.status_code < 500, (case.path, case.body, response.status_code, response.text[:300])

        check()
        tried += 1
    assert tried >= 7
    answered = sum(server.metric("nichetune_requests_total", route=r, status="200") for r in served)
    assert answered - requests_before >= 20  # the fuzzing reached the models, not only the validators
    assert server.metric("nichetune_requests_total", route="other", status="500") == 0


def test_base64_embeddings_decode_to_little_endian_float32(server):
    _, body, _ = server.request("POST", "/v1/embeddings", {"model": "encoder", "input": "kernel",
                                                           "encoding_format": "base64"})
    vector = np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4")
    assert vector.shape == (32,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_requests_the_fuzzer_found_crashing_are_answered(client):
    """Found by schemathesis: a seed outside torch's range, an empty prompt and a temperature so small that the
    logits overflowed each gave a 500."""
    odd_seed = client.completions.create(model="raw", prompt="kernel", max_tokens=3, seed=-(2**63) - 1)
    assert odd_seed.usage.completion_tokens == 3
    empty = client.completions.create(model="raw", prompt="", max_tokens=3, temperature=0)
    assert empty.usage.prompt_tokens == 1 and empty.usage.completion_tokens == 3
    tiny = client.completions.create(model="raw", prompt="kernel", max_tokens=4, temperature=1e-300)
    greedy = client.completions.create(model="raw", prompt="kernel", max_tokens=4, temperature=0)
    assert tiny.choices[0].text == greedy.choices[0].text
    odd_role = client.chat.completions.create(model="raw", messages=[{"role": "tool", "content": None,
                                                                      "tool_call_id": "x"}], max_tokens=2)
    assert odd_role.choices[0].finish_reason in ("stop", "length")


# --- experiments, shadows, feedback ------------------------------------------------------------------------

def _logged(server, request_id: str, count: int = 1, **filters) -> list[dict]:
    from nichetune.monitor.log import read_items

    for _ in range(100):  # the log is written off the request path
        rows = [r for r in read_items(server.predictions, **filters) if r["request_id"] == request_id]
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"{request_id} was not logged")


def test_an_experiment_assigns_each_user_one_arm_by_a_sticky_hash(server):
    from nichetune.serve.experiments import Experiment, assign

    experiment = Experiment(arms={"reviews": 1, "other": 1}, salt="s1")
    arms = {}
    for user in [f"user-{i}" for i in range(12)]:
        status, body, headers = server.request("POST", "/v1/classify", {"model": "ab", "input": "good", "user": user})
        assert status == 200 and body["experiment"] == {"name": "ab", "arm": body["model"]}
        assert body["model"] == assign(experiment, user)  # the documented hash, nothing else
        arms[user] = body["model"]
        again = server.request("POST", "/v1/classify", {"model": "ab", "input": "bad", "user": user})[1]
        assert again["model"] == body["model"]  # sticky
    assert set(arms.values()) == {"reviews", "other"}
    row = _logged(server, headers["x-request-id"], experiment="ab")[0]
    assert (row["experiment"], row["arm"], row["unit"]) == ("ab", arms["user-11"], "user-11")
    assert row["version"] == ("run:reviews" if arms["user-11"] == "reviews" else "run:other")


def test_a_shadow_answers_in_the_background_and_is_logged_not_returned(server):
    status, body, headers = server.request("POST", "/v1/classify", {
        "model": "merged", "input": ["good good", "bad"], "slices": [{"condition": "acne"}, {"condition": "pain"}]})
    assert status == 200 and body["model"] == "merged" and "experiment" not in body
    request_id = headers["x-request-id"]
    served = _logged(server, request_id, 2, shadow=False)
    shadow = _logged(server, request_id, 2, shadow=True)
    assert [r["model"] for r in shadow] == ["other", "other"] and shadow[0]["experiment"] == "shadow:merged"
    assert [r["text"] for r in shadow] == [r["text"] for r in served] == ["good good", "bad"]
    assert [r["slices"] for r in served] == [{"condition": "acne"}, {"condition": "pain"}]
    assert served[0]["version"] == "export:reviews-merged"
    status, body, _ = server.request("POST", "/v1/classify", {"model": "merged", "input": ["a", "b"],
                                                               "slices": [{"condition": "acne"}]})
    assert status == 422 and body["error"]["code"] == "slices_mismatch"


def test_feedback_attaches_the_true_label_to_a_logged_answer(server):
    _, _, headers = server.request("POST", "/v1/classify", {"model": "reviews", "input": ["good", "awful"]})
    request_id = headers["x-request-id"]
    status, body, _ = server.request("POST", "/v1/feedback", {"request_id": request_id, "index": 1,
                                                               "label": "negative"})
    assert status == 200 and body == {"object": "feedback", "request_id": request_id, "index": 1, "recorded": True}
    for _ in range(100):
        rows = _logged(server, request_id, 2)
        if rows[1]["true_label"]:
            break
        time.sleep(0.1)
    assert (rows[0]["true_label"], rows[1]["true_label"]) == (None, "negative")
    assert server.request("POST", "/v1/feedback", {"request_id": request_id})[0] == 422  # no label, no grade
    assert server.request("POST", "/v1/feedback", {"request_id": request_id, "label": "x"}, key=None)[0] == 401


def test_experiments_and_shadows_name_served_classifiers(runs, tmp_path):
    from nichetune.serve.app import create_app
    from nichetune.serve.config import ServeConfig
    from nichetune.serve.experiments import parse_experiment
    from nichetune.serve.keys import create_key

    create_key(tmp_path / "keys.json", "k")
    base = dict(targets=[str(runs["reviews"]), str(runs["chat"])], api_keys=tmp_path / "keys.json",
                prediction_log=None)
    with pytest.raises(NichetuneError, match="names 'nope', which is not served"):
        create_app(ServeConfig(**base, experiments=dict([parse_experiment("ab=reviews:1,nope:1")])))
    with pytest.raises(NichetuneError, match="chat is not a classifier"):
        create_app(ServeConfig(**base, shadows={"reviews": "chat"}))
    with pytest.raises(NichetuneError, match="a served model already has that name"):
        create_app(ServeConfig(**base, experiments=dict([parse_experiment("reviews=reviews:1,chat:1")])))
    assert parse_experiment("ab=a:3,b,salt=x")[1].shares() == {"a": 0.75, "b": 0.25}
