"""Our own event log as CASE_EVENTS rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
from sqlalchemy import select

from opsdesk.analytics import process
from opsdesk.analytics.engine import diagnose, load_model_tables, sql_text
from opsdesk.analytics.ownlog import export_case_events
from opsdesk.analytics.schema import CASE_EVENTS
from opsdesk.demo import run_demo
from opsdesk.desk import service
from opsdesk.domain import events as ev
from opsdesk.domain.events import new_event
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
#: the kinds of ticket-scoped events the export turns into rows
EXPORTED = ("ticket.", "message.", "exception.", "sla.")


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


def work_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of work on the case: without the SLA clock events (sla.*) that the
    model's SLA policies add."""
    return [r for r in rows if not r["type"].startswith("sla.")]


def exported_seqs(db: Database) -> list[int]:
    """seq of the log's events that the export turns into rows."""
    with db.read() as conn:
        found = conn.execute(
            select(t.events.c.seq, t.events.c.type)
            .where(t.events.c.ticket_id.is_not(None))
            .order_by(t.events.c.seq)
        ).all()
    return [seq for seq, kind in found if kind.startswith(EXPORTED)]


def test_export_rows_follow_the_ticket(model_db: Database) -> None:
    ids = build_log(model_db)
    table = export_case_events(model_db)
    assert table.schema.equals(CASE_EVENTS)
    every = table.to_pylist()
    rows = work_rows(every)

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
    assert all(r["handle_seconds"] is None for r in rows)
    # SLA clock rows (whatever clocks the model's policies started) are the system's
    assert all(r["actor_kind"] == "system" for r in every if r["type"].startswith("sla."))
    assert_made_sla_follows_the_clocks(every)
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

    # seq is the log's own, for exactly the ticket-scoped events of the exported kinds
    assert [r["seq"] for r in every] == exported_seqs(model_db)


def assert_made_sla_follows_the_clocks(rows: list[dict[str, Any]]) -> None:
    """Each row's made_sla is the case's SLA outcome so far: unknown before its first
    clock, made until a clock breaches, missed from then on."""
    outcome: dict[str, bool | None] = {}
    for r in rows:
        case = r["case_id"]
        if r["type"] == "ticket.created":
            outcome[case] = None
        elif r["type"] == "sla.activated" and outcome.get(case) is None:
            outcome[case] = True
        elif r["type"] == "sla.breached":
            outcome[case] = False
        assert r["made_sla"] is outcome.get(case), r


def test_export_writes_parquet(model_db: Database, tmp_path: Path) -> None:
    build_log(model_db)
    seen: list[int] = []
    out = tmp_path / "sub" / "case_events.parquet"
    table = export_case_events(model_db, out, progress=seen.append)
    assert out.exists() and not list(out.parent.glob("*.partial"))
    assert pq.ParquetFile(out).metadata.row_group(0).column(0).compression == "ZSTD"
    on_disk = pq.read_table(out)
    assert on_disk.schema.equals(CASE_EVENTS) and on_disk.equals(table)
    assert len(work_rows(table.to_pylist())) == 23
    assert seen and seen[-1] > table.num_rows  # user events too
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
            ticket_id
            for ticket_id, kind in conn.execute(
                select(t.events.c.ticket_id, t.events.c.type).where(
                    t.events.c.ticket_id.is_not(None)
                )
            )
            if kind.startswith(EXPORTED)
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


# --- SLA clocks ------------------------------------------------------------------------


class Clocks:
    """Writes tickets and SLA clock events straight into the log (UnitOfWork.append, no
    reactions), so these tests do not depend on how the SLA capability starts clocks."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with UnitOfWork(db, now=at(0)) as uow:
            self.customer = service.create_customer(
                uow, name="C", handles=[("email", "sla@x.test")]
            ).id
            self.agent = service.create_user(
                uow, name="A", email="a@sla.test", roles=["agent"], teams=["billing"]
            ).id
        self.clock_ids: dict[tuple[int, str], int] = {}

    def ticket(self, minute: int) -> int:
        with UnitOfWork(self.db, now=at(minute), actor_kind="customer") as uow:
            ticket_id = uow.next_id("ticket")
            payload = ev.TicketCreated(subject="s", channel="email", priority="normal", tags=[])
            # triaged and owned, as the ownership invariant needs before a ticket is solved
            triaged = ev.TicketTriaged(
                request_type="refund",
                owning_team="billing",
                before_request_type=None,
                before_team=None,
            )
            accepted = ev.TicketAccepted(agent_id=self.agent, team="billing")
            uow.user(self.agent)
            uow.append(
                [
                    new_event(kind, p, ticket_id=ticket_id, customer_id=self.customer)
                    for kind, p in (
                        ("ticket.created", payload),
                        ("ticket.triaged", triaged),
                        ("ticket.accepted", accepted),
                    )
                ]
            )
        return ticket_id

    def status(self, ticket_id: int, minute: int, before: str, after: str) -> None:
        payload = ev.TicketStatusChanged(before=before, after=after)
        self._append(ticket_id, minute, "ticket.status_changed", payload, actor_kind="user")

    def clock(self, ticket_id: int, minute: int, kind: str, metric: str = "resolution") -> None:
        start = at(minute)
        payload: Any
        if kind == "sla.activated":
            payload = None  # the clock id is allocated in the unit of work
        else:
            clock_id = self.clock_ids[ticket_id, metric]
            if kind in ("sla.warning", "sla.breached"):
                payload = ev.SlaMark(clock_id=clock_id, metric=metric, due_at=start)
            elif kind == "sla.paused":
                payload = ev.SlaPaused(clock_id=clock_id, metric=metric, elapsed_minutes=5.0)
            elif kind == "sla.resumed":
                payload = ev.SlaResumed(
                    clock_id=clock_id, metric=metric, due_at=at(minute + 60), warning_at=start
                )
            elif kind == "sla.retargeted":
                payload = ev.SlaRetargeted(
                    clock_id=clock_id,
                    metric=metric,
                    priority="high",
                    before_target_minutes=60,
                    target_minutes=30,
                    due_at=at(minute + 30),
                    warning_at=at(minute + 20),
                )
            else:
                payload = ev.SlaEnded(
                    clock_id=clock_id,
                    metric=metric,
                    elapsed_minutes=10.0,
                    target_minutes=60,
                    reason="fulfilled",
                )
        self._append(ticket_id, minute, kind, payload, metric=metric, actor_kind="customer")

    def _append(
        self,
        ticket_id: int,
        minute: int,
        kind: str,
        payload: Any,
        *,
        metric: str = "",
        actor_kind: str,
    ) -> None:
        with UnitOfWork(self.db, now=at(minute), actor_kind=actor_kind) as uow:
            uow.ticket(ticket_id)  # the ticket and its clocks, for the fold
            uow.sla_clocks(ticket_id)
            if payload is None:  # sla.activated: a new clock
                clock_id = uow.next_id("sla_clock")
                self.clock_ids[ticket_id, metric] = clock_id
                payload = ev.SlaActivated(
                    clock_id=clock_id,
                    metric=metric,
                    policy="standard",
                    priority="normal",
                    target_minutes=60,
                    business_hours=False,
                    calendar=None,
                    started_at=at(minute),
                    due_at=at(minute + 60),
                    warning_at=at(minute + 45),
                )
            uow.append([new_event(kind, payload, ticket_id=ticket_id, customer_id=self.customer)])


def engine_cases(table: Any) -> dict[str, dict[str, Any]]:
    """The engine's per-case summary (sql/events.sql then sql/cases.sql), by case id."""
    con = duckdb.connect()
    try:
        con.register("case_events", table)
        load_model_tables(con, None)
        con.execute(sql_text("events"))
        con.execute(sql_text("cases"), {"repeat_window_days": 7, "has_model": False})
        cursor = con.execute(
            "SELECT c.*, n.name FROM cases AS c JOIN "
            "(SELECT DISTINCT HASH(case_id) AS k, case_id AS name FROM case_events) AS n "
            "ON n.k = c.case_id"
        )
        names = [d[0] for d in cursor.description or ()]
        return {row[-1]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    finally:
        con.close()


def test_made_sla_from_the_clock_events(model_db: Database) -> None:
    log = Clocks(model_db)
    made = log.ticket(0)  # two clocks, both achieved; a warning is no breach
    log.clock(made, 1, "sla.activated", "first_reply")
    log.clock(made, 1, "sla.activated")
    log.status(made, 2, "new", "open")
    log.clock(made, 3, "sla.achieved", "first_reply")
    log.clock(made, 40, "sla.warning")
    log.status(made, 50, "open", "solved")
    log.clock(made, 50, "sla.achieved")

    missed = log.ticket(0)  # breached, then worked and stopped: missed for good
    log.clock(missed, 0, "sla.activated")
    log.clock(missed, 60, "sla.breached")
    log.status(missed, 70, "new", "solved")
    log.clock(missed, 70, "sla.stopped")

    abandoned = log.ticket(0)  # the breach is the last thing that happens to it
    log.clock(abandoned, 0, "sla.activated")
    log.status(abandoned, 5, "new", "open")
    log.clock(abandoned, 65, "sla.breached")

    paused = log.ticket(0)  # paused, retargeted, resumed: still made
    log.clock(paused, 0, "sla.activated")
    log.status(paused, 5, "new", "pending")
    log.clock(paused, 5, "sla.paused")
    log.clock(paused, 6, "sla.retargeted")
    log.status(paused, 20, "pending", "open")
    log.clock(paused, 20, "sla.resumed")

    unknown = log.ticket(0)  # no clock at all: its SLA is unknown
    log.status(unknown, 5, "new", "solved")

    table = export_case_events(model_db)
    rows = table.to_pylist()
    assert [r["seq"] for r in rows] == exported_seqs(model_db)
    assert_made_sla_follows_the_clocks(rows)
    clock_rows = [r for r in rows if r["type"].startswith("sla.")]
    assert len(clock_rows) == 14
    # system events, whoever's unit of work wrote them; the clock is named in attrs
    assert {r["actor_kind"] for r in clock_rows} == {"system"}
    assert all(r["activity"] == r["type"] for r in clock_rows)
    attrs = [json.loads(r["attrs"]) for r in clock_rows if r["case_id"] == str(made)]
    assert [(a["metric"], a.get("reason")) for a in attrs] == [
        ("first_reply", None),
        ("resolution", None),
        ("first_reply", "fulfilled"),
        ("resolution", None),
        ("resolution", "fulfilled"),
    ]
    last = {r["case_id"]: r["made_sla"] for r in rows}
    assert last == {
        str(made): True,
        str(missed): False,
        str(abandoned): False,
        str(paused): True,
        str(unknown): None,
    }

    # the engine: the clocks decide the case's SLA, and they are no touches, move no
    # elapsed time and add no steps
    cases = engine_cases(table)
    assert {c: v["made_sla"] for c, v in cases.items()} == last
    work = Counter(r["case_id"] for r in work_rows(rows))
    assert {c: v["touches"] for c, v in cases.items()} == dict(work)
    assert cases[str(abandoned)]["elapsed_h"] == 5 / 60  # to its last work, not the breach
    assert cases[str(paused)]["elapsed_h"] == 20 / 60
    overall = diagnose(table).kpis[0].rows[0]
    assert (overall["sla_attainment"], overall["sla_cases"]) == (0.5, 4)
    assert diagnose(table).summary.events == sum(work.values())
    views = process.mine(table)
    assert not any("sla." in v for v, _ in views.variants)
    assert not any(
        s.startswith("sla.") or t.startswith("sla.") for s, t, _ in views.directly_follows
    )
    assert sum(n for _, n in views.variants) == 5
