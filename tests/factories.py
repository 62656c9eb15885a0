"""Small builders for test data, all going through the service commands."""

from __future__ import annotations

import itertools

from opsdesk.desk import service
from opsdesk.domain.state import CustomerState, TicketState, UserState
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

_n = itertools.count(1)


def user(
    db: Database,
    *,
    teams: list[str],
    roles: list[str] | None = None,
    skills: list[str] | None = None,
) -> UserState:
    n = next(_n)
    with UnitOfWork(db) as uow:
        return service.create_user(
            uow,
            name=f"Agent {n}",
            email=f"agent{n}@example.test",
            roles=roles or ["agent"],
            teams=teams,
            skills=skills or [],
        )


def customer(db: Database, **kw: object) -> CustomerState:
    n = next(_n)
    with UnitOfWork(db) as uow:
        return service.create_customer(
            uow,
            name=f"Customer {n}",
            handles=[("email", f"c{n}@example.test")],
            **kw,  # type: ignore[arg-type]
        )


def ticket(
    db: Database, *, request_type: str = "refund", customer_id: int | None = None, **kw: object
) -> TicketState:
    if customer_id is None:
        customer_id = customer(db).id
    with UnitOfWork(db) as uow:
        return service.create_ticket(
            uow,
            customer_id=customer_id,
            subject="My bill is wrong",
            channel="email",
            request_type=request_type,
            body="Please check my last invoice.",
            **kw,  # type: ignore[arg-type]
        )
