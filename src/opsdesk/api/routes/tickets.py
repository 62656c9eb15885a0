"""Tickets: open, read, list and work them."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from opsdesk.api import schemas as s
from opsdesk.api.deps import ReadAccess, WriteAccess
from opsdesk.api.problems import ApiProblem, problem_responses
from opsdesk.desk import queries, service
from opsdesk.store.uow import UnitOfWork

router = APIRouter(prefix="/tickets", tags=["tickets"], responses=problem_responses(404, 409))


def encode_cursor(after_id: int) -> str:
    """An opaque cursor for the page after ticket ``after_id``."""
    return base64.urlsafe_b64encode(f"id:{after_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "id":
            raise ValueError(text)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiProblem(
            422, "invalid-cursor", "the cursor is not one this API returned; start without it"
        ) from None


@router.post("", status_code=201, response_model=s.Ticket)
async def create_ticket(body: s.TicketCreate, writer: WriteAccess) -> Response:
    """Open a ticket for a customer given by id (one in the caller's scope) or by a
    handle (created when unknown). The first message is the customer's words, relayed by
    the caller, who is recorded as the actor."""
    fields: dict[str, Any] = {
        "subject": body.subject,
        "channel": body.channel,
        "priority": body.priority,
        "request_type": body.request_type,
        "tags": body.tags,
        "body": body.body,
        "follow_up_of": body.follow_up_of,
    }
    ref = body.customer
    handle = ref.handle()

    def command(uow: UnitOfWork) -> s.Ticket:
        if handle is None:
            assert ref.id is not None
            ticket = service.create_ticket(uow, customer_id=ref.id, **fields)
        else:
            kind, value = handle
            ticket = service.create_ticket_for_handle(
                uow, kind, value, name=ref.name or value, tier=ref.tier, **fields
            )
        return s.Ticket.of(ticket)

    return await writer.submit(command, status_code=201)


@router.get("", response_model=s.TicketPage)
def list_tickets(
    reader: ReadAccess,
    limit: Annotated[int, Query(ge=1, description="Page size, at most page_size_max.")] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    status: s.QueryCode = None,
    owning_team: s.QueryCode = None,
    owning_agent: s.QueryId = None,
    request_type: s.QueryCode = None,
    priority: s.QueryCode = None,
    channel: s.QueryCode = None,
    tag: s.QueryCode = None,
    customer_id: s.QueryId = None,
) -> s.TicketPage:
    """Tickets matching every given filter, newest first, a page at a time; a
    team-scoped caller sees their teams' tickets, their own and untriaged ones."""
    reader.check_limit(limit)
    filters = queries.TicketFilters(
        status=status,
        owning_team=owning_team,
        owning_agent=owning_agent,
        request_type=request_type,
        priority=priority,
        channel=channel,
        tag=tag,
        customer_id=customer_id,
    )
    after_id = decode_cursor(cursor) if cursor else None
    with reader.read() as (conn, access):
        page = queries.list_tickets(conn, access, filters, after_id=after_id, limit=limit)
    return s.TicketPage(
        items=[s.Ticket.of(ticket) for ticket in page.items],
        next_cursor=encode_cursor(page.next_after_id) if page.next_after_id else None,
    )


@router.get("/{ticket_id}", response_model=s.TicketDetail)
def get_ticket(ticket_id: s.PathId, reader: ReadAccess) -> s.TicketDetail:
    """The ticket with its messages, oldest first."""
    with reader.read() as (conn, access):
        ticket, messages = queries.get_ticket_with_messages(conn, access, ticket_id)
    return s.TicketDetail(
        **s.Ticket.of(ticket).model_dump(), messages=[s.Message.of(m) for m in messages]
    )


@router.get("/{ticket_id}/sla", response_model=s.SlaClockList)
def ticket_sla(ticket_id: s.PathId, reader: ReadAccess) -> s.SlaClockList:
    """The ticket's SLA clocks, oldest first: running, paused and ended, with due and
    warning times and the time counted so far."""
    with reader.read() as (conn, access):
        clocks = queries.ticket_sla_clocks(
            conn, access, ticket_id, reader.model(conn), datetime.now(UTC)
        )
    return s.SlaClockList(items=[s.SlaClock.of(clock) for clock in clocks])


@router.post("/{ticket_id}/status", response_model=s.Ticket)
async def change_status(ticket_id: s.PathId, body: s.StatusChange, writer: WriteAccess) -> Response:
    """Move the ticket along its lifecycle (new, open, pending, on_hold, solved, closed)."""
    return await writer.submit(
        lambda uow: s.Ticket.of(service.change_status(uow, ticket_id, body.status, body.reason))
    )


@router.post("/{ticket_id}/priority", response_model=s.Ticket)
async def change_priority(
    ticket_id: s.PathId, body: s.PriorityChange, writer: WriteAccess
) -> Response:
    return await writer.submit(
        lambda uow: s.Ticket.of(service.change_priority(uow, ticket_id, body.priority, body.reason))
    )


@router.post("/{ticket_id}/transfer", response_model=s.Ticket)
async def transfer_ticket(ticket_id: s.PathId, body: s.Transfer, writer: WriteAccess) -> Response:
    """Move ownership to another team and/or agent, with a reason."""
    return await writer.submit(
        lambda uow: s.Ticket.of(
            service.transfer_ticket(
                uow, ticket_id, reason=body.reason, to_team=body.to_team, to_agent=body.to_agent
            )
        )
    )


@router.post("/{ticket_id}/messages", status_code=201, response_model=s.Message)
async def add_message(ticket_id: s.PathId, body: s.MessageCreate, writer: WriteAccess) -> Response:
    """Add a public reply or an internal note."""

    def command(uow: UnitOfWork) -> s.Message:
        service.add_message(
            uow,
            ticket_id,
            body=body.body,
            visibility=body.visibility,
            author_kind=body.author_kind,
            channel=body.channel,
        )
        added = next(e for e in reversed(uow.appended) if e.type == "message.added")
        return s.Message.of(uow.projection.messages[added.payload["message_id"]])

    return await writer.submit(command, status_code=201)


@router.post("/{ticket_id}/accept", response_model=s.Ticket)
async def accept_ticket(
    ticket_id: s.PathId, writer: WriteAccess, body: s.Accept | None = None
) -> Response:
    """Take ownership (yourself, or name an agent of the owning team)."""
    agent_id = body.agent_id if body else None
    return await writer.submit(
        lambda uow: s.Ticket.of(service.accept_ticket(uow, ticket_id, agent_id))
    )


@router.post("/{ticket_id}/triage", response_model=s.Ticket)
async def triage_ticket(ticket_id: s.PathId, body: s.Triage, writer: WriteAccess) -> Response:
    """Set the request type; the first triage gives the ticket its owning team."""
    return await writer.submit(
        lambda uow: s.Ticket.of(service.triage_ticket(uow, ticket_id, body.request_type, body.rule))
    )


@router.post("/{ticket_id}/tags", response_model=s.Ticket)
async def change_tags(ticket_id: s.PathId, body: s.TagsChange, writer: WriteAccess) -> Response:
    return await writer.submit(
        lambda uow: s.Ticket.of(service.change_tags(uow, ticket_id, body.add, body.remove))
    )


@router.post("/{ticket_id}/csat", response_model=s.Ticket)
async def record_csat(ticket_id: s.PathId, body: s.Csat, writer: WriteAccess) -> Response:
    """Record the customer's rating (1-5) of a solved or closed ticket."""
    return await writer.submit(
        lambda uow: s.Ticket.of(service.record_csat(uow, ticket_id, body.score, body.comment))
    )


@router.post("/{ticket_id}/exceptions", status_code=201, response_model=s.ExceptionOut)
async def request_exception(
    ticket_id: s.PathId, body: s.ExceptionRequest, writer: WriteAccess
) -> Response:
    """Ask for an approved deviation from the standard path."""
    return await writer.submit(
        lambda uow: s.ExceptionOut.of(
            service.request_exception(uow, ticket_id, body.exception_type, body.reason)
        ),
        status_code=201,
    )
