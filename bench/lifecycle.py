"""Ticket lifecycles per second through the domain layer, beside raw inserts of the same rows.

A lifecycle is: create (with the customer's first message), 3 agent replies, a transfer
to an agent of another team, solve. ``per_command`` gives each command its own unit of
work, as API requests do; ``per_lifecycle`` runs the whole lifecycle in one unit of work,
as an importer would. The raw baseline writes exactly the rows the domain path wrote
(copied from the database afterwards), with the same transaction boundaries, through the
bare DB-API driver: the ratio is the domain layer's overhead.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Index, MetaData, Table, select

from opsdesk.desk import service
from opsdesk.desk.models import apply_model_file
from opsdesk.model import example_model_path
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork


@dataclass
class LifecycleResult:
    mode: str
    lifecycles: int
    seconds: float
    raw_seconds: float

    @property
    def rate(self) -> float:
        return self.lifecycles / self.seconds

    @property
    def raw_rate(self) -> float:
        return self.lifecycles / self.raw_seconds


def setup(db: Database) -> tuple[int, int, int]:
    with UnitOfWork(db) as uow:
        apply_model_file(uow, example_model_path(), author="bench")
        a = service.create_user(
            uow, name="A", email="a@bench.test", roles=["agent"], teams=["billing"]
        )
        b = service.create_user(
            uow, name="B", email="b@bench.test", roles=["agent"], teams=["frontline"]
        )
        c = service.create_customer(uow, name="C", handles=[("email", "c@bench.test")])
    return a.id, b.id, c.id


def lifecycle_per_command(db: Database, a: int, b: int, c: int) -> list[int]:
    """One lifecycle, one unit of work per command; returns events per transaction."""
    sizes = []
    with UnitOfWork(db, actor_kind="customer", actor_id=c) as uow:
        tk = service.create_ticket(
            uow,
            customer_id=c,
            subject="Refund for order 1234",
            channel="email",
            request_type="refund",
            body="I was charged twice.",
        )
    sizes.append(len(uow.appended))
    with UnitOfWork(db, actor_kind="user", actor_id=a) as uow:
        service.accept_ticket(uow, tk.id)
    sizes.append(len(uow.appended))
    for body in ("Looking into it.", "Found the double charge.", "Refund issued."):
        with UnitOfWork(db, actor_kind="user", actor_id=a) as uow:
            service.add_message(uow, tk.id, body=body)
        sizes.append(len(uow.appended))
    with UnitOfWork(db, actor_kind="user", actor_id=a) as uow:
        service.transfer_ticket(
            uow, tk.id, reason="confirm by phone", to_team="frontline", to_agent=b
        )
    sizes.append(len(uow.appended))
    with UnitOfWork(db, actor_kind="user", actor_id=b) as uow:
        service.change_status(uow, tk.id, "solved")
    sizes.append(len(uow.appended))
    return sizes


def lifecycle_one_unit(db: Database, a: int, b: int, c: int) -> list[int]:
    """One lifecycle in a single unit of work."""
    with UnitOfWork(db, actor_kind="user", actor_id=a) as uow:
        tk = service.create_ticket(
            uow,
            customer_id=c,
            subject="Refund for order 1234",
            channel="email",
            request_type="refund",
            body="I was charged twice.",
        )
        service.accept_ticket(uow, tk.id)
        for body in ("Looking into it.", "Found the double charge.", "Refund issued."):
            service.add_message(uow, tk.id, body=body)
        service.transfer_ticket(
            uow, tk.id, reason="confirm by phone", to_team="frontline", to_agent=b
        )
        uow.actor_id = b
        service.change_status(uow, tk.id, "solved")
    return [len(uow.appended)]


def _clone_tables(db: Database) -> None:
    """raw_<name>: the same columns, key and indexes as <name>, empty, no foreign keys."""
    meta = MetaData()
    for name in ("events", "tickets", "messages"):
        source = t.metadata.tables[name]
        columns = [
            Column(
                c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, autoincrement=False
            )
            for c in source.columns
        ]
        table = Table(f"raw_{name}", meta, *columns)
        for index in source.indexes:
            Index(f"raw_{index.name}", *[table.c[c.name] for c in index.columns])
    meta.drop_all(db.engine)
    meta.create_all(db.engine)


def raw_replay(db: Database, after_seq: int, n: int, sizes: list[int]) -> float:
    """Write the rows the domain path wrote (events, the ticket insert then one update per
    later transaction, messages) through the bare driver, in the same transactions."""
    sqlite = db.dialect == "sqlite"
    ph = "?" if sqlite else "%s"
    _clone_tables(db)
    raw = db.engine.raw_connection()
    dbapi: Any = raw.driver_connection
    if sqlite:
        dbapi.isolation_level = None
    cur = dbapi.cursor()
    cur.execute(f"SELECT * FROM events WHERE seq > {ph} ORDER BY seq", (after_seq,))
    events = [tuple(json.dumps(v) if isinstance(v, dict) else v for v in r) for r in cur.fetchall()]
    cur.execute(f"SELECT * FROM tickets ORDER BY id DESC LIMIT {int(n)}")
    tickets = list(reversed(cur.fetchall()))
    cur.execute(f"SELECT * FROM messages ORDER BY id DESC LIMIT {int(4 * n)}")
    messages = list(reversed(cur.fetchall()))

    ins = {
        name: f"INSERT INTO raw_{name} VALUES ({','.join([ph] * len(rows[0]))})"
        for name, rows in (("events", events), ("tickets", tickets), ("messages", messages))
    }
    upd = (
        f"UPDATE raw_tickets SET status = {ph}, owning_agent = {ph}, updated_at = {ph} "
        f"WHERE id = {ph}"
    )
    per_lifecycle = sum(sizes)
    m = 0
    start = time.perf_counter()
    for i in range(n):
        ticket = tickets[i]
        chunk = events[i * per_lifecycle : (i + 1) * per_lifecycle]
        pos = 0
        for size in sizes:
            part = chunk[pos : pos + size]
            pos += size
            if sqlite:
                cur.execute("BEGIN IMMEDIATE")
            cur.executemany(ins["events"], part)
            types = [e[2] for e in part]
            if "ticket.created" in types:
                cur.execute(ins["tickets"], ticket)
            else:
                cur.execute(upd, (ticket[5], ticket[8], ticket[11], ticket[0]))
            for _ in range(types.count("message.added")):
                cur.execute(ins["messages"], messages[m])
                m += 1
            if sqlite:
                cur.execute("COMMIT")
            else:
                dbapi.commit()
    elapsed = time.perf_counter() - start
    for name in ("events", "tickets", "messages"):
        cur.execute(f"DROP TABLE IF EXISTS raw_{name}")
    if not sqlite:
        dbapi.commit()
    raw.close()
    return elapsed


def measure(db: Database, n: int, mode: str) -> LifecycleResult:
    """Run ``n`` lifecycles in ``mode`` (per_command or per_lifecycle), then the raw baseline."""
    a, b, c = setup(db)
    run = lifecycle_per_command if mode == "per_command" else lifecycle_one_unit
    for _ in range(20):  # warm the statement cache
        sizes = run(db, a, b, c)
    with db.read() as conn:
        after = conn.execute(select(t.log_head.c.last_seq)).scalar_one()
    start = time.perf_counter()
    for _ in range(n):
        run(db, a, b, c)
    elapsed = time.perf_counter() - start
    raw = raw_replay(db, after, n, sizes)
    return LifecycleResult(mode, n, elapsed, raw)
