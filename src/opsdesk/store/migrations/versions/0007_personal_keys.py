"""Per-customer data keys for the personal fields of event payloads (crypto-shredding).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "personal_keys",
        sa.Column("id", Id, autoincrement=False, nullable=False),
        sa.Column("customer_id", Id, nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_keys")),
        sa.UniqueConstraint(
            "customer_id", "purpose", "period", name=op.f("uq_personal_keys_customer_id")
        ),
    )
    op.create_index("ix_personal_keys_purpose_period", "personal_keys", ["purpose", "period"])


def downgrade() -> None:
    op.drop_index("ix_personal_keys_purpose_period", table_name="personal_keys")
    op.drop_table("personal_keys")
