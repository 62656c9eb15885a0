"""The demo: a fictional company and a simulated month of its service desk.

>>> summary = run_demo(db, days=30, seed=7)  # doctest: +SKIP
>>> summary.tickets, summary.admin_email  # doctest: +SKIP
(5312, 'admin@demo.opsdesk.test')

The CLI wraps :func:`run_demo` (``opsdesk demo --days N --seed S``); see docs/demo.md.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from opsdesk.demo.company import (
    ADMIN_EMAIL,
    REQUIRED_CALENDARS,
    REQUIRED_ROLES,
    REQUIRED_TEAMS,
    Company,
    create_staff,
    generate_company,
    plan_shifts,
)
from opsdesk.demo.simulation import TYPES, Simulation
from opsdesk.desk.models import apply_model_file
from opsdesk.domain.errors import DomainError, NoModelInForce
from opsdesk.model import OperatingModel, example_model_path
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

__all__ = ["ADMIN_EMAIL", "DemoError", "DemoSummary", "rich_progress", "run_demo"]

Progress = Callable[[int, int], None]


class DemoError(DomainError):
    """The demo cannot run on this database (say why and what to do)."""


@dataclass(frozen=True)
class DemoSummary:
    """What a demo run created, and how to log in to it."""

    days: int
    seed: int
    start: date
    customers: int
    users: int
    tickets: int
    events: int
    messages: int
    transfers: int
    exceptions: int
    reopens: int
    csat_answers: int
    units_of_work: int
    admin_email: str
    admin_password: str
    admin_token: str


def _check_model(model: OperatingModel) -> None:
    missing = (
        [f"team {x}" for x in REQUIRED_TEAMS if x not in {tm.id for tm in model.teams}]
        + [f"role {x}" for x in REQUIRED_ROLES if x not in {r.id for r in model.roles}]
        + [f"calendar {x}" for x in REQUIRED_CALENDARS if x not in {c.id for c in model.calendars}]
        + [f"request type {x}" for x in TYPES if x not in {rt.id for rt in model.request_types}]
    )
    if missing:
        raise DemoError(
            "the operating model in force is not the example model the demo company is "
            f"built on (missing {', '.join(missing[:5])}); run the demo on a fresh database"
        )


def run_demo(
    db: Database,
    *,
    days: int = 30,
    seed: int = 7,
    start: date | None = None,
    progress: Progress | None = None,
    scale: float = 1.0,
) -> DemoSummary:
    """Build the demo company in ``db`` and simulate ``days`` days of its service desk.

    Applies the shipped example model when no model is in force, creates the staff
    (and the admin ``admin@demo.opsdesk.test`` with a password and an API token), then
    runs the simulation, writing through the desk service commands with simulated
    timestamps. ``start`` (default: ``days`` days before today, UTC) and ``seed`` fix
    the event log exactly. ``scale`` multiplies the arrival volume (1.0 = about 200
    tickets on a weekday). ``progress(done_days, total_days)`` is called once per
    simulated day.

    Raises :class:`DemoError` when the database already holds tickets, the demo
    company or a model the demo cannot use.
    """
    if days < 1:
        raise DemoError("the demo needs at least one day; pass --days 1 or more")
    if scale <= 0:
        raise DemoError("the demo volume scale must be positive")
    if start is None:
        start = datetime.now(UTC).date() - timedelta(days=days)
    begin = datetime.combine(start, time(0), tzinfo=UTC)
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not security

    with db.read() as conn:
        taken = conn.execute(select(t.users.c.id).where(t.users.c.email == ADMIN_EMAIL)).first()
        has_tickets = conn.execute(select(t.tickets.c.id).limit(1)).first() is not None
        seq_before = conn.execute(select(t.log_head.c.last_seq)).scalar() or 0
    if taken is not None:
        raise DemoError(
            f"this database already holds the demo company ({ADMIN_EMAIL} exists); "
            "run the demo on a fresh database"
        )
    if has_tickets:
        raise DemoError("this database already holds tickets; the demo only fills a fresh database")

    setup = begin - timedelta(days=1)
    clock = [setup]

    def tick() -> datetime:
        clock[0] += timedelta(seconds=1)
        return clock[0]

    try:
        _, model = db.model_in_force()
    except NoModelInForce:
        with UnitOfWork(db, now=tick()) as uow:
            apply_model_file(uow, example_model_path(), author="opsdesk demo")
        _, model = db.model_in_force()
    _check_model(model)

    company: Company = generate_company(rng, customers=max(300, round(4000 * min(scale, 1.5))))
    plan_shifts(company, model, rng, begin, days)
    token = create_staff(db, company, tick(), tick)

    sim = Simulation(
        db, model, company, rng, start=begin, days=days, scale=scale, progress=progress
    )
    sim.run()

    with db.read() as conn:
        seq_after = conn.execute(select(t.log_head.c.last_seq)).scalar() or 0
    c = sim.counts
    return DemoSummary(
        days=days,
        seed=seed,
        start=start,
        customers=c["customer.created"],
        users=len(company.staff),
        tickets=c["ticket.created"],
        events=seq_after - seq_before,
        messages=c["message.added"],
        transfers=c["ticket.transferred"],
        exceptions=c["exception.requested"],
        reopens=sim.reopens,
        csat_answers=c["ticket.csat_received"],
        units_of_work=sim.unit_of_works,
        admin_email=company.admin.email,
        admin_password=company.admin_password,
        admin_token=token,
    )


@contextmanager
def rich_progress(description: str = "Simulating days") -> Iterator[Progress]:
    """A rich progress bar; yields a ``progress(done_days, total_days)`` callback.

    >>> with rich_progress() as progress:  # doctest: +SKIP
    ...     run_demo(db, progress=progress)
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
