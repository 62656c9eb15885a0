"""SQLAlchemy tables. The schema is only ever created by the Alembic migrations in
``store/migrations``; a test fails when these tables and the migrations disagree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which has no time zones) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


Id = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("type", String(64), nullable=False),
    Column("ticket_id", Id),
    Column("customer_id", Id),
    Column("actor_kind", String(16), nullable=False),
    Column("actor_id", Id),
    Column("model_version", String(64)),
    Column("payload", JSON, nullable=False),
    Index("ix_events_ticket_seq", "ticket_id", "seq"),
    Index("ix_events_customer_seq", "customer_id", "seq"),
    Index("ix_events_type", "type"),
)

# One row: the last seq appended, the operating model in force and the id counters.
# Write transactions lock it first, which makes seq gapless, the recorded model version
# exact and id allocation free of extra statements.
log_head = Table(
    "log_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", Id, nullable=False),
    Column("model_version", String(64)),
    # the last id handed out per kind (ticket, customer, message, ...)
    Column("counters", JSON, nullable=False),
)

customers = Table(
    "customers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("merged_into", Id, ForeignKey("customers.id")),
)

customer_handles = Table(
    "customer_handles",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("value", String(320), primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False, unique=True),
    Column("roles", JSON, nullable=False),
    Column("teams", JSON, nullable=False),
    Column("skills", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("presence", String(16), nullable=False, server_default="offline"),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("subject", String(300), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("request_type", String(64), index=True),
    Column("owning_team", String(64)),
    Column("owning_agent", Id, ForeignKey("users.id")),
    # the tags as a sorted list; ticket_tags indexes them for filtering
    Column("tags", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("triaged_at", UTCDateTime()),
    Column("accepted_at", UTCDateTime()),
    Column("first_reply_at", UTCDateTime()),
    Column("solved_at", UTCDateTime()),
    Column("closed_at", UTCDateTime()),
    Column("reopen_count", Integer, nullable=False),
    Column("transfer_count", Integer, nullable=False),
    Column("message_count", Integer, nullable=False),
    Column("follow_up_of", Id, ForeignKey("tickets.id")),
    Column("csat_score", Integer),
    Column("queued_at", UTCDateTime()),
    Column("escalation_path", String(64)),
    Column("escalation_level", Integer, nullable=False, server_default="0"),
    Column("escalation_exhausted", Boolean, nullable=False, server_default=false()),
    # the escalation levels fired so far, [[path, level name], ...] in firing order
    Column("escalation_fired", JSON, nullable=False, server_default=text("'[]'")),
    Index("ix_tickets_status_id", "status", "id"),
    Index("ix_tickets_team_status", "owning_team", "status"),
    # an agent's open load per channel and last acceptance, read by routing index-only
    Index("ix_tickets_agent_load", "owning_agent", "status", "channel", "accepted_at"),
    # a customer's tickets by team: the team-scope test on a customer and the routing's
    # previous owner look a customer's tickets up by it
    Index("ix_tickets_customer_team", "customer_id", "owning_team"),
)

ticket_tags = Table(
    "ticket_tags",
    metadata,
    Column("ticket_id", Id, ForeignKey("tickets.id"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Index("ix_ticket_tags_tag", "tag", "ticket_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("visibility", String(16), nullable=False),
    Column("author_kind", String(16), nullable=False),
    Column("author_id", Id),
    Column("channel", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

exceptions = Table(
    "exceptions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("exception_type", String(64), nullable=False),
    Column("request_type", String(64)),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("requested_by", Id),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("decided_by", Id),
    Column("decided_at", UTCDateTime()),
    Column("decision_note", Text, nullable=False),
    Column("expires_at", UTCDateTime()),
    Index("ix_exceptions_status", "status"),
)

sla_clocks = Table(
    "sla_clocks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False),
    Column("metric", String(32), nullable=False),
    Column("policy", String(64), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("target_minutes", Integer, nullable=False),
    Column("business_hours", Boolean, nullable=False),
    Column("calendar", String(64)),
    Column("status", String(16), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("resumed_at", UTCDateTime()),
    Column("elapsed_minutes", Float, nullable=False),
    Column("due_at", UTCDateTime()),
    Column("warning_at", UTCDateTime()),
    Column("warned", Boolean, nullable=False),
    Column("breached", Boolean, nullable=False),
    Column("outcome", String(16)),
    Column("ended_at", UTCDateTime()),
    Index("ix_sla_clocks_ticket_metric", "ticket_id", "metric"),
    Index("ix_sla_clocks_status_due", "status", "due_at"),
)

# The transactional outbox of timed work (SLA warnings and breaches, escalation checks,
# exception expiry, overflow). A job is written in the same transaction as the change
# that schedules it, so work caused by a rolled-back command never runs; workers claim
# due rows and delete them in the transaction that does the work. Not a projection:
# handlers re-check the state they act on, so a stale job is a no-op.
jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("ticket_id", Id),
    Column("ref", String(200), nullable=False),
    Column("run_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Index("ix_jobs_run_at", "run_at"),
    # handlers look up a ticket's waiting jobs of a kind (reschedule, dedupe)
    Index("ix_jobs_ticket_kind", "ticket_id", "kind"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("author", String(200), nullable=False),
    Column("applied_at", UTCDateTime(), nullable=False),
    Column("source", Text, nullable=False),
    Column("canonical", Text, nullable=False),
    Column("previous_version", String(64)),
)

# Secrets live outside the event log and outside the verified projections.
user_credentials = Table(
    "user_credentials",
    metadata,
    Column("user_id", Id, ForeignKey("users.id"), primary_key=True),
    Column("password_hash", String(200), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    # what the token may do (read, write, admin), within its user's roles (migration 0006)
    Column("scopes", JSON, nullable=False, server_default=text('\'["admin", "read", "write"]\'')),
    # always set (nullable only for SQLite's ADD COLUMN); the lookup refuses a token without
    Column("expires_at", UTCDateTime()),
    Column("revoked_by", Id),
    Column("revoked_reason", String(200)),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", Id, primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("method", String(8), nullable=False),
    Column("path", String(500), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False, index=True),
)

# The audit trail of security and admin actions (see opsdesk.store.audit): append-only
# like events (triggers refuse UPDATE and DELETE), each row chained to the previous one
# by SHA-256, written in the transaction of the action it records.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("action", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("actor_id", Id),
    Column("subject", String(300)),
    Column("client", String(100)),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_action_seq", "action", "seq"),
    Index("ix_audit_log_actor_seq", "actor_kind", "actor_id", "seq"),
    Index("ix_audit_log_at", "at"),
)

# One row: the seq and hash of the last audit row. Appenders lock it (after log_head), so
# two writers never fork the chain; `opsdesk audit verify` checks the last row against
# it, which anchors the end of the chain (a truncated tail no longer matches).
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", Id, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

# The data keys that encrypt customers' personal fields in event payloads (see
# opsdesk.store.crypto), each wrapped under the master key. Not a projection: replay never
# rebuilds it; erasure and retention delete rows, which makes those fields unreadable.
personal_keys = Table(
    "personal_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("customer_id", Id, nullable=False),
    # identity (name, handles, subjects) or messages (bodies, one key per month)
    Column("purpose", String(16), nullable=False),
    # "YYYY-MM" for messages keys, "" for the identity key
    Column("period", String(7), nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("customer_id", "purpose", "period"),
    Index("ix_personal_keys_purpose_period", "purpose", "period"),
)
