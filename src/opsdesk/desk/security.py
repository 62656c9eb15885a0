"""Passwords (argon2) and API tokens (random, stored as SHA-256 hashes, with scopes and
an expiry), and the one function that revokes every credential of a user."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update

from opsdesk.domain import commands as cmd
from opsdesk.domain.errors import Conflict, DomainError, NotFound, PermissionDenied
from opsdesk.domain.limits import MAX_ID, text_problem
from opsdesk.domain.state import UserState
from opsdesk.store import tables as t
from opsdesk.store.fastpath import TableSql, datetime_reader, json_reader
from opsdesk.store.uow import UnitOfWork, state_from_row

TOKEN_PREFIX = "odk_"  # noqa: S105 (a label, not a secret)
_hasher = PasswordHasher()

#: what a token may be used for, always within its user's roles: ``read`` the GET
#: routes, ``write`` every other route but account management, ``admin`` that
SCOPES: tuple[str, ...] = ("read", "write", "admin")
DEFAULT_SCOPES: tuple[str, ...] = ("read", "write")
MAX_TOKEN_NAME = 100
MAX_REVOKE_REASON = 200


@dataclass(frozen=True)
class TokenLifetime:
    """How long a new token lives unless told (``default``), and at most (``maximum``);
    the interfaces build it from OPSDESK_TOKEN_TTL_DAYS and OPSDESK_TOKEN_MAX_TTL_DAYS."""

    default: timedelta = timedelta(days=90)
    maximum: timedelta = timedelta(days=365)

    @classmethod
    def days(cls, default: int, maximum: int) -> TokenLifetime:
        return cls(timedelta(days=default), timedelta(days=maximum))


@dataclass(frozen=True)
class TokenPrincipal:
    """Who a bearer token authenticates, and what the token itself allows."""

    user: UserState
    token_id: int
    scopes: frozenset[str]
    expires_at: datetime


@dataclass(frozen=True)
class CreatedToken:
    id: int
    user_id: int
    name: str
    token: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    expires_at: datetime | None = None


@dataclass(frozen=True)
class TokenInfo:
    """A token as it is listed: never the token, only what identifies it."""

    id: int
    user_id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: int | None
    revoked_reason: str | None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at is not None and self.expires_at > now


def hash_token(token: str) -> str:
    # tokens are 256 random bits, so a fast hash is enough (no dictionary to guess from)
    return hashlib.sha256(token.encode()).hexdigest()


# --- passwords -------------------------------------------------------------------------


def set_password(uow: UnitOfWork, user_id: int, password: str) -> int:
    """Set or change a user's password; a change revokes every credential the user
    holds (see :func:`revoke_credentials`). Returns how many were revoked."""
    if len(password) < 10:
        raise DomainError("a password needs at least 10 characters")
    if len(password) > 1_000:
        raise DomainError("a password is at most 1,000 characters")
    user = uow.user(user_id)
    hashed = _hasher.hash(password)
    uow.flush()  # the user row may be new in this unit of work
    exists = uow.conn.execute(
        select(t.user_credentials.c.user_id).where(t.user_credentials.c.user_id == user_id)
    ).first()
    revoked: list[int] = []
    if exists:
        uow.conn.execute(
            update(t.user_credentials)
            .where(t.user_credentials.c.user_id == user_id)
            .values(password_hash=hashed)
        )
        revoked = revoke_credentials(uow, user_id, reason="password changed")
    else:
        uow.conn.execute(insert(t.user_credentials).values(user_id=user_id, password_hash=hashed))
    uow.append(cmd.credentials_changed(uow.context(), user, "password"))
    uow.audit(
        "user.password_set",
        subject=f"user:{user_id}",
        details={"changed": bool(exists), "revoked_tokens": revoked},
    )
    return len(revoked)


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def check_password(conn: Connection, email: str, password: str) -> UserState | None:
    row = conn.execute(
        select(t.users, t.user_credentials.c.password_hash)
        .join(t.user_credentials, t.user_credentials.c.user_id == t.users.c.id)
        .where(t.users.c.email == email.strip().lower())
    ).first()
    if row is None:
        # the same argon2 work as a wrong password, so timing does not tell which
        # e-mail addresses have an account
        with contextlib.suppress(VerificationError):
            _hasher.verify(_decoy_hash(), password)
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    data = {k: v for k, v in row._mapping.items() if k != "password_hash"}
    user = state_from_row("users", data)
    return user if user.active else None


# --- tokens ----------------------------------------------------------------------------


def checked_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Scopes as stored: known, at least one, sorted, without repeats."""
    given = {s.strip().lower() for s in scopes}
    unknown = sorted(given - set(SCOPES))
    if unknown:
        raise DomainError(f"unknown token scope {unknown[0]!r}; use {', '.join(SCOPES)}")
    if not given:
        raise DomainError(f"a token needs at least one scope of {', '.join(SCOPES)}")
    return tuple(sorted(given))


def _token_name(name: str) -> str:
    name = name.strip() or "api"
    if len(name) > MAX_TOKEN_NAME:
        raise DomainError(f"a token name is at most {MAX_TOKEN_NAME} characters")
    problem = text_problem(name)
    if problem:
        raise DomainError(f"the token name {problem}")
    return name


def _lifetime(expires_in: timedelta | None, lifetime: TokenLifetime) -> timedelta:
    ttl = min(lifetime.default, lifetime.maximum) if expires_in is None else expires_in
    if ttl <= timedelta(0):
        raise DomainError("a token's lifetime must be positive, e.g. 30d or 12h")
    if ttl > lifetime.maximum:
        raise DomainError(
            f"a token lives at most {lifetime.maximum.days} days "
            "(OPSDESK_TOKEN_MAX_TTL_DAYS); ask for a shorter lifetime"
        )
    return ttl


def create_token(
    uow: UnitOfWork,
    user_id: int,
    name: str = "api",
    *,
    scopes: Iterable[str] = DEFAULT_SCOPES,
    expires_in: timedelta | None = None,
    lifetime: TokenLifetime | None = None,
    signed_in: bool = False,
) -> CreatedToken:
    """A new API token for a user; the plain token is returned once and never stored.

    It expires after ``expires_in`` (default: the lifetime's default, 90 days), at most
    the lifetime's maximum. A user acting through the API needs ``users.manage`` to make
    a token for someone else, ``tokens.create`` (or ``users.manage``) for themselves.

    >>> create_token(uow, 7, "ci", scopes=["read"], expires_in=timedelta(days=7))  # doctest: +SKIP
    """
    user = uow.user(user_id)
    ctx = uow.context()
    if uow.actor_kind == "user" and not (signed_in and uow.actor_id == user_id):
        # a password sign-in (desk.signin) is its own authority for the user's own token
        if uow.actor_id == user_id:
            try:
                ctx.require("users.manage")
            except PermissionDenied:
                ctx.require("tokens.create")  # the refusal names what to grant for this
        else:
            ctx.require("users.manage")
    if not user.active:
        raise Conflict(f"user {user_id} is deactivated; tokens are for active users only")
    stored_scopes = checked_scopes(scopes)
    label = _token_name(name)
    # on the wall clock, as the lookup checks it: a unit of work's own time may be a
    # simulated or imported past (the demo), which would issue tokens already expired
    expires_at = datetime.now(UTC) + _lifetime(expires_in, lifetime or TokenLifetime())
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    uow.flush()  # the user row may be new in this unit of work
    token_id = uow.next_id("api_token")
    uow.conn.execute(
        insert(t.api_tokens).values(
            id=token_id,
            user_id=user_id,
            name=label,
            token_hash=hash_token(token),
            prefix=token[:10],
            created_at=uow.now,
            scopes=list(stored_scopes),
            expires_at=expires_at,
        )
    )
    uow.append(cmd.credentials_changed(ctx, user, "token_created", token_id))
    uow.audit(
        "token.created",
        subject=f"token:{token_id}",
        details={
            "user_id": user_id,
            "name": label,
            "scopes": list(stored_scopes),
            "expires_at": expires_at.isoformat(),
        },
    )
    return CreatedToken(token_id, user_id, label, token, stored_scopes, expires_at)


def _info(row: object) -> TokenInfo:
    m = row._mapping  # type: ignore[attr-defined]
    return TokenInfo(
        id=m["id"],
        user_id=m["user_id"],
        name=m["name"],
        prefix=m["prefix"],
        scopes=tuple(m["scopes"]),
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        revoked_by=m["revoked_by"],
        revoked_reason=m["revoked_reason"],
    )


_TOKEN_COLUMNS = [c for c in t.api_tokens.c if c.name != "token_hash"]


def token_info(conn: Connection, token_id: int) -> TokenInfo:
    """One token (never the token itself); :class:`NotFound` if there is none."""
    row = None
    if 1 <= token_id <= MAX_ID:
        row = conn.execute(select(*_TOKEN_COLUMNS).where(t.api_tokens.c.id == token_id)).first()
    if row is None:
        raise NotFound(f"token {token_id} does not exist")
    return _info(row)


def tokens_of(conn: Connection, user_id: int) -> list[TokenInfo]:
    """Every token of a user, newest first, revoked and expired ones included."""
    rows = conn.execute(
        select(*_TOKEN_COLUMNS)
        .where(t.api_tokens.c.user_id == user_id)
        .order_by(t.api_tokens.c.id.desc())
    )
    return [_info(row) for row in rows]


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise DomainError("say why the token is revoked")
    if len(reason) > MAX_REVOKE_REASON:
        raise DomainError(f"a revocation reason is at most {MAX_REVOKE_REASON} characters")
    problem = text_problem(reason)
    if problem:
        raise DomainError(f"the reason {problem}")
    return reason


def _revoke(uow: UnitOfWork, user: UserState, token_ids: list[int], reason: str) -> None:
    """Mark live tokens revoked, with one event and one audit row each."""
    if not token_ids:
        return
    uow.conn.execute(
        update(t.api_tokens)
        .where(t.api_tokens.c.id.in_(token_ids), t.api_tokens.c.revoked_at.is_(None))
        .values(
            revoked_at=uow.now,
            revoked_by=uow.actor_id if uow.actor_kind == "user" else None,
            revoked_reason=reason,
        )
    )
    ctx = uow.context()
    for token_id in token_ids:
        uow.append(cmd.credentials_changed(ctx, user, "token_revoked", token_id))
        uow.audit(
            "token.revoked",
            subject=f"token:{token_id}",
            details={"user_id": user.id, "reason": reason},
        )


def revoke_token(uow: UnitOfWork, token_id: int, *, reason: str = "revoked") -> TokenInfo:
    """Revoke one token: it is refused from its next request on. A user acting through
    the API may revoke their own tokens; anyone else's needs ``users.manage``."""
    uow.flush()
    info = token_info(uow.conn, token_id)
    user = uow.user(info.user_id)
    if uow.actor_kind == "user" and uow.actor_id != info.user_id:
        uow.context().require("users.manage")
    if info.revoked_at is not None:
        raise Conflict(
            f"token {token_id} was already revoked at {info.revoked_at.isoformat()}; nothing to do"
        )
    _revoke(uow, user, [token_id], _reason(reason))
    return token_info(uow.conn, token_id)


def revoke_credentials(uow: UnitOfWork, user_id: int, *, reason: str) -> list[int]:
    """Revoke every credential of a user that still works, in this unit of work; the
    ids of the tokens revoked (expired ones included: nothing may revive them).

    Today the credentials are API tokens. A password change and a deactivation call
    this; the web workspace adds its sessions here, so every caller keeps the promise
    "nothing issued before this moment still works"."""
    user = uow.user(user_id)
    uow.flush()
    ids = [
        row.id
        for row in uow.conn.execute(
            select(t.api_tokens.c.id)
            .where(t.api_tokens.c.user_id == user_id, t.api_tokens.c.revoked_at.is_(None))
            .order_by(t.api_tokens.c.id)
        )
    ]
    _revoke(uow, user, ids, _reason(reason))
    return ids


# --- the lookup on every request ---------------------------------------------------------


@lru_cache(maxsize=4)
def _token_lookup(dialect: str) -> tuple[str, TableSql]:
    users = TableSql(t.users, dialect)
    ph = users.ph("token_hash")
    cols = ", ".join(f"users.{c}" for c in users.columns)
    sql = (
        f"SELECT {cols}, api_tokens.id, api_tokens.scopes, api_tokens.expires_at "  # noqa: S608 (names from metadata)
        "FROM users JOIN api_tokens ON api_tokens.user_id = users.id "
        f"WHERE api_tokens.token_hash = {ph} AND api_tokens.revoked_at IS NULL"
    )
    return sql, users


def principal_for_token(
    conn: Connection, token: str, now: datetime | None = None
) -> TokenPrincipal | None:
    """The active user a live bearer token belongs to, with the token's id, scopes and
    expiry; None for a token unknown, revoked, expired or of a deactivated user.

    Every API request asks this, so the statement is rendered once per dialect and runs
    on the driver connection (SQLAlchemy Core costs about ten times the lookup): one
    read by the unique token hash. Nothing is cached between calls: a revoked token
    fails on its next request.
    """
    sql, users = _token_lookup(conn.dialect.name)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, {"token_hash": hash_token(token)})
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        return None
    n = len(users.columns)
    token_id, scopes, expires_raw = row[n], row[n + 1], row[n + 2]
    expires_at = datetime_reader(conn.dialect.name)(expires_raw)
    if expires_at is None or expires_at <= (now or datetime.now(UTC)):
        return None
    user = state_from_row("users", users.decode(row[:n]))
    if not user.active:
        return None
    return TokenPrincipal(user, token_id, frozenset(json_reader(scopes)), expires_at)


def user_for_token(conn: Connection, token: str) -> UserState | None:
    """The active user a live bearer token belongs to, or None."""
    principal = principal_for_token(conn, token)
    return principal.user if principal is not None else None
