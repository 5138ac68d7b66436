"""API keys: created once and shown once, stored as sha256 hashes, checked in constant time.

A key is 32 random bytes (``nt-`` + urlsafe base64), so a plain sha256 is enough: there is nothing to guess
that a slow hash would protect. The key file holds names, hashes and whether a key may use admin routes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import NichetuneError

PREFIX = "nt-"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    name: str
    sha256: str
    admin: bool
    created: str


def _read(path: Path) -> list[KeyRecord]:
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [KeyRecord(k["name"], k["sha256"], bool(k.get("admin", False)), k.get("created", ""))
                for k in data["keys"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise NichetuneError(f"{path}: not a nichetune key file ({exc})",
                             hint="create one with `nichetune keys create FILE --name NAME`") from exc


def _write(path: Path, records: list[KeyRecord]) -> None:
    body = {"keys": [r.__dict__ for r in records]}
    atomic_write_text(path, json.dumps(body, indent=2) + "\n")
    path.chmod(0o600)


def create_key(path: str | Path, name: str, *, admin: bool = False) -> str:
    """Add a key named ``name`` to the key file and return the key itself, which is stored nowhere.

    Raises:
        NichetuneError: the name is taken.
    """
    path = Path(path)
    records = _read(path)
    if any(r.name == name for r in records):
        raise NichetuneError(f"{path} already has a key named {name!r}",
                             hint=f"revoke it first (`nichetune keys revoke {path} {name}`) or pick another name")
    key = PREFIX + secrets.token_urlsafe(32)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    _write(path, [*records, KeyRecord(name, key_hash(key), admin, created)])
    return key


def revoke_key(path: str | Path, name: str) -> None:
    path = Path(path)
    records = _read(path)
    if not any(r.name == name for r in records):
        raise NichetuneError(f"{path} has no key named {name!r}", hint=f"see `nichetune keys list {path}`")
    _write(path, [r for r in records if r.name != name])


def list_keys(path: str | Path) -> list[KeyRecord]:
    return _read(Path(path))


class KeyRing:
    """The keys a server accepts. ``check(key)`` compares the hash against every stored hash in constant time."""

    def __init__(self, records: list[KeyRecord]):
        if not records:
            raise NichetuneError("the key file holds no keys, so no request could be served",
                                 hint="add one: nichetune keys create FILE --name NAME")
        self.records = records

    @classmethod
    def from_file(cls, path: str | Path) -> KeyRing:
        path = Path(path)
        if not path.is_file():
            raise NichetuneError(f"{path}: no such key file", hint=f"create one: nichetune keys create {path} "
                                                                    "--name NAME")
        return cls(_read(path))

    def check(self, key: str | None) -> KeyRecord | None:
        """The record of ``key``, or None. Every stored hash is compared, so timing says nothing about which."""
        digest = key_hash(key or "")
        found = None
        for record in self.records:
            if hmac.compare_digest(digest, record.sha256):
                found = record
        return found
