"""Every escalation level a ticket has fired (levels fire at most once, in any order).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN: SQLite can add a column with a constant default in place, and
    # the batch mode's table copy would trip the foreign keys into a live tickets table
    op.add_column(
        "tickets",
        sa.Column("escalation_fired", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )
    # fold the levels already fired from the log, as replay does, so verify stays clean
    conn = op.get_bind()
    fired: dict[int, list[list[str]]] = {}
    rows = conn.execute(
        sa.text(
            "SELECT ticket_id, payload FROM events "
            "WHERE type = 'escalation.fired' AND ticket_id IS NOT NULL ORDER BY seq"
        )
    )
    for ticket_id, payload in rows:
        data = json.loads(payload) if isinstance(payload, str) else payload
        fired.setdefault(ticket_id, []).append([data["path"], data["name"]])
    value = ":fired" if conn.dialect.name == "sqlite" else "CAST(:fired AS JSON)"
    update = sa.text(f"UPDATE tickets SET escalation_fired = {value} WHERE id = :id")  # noqa: S608
    for ticket_id, levels in fired.items():
        conn.execute(update, {"fired": json.dumps(levels), "id": ticket_id})


def downgrade() -> None:
    op.drop_column("tickets", "escalation_fired")  # SQLite 3.35+ drops it in place too
