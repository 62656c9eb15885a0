"""The state of the jobs outbox, for ``opsdesk worker --status`` and for operators:
how much is due, and every job that failed (retrying or dead), with its error."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import case, func, select, update

from opsdesk.jobs.outbox import MAX_ATTEMPTS
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.jobs import Job


@dataclass(frozen=True, slots=True)
class FailedJob(Job):
    """A job whose handler raised: retried at ``run_at`` unless it is dead."""

    last_error: str | None
    dead: bool


@dataclass(slots=True)
class QueueStatus:
    """Counts per kind (due now, scheduled later, dead) and the failed jobs."""

    due: dict[str, int] = field(default_factory=dict)
    later: dict[str, int] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)
    next_run_at: datetime | None = None
    failed: list[FailedJob] = field(default_factory=list)

    @property
    def dead_total(self) -> int:
        return sum(self.dead.values())


def queue_status(
    db: Database,
    now: datetime | None = None,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    failed_limit: int = 100,
) -> QueueStatus:
    """How the outbox stands at ``now``; ``failed`` lists up to ``failed_limit`` jobs that
    failed at least once (dead ones first, then by attempts).

    >>> queue_status(db).dead  # doctest: +SKIP
    {'sla.timer': 1}
    """
    now = now or datetime.now(UTC)
    j = t.jobs
    is_dead = j.c.attempts >= max_attempts
    state = case(
        (is_dead, "dead"),
        (j.c.run_at <= now, "due"),
        else_="later",
    )
    status = QueueStatus()
    with db.read() as conn:
        for kind, where, count in conn.execute(
            select(j.c.kind, state, func.count()).group_by(j.c.kind, state)
        ):
            getattr(status, where)[kind] = count
        status.next_run_at = conn.execute(
            select(func.min(j.c.run_at)).where(j.c.run_at > now, ~is_dead)
        ).scalar()
        rows = conn.execute(
            select(
                j.c.id, j.c.kind, j.c.ticket_id, j.c.ref, j.c.run_at, j.c.attempts, j.c.last_error
            )
            .where(j.c.attempts > 0)
            .order_by(j.c.attempts.desc(), j.c.id)
            .limit(failed_limit)
        ).all()
    status.failed = [FailedJob(*row, dead=row.attempts >= max_attempts) for row in rows]
    return status


def retry_dead(
    db: Database, now: datetime | None = None, *, max_attempts: int = MAX_ATTEMPTS
) -> int:
    """Give every dead job a fresh set of attempts, due at ``now``; returns how many.
    (For after the cause is fixed: a new release, a corrected model.)"""
    now = now or datetime.now(UTC)
    with db.engine.begin() as conn:
        result = conn.execute(
            update(t.jobs).where(t.jobs.c.attempts >= max_attempts).values(attempts=0, run_at=now)
        )
    return result.rowcount
