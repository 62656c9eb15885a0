"""Routing: agents' presence (the router gives work to online agents only)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from opsdesk.api import schemas as s
from opsdesk.api.deps import WriteAccess
from opsdesk.api.problems import problem_responses
from opsdesk.desk import service

router = APIRouter(prefix="/users", tags=["routing"], responses=problem_responses(404, 409))

Presence = Literal["online", "away", "offline"]


class PresenceSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    presence: Presence = Field(description="online: give me work; away or offline: do not.")


class PresenceOut(BaseModel):
    user_id: int
    presence: Presence


@router.put("/{user_id}/presence", response_model=PresenceOut)
async def set_presence(user_id: s.PathId, body: PresenceSet, writer: WriteAccess) -> Response:
    """Set an agent online, away or offline. Anyone may set their own; someone else's
    needs users.manage, or tickets.assign for a member of one's own teams. Going online
    hands the agent the oldest queued tickets they may take, in the same transaction."""
    return await writer.submit(
        lambda uow: PresenceOut(
            user_id=user_id,
            presence=service.set_presence(uow, user_id, body.presence).presence,
        )
    )
