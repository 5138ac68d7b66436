"""The pseudonymisation key and the optional re-identification vault, both owner-only files."""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
from pathlib import Path

from ...errors import NichetuneError

DEFAULT_KEY_FILE = Path(".nichetune") / "pii.key"
# custom types may hold digits and hyphens (--pattern MRN-2=...): the type is everything before the last _
SURROGATE = re.compile(r"\[([A-Z0-9_-]+)_([0-9a-f]{10})\]")


def _owner_only_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def load_or_create_key(path: str | Path | None = None) -> bytes:
    """The project's pseudonymisation key: ``$NICHETUNE_PII_KEY`` (hex), else a 0600 key file.

    The same key gives the same surrogates, so keep one key per project; without the key (and
    the vault) surrogates cannot be reversed.
    """
    env = os.environ.get("NICHETUNE_PII_KEY")
    if env:
        return _parse_key(env, "$NICHETUNE_PII_KEY")
    path = Path(path) if path else DEFAULT_KEY_FILE
    if not path.exists():
        _owner_only_file(path)
        path.write_text(secrets.token_hex(32) + "\n")
    return _parse_key(path.read_text(), str(path))


def _parse_key(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) < 16:
        raise NichetuneError(f"{where} is not a pseudonymisation key: it must be at least 32 hexadecimal "
                             "characters (16 bytes)",
                             hint="make one with: python -c 'import secrets; print(secrets.token_hex(32))' "
                                  "(and keep the same key for the whole project)")
    return key


class PiiVault:
    """Surrogate -> original value, in an owner-only SQLite file kept apart from the data."""

    def __init__(self, path: str | Path, *, data_dir: str | Path | None = None) -> None:
        self.path = Path(path).resolve()
        if data_dir is not None and self.path.parent == Path(data_dir).resolve():
            raise NichetuneError(
                f"the vault {self.path} would sit in the same folder as the data it re-identifies",
                hint="keep the vault apart from the data, e.g. --vault ~/secure/pii-vault.sqlite")
        if not self.path.exists():
            _owner_only_file(self.path)
        os.chmod(self.path, 0o600)
        self.db = sqlite3.connect(self.path)
        self.db.execute("CREATE TABLE IF NOT EXISTS mapping (surrogate TEXT PRIMARY KEY, type TEXT NOT NULL, "
                        "value TEXT NOT NULL, first_seen TEXT DEFAULT CURRENT_TIMESTAMP)")

    def record(self, surrogate: str, type_: str, value: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO mapping (surrogate, type, value) VALUES (?, ?, ?)",
                        (surrogate, type_, value))

    def lookup(self, surrogate: str) -> str | None:
        row = self.db.execute("SELECT value FROM mapping WHERE surrogate = ?", (surrogate,)).fetchone()
        return row[0] if row else None

    def reidentify(self, text: str) -> str:
        return SURROGATE.sub(lambda m: self.lookup(m.group(0)) or m.group(0), text)

    def close(self) -> None:
        self.db.commit()
        self.db.close()
