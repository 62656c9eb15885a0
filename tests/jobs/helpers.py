"""Builders for the jobs tests: tickets with exception requests made in the past, so
their ``exception.expire`` jobs are due, and readers of the outbox and the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from opsdesk.desk import service
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

#: when the test tickets ask for their exceptions (refund_outside_policy: 7 days max)
ASKED_AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MAX_DURATION = timedelta(days=7)


def requested_exceptions(
    db: Database, count: int, *, at: datetime = ASKED_AT, triaged: bool = True
) -> list[int]:
    """``count`` tickets, each with an exception requested at ``at``; one unit of work.
    Returns the exception ids. Triaged: refund tickets (SLA clocks running) asking for
    a refund outside policy, due to expire 7 days later. Untriaged: bare tickets (no
    clocks, no other timers) asking for a priority jump, due to expire a day later."""
    ids = []
    with UnitOfWork(db, now=at) as uow:
        customer = service.create_customer(uow, name="Ada")
        for n in range(count):
            ticket = service.create_ticket(
                uow,
                customer_id=customer.id,
                subject=f"{'Refund' if triaged else 'Question'} {n}",
                channel="email",
                request_type="refund" if triaged else None,
                body="Hello.",
            )
            xtype = "refund_outside_policy" if triaged else "priority_jump"
            ids.append(service.request_exception(uow, ticket.id, xtype, "goodwill").id)
    return ids


def jobs(db: Database, kind: str | None = None) -> list[dict[str, object]]:
    query = select(t.jobs).order_by(t.jobs.c.id)
    if kind is not None:
        query = query.where(t.jobs.c.kind == kind)
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def expiry_job_count(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                select(func.count()).where(t.jobs.c.kind == "exception.expire")
            ).scalar_one()
        )


def expired_events(db: Database) -> dict[int, int]:
    """How many ``exception.expired`` events each exception has."""
    counts: dict[int, int] = {}
    with db.read() as conn:
        for (payload,) in conn.execute(
            select(t.events.c.payload).where(t.events.c.type == "exception.expired")
        ):
            x = payload["exception_id"]
            counts[x] = counts.get(x, 0) + 1
    return counts


def exception_status(db: Database) -> dict[int, str]:
    with db.read() as conn:
        return dict(conn.execute(select(t.exceptions.c.id, t.exceptions.c.status)).all())  # type: ignore[arg-type]
