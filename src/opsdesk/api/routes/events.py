"""The event log as a feed: every change, in order."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from opsdesk.api import schemas as s
from opsdesk.api.deps import ReadAccess
from opsdesk.desk import queries
from opsdesk.domain.limits import MAX_CODE

router = APIRouter(prefix="/events", tags=["events"])


@router.get("", response_model=s.EventPage)
def events_feed(
    reader: ReadAccess,
    after_seq: s.Seq = 0,
    limit: Annotated[int, Query(ge=1)] = 100,
    type: Annotated[
        str | None, Query(max_length=MAX_CODE, description="Only events of this type.")
    ] = None,
    ticket_id: s.QueryId = None,
) -> s.EventPage:
    """Events with seq > after_seq in seq order (needs events.read); a team-scoped
    caller sees only the events of tickets and customers in their scope."""
    reader.check_limit(limit)
    with reader.read() as (conn, access):
        page = queries.events_feed(conn, access, after_seq, limit, type=type, ticket_id=ticket_id)
    return s.EventPage(
        items=[s.EventOut.of(e) for e in page.items], next_after_seq=page.next_after_seq
    )
