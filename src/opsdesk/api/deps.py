"""Request dependencies: the database, the authenticated user, the reader that opens a
read transaction with the caller's access (checked by the desk's queries), and the
writer that runs a command as one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from opsdesk.api import ratelimit
from opsdesk.api.idempotency import Writer, request_fingerprint
from opsdesk.api.problems import ApiProblem
from opsdesk.desk import queries
from opsdesk.desk.access import Access
from opsdesk.desk.accounts import require_scope
from opsdesk.desk.audit import record_token_refused
from opsdesk.desk.security import TokenPrincipal, principal_for_token
from opsdesk.desk.throttle import Throttle
from opsdesk.domain.state import UserState
from opsdesk.model import OperatingModel
from opsdesk.settings import Settings
from opsdesk.store.db import Database

bearer = HTTPBearer(
    auto_error=False,
    description="An API token: `opsdesk token create --user EMAIL` prints one.",
)


async def get_db(request: Request) -> Database:
    # the cheap dependencies are async: a sync one costs a hop to the threadpool and back
    db: Database = request.app.state.db
    return db


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _unauthorized(detail: str, error: str | None = None) -> ApiProblem:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return ApiProblem(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


def _token_principal(db: Database, token: str) -> TokenPrincipal | None:
    with db.engine.connect() as conn:
        return principal_for_token(conn, token)


#: the methods a ``read`` token may call; every other one goes through a Writer, which
#: needs ``write`` (or ``admin`` for account management)
READ_METHODS = frozenset({"GET", "HEAD"})


async def current_principal(
    request: Request,
    db: Annotated[Database, Depends(get_db)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> TokenPrincipal:
    """The active user the bearer token belongs to, with the token's scopes; 401
    otherwise. Looked up on every request, never cached, so a revoked or expired token
    or a deactivated user fails at once. A GET needs the token's ``read`` scope (403)."""
    if credentials is None:
        raise _unauthorized("send an API token as `Authorization: Bearer <token>`")
    throttle: Throttle = request.app.state.throttle
    client = ratelimit.client_address(request)
    # a client over the bad-token limit is refused before the lookup: a flood of guesses
    # costs no query and no audit row (but the first refusal of each window)
    refusal = await ratelimit.consult(throttle, throttle.check_bad_token, client)
    if refusal is not None:
        raise await ratelimit.refuse(request, refusal)
    if db.dialect == "sqlite":
        # one indexed read of a local file, and in WAL mode readers never wait for a
        # writer: cheaper on the event loop than the hop to a thread and back
        principal = _token_principal(db, credentials.credentials)
    else:
        principal = await run_in_threadpool(_token_principal, db, credentials.credentials)
    if principal is None:
        await ratelimit.consult(throttle, throttle.hit_bad_token, client)
        route = f"{request.method} {request.url.path}"
        # a write, and a rare one: in a thread, so it never holds the event loop while
        # the timers have SQLite's write slot
        await run_in_threadpool(
            record_token_refused,
            db,
            credentials.credentials,
            route=route,
            client=request.client.host if request.client else None,
        )
        raise _unauthorized(
            "the token is unknown, revoked, expired or belongs to a deactivated user; "
            "create one with `opsdesk token create --user EMAIL`",
            "invalid_token",
        )
    user = principal.user
    request.state.user_id = user.id  # the audit trail names the caller of a refusal
    refusal = await ratelimit.consult(throttle, throttle.hit_request, f"token:{principal.token_id}")
    if refusal is not None:
        raise await ratelimit.refuse(request, refusal, actor_id=user.id, subject=f"user:{user.id}")
    if request.method in READ_METHODS:
        require_scope(principal.scopes, "read", f"call {request.method} {request.url.path}")
    return principal


CurrentPrincipal = Annotated[TokenPrincipal, Depends(current_principal)]


async def current_user(principal: CurrentPrincipal) -> UserState:
    """The user of :func:`current_principal` (FastAPI resolves the token once)."""
    return principal.user


CurrentUser = Annotated[UserState, Depends(current_user)]


class Reader:
    """Opens read-only transactions for the current user together with their
    :class:`Access` under the operating model in force. The routes pass both to the
    desk's queries, which check permission and team scope; no route decides access."""

    def __init__(self, db: Database, user: UserState, page_size_max: int) -> None:
        self.db = db
        self.user = user
        self.page_size_max = page_size_max

    def check_limit(self, limit: int) -> None:
        """Refuse pages larger than the configured maximum."""
        if limit > self.page_size_max:
            raise ApiProblem(
                422,
                "validation-failed",
                f"limit must be at most {self.page_size_max} (OPSDESK_PAGE_SIZE_MAX); "
                "follow the page's cursor (next_cursor, next_after_id, next_after_seq) for more",
            )

    @contextmanager
    def read(self) -> Iterator[tuple[Connection, Access]]:
        """A read transaction and the caller's access (from the user the token lookup
        loaded and the cached model: no further query)."""
        with self.db.read() as conn:
            model = self.model(conn)
            yield conn, Access.of(model, self.user)

    def model(self, conn: Connection) -> OperatingModel:
        """The operating model in force (cached by the database per version)."""
        return self.db.model(conn, queries.model_version_in_force(conn))


async def get_reader(
    db: Annotated[Database, Depends(get_db)],
    settings: Annotated[Settings, Depends(get_settings)],
    user: CurrentUser,
) -> Reader:
    return Reader(db, user, settings.page_size_max)


async def get_writer(
    request: Request,
    db: Annotated[Database, Depends(get_db)],
    settings: Annotated[Settings, Depends(get_settings)],
    principal: CurrentPrincipal,
) -> Writer:
    key = request.headers.get("Idempotency-Key")
    return Writer(
        db,
        principal.user,
        scopes=principal.scopes,
        key=key,
        method=request.method,
        path=request.url.path,
        # only a keyed request is compared with its first one; FastAPI caches the body
        fingerprint=request_fingerprint(await request.body()) if key is not None else "",
        ttl_hours=settings.idempotency_ttl_hours,
        turns=getattr(request.app.state, "write_turns", None),
    )


ReadAccess = Annotated[Reader, Depends(get_reader)]
WriteAccess = Annotated[Writer, Depends(get_writer)]
