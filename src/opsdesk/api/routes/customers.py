"""Customers: one identity across channels, and the timeline of everything they did."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from opsdesk.api import schemas as s
from opsdesk.api.deps import ReadAccess, WriteAccess
from opsdesk.api.problems import problem_responses
from opsdesk.desk import queries, service
from opsdesk.store.uow import UnitOfWork

router = APIRouter(prefix="/customers", tags=["customers"], responses=problem_responses(404, 409))


def _profile(uow: UnitOfWork, customer_id: int) -> s.Customer:
    # read back through the unit of work's connection once its writes are flushed
    uow.flush()
    return s.Customer.of(queries.get_customer(uow.conn, service.access(uow), customer_id))


@router.post("", status_code=201, response_model=s.Customer)
async def create_customer(body: s.CustomerCreate, writer: WriteAccess) -> Response:
    """Create a customer identity with its channel handles (which must be free)."""

    def command(uow: UnitOfWork) -> s.Customer:
        customer = service.create_customer(
            uow, name=body.name, tier=body.tier, handles=[(h.kind, h.value) for h in body.handles]
        )
        return _profile(uow, customer.id)

    return await writer.submit(command, status_code=201)


@router.get("/{customer_id}", response_model=s.Customer)
def get_customer(customer_id: s.PathId, reader: ReadAccess) -> s.Customer:
    """The customer and their handles (404 outside the caller's scope, as if missing)."""
    with reader.read() as (conn, access):
        return s.Customer.of(queries.get_customer(conn, access, customer_id))


@router.post("/{customer_id}/handles", status_code=201, response_model=s.Customer)
async def add_handle(customer_id: s.PathId, body: s.HandleIn, writer: WriteAccess) -> Response:
    """Attach another channel handle (e-mail, phone, chat id, external id)."""

    def command(uow: UnitOfWork) -> s.Customer:
        service.add_handle(uow, customer_id, body.kind, body.value)
        return _profile(uow, customer_id)

    return await writer.submit(command, status_code=201)


@router.post("/{customer_id}/merge", response_model=s.Customer)
async def merge_customers(
    customer_id: s.PathId, body: s.CustomerMerge, writer: WriteAccess
) -> Response:
    """Merge the customer `source_id` into this one: its handles move here and both
    histories show on this customer's timeline."""

    def command(uow: UnitOfWork) -> s.Customer:
        service.merge_customers(uow, body.source_id, customer_id)
        return _profile(uow, customer_id)

    return await writer.submit(command)


@router.get("/{customer_id}/timeline", response_model=s.EventPage)
def customer_timeline(
    customer_id: s.PathId,
    reader: ReadAccess,
    after_seq: s.Seq = 0,
    limit: Annotated[int, Query(ge=1)] = 100,
) -> s.EventPage:
    """Every event of this customer and of the customers merged into it, on every
    channel, in order."""
    reader.check_limit(limit)
    with reader.read() as (conn, access):
        page = queries.customer_timeline(
            conn, access, customer_id, after_seq=after_seq, limit=limit
        )
    return s.EventPage(
        items=[s.EventOut.of(e) for e in page.items], next_after_seq=page.next_after_seq
    )
