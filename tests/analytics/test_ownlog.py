"""Our own event log as CASE_EVENTS rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import select

from opsdesk.analytics.ownlog import export_case_events
from opsdesk.analytics.schema import CASE_EVENTS
from opsdesk.demo import run_demo
from opsdesk.desk import service
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def build_log(db: Database) -> dict[str, Any]:
    """One refund ticket through accept, exceptions, transfer, pending, reply, solve,
    reopen, csat and expiry. Returns the ids involved."""
    with UnitOfWork(db, now=at(0)) as uow:
        a = service.create_user(uow, name="A", email="a@x.test", roles=["agent"], teams=["billing"])
        b = service.create_user(
            uow, name="B", email="b@x.test", roles=["agent"], teams=["frontline"]
        )
        approver = service.create_user(
            uow, name="P", email="p@x.test", roles=["finance_approver"], teams=["billing"]
        )
        c = service.create_customer(uow, name="C", handles=[("email", "c@x.test")])
    with UnitOfWork(db, now=at(1), actor_kind="customer", actor_id=c.id) as uow:
        tk = service.create_ticket(
            uow,
            customer_id=c.id,
            subject="Refund please",
            channel="email",
            request_type="refund",
            body="I was charged twice.",
        )
    with UnitOfWork(db, now=at(2), actor_kind="user", actor_id=a.id) as uow:
        service.accept_ticket(uow, tk.id)
    with UnitOfWork(db, now=at(3), actor_kind="user", actor_id=a.id) as uow:
        x1 = service.request_exception(uow, tk.id, "refund_outside_policy", "42 days late")
        x2 = service.request_exception(uow, tk.id, "refund_outside_policy", "second try")
    with UnitOfWork(db, now=at(4), actor_kind="user", actor_id=approver.id) as uow:
        approved = service.decide_exception(uow, x1.id, approve=True)
        service.decide_exception(uow, x2.id, approve=False, note="one is enough")
        expires = approved.expires_at
    with UnitOfWork(db, now=at(5), actor_kind="user", actor_id=a.id) as uow:
        service.transfer_ticket(uow, tk.id, reason="address change first", to_team="frontline")
    with UnitOfWork(db, now=at(6), actor_kind="user", actor_id=b.id) as uow:
        service.accept_ticket(uow, tk.id)
        service.change_priority(uow, tk.id, "high", reason="charged twice")
        service.add_message(uow, tk.id, body="Which address?")
        service.add_message(uow, tk.id, body="asked for address", visibility="internal")
        service.change_status(uow, tk.id, "pending")
    with UnitOfWork(db, now=at(7), actor_kind="customer", actor_id=c.id) as uow:
        service.add_message(uow, tk.id, body="12 High Street")
    with UnitOfWork(db, now=at(8), actor_kind="user", actor_id=b.id) as uow:
        service.change_status(uow, tk.id, "solved")
    with UnitOfWork(db, now=at(9), actor_kind="customer", actor_id=c.id) as uow:
        service.add_message(uow, tk.id, body="Still charged twice")
    with UnitOfWork(db, now=at(10), actor_kind="user", actor_id=b.id) as uow:
        service.change_status(uow, tk.id, "solved")
    with UnitOfWork(db, now=at(11), actor_kind="customer", actor_id=c.id) as uow:
        service.record_csat(uow, tk.id, 4)
    assert expires is not None
    with UnitOfWork(db, now=expires + timedelta(seconds=1)) as uow:
        assert service.expire_exceptions(uow) == 1
    return {"a": a.id, "b": b.id, "customer": c.id, "ticket": tk.id, "expired": expires}


COLUMNS = ("at", "type", "team", "agent", "status", "priority", "actor_kind")


def test_export_rows_follow_the_ticket(model_db: Database) -> None:
    ids = build_log(model_db)
    table = export_case_events(model_db)
    assert table.schema.equals(CASE_EVENTS)
    rows = table.to_pylist()

    a, b, case, cust = str(ids["a"]), str(ids["b"]), str(ids["ticket"]), str(ids["customer"])
    bill, front = "billing", "frontline"
    expected = [
        # at, type, team, agent, status, priority, actor_kind
        (at(1), "ticket.created", None, None, "new", "normal", "customer"),
        (at(1), "ticket.triaged", bill, None, "new", "normal", "customer"),
        (at(1), "message.added", bill, None, "new", "normal", "customer"),
        (at(2), "ticket.accepted", bill, a, "new", "normal", "agent"),
        (at(2), "ticket.status_changed", bill, a, "open", "normal", "agent"),
        (at(3), "exception.requested", bill, a, "open", "normal", "agent"),
        (at(3), "exception.requested", bill, a, "open", "normal", "agent"),
        (at(4), "exception.approved", bill, a, "open", "normal", "agent"),
        (at(4), "exception.denied", bill, a, "open", "normal", "agent"),
        (at(5), "ticket.transferred", front, None, "open", "normal", "agent"),
        (at(6), "ticket.accepted", front, b, "open", "normal", "agent"),
        (at(6), "ticket.priority_changed", front, b, "open", "high", "agent"),
        (at(6), "message.added", front, b, "open", "high", "agent"),
        (at(6), "message.added", front, b, "open", "high", "agent"),
        (at(6), "ticket.status_changed", front, b, "pending", "high", "agent"),
        (at(7), "message.added", front, b, "pending", "high", "customer"),
        (at(7), "ticket.status_changed", front, b, "open", "high", "customer"),
        (at(8), "ticket.status_changed", front, b, "solved", "high", "agent"),
        (at(9), "message.added", front, b, "solved", "high", "customer"),
        (at(9), "ticket.status_changed", front, b, "open", "high", "customer"),
        (at(10), "ticket.status_changed", front, b, "solved", "high", "agent"),
        (at(11), "ticket.csat_received", front, b, "solved", "high", "customer"),
        (
            ids["expired"] + timedelta(seconds=1),
            "exception.expired",
            front,
            b,
            "solved",
            "high",
            "system",
        ),
    ]
    assert [tuple(r[c] for c in COLUMNS) for r in rows] == expected

    # constant per case here (the request type from triage on), and the event type
    # doubles as the activity
    assert {(r["case_id"], r["customer"], r["channel"]) for r in rows} == {(case, cust, "email")}
    assert [r["category"] for r in rows] == [None] + ["refund"] * 22
    assert all(r["activity"] == r["type"] for r in rows)
    assert all(r["made_sla"] is None and r["handle_seconds"] is None for r in rows)
    assert [r["visibility"] for r in rows if r["type"] == "message.added"] == [
        "public",
        "public",
        "internal",
        "public",
        "public",
    ]
    assert all(r["visibility"] is None for r in rows if r["type"] != "message.added")
    assert [r["csat"] for r in rows if r["csat"] is not None] == [4.0]
    assert [r["exception_type"] for r in rows if r["type"].startswith("exception.")] == [
        "refund_outside_policy"
    ] * 5
    assert all(r["exception_type"] is None for r in rows if not r["type"].startswith("exc"))

    # seq is the log's own, for exactly the ticket-scoped events
    with model_db.read() as conn:
        seqs = (
            conn.execute(
                select(t.events.c.seq).where(t.events.c.ticket_id.is_not(None)).order_by("seq")
            )
            .scalars()
            .all()
        )
    assert [r["seq"] for r in rows] == list(seqs)


def test_export_writes_parquet(model_db: Database, tmp_path: Path) -> None:
    build_log(model_db)
    seen: list[int] = []
    out = tmp_path / "sub" / "case_events.parquet"
    table = export_case_events(model_db, out, progress=seen.append)
    assert out.exists() and not list(out.parent.glob("*.partial"))
    assert pq.ParquetFile(out).metadata.row_group(0).column(0).compression == "ZSTD"
    on_disk = pq.read_table(out)
    assert on_disk.schema.equals(CASE_EVENTS) and on_disk.equals(table)
    assert table.num_rows == 23 and seen and seen[-1] > table.num_rows  # user events too
    assert on_disk.equals(export_case_events(model_db))
    # only the file: nothing read back
    again = tmp_path / "again.parquet"
    empty = export_case_events(model_db, again, read_back=False)
    assert empty.num_rows == 0 and empty.schema.equals(CASE_EVENTS)
    assert pq.read_table(again).equals(table)


def test_export_of_an_empty_log(sqlite_db: Database) -> None:
    table = export_case_events(sqlite_db)
    assert table.num_rows == 0 and table.schema.equals(CASE_EVENTS)


def test_demo_cases_match_the_tickets_table(sqlite_db: Database) -> None:
    run_demo(sqlite_db, days=1, seed=3, start=date(2026, 3, 2), scale=0.1)
    rows = export_case_events(sqlite_db).to_pylist()
    with sqlite_db.read() as conn:
        tickets = {r.id: r for r in conn.execute(select(t.tickets))}
        ticket_events = Counter(
            conn.execute(
                select(t.events.c.ticket_id).where(t.events.c.ticket_id.is_not(None))
            ).scalars()
        )
    assert tickets
    assert Counter(r["case_id"] for r in rows) == {str(k): n for k, n in ticket_events.items()}
    # the state after each case's last event is the ticket as the tables hold it
    last = {r["case_id"]: r for r in rows}
    assert set(last) == {str(tid) for tid in tickets}
    for tid, tk in tickets.items():
        row = last[str(tid)]
        agent = None if tk.owning_agent is None else str(tk.owning_agent)
        assert (row["team"], row["agent"], row["status"]) == (tk.owning_team, agent, tk.status)
        assert (row["category"], row["priority"], row["channel"]) == (
            tk.request_type,
            tk.priority,
            tk.channel,
        )
        assert row["customer"] == str(tk.customer_id)
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
