"""Personal data: erase a customer on request, purge old message bodies (retention).

Both destroy data keys (see ``opsdesk.store.crypto``): the personal fields of the events
they sealed read as ``[erased]`` from then on, in replay, exports and timelines; the
events themselves are never touched. In the same transaction the projections' personal
columns are blanked to exactly what replay now produces, so ``opsdesk verify`` holds,
one event and one audit row are appended, and cached API responses that quote the
erased text are dropped. A dry run computes the same plan and changes nothing.

>>> with UnitOfWork(db) as uow:  # doctest: +SKIP
...     plan = erase_customer(uow, 42, reason="GDPR art. 17 request #881")
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, delete, func, select, update

from opsdesk.domain import events as ev
from opsdesk.domain.errors import Conflict, DomainError
from opsdesk.domain.events import ERASED, PERSONAL, new_event
from opsdesk.store import tables as t
from opsdesk.store.crypto import (
    forget_keys,
    is_sealed,
    period_of,
    personal_values,
    sealed_key_id,
)
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

MAX_REASON = 500
_CHUNK = 500


@dataclass
class ErasurePlan:
    """What erasing a customer does (or did): every count is of rows changed."""

    customer_id: int
    #: the customer and every customer merged with it: one person, erased together
    customer_ids: list[int]
    keys_destroyed: int = 0
    names_blanked: int = 0
    handles_removed: int = 0
    tickets_blanked: int = 0
    messages_blanked: int = 0
    cached_responses_dropped: int = 0
    dry_run: bool = False

    @property
    def nothing_to_do(self) -> bool:
        return not (
            self.keys_destroyed
            or self.names_blanked
            or self.handles_removed
            or self.tickets_blanked
            or self.messages_blanked
        )


@dataclass
class RetentionPlan:
    older_than_days: int
    #: message bodies written before this instant (a month start) are purged
    before: datetime
    keys_destroyed: int = 0
    messages_blanked: int = 0
    #: old messages written before encryption existed: they stay readable in the log
    messages_unsealed: int = 0
    cached_responses_dropped: int = 0
    dry_run: bool = False
    key_ids: list[int] = field(default_factory=list, repr=False)

    @property
    def nothing_to_do(self) -> bool:
        return not (self.keys_destroyed or self.messages_blanked)


# --- erasure --------------------------------------------------------------------------


def erase_customer(
    uow: UnitOfWork, customer_id: int, *, reason: str = "", dry_run: bool = False
) -> ErasurePlan:
    """Erase the personal data of a customer (and of every customer merged with it).

    Idempotent: a customer already erased gives a plan with nothing to do and appends
    nothing. Unknown ids raise :class:`NotFound`.
    """
    if uow.actor_kind == "user":
        uow.context().require("customers.erase")
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise DomainError(f"the reason is {len(reason)} characters; at most {MAX_REASON}")
    uow.customer(customer_id)  # NotFound if unknown
    uow.flush()
    conn = uow.conn
    group = _merge_group(conn, customer_id)
    plan = ErasurePlan(customer_id, group, dry_run=dry_run)

    unsealed = _scan_customer_events(conn, group)
    if unsealed:
        raise Conflict(
            f"customer {customer_id} has {unsealed} personal fields in events written before "
            "personal data was encrypted (migration 0007): the append-only log cannot be "
            "erased for them; export and rebuild the log, or keep the customer"
        )
    c, h, tk, m = t.customers.c, t.customer_handles.c, t.tickets.c, t.messages.c
    keys = t.personal_keys.c
    tickets_of = select(tk.id).where(tk.customer_id.in_(group))
    live_keys = set(conn.execute(select(keys.id).where(keys.customer_id.in_(group))).scalars())
    names = _texts(conn, select(c.name).where(c.id.in_(group), _blankable(c.name)))
    handles = _texts(conn, select(h.value).where(h.customer_id.in_(group)))
    subjects = _texts(
        conn, select(tk.subject).where(tk.customer_id.in_(group), _blankable(tk.subject))
    )
    bodies = _texts(conn, select(m.body).where(m.ticket_id.in_(tickets_of), _blankable(m.body)))
    # every key goes, including any that sealed nothing yet
    plan.keys_destroyed = len(live_keys)
    plan.names_blanked = len(names)
    plan.handles_removed = len(handles)
    plan.tickets_blanked = len(subjects)
    plan.messages_blanked = len(bodies)
    plaintext = {*names, *handles, *subjects, *bodies}
    plan.cached_responses_dropped = len(_cached_responses_quoting(conn, plaintext))
    if dry_run or plan.nothing_to_do:
        return plan

    payload = ev.CustomerErased(
        customer_ids=group,
        keys_destroyed=plan.keys_destroyed,
        handles_removed=plan.handles_removed,
        tickets_blanked=plan.tickets_blanked,
        messages_blanked=plan.messages_blanked,
        reason=reason,
    )
    uow.append([new_event("customer.erased", payload, customer_id=customer_id)])
    details = {k: v for k, v in asdict(plan).items() if k not in ("customer_id", "dry_run")}
    details["reason"] = reason
    uow.audit("customer.erased", subject=f"customer:{customer_id}", details=details)
    uow.flush()
    with _secure_delete(uow):
        conn.execute(delete(t.personal_keys).where(keys.customer_id.in_(group)))
        conn.execute(
            update(t.customers).where(c.id.in_(group), _blankable(c.name)).values(name=ERASED)
        )
        conn.execute(delete(t.customer_handles).where(h.customer_id.in_(group)))
        conn.execute(
            update(t.tickets)
            .where(tk.customer_id.in_(group), _blankable(tk.subject))
            .values(subject=ERASED)
        )
        conn.execute(
            update(t.messages)
            .where(m.ticket_id.in_(tickets_of), _blankable(m.body))
            .values(body=ERASED)
        )
        _drop_cached_responses(conn, plaintext)
    _forget_loaded(uow, group)
    forget_keys(conn, live_keys)
    return plan


def _merge_group(conn: Connection, customer_id: int) -> list[int]:
    """The customer, the one it was merged into (transitively) and every customer
    merged into those: one person's identities."""
    c = t.customers.c
    root = customer_id
    seen = {root}
    while (parent := conn.execute(select(c.merged_into).where(c.id == root)).scalar()) is not None:
        if parent in seen:  # a cycle cannot be written, but never loop on one
            break
        seen.add(parent)
        root = parent
    group = {root}
    frontier = [root]
    while frontier:
        children = set(conn.execute(select(c.id).where(c.merged_into.in_(frontier))).scalars())
        frontier = sorted(children - group)
        group |= children
    return sorted(group)


def _scan_customer_events(conn: Connection, group: Sequence[int]) -> int:
    """How many personal fields of the group's events were written in clear (before
    encryption existed)."""
    e = t.events.c
    unsealed = 0
    query = select(e.type, e.payload).where(e.customer_id.in_(group), e.type.in_(sorted(PERSONAL)))
    for type_, payload in conn.execute(query):
        for value in personal_values(PERSONAL[type_], payload):
            if value and not is_sealed(value) and value != ERASED:
                unsealed += 1
    return unsealed


def _blankable(column: Any) -> Any:
    # empty text was never sealed (replay gives "" back), and [erased] is already blank
    return column.not_in(["", ERASED])


def _texts(conn: Connection, query: Any) -> list[str]:
    return list(conn.execute(query).scalars())


def _forget_loaded(uow: UnitOfWork, group: Iterable[int]) -> None:
    """Rows this unit of work loaded are stale now: drop them so nothing writes them back
    (the SQLite row cache forgets them by itself: these statements changed rows the unit
    of work did not count, which empties it at commit)."""
    for customer_id in group:
        uow.projection.customers.pop(customer_id, None)


class _secure_delete:
    """SQLite: overwrite deleted and replaced content with zeros while erasing, so the
    plaintext does not linger in free space of the database file; the connection's own
    setting (Debian builds SQLite with it on) is put back afterwards."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.cur = uow._cur if uow.db.dialect == "sqlite" else None
        self.before = 1

    def __enter__(self) -> None:
        if self.cur is not None:
            self.cur.execute("PRAGMA secure_delete")
            self.before = int(self.cur.fetchone()[0])
            self.cur.execute("PRAGMA secure_delete = 1")

    def __exit__(self, *exc: object) -> None:
        if self.cur is not None:
            self.cur.execute(f"PRAGMA secure_delete = {self.before}")


# --- cached API responses -----------------------------------------------------------------


def _cached_responses_quoting(conn: Connection, plaintext: set[str]) -> list[tuple[int, str]]:
    """Idempotency-Key rows whose remembered response quotes any of ``plaintext``."""
    if not plaintext:
        return []
    quoted = [orjson.dumps(text).decode()[1:-1] for text in plaintext if text]
    i = t.idempotency_keys.c
    found = []
    for user_id, key, response in conn.execute(select(i.user_id, i.key, i.response)):
        text = response if isinstance(response, str) else orjson.dumps(response).decode()
        if any(q in text for q in quoted):
            found.append((user_id, key))
    return found


def _drop_cached_responses(conn: Connection, plaintext: set[str]) -> int:
    rows = _cached_responses_quoting(conn, plaintext)
    if rows:
        i = t.idempotency_keys.c
        conn.execute(
            delete(t.idempotency_keys).where(i.user_id == bindparam("u"), i.key == bindparam("k")),
            [{"u": u, "k": k} for u, k in rows],
        )
    return len(rows)


# --- retention ----------------------------------------------------------------------------


def retention_cutoff(now: datetime, older_than_days: int) -> datetime:
    """The start of the month holding ``now - older_than_days``: every month before it
    ended more than the age ago, so its message keys can go."""
    edge = now.astimezone(UTC) - timedelta(days=older_than_days)
    return datetime(edge.year, edge.month, 1, tzinfo=UTC)


def apply_retention(
    uow: UnitOfWork, older_than_days: int, *, dry_run: bool = False
) -> RetentionPlan:
    """Purge the bodies of messages written in calendar months that ended more than
    ``older_than_days`` ago, for every customer (message bodies only: names, handles
    and subjects stay until the customer is erased)."""
    if not 1 <= older_than_days <= 36_500:
        raise DomainError(
            f"the retention age is {older_than_days} days; give 1 to 36500 "
            "(OPSDESK_RETENTION_MESSAGE_DAYS or --older-than-days)"
        )
    uow.flush()
    conn = uow.conn
    before = retention_cutoff(uow.now, older_than_days)
    plan = RetentionPlan(older_than_days, before, dry_run=dry_run)
    keys = t.personal_keys.c
    old_keys = conn.execute(
        select(keys.id, keys.period).where(
            keys.purpose == "messages", keys.period < period_of(before)
        )
    ).all()
    plan.key_ids = sorted(k for k, _ in old_keys)
    plan.keys_destroyed = len(old_keys)
    doomed = set(plan.key_ids)
    # the messages those keys sealed (older sealed ones read [erased] already)
    e = t.events.c
    query = select(e.payload).where(e.type == "message.added", e.at < before)
    if old_keys:
        first = min(p for _, p in old_keys)
        query = query.where(e.at >= datetime(int(first[:4]), int(first[5:7]), 1, tzinfo=UTC))
    message_ids: list[int] = []
    if doomed:
        for (payload,) in conn.execute(query):
            body = payload.get("body")
            if is_sealed(body):
                if sealed_key_id(body) in doomed:
                    message_ids.append(int(payload["message_id"]))
            elif body and body != ERASED:
                plan.messages_unsealed += 1
    m = t.messages.c
    bodies: list[str] = []
    for start in range(0, len(message_ids), _CHUNK):
        chunk = message_ids[start : start + _CHUNK]
        bodies += _texts(conn, select(m.body).where(m.id.in_(chunk), _blankable(m.body)))
    plan.messages_blanked = len(bodies)
    plaintext = set(bodies)
    plan.cached_responses_dropped = len(_cached_responses_quoting(conn, plaintext))
    if dry_run or plan.nothing_to_do:
        return plan

    payload = ev.RetentionApplied(
        older_than_days=older_than_days,
        before=before,
        keys_destroyed=plan.keys_destroyed,
        messages_blanked=plan.messages_blanked,
    )
    uow.append([new_event("retention.applied", payload)])
    details = {
        "older_than_days": older_than_days,
        "before": before.isoformat(),
        "keys_destroyed": plan.keys_destroyed,
        "messages_blanked": plan.messages_blanked,
        "messages_unsealed": plan.messages_unsealed,
    }
    uow.audit("retention.applied", subject="retention:messages", details=details)
    uow.flush()
    with _secure_delete(uow):
        for start in range(0, len(plan.key_ids), _CHUNK):
            chunk = plan.key_ids[start : start + _CHUNK]
            conn.execute(delete(t.personal_keys).where(keys.id.in_(chunk)))
        for start in range(0, len(message_ids), _CHUNK):
            chunk = message_ids[start : start + _CHUNK]
            conn.execute(
                update(t.messages).where(m.id.in_(chunk), _blankable(m.body)).values(body=ERASED)
            )
        _drop_cached_responses(conn, plaintext)
    uow.projection.messages.clear()
    forget_keys(conn, plan.key_ids)
    return plan


def count_keys(conn: Connection) -> int:
    """How many data keys exist (``opsdesk init`` reports it with the key file)."""
    return int(conn.execute(select(func.count()).select_from(t.personal_keys)).scalar() or 0)


# --- entry points for the interfaces ------------------------------------------------------


def erase(
    db: Database,
    customer_id: int,
    *,
    reason: str = "",
    dry_run: bool = False,
    actor_kind: str = "system",
    actor_id: int | None = None,
    client: str | None = None,
) -> ErasurePlan:
    """Erase a customer in one transaction, then shrink the SQLite WAL so the replaced
    pages leave the files too (see :func:`erase_customer`)."""
    with UnitOfWork(db, actor_kind=actor_kind, actor_id=actor_id) as uow:
        uow.client = client
        plan = erase_customer(uow, customer_id, reason=reason, dry_run=dry_run)
    if not (dry_run or plan.nothing_to_do):
        shrink_wal(db)
    return plan


def retention(db: Database, older_than_days: int, *, dry_run: bool = False) -> RetentionPlan:
    """Apply message retention in one transaction (see :func:`apply_retention`)."""
    with UnitOfWork(db) as uow:
        plan = apply_retention(uow, older_than_days, dry_run=dry_run)
    if not (dry_run or plan.nothing_to_do):
        shrink_wal(db)
    return plan


def shrink_wal(db: Database) -> bool:
    """SQLite: copy the WAL into the database and truncate it, so the frames holding
    the erased plaintext are gone from disk. False when a reader kept it from finishing
    (the next checkpoint does it; the background checkpointer runs every half second)."""
    database = db.engine.url.database
    if db.dialect != "sqlite" or not database or database == ":memory:":
        return True
    conn = sqlite3.connect(database, isolation_level=None, timeout=db.busy_timeout_ms / 1000)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    return not busy
