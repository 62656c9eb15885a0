"""Accounts: users (listed as far as the caller may see), the caller (/me), and, for
admins, creating users, changing their roles and teams, deactivating them, and their
tokens. The rules live in opsdesk.desk.accounts; these routes parse and render."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from opsdesk.api import schemas as s
from opsdesk.api import schemas_users as su
from opsdesk.api.deps import CurrentPrincipal, ReadAccess, WriteAccess, get_db, get_settings
from opsdesk.api.problems import ApiProblem, problem_responses
from opsdesk.desk import accounts
from opsdesk.desk.security import TokenLifetime
from opsdesk.domain import limits
from opsdesk.settings import Settings
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

router = APIRouter(tags=["accounts"], responses=problem_responses(404, 409))
Db = Annotated[Database, Depends(get_db)]
Config = Annotated[Settings, Depends(get_settings)]


def _out(user: object) -> su.UserOut:
    return su.UserOut.of(user)


@router.get("/me", response_model=su.MeOut)
def me(principal: CurrentPrincipal, db: Db) -> su.MeOut:
    """The caller: account, roles, teams, what the roles grant, and this token's scopes,
    expiry and the permissions it can use."""
    with db.read() as conn:
        view = accounts.me(db, conn, principal)
    return su.MeOut(
        user=_out(view.user),
        permissions=view.permissions,
        effective_permissions=view.effective_permissions,
        token=su.TokenInUse(
            id=principal.token_id, scopes=view.scopes, expires_at=principal.expires_at
        ),
    )


@router.get("/users", response_model=su.UserPage)
def list_users(
    principal: CurrentPrincipal,
    reader: ReadAccess,
    after_id: Annotated[int, Query(ge=0, le=limits.MAX_ID, description="Users after this id.")] = 0,
    limit: Annotated[int, Query(ge=1, description="Page size, at most page_size_max.")] = 100,
    team: s.QueryCode = None,
    active: bool | None = None,
) -> su.UserPage:
    """Users by id: every account with users.read (ops leads, auditors, admins), else
    the members of the caller's teams and the caller."""
    reader.check_limit(limit)
    with reader.db.read() as conn:
        viewer = accounts.viewer_of(reader.db, conn, principal.user, principal.scopes)
        page = accounts.list_users(
            conn, viewer, after_id=after_id, limit=limit, team=team, active=active
        )
    return su.UserPage(items=[_out(u) for u in page.items], next_after_id=page.next_after_id)


@router.get("/users/{user_id}", response_model=su.UserOut)
def get_user(user_id: s.PathId, principal: CurrentPrincipal, db: Db) -> su.UserOut:
    """One user the caller may see (404 for anyone else, as for a missing one)."""
    with db.read() as conn:
        viewer = accounts.viewer_of(db, conn, principal.user, principal.scopes)
        return _out(accounts.get_user(conn, viewer, user_id))


@router.post("/users", status_code=201, response_model=su.UserOut)
async def create_user(body: su.UserCreate, writer: WriteAccess) -> Response:
    """Create an account (users.manage, a token with the admin scope). Give it a
    password with `opsdesk user password EMAIL`, or a token below."""

    def command(uow: UnitOfWork) -> su.UserOut:
        user = accounts.create_user(
            uow,
            name=body.name,
            email=body.email,
            roles=body.roles,
            teams=body.teams,
            skills=body.skills,
            scopes=writer.scopes,
        )
        return _out(user)

    return await writer.submit(command, status_code=201, scope="admin")


@router.put("/users/{user_id}/roles", response_model=su.UserOut)
async def set_roles(user_id: s.PathId, body: su.RolesSet, writer: WriteAccess) -> Response:
    """Replace a user's roles (users.manage, admin scope); audited before and after."""
    return await writer.submit(
        lambda uow: _out(
            accounts.change_user(uow, user_id, "roles", body.roles, scopes=writer.scopes)
        ),
        scope="admin",
    )


@router.put("/users/{user_id}/teams", response_model=su.UserOut)
async def set_teams(user_id: s.PathId, body: su.TeamsSet, writer: WriteAccess) -> Response:
    """Replace a user's teams (users.manage, admin scope); refused while they own
    tickets of a team they would leave."""
    return await writer.submit(
        lambda uow: _out(
            accounts.change_user(uow, user_id, "teams", body.teams, scopes=writer.scopes)
        ),
        scope="admin",
    )


@router.post("/users/{user_id}/deactivate", response_model=su.Deactivated)
async def deactivate_user(user_id: s.PathId, body: su.Deactivate, writer: WriteAccess) -> Response:
    """Deactivate a user and revoke every token they hold, at once (users.manage,
    admin scope); refused while they own open tickets."""

    def command(uow: UnitOfWork) -> su.Deactivated:
        user, revoked = accounts.deactivate_user(uow, user_id, body.reason, scopes=writer.scopes)
        return su.Deactivated(user=_out(user), revoked_tokens=revoked)

    return await writer.submit(command, scope="admin")


@router.get("/users/{user_id}/tokens", response_model=su.TokenList)
def list_tokens(user_id: s.PathId, principal: CurrentPrincipal, db: Db) -> su.TokenList:
    """A user's tokens, newest first, revoked and expired ones included: your own, or
    anyone's with users.manage. Never the token itself."""
    now = datetime.now(UTC)
    with db.read() as conn:
        viewer = accounts.viewer_of(db, conn, principal.user, principal.scopes)
        tokens = accounts.list_tokens(conn, viewer, user_id)
    return su.TokenList(items=[su.TokenOut.of_info(info, now) for info in tokens])


@router.post("/users/{user_id}/tokens", status_code=201, response_model=su.CreatedTokenOut)
async def create_token(
    user_id: s.PathId, body: su.TokenCreate, writer: WriteAccess, settings: Config
) -> Response:
    """Create a token for a user (admin scope; users.manage for someone else's, else
    tokens.create). The token is in this response only. Not replayable: an
    Idempotency-Key is refused, since replaying would mean storing the token."""
    if writer.key is not None:
        raise ApiProblem(
            400,
            "invalid-idempotency-key",
            "creating a token takes no Idempotency-Key: the token is shown once and never "
            "stored, so the response cannot be replayed; send the request without it",
        )
    lifetime = TokenLifetime.days(settings.token_ttl_days, settings.token_max_ttl_days)
    expires_in = timedelta(days=body.expires_in_days) if body.expires_in_days else None

    def command(uow: UnitOfWork) -> su.CreatedTokenOut:
        created = accounts.create_token(
            uow,
            user_id,
            body.name,
            token_scopes=body.scopes,
            expires_in=expires_in,
            lifetime=lifetime,
            scopes=writer.scopes,
        )
        return su.CreatedTokenOut.of(created)

    return await writer.submit(command, status_code=201, scope="admin")


@router.post("/tokens/{token_id}/revoke", response_model=su.TokenOut)
async def revoke_token(token_id: s.PathId, body: su.TokenRevoke, writer: WriteAccess) -> Response:
    """Revoke a token: refused from its next request on (admin scope; your own, or
    anyone's with users.manage)."""

    def command(uow: UnitOfWork) -> su.TokenOut:
        info = accounts.revoke_token(uow, token_id, body.reason, scopes=writer.scopes)
        return su.TokenOut.of_info(info, uow.now)

    return await writer.submit(command, scope="admin")
