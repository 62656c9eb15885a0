"""Replay the event log into fresh projections and compare them with the live tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from opsdesk.domain.events import Event
from opsdesk.domain.state import HandleState, Projection
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import (
    _as_dict,
    customer_from_row,
    exception_from_row,
    ticket_from_row,
    user_from_row,
)

BATCH = 20_000


@dataclass
class VerifyReport:
    events: int = 0
    differences: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.differences


def iter_events(conn: Connection, after_seq: int = 0) -> Iterator[Event]:
    """Every event in seq order, streamed in batches."""
    e = t.events
    result = conn.execution_options(yield_per=BATCH).execute(
        select(e).where(e.c.seq > after_seq).order_by(e.c.seq)
    )
    for row in result:
        yield Event(*row)


def replay(conn: Connection, progress: Callable[[int], None] | None = None) -> tuple[Projection, int]:
    """Fold the whole log into an empty projection. Returns it and the event count."""
    projection = Projection()
    count = 0
    expected = 1
    gaps: list[int] = []
    for event in iter_events(conn):
        if event.seq != expected:
            gaps.append(event.seq)
            expected = event.seq
        expected += 1
        projection.apply(event)
        count += 1
        if progress is not None and count % BATCH == 0:
            progress(count)
    projection.dirty.clear()
    projection.new.clear()
    projection.gaps = gaps  # type: ignore[attr-defined]
    return projection, count


def load_live(conn: Connection) -> Projection:
    """Read the current-state tables into a projection of the same shape."""
    p = Projection()
    tags: dict[int, list[str]] = {}
    for row in conn.execute(select(t.ticket_tags)):
        tags.setdefault(row.ticket_id, []).append(row.tag)
    for row in conn.execute(select(t.tickets)):
        p.tickets[row.id] = ticket_from_row(row, tags.pop(row.id, []))
    p.orphan_tags = tags  # type: ignore[attr-defined]
    for row in conn.execute(select(t.customers)):
        p.customers[row.id] = customer_from_row(row)
    for row in conn.execute(select(t.customer_handles)):
        p.handles[(row.kind, row.value)] = HandleState(row.kind, row.value, row.customer_id)
    for row in conn.execute(select(t.users)):
        p.users[row.id] = user_from_row(row)
    for row in conn.execute(select(t.messages)):
        from opsdesk.domain.state import MessageState

        p.messages[row.id] = MessageState(**dict(row._mapping))
    for row in conn.execute(select(t.exceptions)):
        p.exceptions[row.id] = exception_from_row(row)
    return p


def _compare(kind: str, replayed: dict[Any, Any], live: dict[Any, Any], out: list[str]) -> None:
    for key in sorted(replayed.keys() - live.keys(), key=str):
        out.append(f"{kind} {key}: in the log but missing from the table")
    for key in sorted(live.keys() - replayed.keys(), key=str):
        out.append(f"{kind} {key}: in the table but never created by any event")
    for key in sorted(replayed.keys() & live.keys(), key=str):
        a, b = _as_dict(replayed[key]), _as_dict(live[key])
        for name in a:
            if a[name] != b[name]:
                out.append(f"{kind} {key}: {name} is {b[name]!r} in the table, "
                           f"{a[name]!r} by replay")


def verify(db: Database, progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Replay the log and list every difference from the live tables."""
    report = VerifyReport()
    with db.read() as conn:
        replayed, report.events = replay(conn, progress)
        live = load_live(conn)
        head = conn.execute(select(t.log_head.c.last_seq)).scalar() or 0
        max_seq = conn.execute(select(func.max(t.events.c.seq))).scalar() or 0
    diffs = report.differences
    for seq in replayed.gaps:  # type: ignore[attr-defined]
        diffs.append(f"event log: seq jumps to {seq} (events missing before it)")
    if head != max_seq:
        diffs.append(f"event log: head says last seq {head}, the log ends at {max_seq}")
    for ticket_id, tags in live.orphan_tags.items():  # type: ignore[attr-defined]
        diffs.append(f"ticket_tags: tags {sorted(tags)} for ticket {ticket_id}, which does not exist")
    for kind, attr in (
        ("ticket", "tickets"),
        ("customer", "customers"),
        ("handle", "handles"),
        ("user", "users"),
        ("message", "messages"),
        ("exception", "exceptions"),
    ):
        _compare(kind, getattr(replayed, attr), getattr(live, attr), diffs)
        report.counts[attr] = len(getattr(live, attr))
    return report
