"""The store's errors, importable without the store itself (SQLAlchemy, Alembic, the
model loader): the CLI catches them around commands that may never open a database."""

from __future__ import annotations


class DatabaseNotReady(Exception):
    """The database is missing or not at the latest migration."""
