"""Replay the event log into fresh projections and compare them with the live tables."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from opsdesk.domain.events import PERSONAL, VOCABULARY, Event
from opsdesk.domain.state import HandleState, Projection
from opsdesk.store import tables as t
from opsdesk.store.crypto import Opener
from opsdesk.store.db import Database
from opsdesk.store.fastpath import statements
from opsdesk.store.uow import STATE_TYPES, as_dict, state_from_row

BATCH = 20_000
PROJECTIONS = (
    ("ticket", "tickets"),
    ("customer", "customers"),
    ("handle", "handles"),
    ("user", "users"),
    ("message", "messages"),
    ("exception", "exceptions"),
    ("sla_clock", "sla_clocks"),
)


@dataclass
class VerifyReport:
    events: int = 0
    differences: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.differences


@dataclass
class Replay:
    projection: Projection
    events: int
    gaps: list[int]
    undeclared: dict[str, int]


def iter_events(conn: Connection, after_seq: int = 0, *, reveal: bool = True) -> Iterator[Event]:
    """Every event after ``after_seq`` in seq order, streamed in batches; with ``reveal``
    the customers' personal fields are opened (``[erased]`` once their key is destroyed,
    see opsdesk.store.crypto).

    Reads through the driver's own cursor: replay is bound by row decoding, and
    SQLAlchemy's per-row result processing costs more than the fold itself.
    """
    sqlite = conn.dialect.name == "sqlite"
    columns = "seq, at, type, ticket_id, customer_id, actor_kind, actor_id, model_version, payload"
    placeholder = "?" if sqlite else "%s"
    sql = f"SELECT {columns} FROM events WHERE seq > {placeholder} ORDER BY seq"  # noqa: S608
    personal = PERSONAL if reveal else {}
    open_payload = Opener.all_keys(conn).open_payload if reveal else None
    dbapi: Any = conn.connection.driver_connection
    cursor = dbapi.cursor(name=f"replay_{after_seq}") if not sqlite else dbapi.cursor()
    if not sqlite:
        cursor.itersize = BATCH
    cursor.execute(sql, (after_seq,))
    try:
        while True:
            rows = cursor.fetchmany(BATCH)
            if not rows:
                return
            if sqlite:
                # SQLite keeps naive UTC text and JSON text; decode them here
                loads = orjson.loads
                parse = datetime.fromisoformat
                last_text, last_at = "", None
                for seq, text, type_, tid, cid, ak, aid, mv, payload in rows:
                    # the events of one command share their instant: parse it once
                    if text != last_text:
                        last_text, last_at = text, parse(text + "+00:00")
                    payload = loads(payload)
                    if type_ in personal:
                        payload = open_payload(type_, payload)  # type: ignore[misc]
                    yield Event(seq, last_at, type_, tid, cid, ak, aid, mv, payload)  # type: ignore[arg-type]
            else:
                for row in rows:
                    if row[2] in personal:
                        yield Event(*row[:8], open_payload(row[2], row[8]))  # type: ignore[misc, call-arg]
                    else:
                        yield Event(*row)
    finally:
        cursor.close()


def replay(conn: Connection, progress: Callable[[int], None] | None = None) -> Replay:
    """Fold the whole log into an empty projection, noting any gap in seq."""
    projection = Projection(track=False)
    count = 0
    expected = 1
    gaps: list[int] = []
    apply = projection.apply
    undeclared: dict[str, int] = {}
    # the fold allocates millions of small acyclic objects: the cycle collector would
    # rescan them again and again for nothing
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for event in iter_events(conn):
            if event.seq != expected:
                gaps.append(event.seq)
            expected = event.seq + 1
            if event.type not in VOCABULARY:
                undeclared.setdefault(event.type, event.seq)
            apply(event)
            count += 1
            if progress is not None and count % BATCH == 0:
                progress(count)
    finally:
        if gc_was_enabled:
            gc.enable()
    projection.dirty.clear()
    projection.new.clear()
    return Replay(projection, count, gaps, undeclared)


def load_live(conn: Connection) -> Projection:
    """Read the current-state tables into a projection of the same shape (through the
    driver, decoding values as the column types do; see opsdesk.store.fastpath)."""
    p = Projection(track=False)
    sql = statements(conn.dialect.name)
    cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def rows(table: str) -> Iterator[dict[str, Any]]:
        spec = sql[table]
        cursor.execute(f"SELECT {', '.join(spec.columns)} FROM {table}")  # noqa: S608
        while batch := cursor.fetchmany(BATCH):
            for row in batch:
                yield spec.decode(row)

    for table in STATE_TYPES:
        target = getattr(p, table)
        for d in rows(table):
            target[d["id"]] = state_from_row(table, d)
    cursor.execute("SELECT kind, value, customer_id FROM customer_handles")
    for kind, value, customer_id in cursor.fetchall():
        p.handles[(kind, value)] = HandleState(kind, value, customer_id)
    cursor.close()
    return p


def _compare(kind: str, replayed: dict[Any, Any], live: dict[Any, Any], out: list[str]) -> None:
    for key in sorted(replayed.keys() - live.keys(), key=str):
        out.append(f"{kind} {key}: in the log but missing from the table")
    for key in sorted(live.keys() - replayed.keys(), key=str):
        out.append(f"{kind} {key}: in the table but never created by any event")
    for key in sorted(replayed.keys() & live.keys(), key=str):
        a, b = as_dict(replayed[key]), as_dict(live[key])
        for name in a:
            if a[name] != b[name]:
                out.append(
                    f"{kind} {key}: {name} is {b[name]!r} in the table, {a[name]!r} by replay"
                )


def verify(db: Database, progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Replay the log and list every difference from the live tables."""
    report = VerifyReport()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # see replay()
    try:
        _verify_into(db, report, progress)
    finally:
        if gc_was_enabled:
            gc.enable()
    return report


def _verify_into(
    db: Database, report: VerifyReport, progress: Callable[[int], None] | None
) -> None:
    diffs = report.differences
    with db.read() as conn:
        result = replay(conn, progress)
        live = load_live(conn)
        head = conn.execute(select(t.log_head.c.last_seq)).scalar() or 0
        max_seq = conn.execute(select(func.max(t.events.c.seq))).scalar() or 0
        tag_index = {(r.ticket_id, r.tag) for r in conn.execute(select(t.ticket_tags))}
    report.events = result.events
    for event_type, first_seq in sorted(result.undeclared.items()):
        diffs.append(
            f"event log: type {event_type!r} (first at seq {first_seq}) is not declared "
            "in the vocabulary"
        )
    for seq in result.gaps:
        diffs.append(f"event log: seq jumps to {seq} (events missing before it)")
    if head != max_seq:
        diffs.append(f"event log: the head says last seq {head}, the log ends at {max_seq}")
    replayed = result.projection
    for kind, attr in PROJECTIONS:
        _compare(kind, getattr(replayed, attr), getattr(live, attr), diffs)
        report.counts[attr] = len(getattr(live, attr))
    expected_tags = {(tid, tag) for tid, tk in replayed.tickets.items() for tag in tk.tags}
    for tid, tag in sorted(tag_index - expected_tags):
        diffs.append(f"ticket_tags: ({tid}, {tag!r}) is indexed but the ticket has no such tag")
    for tid, tag in sorted(expected_tags - tag_index):
        diffs.append(f"ticket_tags: ticket {tid} has tag {tag!r} but the index lacks it")
