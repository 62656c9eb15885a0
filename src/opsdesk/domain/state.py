"""Current state of tickets, customers, users, messages and exceptions.

These are projections of the event log: :meth:`Projection.apply` folds one event into
them, and it is the only code that derives state from events. The store uses it both
for live writes (load rows, apply the new events, write the touched rows) and for
``opsdesk verify`` (fold the whole log into an empty projection and compare).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from opsdesk.domain.events import ERASED, Event


@dataclass(slots=True)
class TicketState:
    id: int
    customer_id: int
    subject: str
    channel: str
    priority: str
    status: str
    created_at: datetime
    updated_at: datetime
    request_type: str | None = None
    owning_team: str | None = None
    owning_agent: int | None = None
    tags: tuple[str, ...] = ()
    triaged_at: datetime | None = None
    accepted_at: datetime | None = None
    first_reply_at: datetime | None = None
    solved_at: datetime | None = None
    closed_at: datetime | None = None
    reopen_count: int = 0
    transfer_count: int = 0
    message_count: int = 0
    follow_up_of: int | None = None
    csat_score: int | None = None
    #: since when the ticket waits in its owning team's queue with no agent
    queued_at: datetime | None = None
    #: the escalation level that fired last: its path and its index + 1 (0: none yet)
    escalation_path: str | None = None
    escalation_level: int = 0
    escalation_exhausted: bool = False
    #: every escalation level that has fired for the ticket, as [path, level name] in
    #: firing order: a level fires at most once per ticket (replaced, never mutated, so
    #: the unit of work sees the change)
    escalation_fired: list[list[str]] = field(default_factory=list)


@dataclass(slots=True)
class CustomerState:
    id: int
    name: str
    tier: str
    created_at: datetime
    merged_into: int | None = None


@dataclass(slots=True)
class UserState:
    id: int
    name: str
    email: str
    roles: tuple[str, ...]
    teams: tuple[str, ...]
    skills: tuple[str, ...]
    active: bool
    created_at: datetime
    presence: str = "offline"


@dataclass(slots=True)
class MessageState:
    id: int
    ticket_id: int
    visibility: str
    author_kind: str
    author_id: int | None
    channel: str
    body: str
    created_at: datetime


@dataclass(slots=True)
class ExceptionState:
    id: int
    ticket_id: int
    exception_type: str
    request_type: str | None
    status: str
    reason: str
    requested_by: int | None
    requested_at: datetime
    decided_by: int | None = None
    decided_at: datetime | None = None
    decision_note: str = ""
    expires_at: datetime | None = None


@dataclass(slots=True)
class SlaClockState:
    """One SLA clock of a ticket: a metric measured against its policy's target.

    ``elapsed_minutes`` is the (business) time counted before ``resumed_at``; while
    running, the clock also counts from ``resumed_at`` on. Due and warning instants
    come from the events (computed on the policy's calendar when they were decided),
    so folding needs no calendar.
    """

    id: int
    ticket_id: int
    metric: str
    policy: str
    priority: str
    target_minutes: int
    business_hours: bool
    calendar: str | None
    status: str  # running, paused, ended
    started_at: datetime
    resumed_at: datetime | None
    elapsed_minutes: float
    due_at: datetime | None
    warning_at: datetime | None
    warned: bool = False
    breached: bool = False
    outcome: str | None = None  # achieved, breached, stopped
    ended_at: datetime | None = None


@dataclass(slots=True)
class HandleState:
    kind: str
    value: str
    customer_id: int


Dirty = tuple[str, object]


class _Discard(set[Dirty]):
    """A set that stays empty: change tracking switched off for a full replay."""

    def add(self, element: Dirty) -> None:
        return None


@dataclass
class Projection:
    """Entity states keyed by id, plus the set of keys changed since the last flush."""

    tickets: dict[int, TicketState] = field(default_factory=dict)
    customers: dict[int, CustomerState] = field(default_factory=dict)
    handles: dict[tuple[str, str], HandleState] = field(default_factory=dict)
    users: dict[int, UserState] = field(default_factory=dict)
    messages: dict[int, MessageState] = field(default_factory=dict)
    exceptions: dict[int, ExceptionState] = field(default_factory=dict)
    sla_clocks: dict[int, SlaClockState] = field(default_factory=dict)
    dirty: set[Dirty] = field(default_factory=set)
    new: set[Dirty] = field(default_factory=set)
    #: record which rows changed (the store needs it; a full replay does not)
    track: bool = True

    def __post_init__(self) -> None:
        if not self.track:
            self.dirty = _Discard()
            self.new = _Discard()

    def apply(self, event: Event) -> None:
        """Fold one event into the projection."""
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event)

    def _ticket(self, event: Event) -> TicketState:
        assert event.ticket_id is not None
        ticket = self.tickets[event.ticket_id]
        ticket.updated_at = event.at
        self.dirty.add(("ticket", ticket.id))
        return ticket


def _customer_created(p: Projection, e: Event) -> None:
    assert e.customer_id is not None
    p.customers[e.customer_id] = CustomerState(
        id=e.customer_id, name=e.payload["name"], tier=e.payload["tier"], created_at=e.at
    )
    p.new.add(("customer", e.customer_id))
    for handle in e.payload["handles"]:
        _add_handle(p, handle["kind"], handle["value"], e.customer_id)


def _add_handle(p: Projection, kind: str, value: str, customer_id: int) -> None:
    if value == ERASED:
        return  # an erased handle identifies nobody: erasure removed its row
    key = (kind, value)
    p.handles[key] = HandleState(kind, value, customer_id)
    p.new.add(("handle", key))


def _customer_handle_added(p: Projection, e: Event) -> None:
    assert e.customer_id is not None
    _add_handle(p, e.payload["kind"], e.payload["value"], e.customer_id)


def _customer_merged(p: Projection, e: Event) -> None:
    source, target = e.payload["source_id"], e.payload["target_id"]
    p.customers[source].merged_into = target
    p.dirty.add(("customer", source))
    for handle in e.payload["handles_moved"]:
        if handle["value"] == ERASED:
            continue  # see _add_handle
        key = (handle["kind"], handle["value"])
        p.handles[key].customer_id = target
        p.dirty.add(("handle", key))


def _user_created(p: Projection, e: Event) -> None:
    user_id = _user_id(e)
    d = e.payload
    p.users[user_id] = UserState(
        id=user_id,
        name=d["name"],
        email=d["email"],
        roles=tuple(d["roles"]),
        teams=tuple(d["teams"]),
        skills=tuple(d["skills"]),
        active=True,
        created_at=e.at,
    )
    p.new.add(("user", user_id))


def _user_id(e: Event) -> int:
    # the log has columns for ticket and customer ids only; user events name their
    # subject in the payload
    return int(e.payload["user_id"])


def _user_changed(p: Projection, e: Event) -> None:
    user = p.users[_user_id(e)]
    name, after = e.payload["field"], e.payload["after"]
    setattr(user, name, after if name == "name" else tuple(after))
    p.dirty.add(("user", user.id))


def _user_deactivated(p: Projection, e: Event) -> None:
    user = p.users[_user_id(e)]
    user.active = False
    p.dirty.add(("user", user.id))


def _ticket_created(p: Projection, e: Event) -> None:
    assert e.ticket_id is not None and e.customer_id is not None
    d = e.payload
    p.tickets[e.ticket_id] = TicketState(
        id=e.ticket_id,
        customer_id=e.customer_id,
        subject=d["subject"],
        channel=d["channel"],
        priority=d["priority"],
        status="new",
        created_at=e.at,
        updated_at=e.at,
        tags=tuple(sorted(d["tags"])),
        follow_up_of=d.get("follow_up_of"),
    )
    p.new.add(("ticket", e.ticket_id))


def _ticket_triaged(p: Projection, e: Event) -> None:
    t = p._ticket(e)
    t.request_type = e.payload["request_type"]
    if t.owning_team != e.payload["owning_team"]:
        t.owning_agent = None
        t.accepted_at = None
    t.owning_team = e.payload["owning_team"]
    if t.triaged_at is None:
        t.triaged_at = e.at
    if t.owning_agent is None and t.queued_at is None:
        t.queued_at = e.at


def _ticket_accepted(p: Projection, e: Event) -> None:
    t = p._ticket(e)
    t.owning_agent = e.payload["agent_id"]
    t.accepted_at = e.at
    t.queued_at = None


def _ticket_status_changed(p: Projection, e: Event) -> None:
    t = p._ticket(e)
    after = e.payload["after"]
    t.status = after
    if after == "solved":
        t.solved_at = e.at
    elif after == "closed":
        t.closed_at = e.at
        t.queued_at = None
    if e.payload.get("reopened"):
        t.reopen_count += 1
        t.solved_at = None


def _ticket_priority_changed(p: Projection, e: Event) -> None:
    p._ticket(e).priority = e.payload["after"]


def _ticket_transferred(p: Projection, e: Event) -> None:
    t = p._ticket(e)
    d = e.payload
    t.transfer_count += 1
    t.owning_team = d["to_team"]
    t.owning_agent = d["to_agent"]
    t.accepted_at = e.at if d["to_agent"] is not None else None
    t.queued_at = None if d["to_agent"] is not None else e.at


def _ticket_tags_changed(p: Projection, e: Event) -> None:
    t = p._ticket(e)
    tags = (set(t.tags) | set(e.payload["added"])) - set(e.payload["removed"])
    t.tags = tuple(sorted(tags))


def _ticket_csat(p: Projection, e: Event) -> None:
    p._ticket(e).csat_score = e.payload["score"]


def _message_added(p: Projection, e: Event) -> None:
    assert e.ticket_id is not None
    d = e.payload
    p.messages[d["message_id"]] = MessageState(
        id=d["message_id"],
        ticket_id=e.ticket_id,
        visibility=d["visibility"],
        author_kind=d["author_kind"],
        author_id=d["author_id"],
        channel=d["channel"],
        body=d["body"],
        created_at=e.at,
    )
    p.new.add(("message", d["message_id"]))
    t = p._ticket(e)
    t.message_count += 1
    if (
        t.first_reply_at is None
        and d["visibility"] == "public"
        and d["author_kind"] in ("agent", "bot")
    ):
        t.first_reply_at = e.at


def _user_presence(p: Projection, e: Event) -> None:
    user = p.users[_user_id(e)]
    user.presence = e.payload["after"]
    p.dirty.add(("user", user.id))


def _escalation_fired(p: Projection, e: Event) -> None:
    t = p._ticket(e)
    t.escalation_path = e.payload["path"]
    t.escalation_level = e.payload["level"] + 1
    t.escalation_fired = [*t.escalation_fired, [e.payload["path"], e.payload["name"]]]


def _escalation_exhausted(p: Projection, e: Event) -> None:
    p._ticket(e).escalation_exhausted = True


def _sla_activated(p: Projection, e: Event) -> None:
    assert e.ticket_id is not None
    d = e.payload
    started = datetime.fromisoformat(d["started_at"])
    p.sla_clocks[d["clock_id"]] = SlaClockState(
        id=d["clock_id"],
        ticket_id=e.ticket_id,
        metric=d["metric"],
        policy=d["policy"],
        priority=d["priority"],
        target_minutes=d["target_minutes"],
        business_hours=d["business_hours"],
        calendar=d["calendar"],
        status="running",
        started_at=started,
        resumed_at=started,
        elapsed_minutes=0.0,
        due_at=_instant(d["due_at"]),
        warning_at=_instant(d["warning_at"]),
    )
    p.new.add(("sla_clock", d["clock_id"]))


def _instant(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _clock(p: Projection, e: Event) -> SlaClockState:
    clock = p.sla_clocks[e.payload["clock_id"]]
    p.dirty.add(("sla_clock", clock.id))
    return clock


def _sla_paused(p: Projection, e: Event) -> None:
    c = _clock(p, e)
    c.status = "paused"
    c.elapsed_minutes = e.payload["elapsed_minutes"]
    c.resumed_at = c.due_at = c.warning_at = None


def _sla_resumed(p: Projection, e: Event) -> None:
    c = _clock(p, e)
    c.status = "running"
    c.resumed_at = e.at
    c.due_at = _instant(e.payload["due_at"])
    c.warning_at = _instant(e.payload["warning_at"])


def _sla_retargeted(p: Projection, e: Event) -> None:
    c = _clock(p, e)
    d = e.payload
    c.priority = d["priority"]
    c.target_minutes = d["target_minutes"]
    c.due_at = _instant(d["due_at"])
    c.warning_at = _instant(d["warning_at"])
    if c.warning_at is not None and c.warning_at > e.at:
        c.warned = False


def _sla_warning(p: Projection, e: Event) -> None:
    _clock(p, e).warned = True


def _sla_breached(p: Projection, e: Event) -> None:
    _clock(p, e).breached = True


def _sla_ended(outcome: str) -> Callable[[Projection, Event], None]:
    def handler(p: Projection, e: Event) -> None:
        c = _clock(p, e)
        c.status = "ended"
        c.elapsed_minutes = e.payload["elapsed_minutes"]
        c.outcome = "breached" if outcome == "stopped" and c.breached else outcome
        c.ended_at = e.at
        c.resumed_at = c.due_at = c.warning_at = None

    return handler


def _exception_requested(p: Projection, e: Event) -> None:
    assert e.ticket_id is not None
    d = e.payload
    p.exceptions[d["exception_id"]] = ExceptionState(
        id=d["exception_id"],
        ticket_id=e.ticket_id,
        exception_type=d["exception_type"],
        request_type=d["request_type"],
        status="requested",
        reason=d["reason"],
        requested_by=d["requested_by"],
        requested_at=e.at,
    )
    p.new.add(("exception", d["exception_id"]))


def _exception_decided(status: str) -> Callable[[Projection, Event], None]:
    def handler(p: Projection, e: Event) -> None:
        x = p.exceptions[e.payload["exception_id"]]
        x.status = status
        x.decided_by = e.payload["decided_by"]
        x.decided_at = e.at
        x.decision_note = e.payload.get("note", "")
        expires = e.payload.get("expires_at")
        x.expires_at = datetime.fromisoformat(expires) if expires else None
        p.dirty.add(("exception", x.id))

    return handler


def _exception_expired(p: Projection, e: Event) -> None:
    x = p.exceptions[e.payload["exception_id"]]
    x.status = "expired"
    p.dirty.add(("exception", x.id))


_HANDLERS: dict[str, Callable[[Projection, Event], None]] = {
    "customer.created": _customer_created,
    "customer.handle_added": _customer_handle_added,
    "customer.merged": _customer_merged,
    "user.created": _user_created,
    "user.changed": _user_changed,
    "user.deactivated": _user_deactivated,
    "user.presence_changed": _user_presence,
    "ticket.created": _ticket_created,
    "ticket.triaged": _ticket_triaged,
    "ticket.accepted": _ticket_accepted,
    "ticket.status_changed": _ticket_status_changed,
    "ticket.priority_changed": _ticket_priority_changed,
    "ticket.transferred": _ticket_transferred,
    "ticket.tags_changed": _ticket_tags_changed,
    "ticket.csat_received": _ticket_csat,
    "message.added": _message_added,
    "escalation.fired": _escalation_fired,
    "escalation.exhausted": _escalation_exhausted,
    "sla.activated": _sla_activated,
    "sla.paused": _sla_paused,
    "sla.resumed": _sla_resumed,
    "sla.retargeted": _sla_retargeted,
    "sla.warning": _sla_warning,
    "sla.breached": _sla_breached,
    "sla.achieved": _sla_ended("achieved"),
    "sla.stopped": _sla_ended("stopped"),
    "exception.requested": _exception_requested,
    "exception.approved": _exception_decided("approved"),
    "exception.denied": _exception_decided("denied"),
    "exception.expired": _exception_expired,
}
