"""Passwords (argon2) and API tokens (random, stored as SHA-256 hashes)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update

from opsdesk.domain import commands as cmd
from opsdesk.domain.errors import DomainError
from opsdesk.domain.state import UserState
from opsdesk.store import tables as t
from opsdesk.store.fastpath import TableSql
from opsdesk.store.uow import UnitOfWork, state_from_row

TOKEN_PREFIX = "odk_"  # noqa: S105 (a label, not a secret)
_hasher = PasswordHasher()


def hash_token(token: str) -> str:
    # tokens are 256 random bits, so a fast hash is enough (no dictionary to guess from)
    return hashlib.sha256(token.encode()).hexdigest()


def set_password(uow: UnitOfWork, user_id: int, password: str) -> None:
    if len(password) < 10:
        raise DomainError("a password needs at least 10 characters")
    user = uow.user(user_id)
    hashed = _hasher.hash(password)
    uow.flush()  # the user row may be new in this unit of work
    exists = uow.conn.execute(
        select(t.user_credentials.c.user_id).where(t.user_credentials.c.user_id == user_id)
    ).first()
    if exists:
        uow.conn.execute(
            update(t.user_credentials)
            .where(t.user_credentials.c.user_id == user_id)
            .values(password_hash=hashed)
        )
    else:
        uow.conn.execute(insert(t.user_credentials).values(user_id=user_id, password_hash=hashed))
    uow.append(cmd.credentials_changed(uow.context(), user, "password"))
    uow.audit("user.password_set", subject=f"user:{user_id}")


def check_password(conn: Connection, email: str, password: str) -> UserState | None:
    row = conn.execute(
        select(t.users, t.user_credentials.c.password_hash)
        .join(t.user_credentials, t.user_credentials.c.user_id == t.users.c.id)
        .where(t.users.c.email == email.strip().lower())
    ).first()
    if row is None:
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    data = {k: v for k, v in row._mapping.items() if k != "password_hash"}
    user = state_from_row("users", data)
    return user if user.active else None


@dataclass(frozen=True)
class CreatedToken:
    id: int
    user_id: int
    name: str
    token: str


def create_token(uow: UnitOfWork, user_id: int, name: str = "api") -> CreatedToken:
    """A new API token for a user; the plain token is returned once and never stored."""
    user = uow.user(user_id)
    if not user.active:
        raise DomainError(f"user {user_id} is deactivated")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    uow.flush()  # the user row may be new in this unit of work
    token_id = uow.next_id("api_token")
    uow.conn.execute(
        insert(t.api_tokens).values(
            id=token_id,
            user_id=user_id,
            name=name.strip() or "api",
            token_hash=hash_token(token),
            prefix=token[:10],
            created_at=uow.now,
        )
    )
    uow.append(cmd.credentials_changed(uow.context(), user, "token_created", token_id))
    uow.audit(
        "token.created", subject=f"token:{token_id}", details={"user_id": user_id, "name": name}
    )
    return CreatedToken(token_id, user_id, name, token)


@lru_cache(maxsize=4)
def _token_lookup(dialect: str) -> tuple[str, TableSql]:
    users = TableSql(t.users, dialect)
    ph = users.ph("token_hash")
    cols = ", ".join(f"users.{c}" for c in users.columns)
    sql = (
        f"SELECT {cols} FROM users JOIN api_tokens ON api_tokens.user_id = users.id "  # noqa: S608 (names from metadata)
        f"WHERE api_tokens.token_hash = {ph} AND api_tokens.revoked_at IS NULL"
    )
    return sql, users


def user_for_token(conn: Connection, token: str) -> UserState | None:
    """The active user a bearer token belongs to, or None.

    Every API request asks this, so the statement is rendered once per dialect and runs
    on the driver connection (SQLAlchemy Core costs about ten times the lookup). Nothing
    is cached between calls: a revoked token fails on its next request.
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
    user = state_from_row("users", users.decode(row))
    return user if user.active else None
