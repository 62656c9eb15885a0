"""Migration 0006 gives tokens made before it their former power and a 90-day grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import insert, text

from opsdesk.desk.security import hash_token, principal_for_token
from opsdesk.store import tables as t
from opsdesk.store.db import Database, alembic_config, head_revision


def test_tokens_from_before_0006_keep_every_scope_and_expire_90_days_later(
    db: Database,
) -> None:
    config = alembic_config(db.engine)
    command.downgrade(config, "0005")
    try:
        now = datetime.now(UTC)
        token = "odk_made-before-scopes-existed"
        with db.engine.begin() as conn:
            conn.execute(
                insert(t.users).values(
                    id=1,
                    name="Old",
                    email="old@example.test",
                    roles=["agent"],
                    teams=[],
                    skills=[],
                    active=True,
                    created_at=now,
                )
            )
            conn.execute(
                text(
                    "INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, created_at) "
                    "VALUES (1, 1, 'old', :hash, 'odk_made-b', :at)"
                ),
                {
                    "hash": hash_token(token),
                    "at": now.replace(tzinfo=None) if db.dialect == "sqlite" else now,
                },
            )
    finally:
        command.upgrade(config, "head")
    assert db.current_revision() == head_revision()
    with db.engine.connect() as conn:
        principal = principal_for_token(conn, token)
    assert principal is not None
    assert principal.scopes == {"read", "write", "admin"}
    assert timedelta(days=89) < principal.expires_at - now <= timedelta(days=90, minutes=5)
