"""An index on a customer's tickets by team.

The team-scope test on a customer ("has a ticket the caller reaches, or none yet") and
routing's previous owner look up a customer's tickets; without it both scanned every
ticket (or went through the events), a cost that grew with the customer's history.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tickets_customer_team", "tickets", ["customer_id", "owning_team"])


def downgrade() -> None:
    op.drop_index("ix_tickets_customer_team", table_name="tickets")
