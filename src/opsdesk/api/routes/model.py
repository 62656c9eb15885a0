"""The operating model in force."""

from __future__ import annotations

from fastapi import APIRouter

from opsdesk.api import schemas as s
from opsdesk.api.deps import ReadAccess
from opsdesk.api.problems import problem_responses
from opsdesk.desk import queries
from opsdesk.domain.errors import NoModelInForce

router = APIRouter(prefix="/model", tags=["model"], responses=problem_responses(409))


@router.get("", response_model=s.ModelVersion)
def model_in_force(reader: ReadAccess) -> s.ModelVersion:
    """Version, name, author and apply time of the operating model in force."""
    with reader.read() as (conn, access):
        found = queries.model_in_force(conn, access)
    if found is None:
        raise NoModelInForce()
    return s.ModelVersion.of(found)
