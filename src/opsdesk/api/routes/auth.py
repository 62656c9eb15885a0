"""Password sign-in: ``POST /api/v1/auth/token`` trades an e-mail and a password for a
short-lived token. The rules (throttle, lockout, audit) live in opsdesk.desk.signin."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from opsdesk.api import ratelimit
from opsdesk.api import schemas_users as su
from opsdesk.api.deps import get_db, get_settings
from opsdesk.api.problems import ApiProblem, problem_responses
from opsdesk.desk import signin
from opsdesk.settings import Settings
from opsdesk.store.db import Database

# 409: the account was deactivated between the password check and the token
router = APIRouter(prefix="/auth", tags=["accounts"], responses=problem_responses(401, 409, 429))


class SignIn(BaseModel):
    """An e-mail and a password (set with `opsdesk user password EMAIL`)."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=signin.MAX_EMAIL)
    password: str = Field(min_length=1, max_length=signin.MAX_PASSWORD)


@router.post("/token", status_code=201, response_model=su.CreatedTokenOut)
async def sign_in(
    body: SignIn,
    request: Request,
    db: Annotated[Database, Depends(get_db)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> su.CreatedTokenOut:
    """Sign in with a password: a token with the `read` and `write` scopes that lives
    `OPSDESK_SIGN_IN_TTL_HOURS` (12). No bearer token needed. Wrong e-mail, wrong
    password and a deactivated account all answer the same 401; repeated failures lock
    the account (429 with Retry-After). Every attempt is in the audit trail."""
    try:
        # argon2 takes tens of milliseconds on purpose: off the event loop
        done = await run_in_threadpool(
            signin.sign_in,
            db,
            request.app.state.throttle,
            email=body.email,
            password=body.password,
            client=ratelimit.client_address(request),
            lifetime=timedelta(hours=settings.sign_in_ttl_hours),
        )
    except signin.SignInThrottled as exc:
        raise ApiProblem(
            429, "rate-limited", exc.message, headers={"Retry-After": str(exc.retry_after)}
        ) from None
    except signin.SignInFailed:
        raise ApiProblem(
            401,
            "unauthorized",
            "wrong e-mail or password (or the account is deactivated); "
            "an admin sets a password with `opsdesk user password EMAIL`",
        ) from None
    return su.CreatedTokenOut.of(done.token)
