"""The schema comes only from migrations, and they match the SQLAlchemy tables."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from opsdesk.store.db import Database, head_revision
from opsdesk.store.tables import metadata


def test_migrations_match_tables(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == [], f"tables and migrations disagree; add a migration: {diff}"


def test_database_is_at_head(db: Database) -> None:
    assert db.current_revision() == head_revision()
    db.ensure_ready()
