"""A real `nichetune serve` process on 127.0.0.1 for the server tests: started through the CLI, waited for on
/health, stopped (and its log kept) at the end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nichetune.serve.keys import create_key


@dataclass
class Server:
    url: str
    key: str
    admin_key: str
    log: Path
    predictions: Path
    proc: subprocess.Popen

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def request(self, method: str, path: str, body=None, key: str | None = "user", headers=None, timeout=120):
        """``(status, parsed JSON or text, headers)``; ``key`` is "user", "admin", None or a literal key."""
        token = {"user": self.key, "admin": self.admin_key}.get(key, key)
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw, hdrs = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, raw, hdrs = exc.code, exc.read(), dict(exc.headers)
        text = raw.decode()
        try:
            return status, json.loads(text), hdrs
        except ValueError:
            return status, text, hdrs

    def metric(self, name: str, **labels: str) -> float:
        """One series' value from /metrics (0 when absent)."""
        _, text, _ = self.request("GET", "/metrics")
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(folder: Path, targets: list[str], *flags: str, startup_s: float = 300):
    folder.mkdir(parents=True, exist_ok=True)
    keys = folder / "keys.json"
    key, admin = create_key(keys, "tests"), create_key(keys, "ops", admin=True)
    port = free_port()
    log = folder / "server.log"
    predictions = folder / "predictions.sqlite"
    cmd = [sys.executable, "-m", "nichetune", "serve", *targets, "--api-keys", str(keys), "--port", str(port),
           "--prediction-log", str(predictions), *flags]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Server(f"http://127.0.0.1:{port}", key, admin, log, predictions, proc)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if server.request("GET", "/health", key=None, timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
