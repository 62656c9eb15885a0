"""The demo simulation: it writes a plausible, verifiable and reproducible event log."""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opsdesk.demo import ADMIN_EMAIL, DemoError, DemoSummary, run_demo
from opsdesk.desk.security import check_password, user_for_token
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.verify import iter_events, verify

START = date(2025, 3, 4)  # a Tuesday


def _events(db: Database) -> list[Any]:
    # opened: personal fields are sealed with random nonces, so the stored bytes differ
    # between two runs while what they say is the same
    with db.read() as conn:
        return list(iter_events(conn))


def _log(db: Database) -> list[tuple[Any, ...]]:
    return [(e.type, e.at, e.ticket_id, e.payload) for e in _events(db)]


def _ping_pongs(events: list[Any]) -> set[int]:
    """Tickets that came back to a team they had left (A -> B -> A)."""
    left: dict[int, set[str]] = defaultdict(set)
    found: set[int] = set()
    for e in events:
        if e.type != "ticket.transferred" or e.payload["from_team"] == e.payload["to_team"]:
            continue
        if e.payload["to_team"] in left[e.ticket_id]:
            found.add(e.ticket_id)
        left[e.ticket_id].add(e.payload["from_team"])
    return found


@pytest.fixture
def fresh_sqlite(tmp_path: Path, sqlite_template: Path) -> Iterator[Any]:
    """A factory of empty migrated SQLite databases."""
    made: list[Database] = []

    def make(name: str) -> Database:
        path = tmp_path / f"{name}.db"
        shutil.copy(sqlite_template, path)
        made.append(Database(f"sqlite:///{path}"))
        return made[-1]

    yield make
    for database in made:
        database.dispose()


def test_two_days_produce_a_plausible_verified_log(db: Database) -> None:
    calls: list[tuple[int, int]] = []
    summary = run_demo(
        db,
        days=2,
        seed=11,
        start=START,
        scale=0.5,
        progress=lambda done, total: calls.append((done, total)),
    )

    assert calls == [(1, 2), (2, 2)]
    events = _events(db)
    kinds = Counter(e.type for e in events)
    assert summary.events == len(events)
    assert summary.tickets == kinds["ticket.created"] > 50
    assert summary.transfers == kinds["ticket.transferred"] > 0
    assert summary.exceptions == kinds["exception.requested"] > 0
    assert kinds["exception.approved"] + kinds["exception.denied"] > 0
    assert summary.csat_answers == kinds["ticket.csat_received"] > 0
    assert summary.messages == kinds["message.added"]
    statuses = Counter(e.payload["after"] for e in events if e.type == "ticket.status_changed")
    assert statuses["pending"] > 0 and statuses["on_hold"] > 0 and statuses["solved"] > 0
    reopens = [e for e in events if e.type == "ticket.status_changed" and e.payload["reopened"]]
    assert summary.reopens == len(reopens)  # reopens need days: see the longer run
    # customers answer pending questions, and bots and phone lines file tickets too
    assert {"customer", "user", "system", "bot"} <= {e.actor_kind for e in events}
    # simulated time only moves forward, within the simulated window (setup the day before)
    ats = [e.at for e in events]
    assert ats == sorted(ats)
    assert ats[0].date() == date(2025, 3, 3) and ats[-1].date() <= date(2025, 3, 5)

    report = verify(db)
    assert report.ok, report.differences[:5]


def test_admin_can_log_in_with_the_returned_credentials(fresh_sqlite: Any) -> None:
    db = fresh_sqlite("creds")
    summary: DemoSummary = run_demo(db, days=1, seed=1, start=START, scale=0.1)

    assert summary.admin_email == ADMIN_EMAIL
    assert len(summary.admin_password) >= 12
    with db.read() as conn:
        user = check_password(conn, ADMIN_EMAIL, summary.admin_password)
        assert user is not None and "admin" in user.roles
        assert user_for_token(conn, summary.admin_token) == user
    with pytest.raises(DemoError, match="already holds the demo company"):
        run_demo(db, days=1, seed=1, start=START, scale=0.1)


def test_longer_run_has_ping_pong_and_agents_work_their_shifts(sqlite_db: Database) -> None:
    summary = run_demo(sqlite_db, days=5, seed=7, start=START, scale=0.3)

    events = _events(sqlite_db)
    assert _ping_pongs(events), "expected at least one A -> B -> A transfer"
    assert summary.reopens > 0
    assert any(e.type == "ticket.created" and e.payload["follow_up_of"] for e in events)
    with sqlite_db.read() as conn:
        teams = {u.id: u.teams for u in conn.execute(select(t.users))}
    for e in events:
        if e.type == "ticket.accepted":
            # every site but the 24x7 VIP desk is closed between 01:00 and 06:30 UTC
            assert teams[e.actor_id] == ["vip_care"] or not 1 <= e.at.hour < 6, e
            assert e.payload["team"] in teams[e.actor_id]
    assert verify(sqlite_db).ok


def test_same_seed_and_start_give_the_same_log(fresh_sqlite: Any) -> None:
    logs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        db = fresh_sqlite(name)
        run_demo(db, days=1, seed=seed, start=START, scale=0.2)
        logs.append(_log(db))
    assert logs[0] == logs[1]
    assert logs[0] != logs[2]


def test_bad_arguments_are_refused(fresh_sqlite: Any) -> None:
    db = fresh_sqlite("bad")
    with pytest.raises(DemoError, match="at least one day"):
        run_demo(db, days=0)
    with pytest.raises(DemoError, match="scale"):
        run_demo(db, days=1, scale=0)


def test_a_database_with_tickets_is_refused(fresh_sqlite: Any) -> None:
    from opsdesk.desk import service
    from opsdesk.desk.models import apply_model_file
    from opsdesk.model import example_model_path
    from opsdesk.store.uow import UnitOfWork

    db = fresh_sqlite("used")
    with UnitOfWork(db) as uow:
        apply_model_file(uow, example_model_path(), author="tests")
        customer = service.create_customer(uow, name="Real Customer")
        service.create_ticket(uow, customer_id=customer.id, subject="Real", channel="email")
    with pytest.raises(DemoError, match="already holds tickets"):
        run_demo(db, days=1)


def test_an_exception_nobody_in_reach_may_approve_expires(sqlite_db: Database) -> None:
    """Under team scoping an approver of another team cannot reach the ticket. In this
    run a request's approver roles are held by nobody who reaches it (it crashed the
    simulation, choosing from nobody): the request waits out its maximum duration and
    expires, as it would live (here it is still waiting when the three days end)."""
    run_demo(sqlite_db, days=3, seed=3, start=date(2026, 3, 2), scale=0.3)
    with sqlite_db.read() as conn:
        statuses = Counter(r.status for r in conn.execute(select(t.exceptions)))
    assert statuses["requested"] + statuses["expired"] > 0
    assert verify(sqlite_db).ok
