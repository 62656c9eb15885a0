"""The audit trail of security and admin actions, for auditors and admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from opsdesk.api import schemas as s
from opsdesk.api.deps import ReadAccess
from opsdesk.desk import queries

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=s.AuditPage)
def audit_trail(
    reader: ReadAccess,
    after_seq: s.Seq = 0,
    limit: Annotated[int, Query(ge=1)] = 100,
    action: s.QueryCode = None,
    actor_kind: s.QueryCode = None,
    actor_id: s.QueryId = None,
    since: Annotated[
        datetime | None, Query(description="Only rows at or after this instant.")
    ] = None,
) -> s.AuditPage:
    """Audit rows with seq > after_seq in seq order (needs audit.read)."""
    reader.check_limit(limit)
    with reader.read() as (conn, access):
        page = queries.audit_page(
            conn,
            access,
            after_seq=after_seq,
            limit=limit,
            action=action,
            actor_kind=actor_kind,
            actor_id=actor_id,
            since=since,
        )
    return s.AuditPage(
        items=[s.AuditEntry.of(row) for row in page.items],
        next_after_seq=page.next_after_seq,
    )
