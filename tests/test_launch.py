"""The command re-executes itself once under tcmalloc or jemalloc where installed (``cli.launch``)."""

import subprocess
import sys

import pytest

from nichetune.cli.launch import ENV, TRIED, find_allocator, relaunch_env
from nichetune.hardware import allocator

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD is a Linux loader feature")


@pytest.fixture
def libs(tmp_path):
    for name in ("libjemalloc.so.2", "libtcmalloc_minimal.so.4"):
        (tmp_path / name).write_bytes(b"")
    return tmp_path


@linux_only
def test_tcmalloc_is_preferred_and_prepended_to_the_users_preload(libs):
    env = relaunch_env({"LD_PRELOAD": "/opt/mine.so", "PATH": "/bin"}, folders=(str(libs),))
    assert env["LD_PRELOAD"] == f"{libs}/libtcmalloc_minimal.so.4 /opt/mine.so"
    assert env[TRIED] == f"{libs}/libtcmalloc_minimal.so.4" and env["PATH"] == "/bin"
    assert int(env["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"]) >= 2**40  # no stderr note per large block
    # the user's own setting wins
    assert relaunch_env({"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": "5"}, folders=(str(libs),))[
        "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"] == "5"
    (libs / "libtcmalloc_minimal.so.4").unlink()
    assert find_allocator({}, folders=(str(libs),)) == f"{libs}/libjemalloc.so.2"


@linux_only
def test_no_relaunch_when_asked_not_to_already_done_or_nothing_to_load(libs, tmp_path_factory):
    folders = (str(libs),)
    assert relaunch_env({ENV: "system"}, folders) is None
    assert relaunch_env({TRIED: "/x.so"}, folders) is None  # the re-executed process: never a loop
    assert relaunch_env({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, folders) is None  # the user chose one
    assert relaunch_env({ENV: str(libs / "missing.so")}, folders) is None
    assert relaunch_env({ENV: str(libs / "libjemalloc.so.2")}, folders)["LD_PRELOAD"] == str(libs / "libjemalloc.so.2")
    empty = tmp_path_factory.mktemp("empty")
    if find_allocator({}, folders=(str(empty),)) is None:  # sys.prefix/lib is searched too: a venv has none
        assert relaunch_env({}, (str(empty),)) is None


@linux_only
def test_the_program_runs_under_the_installed_allocator_and_python_callers_are_left_alone(capsys):
    """``python -m nichetune`` re-executes under the library (``--version`` names it); ``NICHETUNE_ALLOCATOR=system``
    keeps glibc's; ``main([...])`` called from Python never re-executes."""
    import os

    library = find_allocator(dict(os.environ))
    if library is None:
        if os.environ.get("CI") == "true":  # .ci/run installs it: a skip there would hide a broken launch
            pytest.fail("CI requires tcmalloc: apt-get install libtcmalloc-minimal4")
        pytest.skip("neither tcmalloc nor jemalloc is installed (apt-get install libtcmalloc-minimal4)")
    clean = {k: v for k, v in os.environ.items() if k not in (ENV, TRIED, "LD_PRELOAD")}
    for extra, expected in (({}, "tcmalloc" if "tcmalloc" in library else "jemalloc"), ({ENV: "system"}, "glibc")):
        ran = subprocess.run([sys.executable, "-m", "nichetune", "--version"], capture_output=True, text=True,
                             timeout=120, env={**clean, **extra})
        assert ran.returncode == 0, ran.stderr[-2000:]
        assert ran.stdout.strip().endswith(f"(C allocator: {expected})"), (extra, ran.stdout)
        assert "large alloc" not in ran.stderr
    with pytest.raises(SystemExit):
        from nichetune.cli import main
        main(["--version"])
    assert capsys.readouterr().out.strip().endswith(f"(C allocator: {allocator()})")  # this process's own
