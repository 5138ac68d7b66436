"""The server's parts on their own: the model pool (shared bases, LRU eviction under a budget, busy models kept),
micro-batching, the prediction log that never blocks, keys, and the Prometheus text format."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from pathlib import Path

import pytest
import torch

from nichetune.config.recipe import load_recipe
from nichetune.errors import NichetuneError
from nichetune.serve.batching import MicroBatcher
from nichetune.serve.keys import KeyRing, create_key, list_keys, revoke_key
from nichetune.serve.metrics import Metrics
from nichetune.serve.pool import ModelPool, PoolFull, model_bytes
from nichetune.serve.targets import parse_targets
from nichetune.train.run import train
from tiny_data import chat_rows, review_rows, write_jsonl


def _train(root: Path, model_dir: Path, task: str, rows, name: str) -> Path:
    data = write_jsonl(root / f"{name}.jsonl", rows)
    method = {"name": "lora", "r": 4, **({"target_modules": ["query", "value"]} if task != "sft" else {})}
    recipe = load_recipe(data={
        "task": task, "output_dir": str(root / name), "model": {"name": str(model_dir), "max_length": 32},
        "data": {"train": str(data)}, "method": method,
        "train": {"epochs": 1, "batch_size": 8, "lr": 1e-2, "precision": "fp32"}})
    train(recipe)
    return Path(recipe.output_dir)


@pytest.fixture(scope="module")
def targets(tmp_path_factory, tiny_bert_dir, tiny_llama_dir):
    root = tmp_path_factory.mktemp("pool")
    a = _train(root, tiny_bert_dir, "classification", review_rows(40, seed=1, own=2, noise=1), "a")
    b = _train(root, tiny_bert_dir, "classification", review_rows(40, seed=2, own=2, noise=1), "b")
    c = _train(root, tiny_llama_dir, "sft", chat_rows(16), "c")
    d = _train(root, tiny_llama_dir, "sft", list(reversed(chat_rows(24))), "d")
    return parse_targets([f"a={a}", f"b={b}", f"c={c}", f"e={tiny_bert_dir}", f"d={d}"])


def _pool(targets, budget: int = 1 << 40) -> ModelPool:
    return ModelPool(targets, budget, lambda t: torch.float32)


def _logits(pool: ModelPool, name: str, text: str = "good great pain"):
    with pool.use(name) as loaded:
        batch = loaded.tokenizer([text], return_tensors="pt")
        with torch.inference_mode():
            return loaded.model(**batch).logits.clone()


def test_adapters_on_one_base_share_it_and_each_answers_as_alone(targets):
    alone_b = _logits(p := _pool(targets), "b")
    p.unload("b")
    pool = _pool(targets)
    first = _logits(pool, "a")
    single = pool.used_bytes()
    second = _logits(pool, "b")
    assert pool.loaded["a"].group is pool.loaded["b"].group
    added = pool.loaded["b"].bytes
    assert 0 < added < single / 4  # the second adapter costs its own weights, not another base
    assert pool.used_bytes() == single + added
    torch.testing.assert_close(second, alone_b)
    torch.testing.assert_close(_logits(pool, "a"), first)  # switching back gives the first adapter again
    assert pool.unload("a") and _logits(pool, "b").allclose(alone_b)  # the base stays while b uses it
    assert pool.used_bytes() == model_bytes(pool.loaded["b"].group.model)


def test_decoder_adapters_on_one_base_share_it_and_generate_as_alone(targets):
    from nichetune.serve.generation import Cancel, Job, Sampling, chat_prompt_ids, generate_batch

    def answer(pool, name):
        with pool.use(name) as loaded:
            ids = chat_prompt_ids(loaded.tokenizer, [{"role": "user", "content": "what does kernel mean"}])
            return generate_batch(loaded.model, loaded.tokenizer, [Job(ids, Sampling(8, 0.0), Cancel())])[0].text

    alone = {}
    for name in ("c", "d"):
        alone[name] = answer(_pool(targets), name)
    pool = _pool(targets)
    shared = {name: answer(pool, name) for name in ("c", "d", "c")}
    assert pool.loaded["c"].group is pool.loaded["d"].group
    assert shared == alone and alone["c"] != alone["d"]  # each adapter is really the one answering


def test_least_recently_used_model_is_evicted_to_fit_the_budget(targets):
    sizes = {}
    for name in ("a", "c", "e"):
        pool = _pool(targets)
        pool.load(name)
        sizes[name] = pool.used_bytes()
    budget = sum(sizes.values()) - min(sizes.values()) // 2  # any two fit, all three do not
    pool = _pool(targets, budget)
    for name in ("a", "c", "a"):  # a is now the most recently used
        with pool.use(name):
            pass
    with pool.use("e"):
        pass
    assert set(pool.loaded) == {"a", "e"} and pool.evictions == 1  # c, the least recently used, went
    assert pool.used_bytes() <= budget
    with pytest.raises(PoolFull, match="more than the whole memory budget"):
        _pool(targets, 1000).load("a")


def test_a_model_in_use_is_never_evicted(targets):
    size = {}
    for name in ("a", "c"):
        pool = _pool(targets)
        pool.load(name)
        size[name] = pool.used_bytes()
    pool = _pool(targets, max(size.values()) + min(size.values()) // 2)  # one at a time
    holding, release = threading.Event(), threading.Event()

    def hold():
        with pool.use("a"):
            holding.set()
            release.wait(30)

    worker = threading.Thread(target=hold)
    worker.start()
    holding.wait(30)
    with pytest.raises(PoolFull, match="busy"):
        pool.load("c")
    assert "a" in pool.loaded
    release.set()
    worker.join()
    pool.load("c")
    assert set(pool.loaded) == {"c"}


def test_micro_batcher_groups_waiting_requests_and_returns_each_its_own_answers():
    sizes: list[int] = []
    gate = threading.Event()

    def run_batch(texts):
        if not sizes:
            gate.wait(5)  # the first pass is slow: the others queue behind it
        sizes.append(len(texts))
        return [t.upper() for t in texts]

    async def main():
        from concurrent.futures import ThreadPoolExecutor

        batcher = MicroBatcher(run_batch, ThreadPoolExecutor(1), max_texts=8)
        first = asyncio.create_task(batcher.submit(["a"]))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(batcher.submit([f"x{i}", f"y{i}"])) for i in range(6)]
        await asyncio.sleep(0.05)
        gate.set()
        answers = await asyncio.gather(first, *rest)
        return answers, batcher

    answers, batcher = asyncio.run(main())
    assert answers[0] == ["A"] and answers[1:] == [[f"X{i}", f"Y{i}"] for i in range(6)]
    assert sizes == [1, 8, 4]  # 12 waiting texts in passes of at most 8; no request split across passes
    assert batcher.worker.done()  # nothing lingers once the queue is empty


def test_micro_batcher_tells_every_waiting_request_of_a_failure():
    def run_batch(texts):
        raise RuntimeError("boom")

    async def main():
        from concurrent.futures import ThreadPoolExecutor

        batcher = MicroBatcher(run_batch, ThreadPoolExecutor(1), max_texts=8)
        return await asyncio.gather(*(batcher.submit(["t"]) for _ in range(3)), return_exceptions=True)

    assert [str(r) for r in asyncio.run(main())] == ["boom"] * 3


def test_prediction_log_never_blocks_the_caller_and_counts_what_it_drops(tmp_path, monkeypatch):
    from nichetune.prediction_log import PredictionLog, read_predictions

    log = PredictionLog(tmp_path / "p.sqlite", capacity=2, mask_pii=False)
    stuck, real_store = threading.Event(), log._store

    def slow_store(batch):
        stuck.wait(10)
        real_store(batch)

    monkeypatch.setattr(log, "_store", slow_store)
    for i in range(10):  # the writer is stuck: these must return at once, not wait for it
        log.write(request_id=str(i), model="m", route="/v1/classify", status=200, latency_ms=1.0,
                  request={"input": [f"t{i}"]}, response=[{"label": "x"}])
    assert 7 <= log.dropped <= 8  # one taken by the writer (or not yet), two queued, the rest dropped
    stuck.set()
    log.close()
    rows = read_predictions(tmp_path / "p.sqlite")
    assert len(rows) == 10 - log.dropped and rows[0]["request"] == {"input": ["t0"]}


def test_keys_are_hashed_unique_revocable_and_checked_against_every_hash(tmp_path):
    path = tmp_path / "keys.json"
    key = create_key(path, "alice")
    admin = create_key(path, "ops", admin=True)
    text = path.read_text()
    assert key not in text and admin not in text and hashlib.sha256(key.encode()).hexdigest() in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    ring = KeyRing.from_file(path)
    assert ring.check(key).name == "alice" and ring.check(admin).admin
    assert ring.check(key + "x") is None and ring.check(None) is None and ring.check("") is None
    with pytest.raises(NichetuneError, match="already has a key named"):
        create_key(path, "alice")
    revoke_key(path, "alice")
    assert [k.name for k in list_keys(path)] == ["ops"] and KeyRing.from_file(path).check(key) is None
    with pytest.raises(NichetuneError, match="no keys"):
        KeyRing([])
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(NichetuneError, match="bad.json: not a nichetune key file"):
        KeyRing.from_file(tmp_path / "bad.json")


def test_metrics_render_the_prometheus_text_format():
    m = Metrics()
    m.counter("t_requests_total", "requests")
    m.histogram("t_seconds", "time", (0.1, 1.0))
    m.gauge("t_loaded", "loaded", lambda: 3)
    m.inc("t_requests_total", route="/v1/x", status="200")
    m.inc("t_requests_total", 2, route="/v1/x", status="200")
    m.inc("t_requests_total", route='a"b', status="500")
    for v in (0.05, 0.5, 5.0):
        m.observe("t_seconds", v, route="/v1/x")
    lines = m.render().splitlines()
    assert "# TYPE t_requests_total counter" in lines and "# TYPE t_seconds histogram" in lines
    assert 't_requests_total{route="/v1/x",status="200"} 3' in lines
    assert 't_requests_total{route="a\\"b",status="500"} 1' in lines
    assert 't_seconds_bucket{route="/v1/x",le="0.1"} 1' in lines and 't_seconds_bucket{route="/v1/x",le="1"} 2' in lines
    assert 't_seconds_bucket{route="/v1/x",le="+Inf"} 3' in lines and 't_seconds_count{route="/v1/x"} 3' in lines
    assert 't_seconds_sum{route="/v1/x"} 5.55' in lines and "t_loaded 3" in lines


def test_targets_are_refused_with_the_reason(tmp_path, targets):
    with pytest.raises(NichetuneError, match="two targets are named"):
        parse_targets([f"a={targets[0].record}", f"a={targets[1].record}"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(NichetuneError, match="neither a finished run, an export nor a model folder"):
        parse_targets([str(tmp_path / "empty")])
    with pytest.raises(NichetuneError, match="not a usable model name"):
        parse_targets([f"bad name!={targets[0].record}"])
    assert json.loads(json.dumps([t.capabilities for t in targets])) == [
        ["classify", "embeddings"], ["classify", "embeddings"], ["chat", "completions"], ["embeddings"],
        ["chat", "completions"]]


def test_batched_generation_gives_each_row_what_it_gets_alone(tiny_llama_dir):
    """Left-padded rows of different lengths, caps and stop strings, decoded together in fp32, against each job
    generated alone; a cancelled request's row stops at once and the others carry on."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from nichetune.serve.generation import Cancel, Job, Sampling, generate_batch, text_prompt_ids

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    prompts = ["kernel", "what does compiler mean in computing", "a b c d e f g h"]
    caps = [5, 9, 7]

    def jobs(stop=(), cancel_second=False):
        out = []
        for i, (p, cap) in enumerate(zip(prompts, caps, strict=True)):
            cancel = Cancel()
            if cancel_second and i == 1:
                cancel.cancel("client gone")
            out.append(Job(text_prompt_ids(tok, p), Sampling(cap, 0.0, 1.0, stop), cancel))
        return out

    alone = [generate_batch(model, tok, [j])[0] for j in jobs()]
    together = generate_batch(model, tok, jobs())
    assert [g.text for g in together] == [g.text for g in alone]
    assert [g.completion_tokens for g in together] == [g.completion_tokens for g in alone]
    assert all(g.completion_tokens <= cap for g, cap in zip(together, caps, strict=True))
    assert [g.finish_reason for g in alone] == ["length" if g.completion_tokens == c else "stop"
                                               for g, c in zip(alone, caps, strict=True)]
    stop = alone[2].text[2:4]
    assert stop.strip()
    cut = generate_batch(model, tok, jobs(stop=(stop,)))
    assert cut[2].text == alone[2].text[: alone[2].text.index(stop)] and cut[2].finish_reason == "stop"
    cancelled = generate_batch(model, tok, jobs(cancel_second=True))
    assert cancelled[1].finish_reason == "cancelled" and cancelled[1].completion_tokens == 0
    assert cancelled[0].text == alone[0].text and cancelled[2].text == alone[2].text


def test_generation_queue_batches_only_compatible_jobs_and_keeps_the_rest_in_order():
    from nichetune.serve.batching import GenerationQueue
    from nichetune.serve.generation import Cancel, Job, Sampling, batchable

    batches: list[list[str]] = []
    gate = threading.Event()

    def run_jobs(jobs):
        if not batches:
            gate.wait(5)
        batches.append([j.input_ids for j in jobs])
        return [j.input_ids.upper() for j in jobs]

    def job(name, temperature=0.0, seed=None):
        return Job(name, Sampling(4, temperature, 1.0, (), seed), Cancel())

    async def main():
        from concurrent.futures import ThreadPoolExecutor

        queue = GenerationQueue(run_jobs, ThreadPoolExecutor(1), max_jobs=3, compatible=batchable)
        first = asyncio.create_task(queue.submit(job("a")))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(queue.submit(j)) for j in
                (job("b"), job("s1", seed=1), job("c"), job("t", temperature=0.7), job("d"), job("e"))]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(first, *rest), queue

    answers, queue = asyncio.run(main())
    assert answers == ["A", "B", "S1", "C", "T", "D", "E"]
    # greedy jobs go together (3 at most); a seeded job runs alone; another temperature waits its turn
    assert batches == [["a"], ["b", "c", "d"], ["s1"], ["t"], ["e"]]
    assert queue.worker.done()


def test_workers_serve_from_separate_processes_behind_one_port(targets, tmp_path):
    """`--workers 2`: uvicorn starts two processes from the JSON config; both answer, each with its own models."""
    from serving import running_server

    with running_server(tmp_path / "workers", [f"a={targets[0].record}"], "--workers", "2") as server:
        pids = set()
        for _ in range(80):  # new connections are spread by the kernel, not in turn: ask until both answered
            status, body, _ = server.request("POST", "/v1/classify", {"model": "a", "input": "good"})
            assert status == 200 and body["data"][0]["label"] in ("negative", "positive")
            _, health, _ = server.request("GET", "/health", key=None)
            pids.add(health["pid"])
            if len(pids) == 2:
                break
        assert server.request("GET", "/v1/models", key=None)[0] == 401
    assert len(pids) == 2


def test_keys_and_serve_from_the_command_line(tmp_path, targets, capsys):
    from nichetune.cli import main

    path = tmp_path / "keys.json"
    assert main(["keys", "create", str(path), "--name", "app"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("nt-") and key not in path.read_text()
    assert main(["keys", "create", str(path), "--name", "ops", "--admin"]) == 0
    capsys.readouterr()
    assert main(["keys", "list", str(path)]) == 0
    listed = capsys.readouterr().out
    assert "app" in listed and "ops" in listed and "nt-" not in listed
    assert main(["keys", "revoke", str(path), "app"]) == 0
    assert [k.name for k in list_keys(path)] == ["ops"]
    # beyond loopback only when asked for twice; a missing key file is refused before a port is bound
    assert main(["serve", str(targets[0].record), "--api-keys", str(path), "--host", "0.0.0.0"]) == 1
    assert "would expose the server beyond this machine" in capsys.readouterr().err
    assert main(["serve", str(targets[0].record), "--api-keys", str(tmp_path / "none.json")]) == 1
    assert "no such key file" in capsys.readouterr().err


def test_a_body_without_a_length_is_cut_off_as_it_streams_in():
    """Chunked bodies carry no Content-Length: the cap is enforced while reading, and the app never sees more."""
    from nichetune.serve.middleware import BodyLimit

    seen: list[int] = []

    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            seen.append(len(body))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def run(chunks: int):
        sent: list[dict] = []
        parts = iter([{"type": "http.request", "body": b"x" * 1000, "more_body": i < chunks - 1}
                      for i in range(chunks)])

        async def receive():
            return next(parts)

        async def send(message):
            sent.append(message)

        await BodyLimit(app, limit=4500)({"type": "http", "path": "/v1/classify", "headers": []}, receive, send)
        return sent

    refused = asyncio.run(run(chunks=20))
    assert refused[0]["status"] == 413 and b"body_too_large" in refused[1]["body"]
    assert max(seen) <= 4500  # the app stopped receiving at the cap, long before the 20,000 bytes sent
    seen.clear()
    accepted = asyncio.run(run(chunks=4))
    assert accepted[0]["status"] == 200 and seen[-1] == 4000
