"""SLA clocks, routing state (queue time, escalation level, presence) and the jobs outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("escalation_path", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column(
                "escalation_exhausted", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_agent_status")
        batch_op.create_index(
            "ix_tickets_agent_load", ["owning_agent", "status", "channel", "accepted_at"]
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("presence", sa.String(length=16), nullable=False, server_default="offline")
        )
    op.create_table(
        "sla_clocks",
        sa.Column("id", _ID, autoincrement=False, nullable=False),
        sa.Column("ticket_id", _ID, nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("target_minutes", sa.Integer(), nullable=False),
        sa.Column("business_hours", sa.Boolean(), nullable=False),
        sa.Column("calendar", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("elapsed_minutes", sa.Float(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warning_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warned", sa.Boolean(), nullable=False),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_sla_clocks_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_clocks")),
    )
    op.create_index("ix_sla_clocks_ticket_metric", "sla_clocks", ["ticket_id", "metric"])
    op.create_index("ix_sla_clocks_status_due", "sla_clocks", ["status", "due_at"])
    op.create_table(
        "jobs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", _ID, nullable=True),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_run_at", "jobs", ["run_at"])
    op.create_index("ix_jobs_ticket_kind", "jobs", ["ticket_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_jobs_ticket_kind", table_name="jobs")
    op.drop_index("ix_jobs_run_at", table_name="jobs")
    op.drop_table("jobs")
    op.drop_index("ix_sla_clocks_status_due", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_ticket_metric", table_name="sla_clocks")
    op.drop_table("sla_clocks")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("presence")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_agent_load")
        batch_op.create_index("ix_tickets_agent_status", ["owning_agent", "status"])
        batch_op.drop_column("escalation_exhausted")
        batch_op.drop_column("escalation_level")
        batch_op.drop_column("escalation_path")
        batch_op.drop_column("queued_at")
