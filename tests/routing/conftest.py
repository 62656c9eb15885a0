"""A small desk on a real database with a fixed clock, for the routing tests.

The clock matters: teams of the example model work shifts (``routing.calendar``), so
every unit of work here runs at an explicit instant, never the wall clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from opsdesk.desk import service
from opsdesk.desk.models import apply_model_text
from opsdesk.desk.reactions import react
from opsdesk.domain.state import CustomerState, TicketState, UserState
from opsdesk.model import example_model_path
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

#: Thursday 26 November 2026, 10:00 UTC: the UK and NL sites are open
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)

_n = itertools.count(1)


def example_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(example_model_path().read_text(encoding="utf-8"))
    return data


def team_of(data: dict[str, Any], team_id: str) -> dict[str, Any]:
    team: dict[str, Any] = next(t for t in data["teams"] if t["id"] == team_id)
    return team


class Desk:
    """Service calls at a controlled instant, plus reads of what they left behind."""

    def __init__(self, db: Database, now: datetime = NOW) -> None:
        self.db = db
        self.now = now

    def tick(self, minutes: float = 1) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now

    def uow(self, actor: int | None = None, *, kind: str | None = None) -> UnitOfWork:
        actor_kind = kind or ("user" if actor is not None else "system")
        return UnitOfWork(self.db, actor_kind=actor_kind, actor_id=actor, now=self.now)

    def apply(self, mutate: Callable[[dict[str, Any]], None]) -> None:
        """Put the example model, changed by ``mutate``, in force."""
        data = example_data()
        mutate(data)
        with self.uow() as uow:
            apply_model_text(uow, yaml.safe_dump(data), filename="m.yaml", author="tests")

    def user(
        self,
        teams: list[str],
        *,
        roles: list[str] | None = None,
        skills: list[str] | None = None,
        online: bool = False,
    ) -> UserState:
        n = next(_n)
        with self.uow() as uow:
            user = service.create_user(
                uow,
                name=f"Agent {n}",
                email=f"routing{n}@example.test",
                roles=roles or ["agent"],
                teams=teams,
                skills=skills or [],
            )
        if online:
            self.presence(user.id, "online")
        return user

    def presence(self, user_id: int, presence: str) -> UserState:
        with self.uow() as uow:
            return service.set_presence(uow, user_id, presence)

    def customer(self, tier: str = "standard") -> CustomerState:
        n = next(_n)
        with self.uow() as uow:
            return service.create_customer(
                uow, name=f"Customer {n}", tier=tier, handles=[("email", f"rc{n}@example.test")]
            )

    def ticket(
        self,
        request_type: str | None = "refund",
        *,
        channel: str = "email",
        customer_id: int | None = None,
        subject: str = "About my account",
        body: str = "Please help.",
        follow_up_of: int | None = None,
    ) -> TicketState:
        if customer_id is None:
            customer_id = self.customer().id
        with self.uow(customer_id, kind="customer") as uow:
            return service.create_ticket(
                uow,
                customer_id=customer_id,
                subject=subject,
                channel=channel,
                request_type=request_type,
                body=body,
                follow_up_of=follow_up_of,
            )

    def status(self, ticket_id: int, status: str) -> TicketState:
        with self.uow() as uow:
            return service.change_status(uow, ticket_id, status)

    def get(self, ticket_id: int) -> TicketState:
        with self.uow() as uow:
            return uow.ticket(ticket_id)

    def events(self, ticket_id: int | None = None) -> list[Any]:
        query = select(t.events).order_by(t.events.c.seq)
        if ticket_id is not None:
            query = query.where(t.events.c.ticket_id == ticket_id)
        with self.db.read() as conn:
            return list(conn.execute(query))

    def jobs(self, kind: str | None = None) -> list[Any]:
        query = select(t.jobs).order_by(t.jobs.c.id)
        if kind is not None:
            query = query.where(t.jobs.c.kind == kind)
        with self.db.read() as conn:
            return list(conn.execute(query))

    def run_job(self, handler: Callable[[UnitOfWork, Any], None], job: Any) -> list[Any]:
        """Run a job handler at ``self.now`` and the reactions to what it appended, as
        the jobs runner does; returns the events appended."""
        with self.uow() as uow:
            handler(uow, job)
            react(uow, list(uow.appended))
            return list(uow.appended)


@pytest.fixture
def desk(model_db: Database) -> Desk:
    return Desk(model_db)
