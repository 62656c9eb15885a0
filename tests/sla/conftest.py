"""Driving the desk at chosen instants, and running the SLA and escalation jobs the way
the outbox runner does (claim the due rows, run the handler and the reactions to what
it appended, delete the rows, one transaction)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from sqlalchemy import delete, select

from opsdesk.desk import reactions, service
from opsdesk.desk.models import apply_model_text
from opsdesk.domain.events import Event
from opsdesk.domain.state import SlaClockState, TicketState
from opsdesk.model import example_model_path
from opsdesk.sla import clocks, escalation
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.jobs import Job
from opsdesk.store.uow import UnitOfWork

#: Monday 23 November 2026, 09:00 in London (GMT, so also 09:00 UTC); the uk_site
#: calendar of the example model is open Mon-Thu 08:00-20:00.
MON = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

HANDLERS: dict[str, Callable[[UnitOfWork, Any], None]] = {
    clocks.TIMER_KIND: clocks.fire_sla_timer,
    escalation.CHECK_KIND: escalation.fire_escalation_check,
}

_n = itertools.count(1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


class Desk:
    """Commands at fixed instants on one database, and readers of what they left."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def do(
        self, now: datetime, fn: Callable[..., Any], *args: Any, actor: int | None = None, **kw: Any
    ) -> Any:
        kind = "user" if actor is not None else "system"
        with UnitOfWork(self.db, now=now, actor_kind=kind, actor_id=actor) as uow:
            return fn(uow, *args, **kw)

    # --- builders ---

    def user(self, teams: list[str], roles: list[str] | None = None) -> int:
        n = next(_n)
        return int(
            self.do(
                MON,
                service.create_user,
                name=f"User {n}",
                email=f"sla-user{n}@example.test",
                roles=roles or ["agent"],
                teams=teams,
            ).id
        )

    def customer(self, tier: str = "standard") -> int:
        n = next(_n)
        return int(
            self.do(
                MON,
                service.create_customer,
                name=f"Customer {n}",
                tier=tier,
                handles=[("email", f"sla-c{n}@example.test")],
            ).id
        )

    def ticket(
        self,
        at: datetime = MON,
        *,
        request_type: str | None = "refund",
        priority: str | None = None,
        customer: int | None = None,
    ) -> int:
        ticket: TicketState = self.do(
            at,
            service.create_ticket,
            customer_id=customer if customer is not None else self.customer(),
            subject="My bill is wrong",
            channel="email",
            request_type=request_type,
            priority=priority,
            body="Please check my last invoice.",
        )
        return ticket.id

    def reply(self, at: datetime, ticket_id: int, agent: int, *, internal: bool = False) -> None:
        self.do(
            at,
            service.add_message,
            ticket_id,
            body="We are on it.",
            visibility="internal" if internal else "public",
            actor=agent,
        )

    def customer_writes(self, at: datetime, ticket_id: int) -> None:
        self.do(at, service.add_message, ticket_id, body="Any news?", author_kind="customer")

    def status(self, at: datetime, ticket_id: int, status: str, actor: int | None = None) -> None:
        self.do(at, service.change_status, ticket_id, status, actor=actor)

    def priority(self, at: datetime, ticket_id: int, priority: str) -> None:
        self.do(at, service.change_priority, ticket_id, priority)

    # --- readers ---

    def events(self, ticket_id: int, prefix: str = "") -> list[Event]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(t.events)
                .where(t.events.c.ticket_id == ticket_id, t.events.c.type.startswith(prefix))
                .order_by(t.events.c.seq)
            ).all()
        return [Event(**row._mapping) for row in rows]

    def types(self, ticket_id: int, prefix: str = "sla.") -> list[tuple[str, str]]:
        """(type, metric) of the ticket's SLA events, in order."""
        return [(e.type, e.payload.get("metric", "")) for e in self.events(ticket_id, prefix)]

    def clocks(self, ticket_id: int) -> list[SlaClockState]:
        with UnitOfWork(self.db) as uow:
            return uow.sla_clocks(ticket_id)

    def clock(self, ticket_id: int, metric: str) -> SlaClockState:
        """The ticket's latest clock of ``metric``."""
        found = [c for c in self.clocks(ticket_id) if c.metric == metric]
        assert found, f"ticket {ticket_id} has no {metric} clock"
        return found[-1]

    def jobs(self, kind: str | None = None) -> list[Job]:
        query = select(t.jobs).order_by(t.jobs.c.run_at, t.jobs.c.id)
        if kind is not None:
            query = query.where(t.jobs.c.kind == kind)
        with self.db.read() as conn:
            return [
                Job(r.id, r.kind, r.ticket_id, r.ref, r.run_at, r.attempts)
                for r in conn.execute(query)
            ]

    def run_jobs(self, now: datetime) -> list[Event]:
        """Run every SLA timer and escalation check due at ``now``; the events appended."""
        with UnitOfWork(self.db, now=now) as uow:
            rows = uow.conn.execute(
                select(t.jobs)
                .where(t.jobs.c.kind.in_(list(HANDLERS)), t.jobs.c.run_at <= now)
                .order_by(t.jobs.c.run_at, t.jobs.c.id)
            )
            due = [Job(r.id, r.kind, r.ticket_id, r.ref, r.run_at, r.attempts) for r in rows]
            for job in due:
                before = len(uow.appended)
                HANDLERS[job.kind](uow, job)
                if len(uow.appended) > before:
                    reactions.react(uow, uow.appended[before:])
            if due:
                uow.flush()
                uow.conn.execute(delete(t.jobs).where(t.jobs.c.id.in_([j.id for j in due])))
            return list(uow.appended)

    def handler(
        self, now: datetime, kind: str, ticket_id: int, ref: str, job_id: int = 0
    ) -> list[Event]:
        """Run one handler with a job made up on the spot (as if a stale row fired)."""
        with UnitOfWork(self.db, now=now) as uow:
            HANDLERS[kind](uow, Job(job_id, kind, ticket_id, ref, now, 0))
            if uow.appended:
                reactions.react(uow, list(uow.appended))
            return list(uow.appended)


@pytest.fixture
def desk(model_db: Database) -> Desk:
    return Desk(model_db)


def example_model_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(example_model_path().read_text())
    return data


def apply_model(db: Database, data: dict[str, Any], at: datetime = MON) -> None:
    """Put a variant of the example model in force."""
    with UnitOfWork(db, now=at) as uow:
        apply_model_text(
            uow, yaml.safe_dump(data, sort_keys=False), filename="t.yaml", author="tests"
        )
