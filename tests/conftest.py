import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import build_tiny_bert, build_tiny_llama  # noqa: E402


@pytest.fixture(autouse=True)
def _working_folder_untouched():
    """Fail a test that leaves a new file in the folder pytest runs from (the repository root in CI).

    ``data validate`` writes ``STEM.quarantine.jsonl`` into the current folder by default: two tests once left
    empty quarantine files at the repository root, where they were committed by accident.
    """
    root = Path.cwd()
    before = set(os.listdir(root))
    yield
    new = set(os.listdir(root)) - before
    if new:
        pytest.fail(f"the test left {sorted(new)} in {root}: write under tmp_path (or pass --quarantine/--out)")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert-cls"), labels=["negative", "positive", "neutral"])


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A private nichetune cache so tests never touch (or depend on) the user's."""
    monkeypatch.setenv("NICHETUNE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def chromium(tmp_path):
    """``dump_dom(page, *flags)``: the DOM of a local page after Debian's headless Chromium ran it.

    Skipped where Chromium is missing, except under CI (``CI=true``) or ``NICHETUNE_REQUIRE_BROWSER=1``,
    where a missing browser fails the test: .ci/run installs it, so a skip there would hide a broken page.
    """
    if shutil.which("chromium") is None:
        if os.environ.get("CI") == "true" or os.environ.get("NICHETUNE_REQUIRE_BROWSER") == "1":
            pytest.fail("Debian chromium is not installed, and CI requires the browser tests "
                        "(apt-get install chromium)")
        pytest.skip("Debian chromium is not installed")

    def dump_dom(page: Path, *flags: str) -> str:
        res = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                              "--disable-background-networking", "--disable-component-update", "--no-first-run",
                              f"--user-data-dir={tmp_path / 'profile'}", *flags, "--dump-dom", f"file://{page}"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout

    return dump_dom


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test PostgreSQL database (``NICHETUNE_TEST_POSTGRES``, a SQLAlchemy URL) that .ci/run starts with
    scripts/start_postgres.sh. Skipped where it is not set, except under CI or ``NICHETUNE_REQUIRE_POSTGRES=1``,
    where the registry must be tested against a real server."""
    url = os.environ.get("NICHETUNE_TEST_POSTGRES")
    if not url:
        if os.environ.get("CI") == "true" or os.environ.get("NICHETUNE_REQUIRE_POSTGRES") == "1":
            pytest.fail("NICHETUNE_TEST_POSTGRES is not set, and CI requires the PostgreSQL registry tests "
                        "(NICHETUNE_TEST_POSTGRES=$(bash scripts/start_postgres.sh))")
        pytest.skip("no PostgreSQL server (set NICHETUNE_TEST_POSTGRES=$(bash scripts/start_postgres.sh))")
    return url
