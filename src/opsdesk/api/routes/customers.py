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


# --- personal data: erasure (see docs/security.md, "Personal data") -----------------------
# (imported here, not at the top, so this section merges apart from the routes above)

from dataclasses import asdict  # noqa: E402

from fastapi.concurrency import run_in_threadpool  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

from opsdesk.desk import privacy  # noqa: E402
from opsdesk.desk.privacy import MAX_REASON  # noqa: E402


class ErasureRequest(s._Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"reason": "erasure request #881", "dry_run": True}]},
    )

    reason: str = Field(default="", max_length=MAX_REASON, description="Why: a request reference.")
    dry_run: bool = Field(default=False, description="Only report what would be erased.")


class ErasureOut(BaseModel):
    customer_id: int
    customer_ids: list[int] = Field(description="The customer and every customer merged with it.")
    keys_destroyed: int
    names_blanked: int
    handles_removed: int
    tickets_blanked: int
    messages_blanked: int
    cached_responses_dropped: int
    dry_run: bool
    nothing_to_do: bool = Field(description="True when already erased: nothing changed.")


@router.post(
    "/{customer_id}/erase",
    response_model=ErasureOut,
    responses=problem_responses(403, 422),
)
async def erase_customer(
    customer_id: s.PathId, body: ErasureRequest, writer: WriteAccess
) -> Response:
    """Erase this customer's personal data (name, handles, ticket subjects, message
    bodies), with every customer merged with it: their data keys are destroyed, so the
    events stay but their personal fields read `[erased]`. Irreversible and idempotent;
    needs the permission `customers.erase`. `dry_run` reports and changes nothing."""

    def command(uow: UnitOfWork) -> ErasureOut:
        plan = privacy.erase_customer(uow, customer_id, reason=body.reason, dry_run=body.dry_run)
        return ErasureOut(**asdict(plan), nothing_to_do=plan.nothing_to_do)

    response = await writer.submit(command)
    if not body.dry_run:
        await run_in_threadpool(privacy.shrink_wal, writer.db)
    return response
