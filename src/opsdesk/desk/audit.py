"""The audit trail as a capability: record refusals, verify the chain, export, page.

Actions that succeed are recorded by the command that performs them (``uow.audit`` in
its own transaction). Refusals and failures roll their transaction back, so they are
recorded here, each in a small unit of work of its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import Connection, select

from opsdesk.domain.errors import PermissionDenied
from opsdesk.store import tables as t
from opsdesk.store.audit import GENESIS, AuditRow, row_hash
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

log = logging.getLogger("opsdesk.audit")

_COLUMNS = [c.name for c in t.audit_log.columns]
_BATCH = 10_000


def _row(raw: Any) -> AuditRow:
    return AuditRow(**dict(zip(_COLUMNS, raw, strict=True)))


# --- recording what rolls back ------------------------------------------------------


def _record_apart(db: Database, action: str, **fields: Any) -> None:
    """One audit row in a unit of work of its own; a failure to record is logged, never
    raised (the caller is already refusing something: it must not become a 500)."""
    client = fields.pop("client", None)
    try:
        with UnitOfWork(db) as uow:
            uow.client = client
            uow.audit(action, **fields)
    except Exception:
        log.exception("could not record audit action %s %s", action, fields)


def record_refusal(
    db: Database,
    refusal: PermissionDenied,
    *,
    actor_id: int | None,
    route: str,
    client: str | None = None,
) -> None:
    """Record that a caller was refused for lack of a permission or approver role."""
    _record_apart(
        db,
        "access.refused",
        outcome="refused",
        actor_kind="user" if actor_id is not None else "anonymous",
        actor_id=actor_id,
        subject=route,
        details={"permission": refusal.permission, "reason": refusal.message},
        client=client,
    )


def record_token_refused(db: Database, token: str, *, route: str, client: str | None) -> None:
    """Record an API call whose bearer token was refused. The token itself is never
    stored: a known (revoked, or a deactivated user's) token is named by its id."""
    from opsdesk.desk.security import hash_token

    with db.read() as conn:
        c = t.api_tokens.c
        known = conn.execute(
            select(c.id, c.user_id, c.revoked_at, c.expires_at).where(
                c.token_hash == hash_token(token)
            )
        ).first()
    if known is None:
        subject, actor_kind, actor_id, reason = None, "anonymous", None, "unknown token"
    else:
        subject, actor_kind, actor_id = f"token:{known.id}", "user", known.user_id
        if known.revoked_at is not None:
            reason = "revoked token"
        elif known.expires_at is None or known.expires_at <= datetime.now(UTC):
            reason = "expired token"
        else:
            reason = "user deactivated"
    _record_apart(
        db,
        "auth.token_refused",
        outcome="failed",
        actor_kind=actor_kind,
        actor_id=actor_id,
        subject=subject,
        details={"reason": reason, "route": route},
        client=client,
    )


def record_login_failed(
    db: Database, *, email: str, client: str | None, locked_for: int | None
) -> None:
    """Record a failed password sign-in as ``email`` (the e-mail tried, whether or not an
    account has it) and, when ``locked_for`` is given, that it locked the account for
    that many seconds."""
    _record_apart(
        db,
        "auth.login_failed",
        outcome="failed",
        actor_kind="anonymous",
        actor_id=None,
        subject=email,
        details={"reason": "wrong e-mail or password, or a deactivated account"},
        client=client,
    )
    if locked_for is not None:
        _record_apart(
            db,
            "auth.locked_out",
            outcome="refused",
            actor_kind="anonymous",
            actor_id=None,
            subject=email,
            details={"locked_for_seconds": locked_for},
            client=client,
        )


def record_rate_limited(
    db: Database,
    *,
    limit: str,
    actor_id: int | None,
    subject: str | None,
    route: str,
    client: str | None,
) -> None:
    """Record that a caller went over a rate limit (once per limit, key and window: the
    throttle says which refusal is the first)."""
    _record_apart(
        db,
        "auth.rate_limited",
        outcome="refused",
        actor_kind="user" if actor_id is not None else "anonymous",
        actor_id=actor_id,
        subject=subject or (f"client:{client}" if client else None),
        details={"limit": limit, "route": route},
        client=client,
    )


def record_export(
    db: Database, action: str, *, output: str | None, details: dict[str, Any]
) -> None:
    """Record an export (of events or of the audit trail) after it was written."""
    with UnitOfWork(db) as uow:
        uow.audit(action, subject=output or "stdout", details=details)


# --- reading ---------------------------------------------------------------------------


def rows(conn: Connection, *, after_seq: int = 0) -> Iterator[AuditRow]:
    """Every audit row after ``after_seq``, in seq order, streamed in batches."""
    result = conn.execution_options(yield_per=_BATCH).execute(
        select(t.audit_log).where(t.audit_log.c.seq > after_seq).order_by(t.audit_log.c.seq)
    )
    for part in result.partitions():
        for raw in part:
            yield _row(raw)


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditRow]
    next_after_seq: int | None


def audit_page(
    conn: Connection,
    *,
    after_seq: int = 0,
    limit: int = 100,
    action: str | None = None,
    actor_kind: str | None = None,
    actor_id: int | None = None,
    since: datetime | None = None,
) -> AuditPage:
    """Audit rows with ``seq > after_seq`` in seq order, optionally of one action, actor
    or from an instant on; ``next_after_seq`` is None on the last page."""
    c = t.audit_log.c
    query = select(t.audit_log).where(c.seq > after_seq)
    if action is not None:
        query = query.where(c.action == action)
    if actor_kind is not None:
        query = query.where(c.actor_kind == actor_kind)
    if actor_id is not None:
        query = query.where(c.actor_id == actor_id)
    if since is not None:
        # an instant without a zone is read as UTC, as everything in storage is
        query = query.where(c.at >= (since if since.tzinfo else since.replace(tzinfo=UTC)))
    found = [_row(r) for r in conn.execute(query.order_by(c.seq).limit(limit + 1))]
    more = len(found) > limit
    items = found[:limit]
    return AuditPage(items, items[-1].seq if more else None)


# --- verifying -------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditReport:
    """What ``opsdesk audit verify`` found: ``problem`` names the first bad row."""

    rows: int
    last_seq: int
    problem: str | None = None
    bad_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _content(row: AuditRow, seq: int | None = None) -> dict[str, Any]:
    data = {name: getattr(row, name) for name in _COLUMNS}
    if seq is not None:
        data["seq"] = seq
    return data


def _intact(row: AuditRow, seq: int | None = None) -> bool:
    return row_hash(_content(row, seq)) == row.hash


def verify_chain(db: Database) -> AuditReport:
    """Walk the chain in seq order and name the first row that was edited, inserted or
    deleted; the last row is checked against the head row, which catches truncation.

    Diagnosis at each row R (rows before it are already proven):
    a gap in seq means rows were deleted; R not chaining from the row before but from
    the one before that means that row was inserted; R chaining from nothing we hold,
    while its own content hashes as it would one seq later, means a row was deleted and
    the rest renumbered; R's content not matching its hash means R was edited; and a row
    whose hash was recomputed after an edit is caught by the next link (or the head).
    """
    n = 0
    before: AuditRow | None = None  # the last proven row
    two_before: AuditRow | None = None

    def bad(problem: str, seq: int) -> AuditReport:
        return AuditReport(n, before.seq if before else 0, problem, seq)

    with db.read() as conn:
        head = conn.execute(select(t.audit_head).where(t.audit_head.c.id == 1)).first()
        for row in rows(conn):
            expected = before.seq + 1 if before else 1
            prev_hash = before.hash if before else GENESIS
            if row.seq > expected:
                gone = (
                    f"row {expected} was deleted"
                    if row.seq == expected + 1
                    else f"rows {expected} to {row.seq - 1} were deleted"
                )
                return bad(gone, expected)
            if row.prev_hash != prev_hash:
                if two_before is not None and row.prev_hash == two_before.hash:
                    assert before is not None
                    return bad(
                        f"a row was inserted before row {row.seq} (row {before.seq} is not "
                        "in the chain)",
                        before.seq,
                    )
                if not _intact(row) and _intact(row, row.seq + 1):
                    return bad(
                        f"a row was deleted before row {row.seq} (later rows were renumbered)",
                        row.seq,
                    )
                if _intact(row) and before is not None:
                    return bad(
                        f"row {before.seq} was edited (its hash was recomputed; row "
                        f"{row.seq} chains from the original)",
                        before.seq,
                    )
                return bad(f"row {row.seq} was edited", row.seq)
            if not _intact(row):
                return bad(f"row {row.seq} was edited", row.seq)
            two_before, before = before, row
            n += 1
    last_seq = before.seq if before else 0
    last_hash = before.hash if before else GENESIS
    if head is None:
        return AuditReport(n, last_seq, "the audit head row is missing", last_seq)
    if head.last_seq > last_seq:
        gone = (
            f"row {last_seq + 1} was deleted"
            if head.last_seq == last_seq + 1
            else f"rows {last_seq + 1} to {head.last_seq} were deleted"
        )
        return AuditReport(n, last_seq, gone + " (the end of the trail is missing)", last_seq + 1)
    if head.last_seq < last_seq:
        return AuditReport(
            n,
            last_seq,
            f"row {head.last_seq + 1} was inserted after the head of the trail",
            head.last_seq + 1,
        )
    if head.last_hash != last_hash:
        return AuditReport(n, last_seq, f"row {last_seq} was edited", last_seq)
    return AuditReport(n, last_seq)


# --- exporting -------------------------------------------------------------------------


def export_json_lines(db: Database, out: IO[str], *, since: int = 0) -> int:
    """Write the rows after seq ``since`` as JSON lines (one object per row, ``hash`` and
    ``prev_hash`` included, so a SIEM can re-check the chain); returns how many."""
    n = 0
    with db.read() as conn:
        for row in rows(conn, after_seq=since):
            out.write(json.dumps(row.as_json(), sort_keys=True, ensure_ascii=False) + "\n")
            n += 1
    return n
