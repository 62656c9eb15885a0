"""Running a write command as one transaction, honouring ``Idempotency-Key``.

The key, a fingerprint of the request and the first response are stored in
``idempotency_keys`` inside the command's own unit of work, so the response is
remembered exactly when the command committed. Writers are serialised by the log head
lock the unit of work takes first, so a concurrent duplicate waits, then finds the
stored response and replays it; the table's primary key backs this up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from opsdesk.api.problems import ApiProblem
from opsdesk.desk.accounts import require_scope
from opsdesk.domain.state import UserState
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200


def request_fingerprint(body: bytes) -> str:
    """SHA-256 of the request body; JSON is canonicalised first, so key order and
    whitespace do not make two equal requests differ."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def _json(result: BaseModel) -> bytes:
    # pydantic writes the JSON itself: no dict of JSON values in between, no json.dumps
    return result.__pydantic_serializer__.to_json(result)


def _json_response(body: bytes, status_code: int) -> Response:
    return Response(body, status_code=status_code, media_type="application/json")


class _KeyTaken(Exception):
    """Another transaction stored the same key first (the primary key refused ours)."""


class Writer:
    """Runs one command for the current user in a :class:`UnitOfWork`.

    >>> writer.run(lambda uow: Ticket.of(service.change_status(uow, 7, "open")))  # doctest: +SKIP
    """

    def __init__(
        self,
        db: Database,
        user: UserState,
        *,
        key: str | None,
        method: str,
        path: str,
        fingerprint: str,
        ttl_hours: int,
        turns: anyio.CapacityLimiter | None = None,
        scopes: frozenset[str] | None = None,
    ) -> None:
        if key is not None and not (
            0 < len(key) <= MAX_KEY_LENGTH and all(" " <= ch <= "~" for ch in key)
        ):
            raise ApiProblem(
                400,
                "invalid-idempotency-key",
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters; "
                "a UUID is a good choice",
            )
        self.db = db
        self.user = user
        self.key = key
        self.method = method
        self.path = path
        self.fingerprint = fingerprint
        self.ttl = timedelta(hours=ttl_hours)
        self.turns = turns
        #: the token's scopes (None: no token); a command needs ``write`` unless told
        self.scopes = scopes

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, actor_kind="user", actor_id=self.user.id)

    async def submit(
        self,
        command: Callable[[UnitOfWork], BaseModel],
        *,
        status_code: int = 200,
        scope: str = "write",
    ) -> Response:
        """:meth:`run`, on the event loop or in a worker thread.

        On SQLite (one writer at a time) a write runs right here on the event loop when
        this process's write slot is free: handing it to a thread, and the GIL back and
        forth at each statement, cost a third of a write. When the slot is taken (the
        in-process timers sweep) the write waits in a worker thread instead, so reads
        keep being answered; ``turns`` lets one such write wait at a time. (Another
        process holding SQLite's lock is not visible here: such a write waits in
        SQLite's busy handler on the event loop, at most OPSDESK_SQLITE_BUSY_TIMEOUT_MS.)
        PostgreSQL writes run side by side in the threadpool.
        """
        lock = self.db.write_lock
        if lock is not None and not lock.locked():
            return self.run(command, status_code=status_code, scope=scope)
        run = partial(self.run, command, status_code=status_code, scope=scope)
        return await anyio.to_thread.run_sync(run, limiter=self.turns)

    def run(
        self,
        command: Callable[[UnitOfWork], BaseModel],
        *,
        status_code: int = 200,
        scope: str = "write",
    ) -> Response:
        """Run ``command`` and render its result; a DomainError rolls everything back.
        The token must have ``scope`` (``write``; ``admin`` for account management)."""
        require_scope(self.scopes, scope, f"call {self.method} {self.path}")
        if self.key is None:
            with self.uow() as uow:
                body = _json(command(uow))
            return _json_response(body, status_code)
        try:
            with self.uow() as uow:
                stored = self._stored(uow.conn, uow.now, forget_expired=True)
                if stored is not None:
                    return stored
                body = _json(command(uow))
                self._remember(uow, status_code, json.loads(body))
        except _KeyTaken:
            with self.db.read() as conn:
                stored = self._stored(conn, datetime.now(UTC))
            if stored is None:  # the other request's row vanished: expired meanwhile
                raise ApiProblem(
                    409, "conflict", "a request with this Idempotency-Key is in flight; retry"
                ) from None
            return stored
        return _json_response(body, status_code)

    def _where(self) -> Any:
        c = t.idempotency_keys.c
        return (c.user_id == self.user.id) & (c.key == self.key)

    def _stored(
        self, conn: Connection, now: datetime, *, forget_expired: bool = False
    ) -> JSONResponse | None:
        """The replay of the stored first response, or None when the key is new."""
        row = conn.execute(select(t.idempotency_keys).where(self._where())).first()
        if row is None:
            return None
        if row.created_at < now - self.ttl:
            if forget_expired:
                conn.execute(delete(t.idempotency_keys).where(self._where()))
            return None
        if (row.method, row.path, row.request_hash) != (self.method, self.path, self.fingerprint):
            raise ApiProblem(
                422,
                "idempotency-key-reused",
                f"Idempotency-Key {self.key!r} was first used for a different request "
                f"({row.method} {row.path}); use a new key for a new request",
            )
        return JSONResponse(
            row.response, status_code=row.status_code, headers={REPLAYED_HEADER: "true"}
        )

    def _remember(self, uow: UnitOfWork, status_code: int, body: dict[str, Any]) -> None:
        try:
            # on conflict the whole unit of work rolls back and the first response is replayed
            uow.conn.execute(
                insert(t.idempotency_keys).values(
                    user_id=self.user.id,
                    key=self.key,
                    method=self.method,
                    path=self.path,
                    request_hash=self.fingerprint,
                    status_code=status_code,
                    response=body,
                    created_at=uow.now,
                )
            )
        except IntegrityError as exc:
            raise _KeyTaken() from exc
