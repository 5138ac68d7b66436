import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nichetune.cli import build_parser, main


def _all_command_paths(parser, prefix=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _all_command_paths(sub, (*prefix, name))


COMMANDS = list(_all_command_paths(build_parser()))


def test_the_public_command_names_exist():
    for path in [("models", "list"), ("models", "show"), ("models", "prepare"), ("generate",), ("classify",),
                 ("data", "validate"), ("data", "list"), ("data", "show"), ("data", "export"), ("demo",)]:
        assert path in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help(path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith(f"usage: nichetune {' '.join(path)}")
    assert len(out.splitlines()) > 3


def test_validate_cli_puts_exactly_the_planted_rows_in_quarantine(tmp_path, capsys):
    data = tmp_path / "reviews.jsonl"
    good = [{"text": f"review {i}", "label": "positive" if i % 2 else "negative"} for i in range(20)]
    planted = {4: b'{"text": "no label"}', 9: b'{"text": "bad \xc3\x28 bytes", "label": "positive"}',
               13: b'{"text": "", "label": "negative"}', 17: b'{"text": "x", "label": "maybe"}',
               20: b'{"text": "cut off'}
    lines = [json.dumps(r).encode() for r in good]
    for line_no, raw in planted.items():
        lines[line_no - 1] = raw
    data.write_bytes(b"\n".join(lines) + b"\n")
    q, out = tmp_path / "q.jsonl", tmp_path / "clean.jsonl"
    rc = main(["data", "validate", str(data), "--task", "classification", "--labels", "positive,negative",
               "--quarantine", str(q), "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and "20 rows, 15 valid, 5 quarantined" in printed
    entries = [json.loads(x) for x in q.read_text().splitlines()]
    assert {e["line"]: e["reason"] for e in entries} == {4: "missing_field", 9: "invalid_utf8", 13: "empty_field",
                                                        17: "unknown_label", 20: "invalid_json"}
    assert all(e["source"] == str(data) and e["message"] for e in entries)
    assert len(out.read_text().splitlines()) == 15

    rc = main(["data", "validate", str(data), "--task", "classification", "--strict", "--quarantine", str(q)])
    err = capsys.readouterr().err
    assert rc == 1 and "line 4" in err and "missing_field" in err and "how to fix" in err


def test_errors_exit_non_zero_with_a_hint(capsys):
    assert main(["generate", "./missing-model", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "how to fix:" in err


BLOCK_SOCKETS = textwrap.dedent("""
    import os, socket
    _log = os.environ["SOCKET_LOG"]
    def _blocked(*args, **kwargs):
        with open(_log, "a") as fh:
            fh.write(repr(args[:2]) + "\\n")
        raise OSError("network access blocked by the test")
    _orig_connect = socket.socket.connect
    def _connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _blocked(address)
        return _orig_connect(self, address)
    socket.socket.connect = _connect
    socket.socket.connect_ex = lambda self, address: _blocked(address)
    socket.getaddrinfo = _blocked
    socket.create_connection = _blocked
""")


def _run_blocked(args, tmp_path, **env_extra):
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCK_SOCKETS)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "NICHETUNE_ONLINE")}
    env.update(PYTHONPATH=str(site), SOCKET_LOG=str(tmp_path / "sockets.log"), **env_extra)
    return subprocess.run([sys.executable, "-m", "nichetune", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)


def test_core_cli_paths_run_with_sockets_blocked(tmp_path, tiny_classifier_dir):
    out = tmp_path / "drugs.jsonl"
    res = _run_blocked(["data", "export", "drug-reviews", "--out", str(out)], tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(out.read_text().splitlines()) == 979

    res = _run_blocked(["classify", str(tiny_classifier_dir), "the drug helped", "--json"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert set(json.loads(res.stdout)[0]["scores"]) == {"negative", "positive", "neutral"}

    res = _run_blocked(["models", "show", "minilm-l6", "--json"], tmp_path)
    assert res.returncode == 0 and json.loads(res.stdout)["layers"] == 6

    # a hub id offline fails with nichetune's explanation, not a network error
    res = _run_blocked(["models", "show", "someorg/some-model"], tmp_path, HF_HOME=str(tmp_path / "hf"))
    assert res.returncode == 1 and "nichetune is offline" in res.stderr and "--online" in res.stderr
    assert not (tmp_path / "sockets.log").exists(), (tmp_path / "sockets.log").read_text()


def test_import_changes_no_environment_and_the_library_and_cli_stay_offline():
    probe = ("import os; before = dict(os.environ); import nichetune; from nichetune.offline import is_offline; "
             "import nichetune.train.run, nichetune.eval.run; "
             "print(before == dict(os.environ), is_offline(), os.environ.get('HF_HUB_OFFLINE')); "
             "from nichetune.cli import main; main(['data', 'list']); print(os.environ.get('HF_HUB_OFFLINE'))")

    def run(**extra):
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "NICHETUNE_ONLINE")}
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={**env, **extra})
        lines = out.stdout.strip().splitlines()
        return lines[0], lines[-1]

    assert run() == ("True True None", "1")  # import touched nothing; the library and the CLI are offline
    assert run(NICHETUNE_ONLINE="1") == ("True False None", "0")


def test_console_script_and_module_agree():
    exe = Path(sys.executable).parent / "nichetune"
    a = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    b = subprocess.run([sys.executable, "-m", "nichetune", "--version"], capture_output=True, text=True)
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout and a.stdout.startswith("nichetune ")


README = Path(__file__).parents[1] / "README.md"


def _readme_commands():
    """Every `nichetune` command line in the README: shell blocks (continuations joined, and the
    `-m nichetune ...` part of torchrun / accelerate lines) and inline code such as table cells."""
    import re

    text = README.read_text()
    commands = []
    for block in text.split("```sh")[1:]:
        body = block.split("```")[0].replace("\\\n", " ")
        for line in body.splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("nichetune "):
                commands.append(line)
            elif " -m nichetune " in line:
                commands.append("nichetune " + line.split(" -m nichetune ", 1)[1])
    commands += [c.split(" && ")[0] for c in re.findall(r"`(nichetune [^`]+)`", text)
                 if "..." not in c and "|" not in c and len(c.split()) >= 3 and not c.endswith("NAME")]
    return commands


README_COMMANDS = _readme_commands()


def test_readme_shows_the_two_commands_first():
    text = README.read_text()
    first_block = text.split("```sh")[1].split("```")[0]
    assert [ln.split("#")[0].strip() for ln in first_block.strip().splitlines()] == ["make demo", "make test"]
    assert "make test" in (Path(__file__).parents[1] / ".ci" / "run").read_text()


@pytest.mark.parametrize("command", README_COMMANDS)
def test_every_readme_command_parses(command):
    import shlex

    assert len(README_COMMANDS) >= 10
    args = build_parser().parse_args(shlex.split(command)[1:])  # exits (fails) on unknown verbs or flags
    assert callable(args.func)


def test_every_readme_subcommand_is_run_by_a_test():
    """A README command whose subcommand no test runs through the CLI fails here (the demo's e2e test
    runs the lifecycle commands; the others are called as main([...]) or nichetune(...) in tests)."""
    import re
    import shlex

    sources = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    groups = {"models", "data", "review"}
    missing = set()
    for command in README_COMMANDS:
        words = [w for w in shlex.split(command)[1:] if not w.startswith("-")]
        verb = words[:2] if words[0] in groups else words[:1]
        pattern = r"[\[(]" + ", ".join(f'"{w}"' for w in verb)
        if not re.search(pattern, sources):
            missing.add(" ".join(verb))
    assert not missing, f"README commands that no test runs: {sorted(missing)}"


def test_readme_python_api_names_exist_and_take_those_arguments():
    import ast
    import inspect

    import nichetune

    code = README.read_text().split("```python")[1].split("```")[0]
    calls = [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", None) == "nt"]
    assert len(calls) >= 12
    for call in calls:
        assert call.func.attr in nichetune.__all__, call.func.attr
        target = getattr(nichetune, call.func.attr)
        signature = inspect.signature(target)
        signature.bind_partial(*[None] * len(call.args), **{k.arg: None for k in call.keywords})


def test_listing_commands(capsys):
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["smollm2-135m-instruct", "minilm-l6"]
    assert rows[1]["status"] == "ready"
    assert main(["data", "list", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["bbc-news", "drug-reviews", "foldoc",
                                                                       "foldoc-subjects"]
    assert main(["data", "show", "foldoc", "--json", "--samples", "1"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rows"] == info["foldoc"]["usable"] and info["task"] == "sft"


def test_quiet_libraries_hushes_torchao_notices_that_importing_peft_prints():
    """The CLI and the benchmark scripts call it; without it a CPU machine prints torchao's CUDA-library notices
    and torch's pytree deprecations on importing peft (checked first, so the test can fail)."""
    pytest.importorskip("torchao")
    logging_on = "import logging; logging.basicConfig(level=logging.WARNING); "

    def stderr(code: str) -> str:
        res = subprocess.run([sys.executable, "-c", logging_on + code + "import peft"], capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        return res.stderr

    loud = stderr("")
    assert "torchao" in loud or "_pytree" in loud  # what the fix is for; if torchao stops logging, drop this test
    quiet = stderr("from nichetune.quiet import quiet_libraries; quiet_libraries(); ")
    assert "torchao" not in quiet and "_pytree" not in quiet, quiet
