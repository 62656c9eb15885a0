"""Accounts: which users a caller sees, what a token's scopes let it do, and the admin
actions on users and tokens.

Each action is one function taking the caller's unit of work: it checks the token's
scope (``scopes`` is None when no token is involved, e.g. the CLI run by an operator on
the server), leaves the permission checks to the domain commands, and appends its
events and audit rows in the caller's transaction. The API and the CLI both call these.

Who sees whom: ``users.read`` (ops leads, auditors, admins through ``"*"``) sees every
account; anyone else sees the members of their own teams and themselves. A user out of
sight is answered exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Text, bindparam, cast, exists, func, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from opsdesk.desk import queries, security, service
from opsdesk.desk.security import (
    CreatedToken,
    TokenInfo,
    TokenLifetime,
    TokenPrincipal,
    checked_scopes,
    revoke_credentials,
    tokens_of,
)
from opsdesk.domain.errors import DomainError, NotFound, PermissionDenied
from opsdesk.domain.limits import MAX_ID
from opsdesk.domain.state import UserState
from opsdesk.model import ALL_PERMISSIONS
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork, state_from_row

#: the permission that shows every account (without it: one's own teams and oneself)
READ_ALL = "users.read"
#: permissions only a token with the ``admin`` scope may exercise
ADMIN_PERMISSIONS = frozenset({"users.manage", "tokens.create", "model.apply"})


# --- scopes ------------------------------------------------------------------------------


class ScopeMissing(PermissionDenied):
    """The token lacks the scope an action needs (its user may well have the role)."""


def scope_for_permission(permission: str) -> str:
    """The scope a token needs to exercise ``permission``: reads need ``read``, account
    and model administration ``admin``, everything else ``write``."""
    if permission.endswith(".read"):
        return "read"
    if permission in ADMIN_PERMISSIONS or permission == ALL_PERMISSIONS:
        return "admin"
    return "write"


def require_scope(scopes: frozenset[str] | None, scope: str, doing: str) -> None:
    """Refuse (403) unless the token's ``scopes`` include ``scope``; None (no token,
    e.g. the CLI) passes.

    >>> require_scope(frozenset({"read"}), "write", "POST /api/v1/tickets")  # doctest: +SKIP
    """
    if scopes is None or scope in scopes:
        return
    has = ", ".join(sorted(scopes)) or "none"
    raise ScopeMissing(
        f"this token lacks the {scope!r} scope needed to {doing} (its scopes: {has}); "
        f"use a token that has it, e.g. `opsdesk token create --user EMAIL --scope {scope}`",
        f"scope:{scope}",
    )


def effective_permissions(granted: frozenset[str], scopes: frozenset[str] | None) -> list[str]:
    """The permissions a token can exercise: its user's roles' ones, narrowed by its
    scopes (a token never grants more than the roles)."""
    named = sorted(p for p in granted if p != ALL_PERMISSIONS)
    if scopes is None:
        return named
    return [p for p in named if scope_for_permission(p) in scopes]


# --- who sees whom -------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """A caller reading accounts: their user, what their roles grant under the model in
    force, and their token's scopes."""

    user: UserState
    granted: frozenset[str]
    scopes: frozenset[str] | None = None

    @property
    def sees_everyone(self) -> bool:
        return READ_ALL in self.granted or ALL_PERMISSIONS in self.granted

    def has(self, permission: str) -> bool:
        return permission in self.granted or ALL_PERMISSIONS in self.granted


def viewer_of(
    db: Database, conn: Connection, user: UserState, scopes: frozenset[str] | None
) -> Viewer:
    """The viewer ``user`` is under the operating model in force (roles the model no
    longer defines grant nothing)."""
    model = db.model(conn, queries.model_version_in_force(conn))
    return Viewer(user, model.granted(user.roles), scopes)


def _in_any_team(dialect: str, teams: Iterable[str]) -> Any:
    """Users in at least one of ``teams`` (users.teams is a JSON list); built from
    constructs, not text, so two of these in one query keep their own parameters."""
    wanted = sorted(teams)
    if dialect == "sqlite":
        each = func.json_each(t.users.c.teams).table_valued("value")
        return exists(select(literal(1)).select_from(each).where(each.c.value.in_(wanted)))
    return func.jsonb_exists_any(
        cast(t.users.c.teams, JSONB), bindparam(None, wanted, type_=ARRAY(Text))
    )


def _visible(viewer: Viewer, dialect: str) -> Any:
    if viewer.sees_everyone:
        return None
    mine = t.users.c.id == viewer.user.id
    if not viewer.user.teams:
        return mine
    return or_(mine, _in_any_team(dialect, viewer.user.teams))


def _user(row: Any) -> UserState:
    return state_from_row("users", dict(row._mapping))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class UserPage:
    items: list[UserState]
    next_after_id: int | None


def list_users(
    conn: Connection,
    viewer: Viewer,
    *,
    after_id: int = 0,
    limit: int = 100,
    team: str | None = None,
    active: bool | None = None,
) -> UserPage:
    """The users ``viewer`` may see with ``id > after_id``, by id, optionally of one
    team or only (in)active ones; ``next_after_id`` is None on the last page."""
    dialect = conn.dialect.name
    u = t.users.c
    query = select(t.users).where(u.id > after_id)
    visible = _visible(viewer, dialect)
    if visible is not None:
        query = query.where(visible)
    if team is not None:
        query = query.where(_in_any_team(dialect, [team]))
    if active is not None:
        query = query.where(u.active.is_(active))
    found = [_user(r) for r in conn.execute(query.order_by(u.id).limit(limit + 1))]
    more = len(found) > limit
    items = found[:limit]
    return UserPage(items, items[-1].id if more else None)


def get_user(conn: Connection, viewer: Viewer, user_id: int) -> UserState:
    """One user ``viewer`` may see; :class:`NotFound` (as for a missing one) otherwise."""
    query = select(t.users).where(t.users.c.id == user_id)
    visible = _visible(viewer, conn.dialect.name)
    if visible is not None:
        query = query.where(visible)
    row = conn.execute(query).first() if 1 <= user_id <= MAX_ID else None
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    return _user(row)


@dataclass(frozen=True)
class Me:
    """The caller as ``GET /me`` shows them."""

    user: UserState
    permissions: list[str]
    effective_permissions: list[str]
    token_id: int | None
    scopes: list[str]
    expires_at: datetime | None


def me(db: Database, conn: Connection, principal: TokenPrincipal) -> Me:
    """The caller: their account, what their roles grant, what this token can use of it."""
    viewer = viewer_of(db, conn, principal.user, principal.scopes)
    return Me(
        user=principal.user,
        permissions=sorted(p for p in viewer.granted if p != ALL_PERMISSIONS),
        effective_permissions=effective_permissions(viewer.granted, principal.scopes),
        token_id=principal.token_id,
        scopes=sorted(principal.scopes),
        expires_at=principal.expires_at,
    )


def list_tokens(conn: Connection, viewer: Viewer, user_id: int) -> list[TokenInfo]:
    """A user's tokens (never the tokens themselves): one's own, or anyone's with
    ``users.manage``."""
    get_user(conn, viewer, user_id)  # 404 for a user out of sight
    if user_id != viewer.user.id and not viewer.has("users.manage"):
        raise PermissionDenied(
            f"user {viewer.user.id} lacks the permission 'users.manage' to see the tokens of "
            f"user {user_id}; ask an admin",
            "users.manage",
        )
    return tokens_of(conn, user_id)


# --- admin actions --------------------------------------------------------------------------


def create_user(
    uow: UnitOfWork,
    *,
    name: str,
    email: str,
    roles: list[str],
    teams: list[str],
    skills: list[str] | None = None,
    scopes: frozenset[str] | None = None,
) -> UserState:
    """Create an account (``users.manage``; an ``admin``-scoped token)."""
    require_scope(scopes, "admin", "create users")
    return service.create_user(
        uow, name=name, email=email, roles=roles, teams=teams, skills=skills or []
    )


def change_user(
    uow: UnitOfWork,
    user_id: int,
    field: str,
    values: list[str],
    *,
    scopes: frozenset[str] | None = None,
) -> UserState:
    """Change a user's roles, teams or skills (``users.manage``; ``admin`` scope)."""
    require_scope(scopes, "admin", f"change users' {field}")
    return service.change_user(uow, user_id, field, values)


def deactivate_user(
    uow: UnitOfWork, user_id: int, reason: str, *, scopes: frozenset[str] | None = None
) -> tuple[UserState, list[int]]:
    """Deactivate a user and revoke every credential they hold, in one transaction
    (``users.manage``; ``admin`` scope). Returns the user and the tokens revoked."""
    require_scope(scopes, "admin", "deactivate users")
    if uow.actor_kind == "user" and uow.actor_id == user_id:
        raise DomainError("you cannot deactivate your own account; ask another admin")
    was_active = uow.user(user_id).active
    user = service.deactivate_user(uow, user_id, reason)
    revoked = revoke_credentials(uow, user_id, reason="user deactivated") if was_active else []
    return user, revoked


def create_token(
    uow: UnitOfWork,
    user_id: int,
    name: str = "api",
    *,
    token_scopes: Iterable[str] = security.DEFAULT_SCOPES,
    expires_in: timedelta | None = None,
    lifetime: TokenLifetime | None = None,
    scopes: frozenset[str] | None = None,
) -> CreatedToken:
    """A new token for a user (``admin`` scope; ``users.manage`` for someone else's).
    A token never creates one with a scope it does not have itself."""
    require_scope(scopes, "admin", "create tokens")
    wanted = checked_scopes(token_scopes)
    if scopes is not None and not set(wanted) <= scopes:
        extra = sorted(set(wanted) - scopes)
        raise ScopeMissing(
            f"this token cannot create a token with the scope {extra[0]!r}, which it lacks "
            f"itself; use a token that has {', '.join(extra)}",
            f"scope:{extra[0]}",
        )
    return security.create_token(
        uow, user_id, name, scopes=wanted, expires_in=expires_in, lifetime=lifetime
    )


def revoke_token(
    uow: UnitOfWork, token_id: int, reason: str, *, scopes: frozenset[str] | None = None
) -> TokenInfo:
    """Revoke a token (``admin`` scope; ``users.manage`` for someone else's)."""
    require_scope(scopes, "admin", "revoke tokens")
    return security.revoke_token(uow, token_id, reason=reason)
