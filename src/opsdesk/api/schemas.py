"""Request and response shapes of the JSON API, stated once.

Responses are built from the desk's state objects with ``Model.of(state)``; requests
carry only what the caller chooses. Vocabulary the operating model owns (request types,
teams, exception types) is checked by the domain, whose refusals say what is allowed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from opsdesk.domain import limits
from opsdesk.domain.commands import normalise_handle
from opsdesk.domain.errors import DomainError
from opsdesk.domain.lifecycle import Status

Priority = Literal["low", "normal", "high", "urgent"]
Channel = Literal["email", "chat", "phone", "api", "bot", "voice", "web"]
HandleKind = Literal["email", "phone", "chat", "external"]
Tier = Literal["standard", "gold", "vip"]


# --- bounded inputs: the numbers are the domain's (opsdesk.domain.limits) -------------


def _visible(value: str) -> str:
    problem = limits.text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _visible_or_empty(value: str) -> str:
    return _visible(value) if value else value


# required text: trimmed, 1..N characters with a visible one; optional text may be empty
_Visible = AfterValidator(_visible)
_VisibleOrEmpty = AfterValidator(_visible_or_empty)


def _required(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


def _optional(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, max_length=max_length)


Id = Annotated[int, Field(ge=1, le=limits.MAX_ID, description="A positive 64-bit id.")]
Name = Annotated[str, _required(limits.MAX_NAME), _Visible]
Subject = Annotated[str, _required(limits.MAX_SUBJECT), _Visible]
MessageBody = Annotated[str, _required(limits.MAX_BODY), _Visible]
Reason = Annotated[str, _required(limits.MAX_REASON), _Visible]
OptionalReason = Annotated[str, _optional(limits.MAX_REASON), _VisibleOrEmpty]
LongReason = Annotated[str, _required(limits.MAX_NOTE), _Visible]
Note = Annotated[str, _optional(limits.MAX_NOTE), _VisibleOrEmpty]
Code = Annotated[str, _required(limits.MAX_CODE), _Visible]
Tag = Annotated[str, _required(limits.MAX_TAG), _Visible]
HandleValue = Annotated[str, _required(limits.MAX_HANDLE), _Visible]
PathId = Annotated[
    int,
    Path(
        ge=1,
        le=limits.MAX_ID,
        description="A positive 64-bit id; one out of range answers 422, an unknown one 404.",
    ),
]
QueryId = Annotated[int | None, Query(ge=1, le=limits.MAX_ID)]
QueryCode = Annotated[str | None, Query(max_length=limits.MAX_CODE)]
Seq = Annotated[int, Query(ge=0, le=limits.MAX_ID, description="Return events after this seq.")]
CsatScore = Annotated[
    int,
    Field(
        strict=True,
        ge=limits.CSAT_MIN,
        le=limits.CSAT_MAX,
        description="An integer from 1 to 5; booleans, strings and fractions are refused.",
    ),
]


def _checked_handle(kind: str, value: str) -> str:
    # the domain's rule (e-mail syntax by email-validator), raised as a field error here
    try:
        normalise_handle(kind, value)
    except DomainError as exc:
        raise ValueError(exc.message) from None
    return value


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, obj: Any) -> Self:
        """Render a desk state object (a dataclass) as this response."""
        return cls.model_validate(obj, from_attributes=True)


# --- problems ----------------------------------------------------------------------


class FieldError(BaseModel):
    loc: list[str | int] = Field(description='Where the bad value is, e.g. ["body", "subject"].')
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem detail; every error response has this shape."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:opsdesk:problem:invalid-transition",
                    "title": "Invalid transition",
                    "status": 409,
                    "detail": "ticket 7 cannot go from new to closed; from new it can go to open",
                    "instance": "/api/v1/tickets/7/status",
                    "code": "invalid-transition",
                }
            ]
        }
    )

    type: str = Field(description="URI naming the kind of problem (urn:opsdesk:problem:CODE).")
    title: str
    status: int
    detail: str
    instance: str = Field(description="The request path the problem occurred on.")
    code: str = Field(description="Short machine-readable code, the last part of `type`.")
    errors: list[FieldError] | None = Field(
        default=None, description="Present on validation problems: one entry per bad field."
    )


# --- customers ---------------------------------------------------------------------


class Handle(_Response):
    kind: str
    value: str


class HandleIn(_Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"kind": "email", "value": "ada@example.com"}]},
    )

    kind: HandleKind
    value: HandleValue = Field(
        description="An e-mail address (checked), phone, chat or external id."
    )

    @model_validator(mode="after")
    def _valid_handle(self) -> Self:
        _checked_handle(self.kind, self.value)
        return self


class CustomerCreate(_Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "Ada Lovelace",
                    "tier": "standard",
                    "handles": [{"kind": "email", "value": "ada@example.com"}],
                }
            ]
        },
    )

    name: Name
    tier: Tier = "standard"
    handles: list[HandleIn] = Field(default_factory=list, max_length=limits.MAX_HANDLES)


class CustomerMerge(_Request):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"source_id": 12}]})

    source_id: Id = Field(description="The duplicate customer merged into the one in the path.")


class Customer(_Response):
    id: int
    name: str
    tier: str
    created_at: datetime
    merged_into: int | None = Field(description="Set when this identity was merged into another.")
    handles: list[Handle]


# --- tickets -----------------------------------------------------------------------


class CustomerRef(_Request):
    """Which customer a new ticket is for: an id, or a handle (found, or created with
    ``name`` when unknown)."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [{"id": 3}, {"email": "ada@example.com", "name": "Ada Lovelace"}]
        },
    )

    id: Id | None = None
    email: HandleValue | None = Field(default=None, description="An e-mail address (checked).")
    phone: HandleValue | None = None
    chat: HandleValue | None = None
    external: HandleValue | None = None
    name: Name | None = Field(
        default=None, description="Name for a customer created from a handle."
    )
    tier: Tier = "standard"

    @model_validator(mode="after")
    def _one_way_to_find(self) -> Self:
        given = [k for k in ("id", "email", "phone", "chat", "external") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of id, email, phone, chat or external")
        for kind in ("email", "phone", "chat", "external"):
            if getattr(self, kind):
                _checked_handle(kind, getattr(self, kind))
        return self

    def handle(self) -> tuple[str, str] | None:
        """The (kind, value) handle to look the customer up by, if not given by id."""
        for kind in ("email", "phone", "chat", "external"):
            value = getattr(self, kind)
            if value:
                return kind, value
        return None


class TicketCreate(_Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
                    "subject": "Refund for a double charge",
                    "channel": "email",
                    "request_type": "refund",
                    "priority": "normal",
                    "tags": ["billing"],
                    "body": "I was charged twice for May.",
                }
            ]
        },
    )

    customer: CustomerRef
    subject: Subject
    channel: Channel
    priority: Priority | None = Field(default=None, description="Defaults to the model's.")
    request_type: Code | None = Field(
        default=None, description="With a request type the ticket is triaged to its owner team."
    )
    tags: list[Tag] = Field(default_factory=list, max_length=limits.MAX_TAGS)
    body: MessageBody | None = Field(default=None, description="The customer's first message.")
    follow_up_of: Id | None = None


class Message(_Response):
    id: int
    ticket_id: int
    visibility: str
    author_kind: str
    author_id: int | None
    channel: str
    body: str
    created_at: datetime


class Ticket(_Response):
    id: int
    customer_id: int
    subject: str
    channel: str
    priority: str
    status: str
    request_type: str | None
    owning_team: str | None
    owning_agent: int | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    triaged_at: datetime | None
    accepted_at: datetime | None
    first_reply_at: datetime | None
    solved_at: datetime | None
    closed_at: datetime | None
    reopen_count: int
    transfer_count: int
    message_count: int
    follow_up_of: int | None
    csat_score: int | None


class TicketDetail(Ticket):
    messages: list[Message]


class TicketPage(BaseModel):
    items: list[Ticket]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class SlaClock(_Response):
    """One SLA clock of a ticket: a metric measured against its policy's target."""

    id: int
    metric: Literal["first_reply", "next_reply", "periodic_update", "resolution"]
    policy: str
    priority: str = Field(description="The priority whose target the clock runs on.")
    status: Literal["running", "paused", "ended"]
    target_minutes: int
    business_hours: bool = Field(description="Measured in the calendar's business hours.")
    calendar: str | None
    started_at: datetime
    due_at: datetime | None = Field(
        description="When the target is used up; null while paused and once ended."
    )
    warning_at: datetime | None = Field(
        description="When the policy's warning share of the target is used up."
    )
    warned: bool
    breached: bool
    outcome: Literal["achieved", "breached", "stopped"] | None = Field(
        description="Set once ended: achieved in time, breached, or stopped (not applicable)."
    )
    ended_at: datetime | None
    elapsed_minutes: float = Field(
        description="Time counted so far (business minutes on a business-hours policy)."
    )
    remaining_minutes: float | None = Field(
        description="target_minutes - elapsed_minutes (negative past due); null once ended."
    )


class SlaClockList(BaseModel):
    items: list[SlaClock]


class StatusChange(_Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [{"status": "pending", "reason": "asked for a meter photo"}]
        },
    )

    status: Status
    reason: OptionalReason = ""


class PriorityChange(_Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"priority": "high", "reason": "vulnerable customer"}]},
    )

    priority: Priority
    reason: OptionalReason = ""


class Transfer(_Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [{"to_team": "tech_support", "reason": "needs heat pump diagnostics"}]
        },
    )

    reason: Reason
    to_team: Code | None = None
    to_agent: Id | None = None


class MessageCreate(_Request):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"body": "We have refunded the second charge.", "visibility": "public"},
                {"body": "Customer called; see voice transcript.", "visibility": "internal"},
            ]
        },
    )

    body: MessageBody
    visibility: Literal["public", "internal"] = "public"
    author_kind: Literal["agent", "customer", "bot"] | None = Field(
        default=None,
        description="Defaults to `agent` (the caller). `customer` and `bot` need "
        "messages.customer (a channel integration's token); `system` is never accepted.",
    )
    channel: Channel | None = Field(default=None, description="Defaults to the ticket's channel.")


class Accept(_Request):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"agent_id": 4}]})

    agent_id: Id | None = Field(
        default=None, description="Defaults to the caller; naming another needs tickets.assign."
    )


class Triage(_Request):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"request_type": "refund"}]}
    )

    request_type: Code
    rule: Code | None = None


class TagsChange(_Request):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"add": ["vip"], "remove": ["billing"]}]}
    )

    add: list[Tag] = Field(default_factory=list, max_length=limits.MAX_TAGS)
    remove: list[Tag] = Field(default_factory=list, max_length=limits.MAX_TAGS)


class Csat(_Request):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"score": 5, "comment": "quick and kind"}]}
    )

    score: CsatScore
    comment: Note = ""


# --- exceptions ----------------------------------------------------------------------


class ExceptionRequest(_Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {"exception_type": "refund_outside_policy", "reason": "order is 40 days old"}
            ]
        },
    )

    exception_type: Code
    reason: LongReason


class ExceptionDecision(_Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"decision": "approve", "note": "loyal customer"}]},
    )

    decision: Literal["approve", "deny"]
    note: Note = ""


class ExceptionOut(_Response):
    id: int
    ticket_id: int
    exception_type: str
    request_type: str | None
    status: str
    reason: str
    requested_by: int | None
    requested_at: datetime
    decided_by: int | None
    decided_at: datetime | None
    decision_note: str
    expires_at: datetime | None


class ExceptionList(BaseModel):
    items: list[ExceptionOut]


class ExceptionStats(_Response):
    request_type: str | None = Field(description="null for tickets not triaged yet.")
    requested: int = Field(description="Exceptions ever requested.")
    approved: int = Field(description="Approvals, including those that have since expired.")
    denied: int
    expired: int = Field(description="Lapsed approvals and requests left undecided.")
    pending: int = Field(description="Requests awaiting a decision.")
    tickets: int = Field(description="Tickets of this request type.")
    tickets_with_exceptions: int
    exception_rate: float | None = Field(
        description="tickets_with_exceptions / tickets; null when there are no tickets."
    )


class ExceptionStatsList(BaseModel):
    items: list[ExceptionStats]


# --- events and the model ---------------------------------------------------------------


class EventOut(_Response):
    seq: int
    at: datetime
    type: str
    ticket_id: int | None
    customer_id: int | None
    actor_kind: str
    actor_id: int | None
    model_version: str | None
    payload: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventOut]
    next_after_seq: int | None = Field(
        description="Pass as `after_seq` for the next page; null when you have reached the "
        "end (poll later with the seq of the last item)."
    )


class ModelVersion(_Response):
    version: str
    name: str
    author: str
    applied_at: datetime
    previous_version: str | None


class Health(BaseModel):
    status: Literal["ok"]


class AuditEntry(_Response):
    """One row of the audit trail (see docs/security.md#audit-trail)."""

    seq: int
    at: datetime
    action: str
    outcome: str
    actor_kind: str
    actor_id: int | None
    subject: str | None
    client: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_after_seq: int | None = Field(
        description="Pass as `after_seq` for the next page; null on the last page."
    )


def exact_integer_bounds(node: Any) -> None:
    """Put integer bounds back as integers in an OpenAPI document, in place.

    FastAPI's OpenAPI model types ``minimum``/``maximum`` as floats, which turns 2^63-1
    into 2^63 (9.223372036854776e18); only the id bound is large enough to be rounded.
    """
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = limits.MAX_ID if value == float(limits.MAX_ID) else int(value)
        for child in node.values():
            exact_integer_bounds(child)
    elif isinstance(node, list):
        for child in node:
            exact_integer_bounds(child)
