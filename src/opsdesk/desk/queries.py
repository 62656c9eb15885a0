"""Read-side queries of the service desk: tickets, customers, timelines, the event feed
and exception counts.

Every function takes an open :class:`~sqlalchemy.Connection` (normally from
``Database.read()``) and the caller's :class:`~opsdesk.desk.access.Access`: it checks
the permission it needs and keeps to the caller's team scope in SQL, so pages and
counts are right and something out of scope answers :class:`NotFound` exactly like
something missing. None writes, and each issues a fixed number of SQL statements however
many rows it returns, so list pages cannot turn into N+1 queries.

>>> with db.read() as conn:  # doctest: +SKIP
...     page = list_tickets(conn, access, TicketFilters(status="open"), limit=20)
...     more = list_tickets(conn, access, TicketFilters(status="open"), after_id=page.next_after_id)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, exists, func, select

from opsdesk.desk import audit
from opsdesk.desk.access import Access, hidden
from opsdesk.domain.events import Event
from opsdesk.domain.state import (
    CustomerState,
    ExceptionState,
    MessageState,
    SlaClockState,
    TicketState,
)
from opsdesk.model import OperatingModel
from opsdesk.sla.clocks import ClockView, clock_view
from opsdesk.store import tables as t
from opsdesk.store.crypto import open_events

# the ticket columns that map onto TicketState; tags come from ticket_tags
_TICKET_COLUMNS = [t.tickets.c[f.name] for f in fields(TicketState) if f.name != "tags"]
_CUSTOMER_COLUMNS = [t.customers.c[f.name] for f in fields(CustomerState)]
_MESSAGE_COLUMNS = [t.messages.c[f.name] for f in fields(MessageState)]
_EXCEPTION_COLUMNS = [t.exceptions.c[f.name] for f in fields(ExceptionState)]
_EVENT_COLUMNS = [t.events.c[f.name] for f in fields(Event)]
_SLA_CLOCK_COLUMNS = [t.sla_clocks.c[f.name] for f in fields(SlaClockState)]


# --- tickets -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketFilters:
    """Equality filters of the ticket list; ``None`` means "any"."""

    status: str | None = None
    owning_team: str | None = None
    owning_agent: int | None = None
    request_type: str | None = None
    priority: str | None = None
    channel: str | None = None
    tag: str | None = None
    customer_id: int | None = None


@dataclass(frozen=True, slots=True)
class TicketPage:
    """One page of tickets, newest first; ``next_after_id`` continues the list."""

    items: list[TicketState]
    next_after_id: int | None


def _ticket(row: Any, tags: tuple[str, ...]) -> TicketState:
    return TicketState(**row._mapping, tags=tags)


def _tags_of(conn: Connection, ticket_ids: list[int]) -> dict[int, tuple[str, ...]]:
    """Tags of many tickets in one statement."""
    if not ticket_ids:
        return {}
    rows = conn.execute(
        select(t.ticket_tags.c.ticket_id, t.ticket_tags.c.tag)
        .where(t.ticket_tags.c.ticket_id.in_(ticket_ids))
        .order_by(t.ticket_tags.c.ticket_id, t.ticket_tags.c.tag)
    ).all()
    tags: dict[int, list[str]] = defaultdict(list)
    for ticket_id, tag in rows:
        tags[ticket_id].append(tag)
    return {ticket_id: tuple(values) for ticket_id, values in tags.items()}


def _ticket_row(conn: Connection, access: Access, ticket_id: int) -> Any:
    """The ticket's row if it exists and is in scope; :class:`NotFound` otherwise."""
    access.require("tickets.read")
    row = conn.execute(
        select(*_TICKET_COLUMNS).where(t.tickets.c.id == ticket_id, access.scope.tickets_clause())
    ).first()
    if row is None:
        raise hidden("ticket", ticket_id)
    return row


def get_ticket(conn: Connection, access: Access, ticket_id: int) -> TicketState:
    """The ticket with its tags; :class:`NotFound` if there is none in scope."""
    row = _ticket_row(conn, access, ticket_id)
    return _ticket(row, _tags_of(conn, [ticket_id]).get(ticket_id, ()))


def list_tickets(
    conn: Connection,
    access: Access,
    filters: TicketFilters | None = None,
    *,
    after_id: int | None = None,
    limit: int = 50,
) -> TicketPage:
    """Tickets matching ``filters``, newest (highest id) first.

    Keyset pagination: pass the previous page's ``next_after_id`` as ``after_id`` to get
    the tickets that come after it. Two statements per page (tickets, then their tags),
    whatever ``limit`` is. Only tickets in the caller's scope are listed.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    access.require("tickets.read")
    f = filters or TicketFilters()
    c = t.tickets.c
    query = select(*_TICKET_COLUMNS).where(access.scope.tickets_clause())
    for column, value in (
        (c.status, f.status),
        (c.owning_team, f.owning_team),
        (c.owning_agent, f.owning_agent),
        (c.request_type, f.request_type),
        (c.priority, f.priority),
        (c.channel, f.channel),
        (c.customer_id, f.customer_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if f.tag is not None:
        query = query.where(
            exists().where(
                t.ticket_tags.c.ticket_id == c.id, t.ticket_tags.c.tag == f.tag.strip().lower()
            )
        )
    if after_id is not None:
        query = query.where(c.id < after_id)
    # one row more than asked tells whether another page exists
    rows = conn.execute(query.order_by(c.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    tags = _tags_of(conn, [row.id for row in rows])
    items = [_ticket(row, tags.get(row.id, ())) for row in rows]
    return TicketPage(items, items[-1].id if more and items else None)


def get_ticket_with_messages(
    conn: Connection, access: Access, ticket_id: int
) -> tuple[TicketState, list[MessageState]]:
    """The ticket (as :func:`get_ticket`) and its replies and notes, oldest first."""
    ticket = get_ticket(conn, access, ticket_id)
    return ticket, _messages(conn, ticket_id)


def _messages(conn: Connection, ticket_id: int) -> list[MessageState]:
    rows = conn.execute(
        select(*_MESSAGE_COLUMNS)
        .where(t.messages.c.ticket_id == ticket_id)
        .order_by(t.messages.c.id)
    ).all()
    return [MessageState(**row._mapping) for row in rows]


def ticket_sla_clocks(
    conn: Connection, access: Access, ticket_id: int, model: OperatingModel, now: datetime
) -> list[ClockView]:
    """The ticket's SLA clocks (running, paused and ended), oldest first, with the time
    each has counted by ``now``; :class:`NotFound` if there is no such ticket in scope."""
    _ticket_row(conn, access, ticket_id)
    rows = conn.execute(
        select(*_SLA_CLOCK_COLUMNS)
        .where(t.sla_clocks.c.ticket_id == ticket_id)
        .order_by(t.sla_clocks.c.id)
    ).all()
    return [clock_view(model, SlaClockState(**row._mapping), now) for row in rows]


# --- customers -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerHandle:
    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """A customer with the channel handles that identify them."""

    id: int
    name: str
    tier: str
    created_at: datetime
    merged_into: int | None
    handles: list[CustomerHandle] = field(default_factory=list)


def _customer_row(conn: Connection, access: Access, customer_id: int) -> Any:
    access.require("customers.read")
    c = t.customers.c
    row = conn.execute(
        select(*_CUSTOMER_COLUMNS).where(c.id == customer_id, access.scope.customers_clause(c.id))
    ).first()
    if row is None:
        raise hidden("customer", customer_id)
    return row


def get_customer(conn: Connection, access: Access, customer_id: int) -> CustomerProfile:
    """The customer and their handles; :class:`NotFound` if there is none in scope."""
    row = _customer_row(conn, access, customer_id)
    handles = conn.execute(
        select(t.customer_handles.c.kind, t.customer_handles.c.value)
        .where(t.customer_handles.c.customer_id == customer_id)
        .order_by(t.customer_handles.c.kind, t.customer_handles.c.value)
    ).all()
    return CustomerProfile(**row._mapping, handles=[CustomerHandle(k, v) for k, v in handles])


@dataclass(frozen=True, slots=True)
class EventPage:
    """Events in seq order; ``next_after_seq`` is set when more follow."""

    items: list[Event]
    next_after_seq: int | None


def _event_page(conn: Connection, query: Any, limit: int) -> EventPage:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    rows = conn.execute(query.order_by(t.events.c.seq).limit(limit + 1)).all()
    more = len(rows) > limit
    items = [Event(**row._mapping) for row in rows[:limit]]
    open_events(conn, items)  # customers' personal fields readable, or [erased]
    return EventPage(items, items[-1].seq if more and items else None)


def customer_timeline(
    conn: Connection, access: Access, customer_id: int, *, after_seq: int = 0, limit: int = 100
) -> EventPage:
    """Every event of the customer and of every customer merged into it (transitively),
    on every channel, in seq order; for a scoped caller only the events of tickets in
    their scope and the ticket-less events of identities in their scope.

    One statement: a recursive CTE collects the merged identities.
    """
    _customer_row(conn, access, customer_id)
    # anchored on the table (not a literal) so both terms have the column's type
    identities = (
        select(t.customers.c.id)
        .where(t.customers.c.id == customer_id)
        .cte("identities", recursive=True)
    )
    identities = identities.union(
        select(t.customers.c.id).where(t.customers.c.merged_into == identities.c.id)
    )
    query = select(*_EVENT_COLUMNS).where(
        t.events.c.customer_id.in_(select(identities.c.id)), t.events.c.seq > after_seq
    )
    if not access.scope.everything:
        # a merged-in identity with tickets out of scope shows none of its own events
        query = query.where(access.scope.events_clause())
    return _event_page(conn, query, limit)


# --- the event log -----------------------------------------------------------------------


def events_feed(
    conn: Connection,
    access: Access,
    after_seq: int = 0,
    limit: int = 100,
    type: str | None = None,
    ticket_id: int | None = None,
) -> EventPage:
    """Events with ``seq > after_seq`` in seq order, optionally of one type or ticket;
    for a scoped caller only those of tickets and customers in scope."""
    access.require("events.read")
    query = select(*_EVENT_COLUMNS).where(t.events.c.seq > after_seq)
    if not access.scope.everything:
        query = query.where(access.scope.events_clause())
    if type is not None:
        query = query.where(t.events.c.type == type)
    if ticket_id is not None:
        query = query.where(t.events.c.ticket_id == ticket_id)
    return _event_page(conn, query, limit)


# --- exceptions --------------------------------------------------------------------------


def list_exceptions(
    conn: Connection, access: Access, ticket_id: int | None = None, status: str | None = None
) -> list[ExceptionState]:
    """Exceptions of tickets in scope, newest first, optionally of one ticket and/or in
    one status."""
    access.require("tickets.read")
    query = select(*_EXCEPTION_COLUMNS)
    if not access.scope.everything:
        query = query.where(access.scope.reaches_ticket(t.exceptions.c.ticket_id))
    if ticket_id is not None:
        query = query.where(t.exceptions.c.ticket_id == ticket_id)
    if status is not None:
        query = query.where(t.exceptions.c.status == status)
    rows = conn.execute(query.order_by(t.exceptions.c.id.desc())).all()
    return [ExceptionState(**row._mapping) for row in rows]


@dataclass(frozen=True, slots=True)
class ExceptionCounts:
    """Exceptions of one request type and how many of its tickets needed one.

    ``approved`` counts every approval, including those that have since expired;
    ``expired`` counts both lapsed approvals and requests left undecided.
    """

    request_type: str | None
    requested: int
    approved: int
    denied: int
    expired: int
    pending: int
    tickets: int
    tickets_with_exceptions: int

    @property
    def exception_rate(self) -> float | None:
        """Share of the request type's tickets with at least one exception."""
        return self.tickets_with_exceptions / self.tickets if self.tickets else None


def exception_counts_by_request_type(conn: Connection, access: Access) -> list[ExceptionCounts]:
    """Exception counts and exception rate per request type (two statements), over the
    tickets in the caller's scope.

    Counts use the request type recorded on the exception when it was requested; the
    rate uses each ticket's current request type.
    """
    access.require("kpis.read")
    x = t.exceptions.c
    scope = access.scope

    def count_when(*conditions: Any) -> Any:
        return func.coalesce(func.sum(case((and_(*conditions), 1), else_=0)), 0)

    counts = conn.execute(
        select(
            x.request_type,
            func.count().label("requested"),
            count_when(x.decided_at.is_not(None), x.status.in_(("approved", "expired"))).label(
                "approved"
            ),
            count_when(x.status == "denied").label("denied"),
            count_when(x.status == "expired").label("expired"),
            count_when(x.status == "requested").label("pending"),
        )
        .where(scope.reaches_ticket(x.ticket_id))
        .group_by(x.request_type)
    ).all()
    has_exception = exists().where(x.ticket_id == t.tickets.c.id)
    rates = conn.execute(
        select(
            t.tickets.c.request_type,
            func.count().label("tickets"),
            count_when(has_exception).label("with_exceptions"),
        )
        .where(scope.tickets_clause())
        .group_by(t.tickets.c.request_type)
    ).all()
    by_type: dict[str | None, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(
            ("requested", "approved", "denied", "expired", "pending", "tickets", "with"), 0
        )
    )
    for row in counts:
        entry = by_type[row.request_type]
        for name in ("requested", "approved", "denied", "expired", "pending"):
            entry[name] = int(getattr(row, name))
    for row in rates:
        by_type[row.request_type]["tickets"] = int(row.tickets)
        by_type[row.request_type]["with"] = int(row.with_exceptions)
    return [
        ExceptionCounts(
            request_type=rt,
            requested=v["requested"],
            approved=v["approved"],
            denied=v["denied"],
            expired=v["expired"],
            pending=v["pending"],
            tickets=v["tickets"],
            tickets_with_exceptions=v["with"],
        )
        for rt, v in sorted(by_type.items(), key=lambda item: (item[0] is None, item[0] or ""))
    ]


# --- the operating model -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelInForce:
    version: str
    name: str
    author: str
    applied_at: datetime
    previous_version: str | None


def model_version_in_force(conn: Connection) -> str | None:
    """The version of the operating model in force, or None before the first apply."""
    version: str | None = conn.execute(select(t.log_head.c.model_version)).scalar()
    return version


def model_in_force(conn: Connection, access: Access) -> ModelInForce | None:
    """Which operating model is in force: version, name, author and when it was applied."""
    access.require("model.read")
    m = t.model_versions.c
    row = conn.execute(
        select(m.version, m.name, m.author, m.applied_at, m.previous_version).join_from(
            t.log_head, t.model_versions, t.log_head.c.model_version == m.version
        )
    ).first()
    return ModelInForce(**row._mapping) if row is not None else None


# --- the audit trail -----------------------------------------------------------------------


def audit_page(conn: Connection, access: Access, **filters: Any) -> audit.AuditPage:
    """Audit rows (see :func:`opsdesk.desk.audit.audit_page`) for holders of
    ``audit.read``; the trail is not divided by team."""
    access.require("audit.read")
    return audit.audit_page(conn, **filters)
