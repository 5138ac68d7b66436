"""The registry's tables (SQLAlchemy Core, the same on SQLite and PostgreSQL) and its migrations.

``nichetune_schema`` records the applied version; ``migrate`` applies the missing migrations in order,
each in its own transaction, so an older registry database is brought up to date when opened.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

schema_table = sa.Table("nichetune_schema", metadata, sa.Column("version", sa.Integer, nullable=False))

models = sa.Table(
    "registry_models", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
)

versions = sa.Table(
    "registry_versions", metadata,
    sa.Column("name", sa.String(64), sa.ForeignKey("registry_models.name"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # run | export
    sa.Column("format", sa.String(32), nullable=False),  # "run", or the export format
    sa.Column("source", sa.Text, nullable=False),  # the folder it was registered from
    sa.Column("task", sa.String(32), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("base_model", sa.Text, nullable=False),
    sa.Column("manifest_sha256", sa.String(64), nullable=False),  # of the version folder's own manifest
    sa.Column("summary", sa.Text, nullable=False),  # JSON: headline metric, parity status
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
)

aliases = sa.Table(
    "registry_aliases", metadata,
    sa.Column("name", sa.String(64), sa.ForeignKey("registry_models.name"), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

alias_events = sa.Table(
    "registry_alias_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # set | rollback
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=False),
    sa.Column("who", sa.String(128), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("why", sa.Text, nullable=False),
)


def _initial(conn) -> None:
    for table in (models, versions, aliases, alias_events):
        table.create(conn, checkfirst=True)


def _event_index(conn) -> None:
    """History and rollback read the events of one alias: index them (plain DDL both backends accept)."""
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_alias_events_name_alias "
                         "ON registry_alias_events (name, alias)"))


# version -> the migration that brings the database to it
MIGRATIONS: dict[int, Callable] = {1: _initial, 2: _event_index}
LATEST = max(MIGRATIONS)


def current_version(conn) -> int:
    if not sa.inspect(conn).has_table(schema_table.name):
        return 0
    return conn.execute(sa.select(schema_table.c.version)).scalar() or 0


def migrate(engine, migrations: dict[int, Callable] = MIGRATIONS) -> int:
    """Apply every migration newer than the database's version; return the version reached."""
    with engine.begin() as conn:
        schema_table.create(conn, checkfirst=True)
        if conn.execute(sa.select(sa.func.count()).select_from(schema_table)).scalar() == 0:
            conn.execute(schema_table.insert().values(version=0))
    reached = 0
    for version in sorted(migrations):
        with engine.begin() as conn:
            have = current_version(conn)
            if version <= have:
                reached = have
                continue
            migrations[version](conn)
            conn.execute(schema_table.update().values(version=version))
            reached = version
    return reached
