"""One timer sweep over a million open tickets on PostgreSQL (issue #5, point 7).

The tickets are not the subject here, so they are written in bulk, but through the real
code path first: a *block* of tickets (default 100 tickets of 10 customers, one of them
old enough for its timers to be due) is created with the service commands in a scratch
database, so the reactors open its SLA clocks and schedule its jobs exactly as in
production. The block's rows (events, tickets, messages, clocks, exceptions, jobs) are
then copied into the measured database ``copies`` times with PostgreSQL ``COPY``, every
id shifted by the block's span and the log's ``seq`` interleaved so ``at`` still grows
with ``seq``. The result replays cleanly (``opsdesk verify``; a test checks a small one).

What is timed: :func:`opsdesk.jobs.outbox.run_due` at the sweep instant, until nothing
due is left, 500 jobs per transaction: claim, handlers, reactions, delete, commit.

``timers="sla"`` measures SLA timers (``sla.timer`` jobs, fired by
``opsdesk.sla.clocks.fire_sla_timer``, and whatever they cause: escalations,
notifications). ``timers="exception"`` adds an exception request to every ticket and
measures ``exception.expire`` jobs (plus any SLA work due), for builds whose SLA clocks
schedule no jobs yet.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select, text

from opsdesk.desk import service
from opsdesk.desk.models import apply_model_file
from opsdesk.jobs.outbox import run_due
from opsdesk.model import example_model_path
from opsdesk.store import tables as t
from opsdesk.store.crypto import Opener
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

#: the instant of the sweep: a Wednesday afternoon, inside UK and NL business hours
SWEEP_AT = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
#: request types the block's tickets cycle through (every SLA policy of the example)
REQUEST_TYPES = (
    "refund",
    "bill_explanation",
    "account_access",
    "device_fault",
    "smart_meter_fault",
    "payment_plan",
    "delivery_problem",
    "move_home",
)
PRIORITIES = ("normal", "normal", "high", "low", "normal", "urgent", "normal", "high")

# Which id kind each column holds, per table (users and model versions are shared by
# every copy; everything else belongs to the block and is shifted).
ID_COLUMNS: dict[str, dict[str, str]] = {
    "customers": {"id": "customer", "merged_into": "customer"},
    "customer_handles": {"customer_id": "customer"},
    "tickets": {"id": "ticket", "customer_id": "customer", "follow_up_of": "ticket"},
    "ticket_tags": {"ticket_id": "ticket"},
    "messages": {"id": "message", "ticket_id": "ticket"},
    "exceptions": {"id": "exception", "ticket_id": "ticket"},
    "sla_clocks": {"id": "sla_clock", "ticket_id": "ticket"},
    "events": {"ticket_id": "ticket", "customer_id": "customer"},
    "jobs": {"ticket_id": "ticket"},
}
# Which id kind an event payload key holds.
PAYLOAD_IDS = {
    "ticket_id": "ticket",
    "customer_id": "customer",
    "message_id": "message",
    "exception_id": "exception",
    "clock_id": "sla_clock",
    "follow_up_of": "ticket",
    "source_id": "customer",
    "target_id": "customer",
}
# Which id kind a job's ref holds, per job kind (refs are ids written as text).
JOB_REFS = {"exception.expire": "exception", "sla.timer": "sla_clock"}
BLOCK_TABLES = tuple(ID_COLUMNS)


class Refused(RuntimeError):
    """The sweep would not measure what it claims to; the message says why."""


@dataclass
class TimerResult:
    open_tickets: int
    jobs_in_table: int
    due: int
    seconds: float
    build_seconds: float
    fired: Counter[str] = field(default_factory=Counter)
    noop: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    due_by_kind: dict[str, int] = field(default_factory=dict)
    left_due: int = 0
    events: int = 0

    @property
    def ran(self) -> int:
        return sum(self.fired.values()) + sum(self.noop.values())

    @property
    def rate(self) -> float:
        return self.ran / self.seconds if self.seconds else 0.0


@dataclass
class Block:
    """The scratch database holding the prologue (model, users) and one block."""

    db: Database
    prologue_seq: int
    counters_before: dict[str, int]
    counters_after: dict[str, int]
    tickets: int

    @property
    def spans(self) -> dict[str, int]:
        return {
            kind: after - self.counters_before.get(kind, 0)
            for kind, after in self.counters_after.items()
        }


def _head(db: Database) -> tuple[int, dict[str, int]]:
    with db.read() as conn:
        row = conn.execute(select(t.log_head.c.last_seq, t.log_head.c.counters)).one()
    return int(row.last_seq), dict(row.counters or {})


def build_block(
    db: Database,
    *,
    tickets: int = 100,
    due: int = 1,
    customers: int = 10,
    timers: str = "sla",
    sweep_at: datetime = SWEEP_AT,
) -> Block:
    """Create the prologue (the example model, a lead per team) and one block through
    the service commands in ``db``.

    ``due`` tickets are payment plans (24x7 "priority care": first reply in 4 h, warned
    at half-time) opened 2.5 hours before ``sweep_at``: their first-reply warning is due,
    nothing else of theirs. With ``timers="exception"`` they are opened 25 hours before
    instead, with a priority-jump exception (1 day at most) requested at once. The other
    tickets, of every request type and priority, were opened in the last 5 minutes."""
    due_opened = sweep_at - (
        timedelta(hours=25) if timers == "exception" else timedelta(hours=2, minutes=30)
    )
    with UnitOfWork(db, now=due_opened - timedelta(days=1)) as uow:
        apply_model_file(uow, example_model_path(), author="bench")
        for team in ("frontline", "billing", "tech_support", "metering", "logistics"):
            service.create_user(
                uow,
                name=f"Lead {team}",
                email=f"lead.{team}@bench.test",
                roles=["agent", "team_lead"],
                teams=[team],
            )
    prologue_seq, before = _head(db)
    customer_ids = []
    with UnitOfWork(db, now=due_opened - timedelta(hours=1)) as uow:
        for n in range(customers):
            tier = "vip" if n % 10 == 9 else "standard"
            customer_ids.append(service.create_customer(uow, name=f"Customer {n}", tier=tier).id)
    recent = tickets - due
    plan = [(due_opened + timedelta(minutes=n), "payment_plan", "normal") for n in range(due)] + [
        (
            sweep_at - timedelta(seconds=300 * (recent - n) / recent),
            REQUEST_TYPES[n % len(REQUEST_TYPES)],
            PRIORITIES[n % len(PRIORITIES)],
        )
        for n in range(recent)
    ]
    for n, (at, request_type, priority) in enumerate(plan):
        customer_id = customer_ids[n % customers]
        with UnitOfWork(db, actor_kind="customer", actor_id=customer_id, now=at) as uow:
            ticket = service.create_ticket(
                uow,
                customer_id=customer_id,
                subject=f"Ticket {n}",
                channel=("email", "chat", "api", "voice")[n % 4],
                request_type=request_type,
                priority=priority,
                body="Something is not right with my account.",
            )
        if timers == "exception":
            with UnitOfWork(db, now=at) as uow:
                service.request_exception(uow, ticket.id, "priority_jump", "customer asked")
    _, after = _head(db)
    return Block(db, prologue_seq, before, after, tickets)


def _shift(kind: str | None, value: Any, k: int, block: Block, spans: dict[str, int]) -> Any:
    if kind is None or value is None:
        return value
    if value <= block.counters_before.get(kind, 0):  # shared (e.g. a prologue id)
        return value
    return value + k * spans[kind]


def _rows(db: Database, table: str) -> list[dict[str, Any]]:
    tbl = t.metadata.tables[table]
    order = [c for c in tbl.primary_key.columns] or list(tbl.columns)[:1]
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(tbl).order_by(*order))]


def _copy(raw: Any, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
    cols = ", ".join(f'"{c}"' for c in columns)
    n = 0
    with raw.cursor() as cur, cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def replicate(
    block: Block, dst: Database, copies: int, progress: Callable[[str], None] | None = None
) -> dict[str, int]:
    """Write the prologue once and the block ``copies`` times into ``dst`` (PostgreSQL,
    migrated, empty). Returns the rows written per table."""
    if dst.dialect != "postgresql":
        raise ValueError("the timer benchmark bulk-loads with PostgreSQL COPY")
    src, spans = block.db, block.spans
    written: dict[str, int] = {}
    raw = dst.engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert conn is not None
        for tbl in t.metadata.sorted_tables:
            name = tbl.name
            # the audit trail is chained to its head row, and no timer reads it
            if name in ("log_head", "jobs", "events", "audit_log", "audit_head"):
                continue
            # data keys are bound to their customer and the source's master key: the
            # copies get the events' personal fields opened instead (see below)
            if name == "personal_keys":
                continue
            rows = _rows(src, name)
            if not rows:
                continue
            columns = [c.name for c in tbl.columns]
            json_cols = {c.name for c in tbl.columns if c.type.__class__.__name__ == "JSON"}
            if progress:
                progress(name)
            ids = ID_COLUMNS.get(name)
            if ids is None:  # prologue: users, model versions ...
                gen: Iterator[tuple[Any, ...]] = (
                    tuple(_json(r[c]) if c in json_cols else r[c] for c in columns) for r in rows
                )
            else:
                gen = (
                    tuple(
                        _json(r[c]) if c in json_cols else _shift(ids.get(c), r[c], k, block, spans)
                        for c in columns
                    )
                    for k in range(copies)
                    for r in rows
                )
            written[name] = _copy(conn, name, columns, gen)
        if progress:
            progress("jobs")
        job_cols = [c.name for c in t.jobs.columns if c.name != "id"]  # ids from the sequence

        def jobs() -> Iterator[tuple[Any, ...]]:
            rows = _rows(src, "jobs")
            for k in range(copies):
                for r in rows:
                    out = dict(r)
                    out["ticket_id"] = _shift("ticket", r["ticket_id"], k, block, spans)
                    ref_kind = JOB_REFS.get(r["kind"])
                    if ref_kind is not None and r["ref"].isdigit():
                        out["ref"] = str(_shift(ref_kind, int(r["ref"]), k, block, spans))
                    yield tuple(out[c] for c in job_cols)

        written["jobs"] = _copy(conn, "jobs", job_cols, jobs())
        if progress:
            progress("events")
        events = _rows(src, "events")
        with src.read() as src_conn:
            opener = Opener.all_keys(src_conn)
            for e in events:
                e["payload"] = opener.open_payload(e["type"], dict(e["payload"]))
        prologue = [e for e in events if e["seq"] <= block.prologue_seq]
        body = [e for e in events if e["seq"] > block.prologue_seq]
        ev_cols = [c.name for c in t.events.columns]

        def event_rows() -> Iterator[tuple[Any, ...]]:
            for e in prologue:
                yield tuple(_json(e[c]) if c == "payload" else e[c] for c in ev_cols)
            first = block.prologue_seq + 1
            for i, e in enumerate(body):
                for k in range(copies):
                    out = dict(e)
                    out["seq"] = first + i * copies + k
                    out["ticket_id"] = _shift("ticket", e["ticket_id"], k, block, spans)
                    out["customer_id"] = _shift("customer", e["customer_id"], k, block, spans)
                    payload = dict(e["payload"])
                    for key, kind in PAYLOAD_IDS.items():
                        if isinstance(payload.get(key), int):
                            payload[key] = _shift(kind, payload[key], k, block, spans)
                    out["payload"] = _json(payload)
                    yield tuple(out[c] for c in ev_cols)

        written["events"] = _copy(conn, "events", ev_cols, event_rows())
        last_seq = block.prologue_seq + len(body) * copies
        counters = {
            kind: block.counters_before.get(kind, 0) + span * copies for kind, span in spans.items()
        }
        with src.read() as c:
            version = c.execute(select(t.log_head.c.model_version)).scalar()
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE log_head SET last_seq = %s, model_version = %s, counters = %s::json "
                "WHERE id = 1",
                (last_seq, version, _json(counters)),
            )
        conn.commit()
    finally:
        raw.close()
    with dst.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("ANALYZE"))
    return written


def due_jobs(db: Database, at: datetime) -> dict[str, int]:
    with db.read() as conn:
        rows = conn.execute(
            select(t.jobs.c.kind, func.count()).where(t.jobs.c.run_at <= at).group_by(t.jobs.c.kind)
        ).all()
    return {kind: n for kind, n in rows}


def measure(
    scratch: Database,
    dst: Database,
    *,
    tickets: int = 1_000_000,
    block_tickets: int = 100,
    due_per_block: int = 1,
    timers: str = "sla",
    batch: int = 500,
    progress: Callable[[str], None] | None = None,
) -> TimerResult:
    """Build ``tickets`` open tickets in ``dst`` and time one full sweep at SWEEP_AT."""
    if tickets % block_tickets:
        raise ValueError(f"tickets must be a multiple of the block ({block_tickets})")
    started = time.perf_counter()
    if progress:
        progress("building the block through the service commands")
    block = build_block(scratch, tickets=block_tickets, due=due_per_block, timers=timers)
    block_due = due_jobs(scratch, SWEEP_AT)
    if timers == "sla" and not block_due.get("sla.timer"):
        raise Refused(
            "no sla.timer job is due in the block: this build's SLA clocks schedule no "
            "timers yet; run with --timers exception"
        )
    replicate(block, dst, tickets // block_tickets, progress)
    build = time.perf_counter() - started
    with dst.read() as conn:
        open_tickets = conn.execute(
            select(func.count()).where(t.tickets.c.status.not_in(("solved", "closed")))
        ).scalar_one()
        in_table = conn.execute(select(func.count()).select_from(t.jobs)).scalar_one()
    due = due_jobs(dst, SWEEP_AT)
    if progress:
        progress(f"sweeping {sum(due.values()):,} due jobs")
    sweep = run_due(dst, SWEEP_AT, batch=batch, worker="bench")
    result = TimerResult(
        open_tickets=open_tickets,
        jobs_in_table=in_table,
        due=sum(due.values()),
        seconds=sweep.seconds,
        build_seconds=build,
        fired=sweep.fired,
        noop=sweep.noop,
        failed=sweep.failed,
        due_by_kind=due,
    )
    result.events = sweep.events
    result.left_due = sum(due_jobs(dst, SWEEP_AT).values())
    return result


def report(args: Any, pg: Any, console: Any) -> None:
    """The timers part of ``python -m bench``: build, sweep, print the figures."""
    import tempfile
    from pathlib import Path

    from rich.table import Table

    workdir = Path(tempfile.mkdtemp(prefix="opsdesk-bench-timers-"))
    scratch = Database(f"sqlite:///{workdir / 'block.db'}")
    scratch.migrate()
    try:
        dst = pg.new()
        try:
            result = measure(
                scratch,
                dst,
                tickets=args.timer_tickets,
                timers=args.timers,
                progress=lambda what: console.log(f"timers: {what}"),
            )
        except Refused as exc:
            console.print(f"[bold red]timer sweep not measured:[/] {exc}")
            return
        finally:
            dst.dispose()
    finally:
        scratch.dispose()
        pg.close()
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()
    table = Table(
        title=f"one timer sweep on PostgreSQL ({args.timers} timers, 500 jobs/transaction)"
    )
    for col in (
        "open tickets",
        "jobs in the table",
        "jobs due",
        "jobs run",
        "failed",
        "events appended",
        "seconds",
        "jobs/s",
        "target",
    ):
        table.add_column(col, justify="right")
    table.add_row(
        f"{result.open_tickets:,}",
        f"{result.jobs_in_table:,}",
        f"{result.due:,}",
        f"{result.ran:,}",
        f"{sum(result.failed.values()):,}",
        f"{result.events:,}",
        f"{result.seconds:.2f}",
        f"{result.rate:,.0f}",
        "sweep < 10 s",
    )
    console.print(table)
    kinds = Table(title="per job kind")
    for col in ("kind", "due", "fired", "no-op", "failed"):
        kinds.add_column(col, justify="right")
    for kind in sorted(set(result.due_by_kind) | set(result.fired) | set(result.noop)):
        kinds.add_row(
            kind,
            f"{result.due_by_kind.get(kind, 0):,}",
            f"{result.fired[kind]:,}",
            f"{result.noop[kind]:,}",
            f"{result.failed[kind]:,}",
        )
    console.print(kinds)
    console.print(
        f"building the data took {result.build_seconds:,.0f} s; "
        f"due jobs left after the sweep: {result.left_due:,}"
    )
