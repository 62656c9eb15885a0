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
from collections import Counter
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
        # A is in frontline too: the next lifecycle opens a ticket (by id) for the customer
        # whose last ticket went to frontline, which team scoping allows only from there
        a = service.create_user(
            uow, name="A", email="a@bench.test", roles=["agent"], teams=["billing", "frontline"]
        )
        b = service.create_user(
            uow, name="B", email="b@bench.test", roles=["agent"], teams=["frontline"]
        )
        c = service.create_customer(uow, name="C", handles=[("email", "c@bench.test")])
    return a.id, b.id, c.id


Shape = list[Counter[tuple[str, str]]]  # per transaction: rows written by (table, op)


def lifecycle_per_command(db: Database, a: int, b: int, c: int) -> Shape:
    """One lifecycle, one unit of work per command; returns the rows each one wrote."""
    shape: Shape = []
    with UnitOfWork(db, actor_kind="customer", actor_id=c) as uow:
        tk = service.create_ticket(
            uow,
            customer_id=c,
            subject="Refund for order 1234",
            channel="email",
            request_type="refund",
            body="I was charged twice.",
        )
    shape.append(uow.rows_written)
    with UnitOfWork(db, actor_kind="user", actor_id=a) as uow:
        service.accept_ticket(uow, tk.id)
    shape.append(uow.rows_written)
    for body in ("Looking into it.", "Found the double charge.", "Refund issued."):
        with UnitOfWork(db, actor_kind="user", actor_id=a) as uow:
            service.add_message(uow, tk.id, body=body)
        shape.append(uow.rows_written)
    with UnitOfWork(db, actor_kind="user", actor_id=a) as uow:
        service.transfer_ticket(
            uow, tk.id, reason="confirm by phone", to_team="frontline", to_agent=b
        )
    shape.append(uow.rows_written)
    with UnitOfWork(db, actor_kind="user", actor_id=b) as uow:
        service.change_status(uow, tk.id, "solved")
    shape.append(uow.rows_written)
    return shape


def lifecycle_one_unit(db: Database, a: int, b: int, c: int) -> Shape:
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
    return [uow.rows_written]


RAW_TABLES = ("events", "tickets", "messages", "sla_clocks", "jobs")


def _clone_tables(db: Database) -> None:
    """raw_<name>: the same columns, key and indexes as <name>, empty, no foreign keys."""
    meta = MetaData()
    for name in RAW_TABLES:
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


def raw_replay(db: Database, after_seq: int, n: int, shape: Shape) -> float:
    """Write the rows the domain path wrote through the bare driver, in the same
    transactions: per transaction, the same number of inserts and updates of each table
    (events, tickets, messages, SLA clocks, jobs; ``shape`` as counted by the unit of
    work), with the rows copied back from the database."""
    sqlite = db.dialect == "sqlite"
    ph = "?" if sqlite else "%s"
    _clone_tables(db)
    raw = db.engine.raw_connection()
    dbapi: Any = raw.driver_connection
    if sqlite:
        dbapi.isolation_level = None
    cur = dbapi.cursor()

    def fetch(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        cur.execute(sql, params)
        return [
            tuple(json.dumps(v) if isinstance(v, dict | list) else v for v in r)
            for r in cur.fetchall()
        ]

    per = {table: sum(tx[table, "insert"] for tx in shape) for table in RAW_TABLES}
    rows = {
        "events": fetch(f"SELECT * FROM events WHERE seq > {ph} ORDER BY seq", after_seq),
        **{
            table: list(
                reversed(fetch(f"SELECT * FROM {table} ORDER BY id DESC LIMIT {per[table] * n}"))
            )
            for table in RAW_TABLES[1:]
        },
    }
    ins = {
        name: f"INSERT INTO raw_{name} VALUES ({','.join([ph] * len(rows[name][0]))})"
        for name in RAW_TABLES
    }
    upd = {
        "tickets": f"UPDATE raw_tickets SET status = {ph}, owning_agent = {ph}, updated_at = {ph} "
        f"WHERE id = {ph}",
        "sla_clocks": f"UPDATE raw_sla_clocks SET status = {ph}, ended_at = {ph} WHERE id = {ph}",
    }
    taken = dict.fromkeys(RAW_TABLES, 0)

    def take(table: str, k: int) -> list[tuple[Any, ...]]:
        out = rows[table][taken[table] : taken[table] + k]
        taken[table] += k
        return out

    last: dict[str, list[tuple[Any, ...]]] = {"tickets": [], "sla_clocks": []}
    start = time.perf_counter()
    for _ in range(n):
        for tx in shape:
            if sqlite:
                cur.execute("BEGIN IMMEDIATE")
            for table in RAW_TABLES:
                new = take(table, tx[table, "insert"])
                if new:
                    cur.executemany(ins[table], new)
                    if table in last:
                        last[table] = new
            for r in last["tickets"][: tx["tickets", "update"]]:
                cur.execute(upd["tickets"], (r[5], r[8], r[11], r[0]))
            for r in last["sla_clocks"][: tx["sla_clocks", "update"]]:
                cur.execute(upd["sla_clocks"], (r[8], r[17], r[0]))
            if sqlite:
                cur.execute("COMMIT")
            else:
                dbapi.commit()
    elapsed = time.perf_counter() - start
    for name in RAW_TABLES:
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
        shape = run(db, a, b, c)
    with db.read() as conn:
        after = conn.execute(select(t.log_head.c.last_seq)).scalar_one()
    start = time.perf_counter()
    for _ in range(n):
        run(db, a, b, c)
    elapsed = time.perf_counter() - start
    raw = raw_replay(db, after, n, shape)
    return LifecycleResult(mode, n, elapsed, raw)
