"""The model registry: numbered immutable versions of runs and exports, aliases with history and rollback,
verification, lineage and model cards (SQLite or PostgreSQL through SQLAlchemy)."""

from .store import Registry, open_registry

__all__ = ["Registry", "open_registry"]
