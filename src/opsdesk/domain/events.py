"""The event vocabulary, declared once.

Each event type has a dotted name, a payload schema and one line of meaning.
``docs/events.md`` is generated from :data:`VOCABULARY`; emitting a type that is
not declared here raises :class:`UndeclaredEvent`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

ActorKind = Literal["user", "customer", "bot", "system", "importer"]
ACTOR_KINDS: tuple[str, ...] = ("user", "customer", "bot", "system", "importer")


class UndeclaredEvent(Exception):
    """An event type that the vocabulary does not declare."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- customers -------------------------------------------------------------


class Handle(_Payload):
    kind: str
    value: str


class CustomerCreated(_Payload):
    name: str
    tier: str
    handles: list[Handle]


class CustomerHandleAdded(_Payload):
    kind: str
    value: str


class CustomerMerged(_Payload):
    source_id: int
    target_id: int
    handles_moved: list[Handle]


# --- users -----------------------------------------------------------------


class UserCreated(_Payload):
    user_id: int
    name: str
    email: str
    roles: list[str]
    teams: list[str]
    skills: list[str]


class UserChanged(_Payload):
    user_id: int
    field: Literal["roles", "teams", "skills", "name"]
    before: Any
    after: Any


class UserDeactivated(_Payload):
    user_id: int
    reason: str


class UserPresenceChanged(_Payload):
    user_id: int
    before: Literal["online", "away", "offline"]
    after: Literal["online", "away", "offline"]


class UserCredentialsChanged(_Payload):
    user_id: int
    what: Literal["password", "token_created", "token_revoked"]
    token_id: int | None = None


# --- tickets ---------------------------------------------------------------


class TicketCreated(_Payload):
    subject: str
    channel: str
    priority: str
    tags: list[str]
    follow_up_of: int | None = None


class TicketTriaged(_Payload):
    request_type: str
    owning_team: str
    before_request_type: str | None
    before_team: str | None
    rule: str | None = None


class TicketAccepted(_Payload):
    agent_id: int
    team: str


class TicketStatusChanged(_Payload):
    before: str
    after: str
    reason: str = ""
    reopened: bool = False


class TicketPriorityChanged(_Payload):
    before: str
    after: str
    reason: str = ""


class TicketTransferred(_Payload):
    from_team: str | None
    to_team: str
    from_agent: int | None
    to_agent: int | None
    reason: str


class TicketUpdated(_Payload):
    fields: list[str]


class TicketTagsChanged(_Payload):
    added: list[str]
    removed: list[str]


class TicketCsatReceived(_Payload):
    score: int
    comment: str = ""


class MessageAdded(_Payload):
    message_id: int
    visibility: Literal["public", "internal"]
    author_kind: Literal["customer", "agent", "bot", "system"]
    author_id: int | None
    channel: str
    body: str


class TriageRuleFired(_Payload):
    rule: str
    request_type: str | None = None
    priority: str | None = None
    tags: list[str] = []


class OwnershipContested(_Payload):
    transfer_number: int
    requested_team: str
    requested_agent: int | None
    owning_team: str
    lead_id: int
    reason: str


# --- SLA clocks --------------------------------------------------------------

SlaMetric = Literal["first_reply", "next_reply", "periodic_update", "resolution"]


class SlaActivated(_Payload):
    clock_id: int
    metric: SlaMetric
    policy: str
    priority: str
    target_minutes: int
    business_hours: bool
    calendar: str | None
    started_at: datetime
    due_at: datetime
    warning_at: datetime


class SlaPaused(_Payload):
    clock_id: int
    metric: SlaMetric
    elapsed_minutes: float


class SlaResumed(_Payload):
    clock_id: int
    metric: SlaMetric
    due_at: datetime
    warning_at: datetime


class SlaRetargeted(_Payload):
    clock_id: int
    metric: SlaMetric
    priority: str
    before_target_minutes: int
    target_minutes: int
    # None while the clock is paused: the due time is set again when it resumes
    due_at: datetime | None
    warning_at: datetime | None


class SlaMark(_Payload):
    clock_id: int
    metric: SlaMetric
    due_at: datetime


class SlaEnded(_Payload):
    clock_id: int
    metric: SlaMetric
    elapsed_minutes: float
    target_minutes: int
    reason: str = ""


# --- escalation and notifications -----------------------------------------------


class EscalationFired(_Payload):
    path: str
    level: int
    name: str
    reasons: list[str]
    actions: list[str]
    skipped: list[str] = []


class EscalationExhausted(_Payload):
    path: str
    levels: int
    reason: str


class NotificationRequested(_Payload):
    role: str
    team: str | None
    reason: str


# --- exceptions ------------------------------------------------------------


class ExceptionRequested(_Payload):
    exception_id: int
    exception_type: str
    request_type: str | None
    reason: str
    requested_by: int | None


class ExceptionDecided(_Payload):
    exception_id: int
    decided_by: int
    note: str = ""
    expires_at: datetime | None = None


class ExceptionExpired(_Payload):
    exception_id: int
    # why, when it is not the maximum duration or the approval running out (a model
    # change that removed the exception type, applied with --expire-exceptions)
    reason: str = ""


# --- operating model -------------------------------------------------------


class ModelApplied(_Payload):
    version: str
    name: str
    author: str
    previous_version: str | None


# --- personal data -----------------------------------------------------------


class CustomerErased(_Payload):
    customer_ids: list[int]
    keys_destroyed: int
    handles_removed: int
    tickets_blanked: int
    messages_blanked: int
    reason: str = ""


class RetentionApplied(_Payload):
    older_than_days: int
    before: datetime
    keys_destroyed: int
    messages_blanked: int


@dataclass(frozen=True)
class EventSpec:
    """One declared event type."""

    name: str
    payload: type[BaseModel]
    meaning: str
    subject: Literal["ticket", "customer", "user", "exception", "model", "log"]


VOCABULARY: dict[str, EventSpec] = {
    spec.name: spec
    for spec in (
        EventSpec(
            "customer.created",
            CustomerCreated,
            "A customer identity was created with its first channel handles.",
            "customer",
        ),
        EventSpec(
            "customer.handle_added",
            CustomerHandleAdded,
            "A channel handle (e-mail, phone, chat id, external id) was attached to a customer.",
            "customer",
        ),
        EventSpec(
            "customer.merged",
            CustomerMerged,
            "Two customers were found to be one; the source's handles move to the target and both histories are kept.",
            "customer",
        ),
        EventSpec(
            "user.created",
            UserCreated,
            "An agent, lead or admin account was created with roles, teams and skills.",
            "user",
        ),
        EventSpec(
            "user.changed",
            UserChanged,
            "A user's roles, teams, skills or name changed (before and after).",
            "user",
        ),
        EventSpec(
            "user.deactivated",
            UserDeactivated,
            "A user can no longer sign in or own tickets.",
            "user",
        ),
        EventSpec(
            "user.credentials_changed",
            UserCredentialsChanged,
            "A password was set or an API token created or revoked (secrets never appear in the log).",
            "user",
        ),
        EventSpec(
            "user.presence_changed",
            UserPresenceChanged,
            "An agent went online, away or offline; routing only gives work to online agents.",
            "user",
        ),
        EventSpec(
            "ticket.created",
            TicketCreated,
            "A ticket was opened by a customer, an agent, a bot or an integration.",
            "ticket",
        ),
        EventSpec(
            "ticket.triaged",
            TicketTriaged,
            "The ticket's request type was set, giving it an owning team (before and after).",
            "ticket",
        ),
        EventSpec(
            "ticket.accepted",
            TicketAccepted,
            "An agent of the owning team accepted the ticket and now owns it.",
            "ticket",
        ),
        EventSpec(
            "ticket.status_changed",
            TicketStatusChanged,
            "A lifecycle move (new, open, pending, on_hold, solved, closed); solved -> open is a reopen.",
            "ticket",
        ),
        EventSpec(
            "ticket.priority_changed",
            TicketPriorityChanged,
            "The ticket's priority changed (before and after).",
            "ticket",
        ),
        EventSpec(
            "ticket.transferred",
            TicketTransferred,
            "Ownership moved explicitly to another team and/or agent, with a reason.",
            "ticket",
        ),
        EventSpec(
            "ticket.updated",
            TicketUpdated,
            "An update that changed none of the tracked fields (imported logs: a row that only touched other columns).",
            "ticket",
        ),
        EventSpec(
            "ticket.tags_changed",
            TicketTagsChanged,
            "Tags were added to or removed from the ticket.",
            "ticket",
        ),
        EventSpec(
            "ticket.csat_received",
            TicketCsatReceived,
            "The customer rated the resolution (1-5).",
            "ticket",
        ),
        EventSpec(
            "triage.rule_fired",
            TriageRuleFired,
            "A triage rule of the model matched the ticket; what it set follows as ticket events.",
            "ticket",
        ),
        EventSpec(
            "ownership.contested",
            OwnershipContested,
            "A transfer reached the ping-pong limit: the ticket went to the owning team's lead instead of moving again.",
            "ticket",
        ),
        EventSpec(
            "sla.activated",
            SlaActivated,
            "An SLA clock started for a metric, with its target, due and warning times.",
            "ticket",
        ),
        EventSpec(
            "sla.paused",
            SlaPaused,
            "An SLA clock stopped counting while the ticket waits on the customer.",
            "ticket",
        ),
        EventSpec(
            "sla.resumed",
            SlaResumed,
            "A paused SLA clock counts again (the customer replied), with new due times.",
            "ticket",
        ),
        EventSpec(
            "sla.retargeted",
            SlaRetargeted,
            "A running or paused clock took the target of a new priority or policy.",
            "ticket",
        ),
        EventSpec(
            "sla.warning",
            SlaMark,
            "An SLA clock used its policy's warning share of the target.",
            "ticket",
        ),
        EventSpec(
            "sla.breached",
            SlaMark,
            "An SLA clock passed its due time unfulfilled.",
            "ticket",
        ),
        EventSpec(
            "sla.achieved",
            SlaEnded,
            "An SLA clock was fulfilled within its target.",
            "ticket",
        ),
        EventSpec(
            "sla.stopped",
            SlaEnded,
            "An SLA clock ended without being achieved: fulfilled after a breach, or no longer applicable (reason says which).",
            "ticket",
        ),
        EventSpec(
            "escalation.fired",
            EscalationFired,
            "A level of the ticket's escalation path fired; its actions follow as their own events.",
            "ticket",
        ),
        EventSpec(
            "escalation.exhausted",
            EscalationExhausted,
            "Warning: the last level of the escalation path has fired and there is nowhere further to escalate.",
            "ticket",
        ),
        EventSpec(
            "notification.requested",
            NotificationRequested,
            "People holding a role (in a team) are to be told about the ticket, with the reason.",
            "ticket",
        ),
        EventSpec(
            "message.added",
            MessageAdded,
            "A public reply or internal note by a customer, agent, bot or the system.",
            "ticket",
        ),
        EventSpec(
            "exception.requested",
            ExceptionRequested,
            "An exception of a declared type was requested on a ticket, with a reason.",
            "exception",
        ),
        EventSpec(
            "exception.approved",
            ExceptionDecided,
            "A holder of an approver role approved the exception; it expires at expires_at.",
            "exception",
        ),
        EventSpec(
            "exception.denied",
            ExceptionDecided,
            "A holder of an approver role denied the exception.",
            "exception",
        ),
        EventSpec(
            "exception.expired",
            ExceptionExpired,
            "An approved exception passed its maximum duration, or a request went undecided past it.",
            "exception",
        ),
        EventSpec(
            "customer.erased",
            CustomerErased,
            "A customer's personal data was erased on request (with every customer merged with it): their data keys were destroyed, so the personal fields of their events read as [erased]; events keep their type, time and actors.",
            "customer",
        ),
        EventSpec(
            "retention.applied",
            RetentionApplied,
            "Message bodies of the calendar months older than the retention age were made unreadable (their monthly data keys destroyed).",
            "log",
        ),
        EventSpec(
            "model.applied",
            ModelApplied,
            "A new version of the operating model came into force.",
            "model",
        ),
    )
}


# --- personal data --------------------------------------------------------------

#: what a personal field reads as once its key is destroyed (erasure or retention)
ERASED = "[erased]"

Purpose = Literal["identity", "messages"]


@dataclass(frozen=True)
class PersonalFields:
    """The payload keys of one event type that hold the personal data of the event's
    customer (``Event.customer_id``). The store encrypts them under that customer's data
    key for ``purpose`` (``messages`` keys are per calendar month, so retention can
    destroy old months); once the key is destroyed they read as :data:`ERASED`."""

    #: top-level string fields
    texts: tuple[str, ...] = ()
    #: lists of ``{"kind": ..., "value": ...}`` handles: each value is personal
    handle_lists: tuple[str, ...] = ()
    purpose: Purpose = "identity"


#: event type -> its personal fields; every other payload field is operational data
PERSONAL: dict[str, PersonalFields] = {
    "customer.created": PersonalFields(texts=("name",), handle_lists=("handles",)),
    "customer.handle_added": PersonalFields(texts=("value",)),
    "customer.merged": PersonalFields(handle_lists=("handles_moved",)),
    "ticket.created": PersonalFields(texts=("subject",)),
    "ticket.csat_received": PersonalFields(texts=("comment",)),
    "message.added": PersonalFields(texts=("body",), purpose="messages"),
}


@dataclass(slots=True)
class NewEvent:
    """An event a command decided to append; the store gives it seq, at and version."""

    type: str
    payload: dict[str, Any]
    ticket_id: int | None = None
    customer_id: int | None = None


@dataclass(slots=True)
class Event:
    """An event as stored in the log."""

    seq: int
    at: datetime
    type: str
    ticket_id: int | None
    customer_id: int | None
    actor_kind: str
    actor_id: int | None
    model_version: str | None
    payload: dict[str, Any] = field(default_factory=dict)


def new_event(
    type_: str,
    payload: BaseModel,
    *,
    ticket_id: int | None = None,
    customer_id: int | None = None,
) -> NewEvent:
    """Build an event after checking its type is declared and its payload matches.

    >>> new_event("ticket.tags_changed", TicketTagsChanged(added=["vip"], removed=[]),
    ...           ticket_id=1).type
    'ticket.tags_changed'
    """
    spec = VOCABULARY.get(type_)
    if spec is None:
        raise UndeclaredEvent(f"event type {type_!r} is not declared in opsdesk.domain.events")
    if not isinstance(payload, spec.payload):
        raise UndeclaredEvent(
            f"event {type_!r} needs a {spec.payload.__name__} payload, got {type(payload).__name__}"
        )
    return NewEvent(type_, payload.model_dump(mode="json"), ticket_id, customer_id)


def render_vocabulary_markdown() -> str:
    """The body of docs/events.md, generated from the vocabulary."""
    lines = [
        "# Event vocabulary",
        "",
        "<!-- generated by `python -m opsdesk.docsgen`; do not edit by hand -->",
        "",
        "Every state change appends events to one log, in the same transaction. Each event has",
        "`seq` (gapless, increasing), `at` (UTC), `type`, `ticket_id`, `customer_id`,",
        "`actor_kind` (" + ", ".join(f"`{k}`" for k in ACTOR_KINDS) + "), `actor_id`,",
        "`model_version` (the operating model in force) and a JSON `payload`.",
        "Events are never updated or deleted; `opsdesk verify` rebuilds every current-state",
        "table from them.",
        "",
        "| type | meaning |",
        "|---|---|",
    ]
    for spec in VOCABULARY.values():
        lines.append(f"| `{spec.name}` | {spec.meaning} |")
    lines.append("")
    lines.append("## Payloads")
    for spec in VOCABULARY.values():
        lines += ["", f"### `{spec.name}`", "", "| field | type | required |", "|---|---|---|"]
        schema = spec.payload.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            lines.append(f"| `{name}` | {_type_of(prop)} | {'yes' if name in required else 'no'} |")
    lines.append("")
    return "\n".join(lines)


def _type_of(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        return " or ".join(_type_of(p) for p in prop["anyOf"])
    if "enum" in prop:
        return " / ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if prop.get("type") == "array":
        return f"list of {_type_of(prop.get('items', {}))}"
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if prop.get("format") == "date-time":
        return "datetime"
    return str(prop.get("type", "any"))
