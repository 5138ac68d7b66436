"""The server's limits under a real model (SmolLM2-135M-Instruct, embedded) on a real uvicorn: a client that goes
away stops its generation, a timeout answers 504 and frees its slot, and a bounded load above the concurrency
limit gets fast 429s while every accepted request completes, /health stays green and nothing leaks."""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from nichetune.prediction_log import read_predictions
from serving import running_server

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m-instruct"
TIMEOUT_S = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("serve-limits"), [f"lm={MODEL}"], "--concurrency", "2",
                        "--timeout", str(TIMEOUT_S), "--max-tokens", "4000", "--preload") as s:
        yield s


def _stream(server, max_tokens: int, *, read_events: int | None = None) -> tuple[int, list[str], float]:
    """POST a streamed chat; read ``read_events`` events then hang up (None: read to the end).
    Returns (status, events, seconds to the status line)."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    body = {"model": "lm", "stream": True, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": "Count from 1 to 1000 in words, one number per line."}]}
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", json.dumps(body),
                 {"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    waited = time.perf_counter() - start
    events: list[str] = []
    if resp.status == 200:
        while read_events is None or len(events) < read_events:
            line = resp.fp.readline().decode()
            if not line:
                break
            if line.startswith("data: "):
                events.append(line[6:].strip())
                if events[-1] == "[DONE]":
                    break
    else:
        resp.read()
    conn.close()
    return resp.status, events, waited


def _wait_for(predicate, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_client_that_hangs_up_stops_its_generation(server):
    before = server.metric("nichetune_stopped_total", reason="client gone")
    status, events, _ = _stream(server, 3000, read_events=4)
    assert status == 200 and len(events) == 4
    assert _wait_for(lambda: server.metric("nichetune_stopped_total", reason="client gone") == before + 1)
    assert _wait_for(lambda: server.metric("nichetune_in_flight") == 0, 10)
    def cut_off() -> list[dict]:  # the log is written off the request path: wait for the row
        return [r for r in read_predictions(server.predictions) if r["status"] == 499]

    assert _wait_for(lambda: bool(cut_off()), 10)
    assert 0 < len(cut_off()[-1]["response"][0]) < 2000  # some text was sent; far from the 3000 tokens asked
    # the model is free again at once: a short request is answered long before the long one would have ended
    status, events, _ = _stream(server, 4)
    assert status == 200 and events[-1] == "[DONE]"


def test_a_request_past_the_time_limit_gets_504_and_frees_its_slot(server):
    before = server.metric("nichetune_stopped_total", reason="timeout")
    start = time.perf_counter()
    status, body, _ = server.request("POST", "/v1/chat/completions", {
        "model": "lm", "max_tokens": 3000, "temperature": 0,
        "messages": [{"role": "user", "content": "Count from 1 to 1000 in words, one number per line."}]})
    took = time.perf_counter() - start
    assert status == 504 and body["error"]["code"] == "timeout"
    assert TIMEOUT_S - 0.5 < took < TIMEOUT_S + 10
    assert server.metric("nichetune_stopped_total", reason="timeout") == before + 1
    assert _wait_for(lambda: server.metric("nichetune_in_flight") == 0, 10)
    status, events, _ = _stream(server, 4)
    assert status == 200 and events[-1] == "[DONE]"


def _burst(server, clients: int, rounds: int) -> list[tuple[int, list[str], float]]:
    with ThreadPoolExecutor(clients) as pool:
        return [r for batch in pool.map(lambda _: [_stream(server, 24) for _ in range(rounds)], range(clients))
                for r in batch]


def test_bounded_load_gets_fast_429s_completes_the_rest_and_leaks_nothing(server):
    health: list[int] = []
    stop = threading.Event()

    def poll_health():
        while not stop.is_set():
            health.append(server.request("GET", "/health", key=None, timeout=10)[0])
            time.sleep(0.2)

    tasks_idle = server.metric("nichetune_event_loop_tasks")
    watcher = threading.Thread(target=poll_health)
    watcher.start()
    try:
        first = _burst(server, clients=8, rounds=3)
        rss_first = server.metric("process_resident_memory_bytes")
        second = _burst(server, clients=8, rounds=3)
    finally:
        stop.set()
        watcher.join()
    results = first + second
    accepted = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 429]
    assert len(accepted) + len(refused) == len(results)  # nothing else: no 5xx, no hang
    assert len(accepted) >= 4 and len(refused) >= 8
    assert all(events and events[-1] == "[DONE]" and '"finish_reason"' in "".join(events) for _, events, _ in accepted)
    # refused at once: every 429 came back before the first accepted stream could even have finished
    fastest_done = min(waited for _, _, waited in accepted)
    assert max(waited for _, _, waited in refused) < max(1.0, fastest_done)
    assert health and set(health) == {200}
    assert _wait_for(lambda: server.metric("nichetune_in_flight") == 0, 10)
    assert _wait_for(lambda: server.metric("nichetune_event_loop_tasks") <= tasks_idle + 1, 10)
    assert server.metric("process_resident_memory_bytes") < rss_first + 64 * 2**20
    assert server.metric("nichetune_rejected_total", reason="concurrency") >= len(refused)
