"""The unit of work: one transaction in which a command reads state, appends its events
and writes the projections those events change.

Every write goes through :meth:`UnitOfWork.append`; nothing else inserts into
``events`` and nothing ever updates or deletes an event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from opsdesk.domain.commands import Context, check_ownership
from opsdesk.domain.errors import NotFound
from opsdesk.domain.events import Event, NewEvent
from opsdesk.domain.state import (
    CustomerState,
    ExceptionState,
    HandleState,
    Projection,
    TicketState,
    UserState,
)
from opsdesk.model import OperatingModel
from opsdesk.store import tables as t
from opsdesk.store.db import Database

TICKET_COLUMNS = [c.name for c in t.tickets.columns]


def ticket_from_row(row: Row[Any] | Any, tags: Iterable[str]) -> TicketState:
    data = dict(row._mapping)
    data["tags"] = tuple(sorted(tags))
    return TicketState(**data)


def ticket_row(ticket: TicketState) -> dict[str, Any]:
    return {name: getattr(ticket, name) for name in TICKET_COLUMNS}


def customer_from_row(row: Any) -> CustomerState:
    return CustomerState(**dict(row._mapping))


def user_from_row(row: Any) -> UserState:
    d = dict(row._mapping)
    for key in ("roles", "teams", "skills"):
        d[key] = tuple(d[key])
    return UserState(**d)


def user_row(user: UserState) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "roles": list(user.roles),
        "teams": list(user.teams),
        "skills": list(user.skills),
        "active": user.active,
        "created_at": user.created_at,
    }


def exception_from_row(row: Any) -> ExceptionState:
    return ExceptionState(**dict(row._mapping))


def _as_dict(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


class UnitOfWork:
    """``with db_uow as uow:`` one write transaction; commits on success.

    >>> with UnitOfWork(db, actor_kind="user", actor_id=3) as uow:  # doctest: +SKIP
    ...     ticket = uow.ticket(42)
    ...     uow.append(commands.change_priority(uow.context(), ticket, "high"))
    """

    def __init__(
        self,
        db: Database,
        *,
        actor_kind: str = "system",
        actor_id: int | None = None,
        now: datetime | None = None,
    ) -> None:
        self.db = db
        self.actor_kind = actor_kind
        self.actor_id = actor_id
        self._now = now
        self.projection = Projection()
        self._tags: dict[int, tuple[str, ...]] = {}
        self._counters: dict[str, int] = {}
        self._counters_dirty: set[str] = set()
        self.appended: list[Event] = []
        self.conn: Connection

    # --- transaction ------------------------------------------------------------

    def __enter__(self) -> UnitOfWork:
        self._cm = self.db.engine.connect()
        self.conn = self._cm
        self._tx = self.conn.begin()
        try:
            # lock the log head first: serialises writers so seq stays gapless and
            # the model version read here is the one in force at commit
            head = self.conn.execute(
                select(t.log_head.c.last_seq, t.log_head.c.model_version)
                .where(t.log_head.c.id == 1)
                .with_for_update()
            ).one()
        except BaseException:
            self._tx.rollback()
            self._cm.close()
            raise
        self.last_seq: int = head.last_seq
        self.model_version: str | None = head.model_version
        self._seq_start = self.last_seq
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._flush_head()
                self._tx.commit()
            else:
                self._tx.rollback()
        finally:
            self._cm.close()

    @property
    def now(self) -> datetime:
        return self._now or datetime.now(UTC)

    # --- model and context ------------------------------------------------------

    @property
    def model(self) -> OperatingModel:
        return self.db.model(self.conn, self.model_version)

    def context(self, now: datetime | None = None) -> Context:
        """The domain context for the acting user (or system) under the model in force."""
        actor = self.user(self.actor_id) if self.actor_kind == "user" and self.actor_id else None
        return Context(
            model=self.model,
            now=now or self.now,
            ids=self,
            actor_kind=self.actor_kind,
            actor=actor,
        )

    def set_model_version(self, version: str) -> None:
        """Put a stored model version in force (its `model.applied` event follows)."""
        self.model_version = version

    # --- ids -------------------------------------------------------------------

    def next_id(self, kind: str) -> int:
        """The next id of ``kind``; safe because the log head lock is held."""
        if kind not in self._counters:
            value = self.conn.execute(
                select(t.counters.c.value).where(t.counters.c.name == kind)
            ).scalar()
            if value is None:
                self.conn.execute(insert(t.counters).values(name=kind, value=0))
                value = 0
            self._counters[kind] = value
        self._counters[kind] += 1
        self._counters_dirty.add(kind)
        return self._counters[kind]

    # --- loading state -----------------------------------------------------------

    def ticket(self, ticket_id: int) -> TicketState:
        """The ticket, loaded once per unit of work; :class:`NotFound` if missing."""
        p = self.projection
        if ticket_id in p.tickets:
            return p.tickets[ticket_id]
        row = self.conn.execute(select(t.tickets).where(t.tickets.c.id == ticket_id)).first()
        if row is None:
            raise NotFound(f"ticket {ticket_id} does not exist")
        tags = tuple(
            sorted(
                self.conn.execute(
                    select(t.ticket_tags.c.tag).where(t.ticket_tags.c.ticket_id == ticket_id)
                ).scalars()
            )
        )
        ticket = ticket_from_row(row, tags)
        p.tickets[ticket_id] = ticket
        self._tags[ticket_id] = tags
        return ticket

    def customer(self, customer_id: int) -> CustomerState:
        p = self.projection
        if customer_id in p.customers:
            return p.customers[customer_id]
        row = self.conn.execute(
            select(t.customers).where(t.customers.c.id == customer_id)
        ).first()
        if row is None:
            raise NotFound(f"customer {customer_id} does not exist")
        p.customers[customer_id] = customer_from_row(row)
        return p.customers[customer_id]

    def customer_handles(self, customer_id: int) -> list[tuple[str, str]]:
        rows = self.conn.execute(
            select(t.customer_handles).where(t.customer_handles.c.customer_id == customer_id)
        ).all()
        for r in rows:
            self.projection.handles.setdefault((r.kind, r.value), HandleState(*r))
        return sorted((r.kind, r.value) for r in rows)

    def handle_owner(self, kind: str, value: str) -> int | None:
        """The customer holding a handle, if any."""
        key = (kind, value)
        if key in self.projection.handles:
            return self.projection.handles[key].customer_id
        row = self.conn.execute(
            select(t.customer_handles).where(
                t.customer_handles.c.kind == kind, t.customer_handles.c.value == value
            )
        ).first()
        if row is None:
            return None
        self.projection.handles[key] = HandleState(row.kind, row.value, row.customer_id)
        return int(row.customer_id)

    def user(self, user_id: int) -> UserState:
        p = self.projection
        if user_id in p.users:
            return p.users[user_id]
        row = self.conn.execute(select(t.users).where(t.users.c.id == user_id)).first()
        if row is None:
            raise NotFound(f"user {user_id} does not exist")
        p.users[user_id] = user_from_row(row)
        return p.users[user_id]

    def user_by_email(self, email: str) -> UserState | None:
        row = self.conn.execute(
            select(t.users).where(t.users.c.email == email.strip().lower())
        ).first()
        if row is None:
            return None
        user = self.projection.users.setdefault(row.id, user_from_row(row))
        return user

    def exception(self, exception_id: int) -> ExceptionState:
        p = self.projection
        if exception_id in p.exceptions:
            return p.exceptions[exception_id]
        row = self.conn.execute(
            select(t.exceptions).where(t.exceptions.c.id == exception_id)
        ).first()
        if row is None:
            raise NotFound(f"exception {exception_id} does not exist")
        p.exceptions[exception_id] = exception_from_row(row)
        return p.exceptions[exception_id]

    # --- appending ------------------------------------------------------------------

    def append(self, new_events: Sequence[NewEvent], *, at: datetime | None = None) -> list[Event]:
        """Append events, fold them into the loaded state, check the ownership invariant
        and write the touched rows, all inside this transaction."""
        if not new_events:
            return []
        at = at or self.now
        stored: list[Event] = []
        for ne in new_events:
            self.last_seq += 1
            stored.append(
                Event(
                    seq=self.last_seq,
                    at=at,
                    type=ne.type,
                    ticket_id=ne.ticket_id,
                    customer_id=ne.customer_id,
                    actor_kind=self.actor_kind,
                    actor_id=self.actor_id,
                    model_version=self.model_version,
                    payload=ne.payload,
                )
            )
        self.conn.execute(insert(t.events), [_as_dict(e) for e in stored])
        p = self.projection
        for e in stored:
            # merges and transfers may touch rows not loaded yet
            if e.type == "customer.merged":
                self.customer(e.payload["source_id"])
                self.customer_handles(e.payload["source_id"])
            p.apply(e)
        for kind, key in p.dirty | p.new:
            if kind == "ticket":
                ticket = p.tickets[key]  # type: ignore[index]
                if ticket.owning_agent is not None:
                    self.user(ticket.owning_agent)
                check_ownership(ticket, p.users)
        self._flush()
        self.appended.extend(stored)
        return stored

    def _flush(self) -> None:
        p = self.projection
        order = ("user", "customer", "handle", "ticket", "message", "exception")
        touched = sorted(p.dirty | p.new, key=lambda d: order.index(d[0]))
        for kind, key in touched:
            is_new = (kind, key) in p.new
            if kind == "ticket":
                self._write_ticket(p.tickets[key], is_new)  # type: ignore[index]
            elif kind == "customer":
                c = p.customers[key]  # type: ignore[index]
                self._write(t.customers, _as_dict(c), is_new)
            elif kind == "handle":
                h = p.handles[key]  # type: ignore[index]
                if is_new:
                    self.conn.execute(insert(t.customer_handles).values(**_as_dict(h)))
                else:
                    self.conn.execute(
                        update(t.customer_handles)
                        .where(t.customer_handles.c.kind == h.kind)
                        .where(t.customer_handles.c.value == h.value)
                        .values(customer_id=h.customer_id)
                    )
            elif kind == "user":
                self._write(t.users, user_row(p.users[key]), is_new)  # type: ignore[index]
            elif kind == "message":
                m = p.messages[key]  # type: ignore[index]
                self.conn.execute(insert(t.messages).values(**_as_dict(m)))
            elif kind == "exception":
                x = p.exceptions[key]  # type: ignore[index]
                self._write(t.exceptions, _as_dict(x), is_new)
        p.dirty.clear()
        p.new.clear()

    def _write(self, table: Any, row: dict[str, Any], is_new: bool) -> None:
        if is_new:
            self.conn.execute(insert(table).values(**row))
        else:
            self.conn.execute(update(table).where(table.c.id == row["id"]).values(**row))

    def _write_ticket(self, ticket: TicketState, is_new: bool) -> None:
        self._write(t.tickets, ticket_row(ticket), is_new)
        before = () if is_new else self._tags.get(ticket.id, ())
        if ticket.tags != before:
            removed = set(before) - set(ticket.tags)
            added = set(ticket.tags) - set(before)
            if removed:
                self.conn.execute(
                    delete(t.ticket_tags)
                    .where(t.ticket_tags.c.ticket_id == ticket.id)
                    .where(t.ticket_tags.c.tag.in_(removed))
                )
            if added:
                self.conn.execute(
                    insert(t.ticket_tags), [{"ticket_id": ticket.id, "tag": g} for g in added]
                )
            self._tags[ticket.id] = ticket.tags

    def _flush_head(self) -> None:
        if self.last_seq != self._seq_start:
            self.conn.execute(
                update(t.log_head)
                .where(t.log_head.c.id == 1)
                .values(last_seq=self.last_seq, model_version=self.model_version)
            )
        for kind in self._counters_dirty:
            self.conn.execute(
                update(t.counters)
                .where(t.counters.c.name == kind)
                .values(value=self._counters[kind])
            )
