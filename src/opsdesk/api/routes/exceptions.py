"""Exceptions: decide them, list them, count them per request type.

Requesting one is ``POST /tickets/{id}/exceptions`` (see the tickets routes).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response

from opsdesk.api import schemas as s
from opsdesk.api.deps import ReadAccess, WriteAccess
from opsdesk.api.problems import problem_responses
from opsdesk.desk import queries, service

router = APIRouter(prefix="/exceptions", tags=["exceptions"], responses=problem_responses(404, 409))


@router.get("", response_model=s.ExceptionList)
def list_exceptions(
    reader: ReadAccess,
    ticket_id: s.QueryId = None,
    status: Literal["requested", "approved", "denied", "expired"] | None = None,
) -> s.ExceptionList:
    """Exceptions, newest first, optionally of one ticket or in one status."""
    with reader.read() as (conn, access):
        items = queries.list_exceptions(conn, access, ticket_id=ticket_id, status=status)
    return s.ExceptionList(items=[s.ExceptionOut.of(x) for x in items])


@router.get("/stats", response_model=s.ExceptionStatsList)
def exception_stats(reader: ReadAccess) -> s.ExceptionStatsList:
    """Requested, approved, denied and expired exceptions and the exception rate, per
    request type, over the tickets in the caller's scope (needs kpis.read)."""
    with reader.read() as (conn, access):
        counts = queries.exception_counts_by_request_type(conn, access)
    return s.ExceptionStatsList(items=[s.ExceptionStats.of(c) for c in counts])


@router.post("/{exception_id}/decision", response_model=s.ExceptionOut)
async def decide_exception(
    exception_id: s.PathId, body: s.ExceptionDecision, writer: WriteAccess
) -> Response:
    """Approve or deny; only a holder of one of the type's approver roles may."""
    return await writer.submit(
        lambda uow: s.ExceptionOut.of(
            service.decide_exception(
                uow, exception_id, approve=body.decision == "approve", note=body.note
            )
        )
    )
