"""Draining the jobs outbox: claim due rows, run their handlers, delete them, one commit.

A command writes a job row with ``uow.schedule`` in its own transaction, so work caused
by a rolled-back command never exists. :func:`run_due` claims due rows inside a
:class:`UnitOfWork`, runs each handler and the reactions to what it appended, and
deletes the claimed rows in that same transaction: a job's effects and its removal
commit together or not at all, which is why a job fires at most once. Handlers re-check
the state they act on, so a stale job (the ticket moved on) is a harmless no-op.

On PostgreSQL the claim is ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent workers
take disjoint rows; the unit of work also locks the log head row first, so batches of
two workers in fact commit one after the other and the second sees the first's deletes.
On SQLite the write lock (``BEGIN IMMEDIATE``) serialises them the same way.

A handler that raises rolls its whole batch back; the failure is recorded on its row
in a separate transaction (attempts + 1, the error, ``run_at`` pushed back with
exponential backoff), and the batch runs again without it. After ``max_attempts`` the
row stays in the table as a dead job, shown by ``opsdesk worker --status`` until an
operator retries it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update

from opsdesk.desk.reactions import react
from opsdesk.jobs.handlers import handler_for
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.jobs import Job
from opsdesk.store.uow import UnitOfWork

log = logging.getLogger("opsdesk.jobs")

#: attempts after which a failing job stops being retried (it stays, as a dead job)
MAX_ATTEMPTS = 8
#: the first retry waits this long; each further one twice as long, up to BACKOFF_CAP
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
#: the longest error text kept on a job row
ERROR_CHARS = 2000


@dataclass(slots=True)
class SweepResult:
    """What one sweep did, per job kind."""

    worker: str
    fired: Counter[str] = field(default_factory=Counter)  # the handler appended events
    noop: Counter[str] = field(default_factory=Counter)  # it ran and found nothing to do
    failed: Counter[str] = field(default_factory=Counter)  # it raised; retried later
    events: int = 0  # events appended by the handlers and the reactions to them
    batches: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Jobs that ran to completion (fired or no-op) and left the outbox."""
        return sum(self.fired.values()) + sum(self.noop.values())

    def kinds(self) -> list[str]:
        return sorted(set(self.fired) | set(self.noop) | set(self.failed))

    def summary(self) -> str:
        """One line, e.g. ``sla.timer: 12 fired, 1 no-op; exception.expire: 1 failed``."""
        parts = []
        for kind in self.kinds():
            figures = [
                f"{counter[kind]} {label}"
                for counter, label in (
                    (self.fired, "fired"),
                    (self.noop, "no-op"),
                    (self.failed, "failed"),
                )
                if counter[kind]
            ]
            parts.append(f"{kind}: {', '.join(figures)}")
        return "; ".join(parts) or "nothing due"


class JobFailed(Exception):
    """A handler raised; carries the job so the runner can record the failure."""

    def __init__(self, job: Job, error: BaseException, position: int = 0) -> None:
        super().__init__(f"job {job.id} ({job.kind}) failed: {error!r}")
        self.job = job
        self.error = error
        self.position = position  # how many jobs of its batch ran fine before it


def backoff(attempts: int) -> timedelta:
    """How long to wait before retry number ``attempts`` (1-based): 30 s, 60 s, 2 min, ...
    capped at one hour."""
    wait: timedelta = BACKOFF_BASE * 2 ** min(max(attempts - 1, 0), 20)
    return min(wait, BACKOFF_CAP)


def run_due(
    db: Database,
    now: datetime | None = None,
    *,
    batch: int = 500,
    worker: str = "worker",
    max_attempts: int = MAX_ATTEMPTS,
    stop: threading.Event | None = None,
) -> SweepResult:
    """Run every job due at ``now`` (default: the clock), ``batch`` jobs per transaction,
    until none is left that was in the outbox when the sweep began (a handler that
    re-schedules work due at once leaves it for the next sweep). ``stop`` is checked
    between batches: a worker asked to stop finishes the batch in hand.

    >>> result = run_due(db, batch=500, worker="worker-1")  # doctest: +SKIP
    >>> result.summary()  # doctest: +SKIP
    'exception.expire: 3 fired; sla.timer: 120 fired, 4 no-op'
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    started = datetime.now(UTC)
    result = SweepResult(worker=worker)
    with db.read() as conn:
        last_id = conn.execute(select(func.max(t.jobs.c.id))).scalar()
    if last_id is None:
        return result
    limit = batch
    while stop is None or not stop.is_set():
        try:
            claimed = _run_batch(db, now, limit, last_id, max_attempts, result)
        except JobFailed as failure:
            _record_failure(db, failure, now, max_attempts, worker)
            result.failed[failure.job.kind] += 1
            # the failed job is no longer due; commit the jobs that ran fine before it on
            # their own, so many failures in one batch cost linear, not quadratic, time
            limit = failure.position or batch
            continue
        if claimed < limit:
            break
        limit = batch
    result.seconds = (datetime.now(UTC) - started).total_seconds()
    return result


def _claim(
    uow: UnitOfWork, cutoff: datetime, batch: int, last_id: int, max_attempts: int
) -> list[Job]:
    query = (
        select(
            t.jobs.c.id,
            t.jobs.c.kind,
            t.jobs.c.ticket_id,
            t.jobs.c.ref,
            t.jobs.c.run_at,
            t.jobs.c.attempts,
        )
        .where(
            t.jobs.c.run_at <= cutoff,
            t.jobs.c.attempts < max_attempts,
            t.jobs.c.id <= last_id,
        )
        .order_by(t.jobs.c.run_at, t.jobs.c.id)
        .limit(batch)
    )
    if uow.db.dialect != "sqlite":  # SQLite's write lock already excludes other workers
        query = query.with_for_update(skip_locked=True)
    return [Job(*row) for row in uow.conn.execute(query)]


def _run_batch(
    db: Database,
    now: datetime | None,
    batch: int,
    last_id: int,
    max_attempts: int,
    result: SweepResult,
) -> int:
    """Claim up to ``batch`` due jobs, run them and delete them in one unit of work;
    returns how many were claimed. Raises :class:`JobFailed` (everything rolled back)
    when a handler raises."""
    fired: Counter[str] = Counter()
    noop: Counter[str] = Counter()
    with UnitOfWork(db, actor_kind="system", now=now) as uow:
        jobs = _claim(uow, uow.now, batch, last_id, max_attempts)
        if not jobs:
            return 0
        uow.preload([j.ticket_id for j in jobs if j.ticket_id is not None])
        for position, job in enumerate(jobs):
            before = len(uow.appended)
            try:
                handler_for(job.kind)(uow, job)
                if len(uow.appended) > before:
                    react(uow, uow.appended[before:])
                # write now, so a database error is pinned on this job, not the batch
                uow.flush()
            except Exception as exc:
                raise JobFailed(job, exc, position) from exc
            (fired if len(uow.appended) > before else noop)[job.kind] += 1
        uow.conn.execute(delete(t.jobs).where(t.jobs.c.id.in_([job.id for job in jobs])))
    # committed: only now do this batch's figures count
    result.fired.update(fired)
    result.noop.update(noop)
    result.events += len(uow.appended)
    result.batches += 1
    return len(jobs)


def _record_failure(
    db: Database, failure: JobFailed, now: datetime | None, max_attempts: int, worker: str
) -> None:
    job, error = failure.job, failure.error
    attempts = job.attempts + 1
    message = f"{error.__class__.__name__}: {error}"[:ERROR_CHARS]
    retry_at = (now or datetime.now(UTC)) + backoff(attempts)
    with db.engine.begin() as conn:
        conn.execute(
            update(t.jobs)
            .where(t.jobs.c.id == job.id)
            .values(attempts=attempts, last_error=message, run_at=retry_at)
        )
    if attempts >= max_attempts:
        log.error(
            "%s: job %s (%s, ticket %s, ref %r) failed %d times and is dead: %s",
            worker,
            job.id,
            job.kind,
            job.ticket_id,
            job.ref,
            attempts,
            message,
            exc_info=error,
        )
    else:
        log.warning(
            "%s: job %s (%s, ticket %s, ref %r) failed (attempt %d), retry at %s: %s",
            worker,
            job.id,
            job.kind,
            job.ticket_id,
            job.ref,
            attempts,
            retry_at.isoformat(timespec="seconds"),
            message,
            exc_info=error,
        )
