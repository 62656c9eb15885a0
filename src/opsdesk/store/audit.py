"""Appending to the audit trail: canonical rows chained by SHA-256.

Each row's ``hash`` is SHA-256 over the sorted-key compact JSON of every other column,
``prev_hash`` included, so a row commits to everything before it; the first row chains
from :data:`GENESIS`. The ``audit_head`` row keeps the last seq and hash: appenders lock
it (after the log head the unit of work already holds, the same order everywhere), so
the chain never forks, and verification checks the tail against it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from opsdesk.domain.audit import AUDIT_ACTOR_KINDS, check_action
from opsdesk.store import tables as t

#: what the first row's prev_hash is: SHA-256 of b"opsdesk audit trail genesis"
GENESIS = hashlib.sha256(b"opsdesk audit trail genesis").hexdigest()

#: detail keys never stored, whoever passes them (the trail must hold no secret)
SECRET_KEYS = frozenset({"password", "token", "secret", "password_hash", "token_hash"})


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One row of the audit trail, as stored."""

    seq: int
    at: datetime
    action: str
    outcome: str
    actor_kind: str
    actor_id: int | None
    subject: str | None
    client: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        """The row as JSON values (what the export writes and the API returns)."""
        data = asdict(self)
        data["at"] = iso(self.at)
        return data


def iso(at: datetime) -> str:
    """The one text form of an instant in the chain: UTC, microseconds, ``+00:00``."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(row: dict[str, Any]) -> bytes:
    """Sorted-key compact JSON of every column but ``hash`` (``at`` as :func:`iso`)."""
    content = {k: v for k, v in row.items() if k != "hash"}
    content["at"] = iso(content["at"]) if isinstance(content["at"], datetime) else content["at"]
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def row_hash(row: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


def clean_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """Details as they come back from the database (plain JSON), without secret keys."""
    cleaned = {k: v for k, v in (details or {}).items() if k.lower() not in SECRET_KEYS}
    result: dict[str, Any] = json.loads(json.dumps(cleaned, sort_keys=True, default=str))
    return result


_LOCK_HEAD = (
    select(t.audit_head.c.last_seq, t.audit_head.c.last_hash)
    .where(t.audit_head.c.id == 1)
    .with_for_update()  # SQLite: no-op, the writer's BEGIN IMMEDIATE already serialises
)


class AuditAppender:
    """Appends audit rows inside one open transaction (see ``UnitOfWork.audit``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        head = conn.execute(_LOCK_HEAD).first()
        if head is None:
            raise RuntimeError(
                "the audit_head row is missing; the audit trail has been tampered with "
                "(run `opsdesk audit verify`)"
            )
        self.last_seq: int = head.last_seq
        self.last_hash: str = head.last_hash

    def append(
        self,
        action: str,
        *,
        at: datetime,
        outcome: str,
        actor_kind: str,
        actor_id: int | None,
        subject: str | None,
        client: str | None,
        details: dict[str, Any] | None,
    ) -> AuditRow:
        check_action(action, outcome)
        if actor_kind not in AUDIT_ACTOR_KINDS:
            raise ValueError(f"unknown audit actor kind {actor_kind!r}")
        row: dict[str, Any] = {
            "seq": self.last_seq + 1,
            "at": at.astimezone(UTC),
            "action": action,
            "outcome": outcome,
            "actor_kind": actor_kind,
            "actor_id": actor_id,
            "subject": None if subject is None else str(subject)[:300],
            "client": None if client is None else str(client)[:100],
            "details": clean_details(details),
            "prev_hash": self.last_hash,
        }
        row["hash"] = row_hash(row)
        self.conn.execute(insert(t.audit_log).values(**row))
        self.conn.execute(
            update(t.audit_head)
            .where(t.audit_head.c.id == 1)
            .values(last_seq=row["seq"], last_hash=row["hash"])
        )
        self.last_seq, self.last_hash = row["seq"], row["hash"]
        return AuditRow(**row)
