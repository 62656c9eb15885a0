"""Service desk commands: load what a domain command needs, run it, append its events.

Each function takes an open :class:`UnitOfWork` (the caller owns the transaction, so
several commands can share one) and returns the state it changed. The API, the CLI,
the importers and the demo simulation all call these; nothing else writes the tables.

A user acts only on tickets and customers in their team scope (:mod:`opsdesk.desk.access`):
the ticket a command loads anyway is checked, and one out of scope is refused exactly
like a missing one (404), before the domain command runs.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from opsdesk.desk.access import Access, customer_reached, hidden
from opsdesk.desk.reactions import append
from opsdesk.domain import commands as cmd
from opsdesk.domain.errors import DomainError
from opsdesk.domain.state import CustomerState, ExceptionState, TicketState, UserState
from opsdesk.routing import queries as routing_queries
from opsdesk.store import tables as t
from opsdesk.store.uow import UnitOfWork

# --- access ---------------------------------------------------------------------


def access(uow: UnitOfWork) -> Access:
    """The acting user's access under the model in force; the system, channels and bots
    acting in process reach everything (as in ``Context.require``). No query: the user
    and the model are the ones the command loads anyway."""
    if uow.actor_kind != "user" or uow.actor_id is None:
        return Access.of(uow.model, None)
    return Access.of(uow.model, uow.user(uow.actor_id))


def _ticket(uow: UnitOfWork, ticket_id: int) -> TicketState:
    """The ticket, if the acting user's scope reaches it; 404 as if missing otherwise."""
    ticket = uow.ticket(ticket_id)
    access(uow).ticket_in_scope(ticket.id, ticket.owning_team, ticket.owning_agent)
    return ticket


def _customer(uow: UnitOfWork, customer_id: int) -> CustomerState:
    """The customer, if the acting user's scope reaches them; 404 as if missing otherwise.
    A ticket of theirs this unit of work holds in scope answers at once; otherwise one
    indexed query (after a flush only when one of their tickets changed here)."""
    customer = uow.customer(customer_id)
    scope = access(uow).scope
    if scope.everything:
        return customer
    p = uow.projection
    theirs = [tk for tk in p.tickets.values() if tk.customer_id == customer_id]
    if any(scope.covers(tk.owning_team, tk.owning_agent) for tk in theirs):
        return customer
    pending = p.dirty | p.new
    if any(("ticket", tk.id) in pending for tk in theirs):
        uow.flush()
    if not customer_reached(uow.conn, scope, customer_id):
        raise hidden("customer", customer_id)
    return customer


# --- customers ------------------------------------------------------------------


def create_customer(
    uow: UnitOfWork, *, name: str, tier: str = "standard", handles: Iterable[tuple[str, str]] = ()
) -> CustomerState:
    """Create a customer identity with its channel handles.

    >>> create_customer(uow, name="Ada", handles=[("email", "ada@example.com")])  # doctest: +SKIP
    """
    handles = list(handles)
    taken = {}
    for kind, value in handles:
        key = cmd.normalise_handle(kind, value)
        owner = uow.handle_owner(*key)
        if owner is not None:
            taken[key] = owner
    events = append(
        uow, cmd.create_customer(uow.context(), name=name, tier=tier, handles=handles, taken=taken)
    )
    return uow.projection.customers[events[0].customer_id]  # type: ignore[index]


def add_handle(uow: UnitOfWork, customer_id: int, kind: str, value: str) -> CustomerState:
    customer = _customer(uow, customer_id)
    key = cmd.normalise_handle(kind, value)
    append(uow, cmd.add_handle(uow.context(), customer, kind, value, uow.handle_owner(*key)))
    return customer


def merge_customers(uow: UnitOfWork, source_id: int, target_id: int) -> CustomerState:
    """Merge ``source`` into ``target``; the target's timeline then shows both histories."""
    target, source = _customer(uow, target_id), _customer(uow, source_id)
    handles = uow.customer_handles(source_id)
    append(uow, cmd.merge_customers(uow.context(), source, target, handles))
    return target


def customer_for_handle(
    uow: UnitOfWork, kind: str, value: str, *, name: str, tier: str = "standard"
) -> CustomerState:
    """The customer holding a handle (following merges), created when unknown.

    Not scoped: whoever takes a customer's call or message reaches them by the handle
    they give (see :func:`create_ticket_for_handle`)."""
    key = cmd.normalise_handle(kind, value)
    owner = uow.handle_owner(*key)
    if owner is None:
        return create_customer(uow, name=name, tier=tier, handles=[key])
    customer = uow.customer(owner)
    while customer.merged_into is not None:
        customer = uow.customer(customer.merged_into)
    return customer


# --- users ------------------------------------------------------------------------


def create_user(
    uow: UnitOfWork,
    *,
    name: str,
    email: str,
    roles: list[str],
    teams: list[str],
    skills: list[str] | None = None,
) -> UserState:
    taken = uow.user_by_email(email) is not None
    events = append(
        uow,
        cmd.create_user(
            uow.context(),
            name=name,
            email=email,
            roles=roles,
            teams=teams,
            skills=skills,
            email_taken=taken,
        ),
    )
    user = uow.projection.users[events[0].payload["user_id"]]
    uow.audit(
        "user.created",
        subject=f"user:{user.id}",
        details={"email": user.email, "roles": list(user.roles), "teams": list(user.teams)},
    )
    return user


def _owned(uow: UnitOfWork, user_id: int) -> list[tuple[str, int]]:
    uow.flush()
    rows = uow.conn.execute(
        select(t.tickets.c.owning_team, func.count())
        .where(t.tickets.c.owning_agent == user_id, t.tickets.c.status != "closed")
        .group_by(t.tickets.c.owning_team)
    ).all()
    return [(r[0], r[1]) for r in rows]


def change_user(uow: UnitOfWork, user_id: int, field: str, values: list[str]) -> UserState:
    user = uow.user(user_id)
    before = getattr(user, field, None)
    owned = [team for team, _ in _owned(uow, user_id)]
    events = append(uow, cmd.change_user(uow.context(), user, field, values, owned))
    if field in ("roles", "teams") and events:
        uow.audit(
            f"user.{field}_changed",
            subject=f"user:{user_id}",
            details={"before": list(before or ()), "after": events[0].payload["after"]},
        )
    return uow.projection.users[user_id]


def set_presence(uow: UnitOfWork, user_id: int, presence: str) -> UserState:
    """Set an agent online, away or offline; going online makes them pull queued work."""
    user = uow.user(user_id)
    append(uow, cmd.set_presence(uow.context(), user, presence))
    return user


def deactivate_user(uow: UnitOfWork, user_id: int, reason: str) -> UserState:
    user = uow.user(user_id)
    owned = sum(n for _, n in _owned(uow, user_id))
    append(uow, cmd.deactivate_user(uow.context(), user, owned, reason))
    uow.audit("user.deactivated", subject=f"user:{user_id}", details={"reason": reason})
    return uow.projection.users[user_id]


# --- tickets -----------------------------------------------------------------------


def create_ticket(
    uow: UnitOfWork,
    *,
    customer_id: int,
    subject: str,
    channel: str,
    priority: str | None = None,
    request_type: str | None = None,
    tags: Iterable[str] = (),
    body: str | None = None,
    author_kind: str = "customer",
    follow_up_of: int | None = None,
) -> TicketState:
    """Open a ticket for an existing customer (in the acting user's scope); with a
    request type it is triaged to that type's owner team."""
    return _open_ticket(
        uow,
        _customer(uow, customer_id),
        subject=subject,
        channel=channel,
        priority=priority,
        request_type=request_type,
        tags=tags,
        body=body,
        author_kind=author_kind,
        follow_up_of=follow_up_of,
    )


def create_ticket_for_handle(
    uow: UnitOfWork,
    kind: str,
    value: str,
    *,
    name: str,
    tier: str = "standard",
    subject: str,
    channel: str,
    priority: str | None = None,
    request_type: str | None = None,
    tags: Iterable[str] = (),
    body: str | None = None,
    follow_up_of: int | None = None,
) -> TicketState:
    """Open a ticket for the customer holding a handle (created when unknown).

    Unlike :func:`create_ticket` this reaches a customer outside the acting user's scope:
    a customer who calls or writes in gives their handle, and whoever answers opens
    their ticket. It reveals the customer's id, nothing of their other tickets.
    """
    customer = customer_for_handle(uow, kind, value, name=name, tier=tier)
    return _open_ticket(
        uow,
        customer,
        subject=subject,
        channel=channel,
        priority=priority,
        request_type=request_type,
        tags=tags,
        body=body,
        follow_up_of=follow_up_of,
    )


def _open_ticket(
    uow: UnitOfWork,
    customer: CustomerState,
    *,
    subject: str,
    channel: str,
    priority: str | None,
    request_type: str | None,
    tags: Iterable[str],
    body: str | None,
    author_kind: str = "customer",
    follow_up_of: int | None,
) -> TicketState:
    previous = _ticket(uow, follow_up_of) if follow_up_of is not None else None
    events = append(
        uow,
        cmd.create_ticket(
            uow.context(),
            customer=customer,
            subject=subject,
            channel=channel,
            priority=priority,
            request_type=request_type,
            tags=tags,
            body=body,
            author_kind=author_kind,
            follow_up_of=previous,
        ),
    )
    return uow.projection.tickets[events[0].ticket_id]  # type: ignore[index]


def triage_ticket(
    uow: UnitOfWork, ticket_id: int, request_type: str, rule: str | None = None
) -> TicketState:
    ticket = _ticket(uow, ticket_id)
    append(uow, cmd.triage_ticket(uow.context(), ticket, request_type, rule))
    return ticket


def accept_ticket(uow: UnitOfWork, ticket_id: int, agent_id: int | None = None) -> TicketState:
    """The agent (by default the acting user) takes ownership of the ticket."""
    ticket = _ticket(uow, ticket_id)
    agent_id = agent_id if agent_id is not None else uow.actor_id
    if agent_id is None:
        raise DomainError("name the agent who accepts the ticket")
    append(uow, cmd.accept_ticket(uow.context(), ticket, uow.user(agent_id)))
    return ticket


def change_status(uow: UnitOfWork, ticket_id: int, status: str, reason: str = "") -> TicketState:
    ticket = _ticket(uow, ticket_id)
    append(uow, cmd.change_status(uow.context(), ticket, status, reason))
    return ticket


def change_priority(
    uow: UnitOfWork, ticket_id: int, priority: str, reason: str = ""
) -> TicketState:
    ticket = _ticket(uow, ticket_id)
    append(uow, cmd.change_priority(uow.context(), ticket, priority, reason))
    return ticket


def transfer_ticket(
    uow: UnitOfWork,
    ticket_id: int,
    *,
    reason: str,
    to_team: str | None = None,
    to_agent: int | None = None,
) -> TicketState:
    """Move ownership explicitly, with a reason.

    The ping-pong guard: the ticket's Nth transfer (``ping_pong_transfer_limit``) to
    another team goes to a lead of the owning team instead, with ``ownership.contested``.
    """
    ticket = _ticket(uow, ticket_id)
    agent = uow.user(to_agent) if to_agent is not None else None
    ctx = uow.context()
    if to_team is not None and cmd.transfer_is_contested(ctx, ticket, to_team):
        assert ticket.owning_team is not None
        uow.flush()
        members = routing_queries.team_members(
            uow.conn, uow.db.dialect, ticket.owning_team, online_only=False
        )
        loads = routing_queries.loads(uow.conn, [m.id for m in members])
        leads = [(uow.user(m.id), loads[m.id].total if m.id in loads else 0) for m in members]
        append(
            uow,
            cmd.contest_ownership(
                ctx, ticket, reason=reason, to_team=to_team, to_agent=agent, leads=leads
            ),
        )
        return ticket
    append(
        uow,
        cmd.transfer_ticket(ctx, ticket, reason=reason, to_team=to_team, to_agent=agent),
    )
    return ticket


def change_tags(
    uow: UnitOfWork, ticket_id: int, add: Iterable[str] = (), remove: Iterable[str] = ()
) -> TicketState:
    ticket = _ticket(uow, ticket_id)
    append(uow, cmd.change_tags(uow.context(), ticket, add, remove))
    return ticket


def add_message(
    uow: UnitOfWork,
    ticket_id: int,
    *,
    body: str,
    visibility: str = "public",
    author_kind: str | None = None,
    channel: str | None = None,
) -> TicketState:
    """Add a reply or note; the author is the acting user unless ``author_kind`` says
    otherwise (customer, bot; who may is the domain's rule)."""
    ticket = _ticket(uow, ticket_id)
    if author_kind is None:
        author_kind = {"user": "agent", "customer": "customer", "bot": "bot"}.get(
            uow.actor_kind, "system"
        )
    author_id = uow.actor_id if author_kind == "agent" else None
    if author_kind == "customer":
        author_id = ticket.customer_id
    append(
        uow,
        cmd.add_message(
            uow.context(),
            ticket,
            body=body,
            visibility=visibility,
            author_kind=author_kind,
            author_id=author_id,
            channel=channel,
        ),
    )
    return ticket


def record_csat(uow: UnitOfWork, ticket_id: int, score: int, comment: str = "") -> TicketState:
    ticket = _ticket(uow, ticket_id)
    append(uow, cmd.record_csat(uow.context(), ticket, score, comment))
    return ticket


# --- exceptions ----------------------------------------------------------------------


def request_exception(
    uow: UnitOfWork, ticket_id: int, exception_type: str, reason: str
) -> ExceptionState:
    ticket = _ticket(uow, ticket_id)
    events = append(uow, cmd.request_exception(uow.context(), ticket, exception_type, reason))
    return uow.projection.exceptions[events[0].payload["exception_id"]]


def decide_exception(
    uow: UnitOfWork, exception_id: int, *, approve: bool, note: str = ""
) -> ExceptionState:
    """Approve or deny as the acting user, who must hold an approver role of the type."""
    x = uow.exception(exception_id)
    if uow.actor_kind != "user" or uow.actor_id is None:
        raise DomainError("exceptions are decided by a person holding an approver role")
    ticket = uow.ticket(x.ticket_id)
    if not access(uow).scope.covers(ticket.owning_team, ticket.owning_agent):
        raise hidden("exception", exception_id)
    append(
        uow,
        cmd.decide_exception(
            uow.context(), x, ticket, uow.user(uow.actor_id), approve=approve, note=note
        ),
    )
    return x


def expire_exception(uow: UnitOfWork, exception_id: int) -> ExceptionState:
    """Expire one exception if it is due (what an ``exception.expire`` job runs); an
    exception decided, expired or re-dated since the job was scheduled is left as is."""
    x = uow.exception(exception_id)
    ticket = uow.ticket(x.ticket_id)
    append(uow, cmd.expire_exceptions(uow.context(), [(x, ticket.customer_id)]))
    return x


def expire_exceptions(uow: UnitOfWork) -> int:
    """Expire every exception past its maximum duration. Returns how many expired."""
    uow.flush()
    rows = uow.conn.execute(
        select(t.exceptions, t.tickets.c.customer_id.label("customer_id_"))
        .join(t.tickets, t.tickets.c.id == t.exceptions.c.ticket_id)
        .where(t.exceptions.c.status.in_(("requested", "approved")))
    ).all()
    candidates = []
    for row in rows:
        data = dict(row._mapping)
        customer_id = data.pop("customer_id_")
        # reuse a state already loaded in this unit of work, else build it from the row
        x = uow.projection.exceptions.setdefault(row.id, ExceptionState(**data))
        candidates.append((x, customer_id))
    events = append(uow, cmd.expire_exceptions(uow.context(), candidates))
    return len(events)
