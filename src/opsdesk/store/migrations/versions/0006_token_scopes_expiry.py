"""API tokens get scopes (read, write, admin), an expiry, and who revoked them and why.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# tokens made before scopes existed could do everything their user's roles allow: they
# keep that power (scopes only ever narrow roles), written out as the three scopes
ALL_SCOPES = '["admin", "read", "write"]'
# and they expire 90 days after the upgrade (the default lifetime), not at once
GRACE = timedelta(days=90)


def upgrade() -> None:
    # plain ADD COLUMNs: the batch mode's table copy would trip the foreign key from
    # api_tokens to users (as in 0004)
    op.add_column(
        "api_tokens",
        sa.Column("scopes", sa.JSON(), nullable=False, server_default=sa.text(f"'{ALL_SCOPES}'")),
    )
    # nullable only because SQLite cannot add a NOT NULL column without a constant
    # default; every token has one (backfilled here, set by create_token), and the
    # token lookup refuses a token without one
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True)))
    op.add_column("api_tokens", sa.Column("revoked_by", Id))
    op.add_column("api_tokens", sa.Column("revoked_reason", sa.String(length=200)))
    conn = op.get_bind()
    until = datetime.now(UTC) + GRACE
    if conn.dialect.name == "sqlite":
        # SQLAlchemy's SQLite storage format for DateTime, as the application writes it
        value: object = until.replace(tzinfo=None).isoformat(" ", "microseconds")
    else:
        value = until
    conn.execute(
        sa.text("UPDATE api_tokens SET expires_at = :until WHERE expires_at IS NULL"),
        {"until": value},
    )


def downgrade() -> None:
    # SQLite 3.35+ drops columns in place too
    op.drop_column("api_tokens", "revoked_reason")
    op.drop_column("api_tokens", "revoked_by")
    op.drop_column("api_tokens", "expires_at")
    op.drop_column("api_tokens", "scopes")
