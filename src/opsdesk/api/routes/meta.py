"""Routes outside /api/v1: the health check and the front door."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse
from sqlalchemy import text

from opsdesk.api import schemas as s
from opsdesk.api.deps import get_db
from opsdesk.api.problems import problem_responses
from opsdesk.store.db import Database

router = APIRouter()


@router.get(
    "/healthz", response_model=s.Health, tags=["meta"], responses=problem_responses(413, 503)
)
def healthz(db: Annotated[Database, Depends(get_db)]) -> s.Health:
    """Liveness and database reachability; no authentication."""
    with db.read() as conn:
        conn.execute(text("SELECT 1"))
    return s.Health(status="ok")


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/docs")
