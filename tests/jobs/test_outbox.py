"""The jobs outbox on SQLite and PostgreSQL: atomic with the write that scheduled it,
fired once, deleted with its effects, failures isolated, retried and then kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from opsdesk.desk import service
from opsdesk.jobs import handlers, queries
from opsdesk.jobs.outbox import backoff, run_due
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.jobs import Job
from opsdesk.store.uow import UnitOfWork
from tests import factories
from tests.jobs.helpers import (
    ASKED_AT,
    MAX_DURATION,
    exception_status,
    expired_events,
    expiry_job_count,
    jobs,
    requested_exceptions,
)

AFTER = ASKED_AT + MAX_DURATION + timedelta(hours=1)


class Boom(RuntimeError):
    pass


@pytest.fixture
def exploding() -> Iterator[str]:
    """A job kind whose handler tags the ticket, then raises: its tag must never land."""

    def explode(uow: UnitOfWork, job: Job) -> None:
        assert job.ticket_id is not None
        service.change_tags(uow, job.ticket_id, add=["exploded"])
        raise Boom(f"exploded on {job.ref}")

    handlers.register("test.explode", explode)
    yield "test.explode"
    handlers.unregister("test.explode")


def test_a_job_scheduled_in_a_rolled_back_unit_of_work_never_exists(model_db: Database) -> None:
    ticket = factories.ticket(model_db)
    before = len(jobs(model_db))
    with pytest.raises(RuntimeError), UnitOfWork(model_db, now=ASKED_AT) as uow:
        service.request_exception(uow, ticket.id, "refund_outside_policy", "goodwill")
        uow.schedule("exception.expire", ASKED_AT, ticket_id=ticket.id, ref="1")
        uow.flush()  # the rows are written, then the transaction rolls back
        raise RuntimeError("the command failed after scheduling")
    assert len(jobs(model_db)) == before
    assert expiry_job_count(model_db) == 0
    result = run_due(model_db, AFTER + timedelta(days=60))
    assert result.fired["exception.expire"] == 0 and not result.failed


def test_due_jobs_fire_once_and_leave_with_their_effects(model_db: Database) -> None:
    ids = requested_exceptions(model_db, 5)
    assert expiry_job_count(model_db) == 5
    early = run_due(model_db, ASKED_AT + MAX_DURATION - timedelta(minutes=1), batch=2)
    assert early.fired["exception.expire"] == 0 and expiry_job_count(model_db) == 5
    assert set(exception_status(model_db).values()) == {"requested"}

    result = run_due(model_db, AFTER, batch=2, worker="w1")
    assert result.fired["exception.expire"] == 5 and result.failed["exception.expire"] == 0
    assert result.worker == "w1" and result.batches >= 3 and result.events >= 5
    assert "exception.expire: 5 fired" in result.summary()
    assert expiry_job_count(model_db) == 0
    assert expired_events(model_db) == {x: 1 for x in ids}
    assert exception_status(model_db) == {x: "expired" for x in ids}
    again = run_due(model_db, AFTER + timedelta(days=1))
    assert again.fired["exception.expire"] == 0 and expired_events(model_db) == {x: 1 for x in ids}


def test_only_due_jobs_run(model_db: Database) -> None:
    first = requested_exceptions(model_db, 2)
    later = requested_exceptions(model_db, 3, at=ASKED_AT + timedelta(days=3))
    result = run_due(model_db, AFTER)
    assert result.fired["exception.expire"] == 2
    assert set(expired_events(model_db)) == set(first)
    assert sorted(int(str(j["ref"])) for j in jobs(model_db, "exception.expire")) == later


def test_a_stale_job_is_a_no_op(model_db: Database) -> None:
    (x,) = requested_exceptions(model_db, 1)
    approver = factories.user(model_db, teams=["billing"], roles=["finance_approver"])
    with UnitOfWork(model_db, actor_kind="user", actor_id=approver.id, now=ASKED_AT) as uow:
        service.decide_exception(uow, x, approve=False, note="no")
    result = run_due(model_db, AFTER)
    assert result.noop["exception.expire"] == 1 and result.fired["exception.expire"] == 0
    assert expiry_job_count(model_db) == 0
    assert expired_events(model_db) == {} and exception_status(model_db) == {x: "denied"}


def test_an_approval_schedules_its_own_expiry(model_db: Database) -> None:
    (x,) = requested_exceptions(model_db, 1)
    approver = factories.user(model_db, teams=["billing"], roles=["finance_approver"])
    with UnitOfWork(model_db, actor_kind="user", actor_id=approver.id, now=ASKED_AT) as uow:
        service.decide_exception(uow, x, approve=True, note="ok")
        expires_at = uow.exception(x).expires_at
    assert expires_at is not None
    assert sorted(j["run_at"] for j in jobs(model_db, "exception.expire")) == sorted(  # type: ignore[type-var]
        [ASKED_AT + MAX_DURATION, expires_at]
    )
    result = run_due(model_db, max(ASKED_AT + MAX_DURATION, expires_at) + timedelta(minutes=1))
    assert result.fired["exception.expire"] + result.noop["exception.expire"] == 2
    assert expired_events(model_db) == {x: 1}


def test_a_failing_job_is_retried_with_backoff_and_blocks_no_other(
    model_db: Database, exploding: str
) -> None:
    ids = requested_exceptions(model_db, 6)
    victim = ids[2]
    with UnitOfWork(model_db, now=ASKED_AT) as uow:
        ticket_id = uow.exception(victim).ticket_id
        # due in the middle of the expiry jobs: it fails inside a batch of good ones
        uow.schedule(exploding, ASKED_AT + MAX_DURATION, ticket_id=ticket_id, ref=str(victim))
    now = AFTER
    result = run_due(model_db, now, batch=4, max_attempts=2)
    assert result.fired["exception.expire"] == 6
    assert result.failed == {exploding: 1}
    assert expired_events(model_db) == {x: 1 for x in ids}
    with model_db.read() as conn:
        tags = conn.execute(select(t.tickets.c.tags).where(t.tickets.c.id == ticket_id)).scalar()
        tag_events = conn.execute(
            select(func.count()).where(t.events.c.type == "ticket.tags_changed")
        ).scalar()
    assert tags == [] and tag_events == 0  # the failed handler's own writes rolled back
    (row,) = jobs(model_db, exploding)
    assert row["attempts"] == 1 and "Boom: exploded on" in str(row["last_error"])
    assert row["run_at"] == now + backoff(1) == now + timedelta(seconds=30)

    assert run_due(model_db, now + timedelta(seconds=29), max_attempts=2).failed == {}
    second = run_due(model_db, now + timedelta(seconds=31), max_attempts=2)
    assert second.failed == {exploding: 1}
    (row,) = jobs(model_db, exploding)
    assert row["attempts"] == 2

    # dead: kept and listed, never claimed again
    assert run_due(model_db, now + timedelta(days=30), max_attempts=2).failed == {}
    status = queries.queue_status(model_db, now + timedelta(days=30), max_attempts=2)
    assert status.dead == {exploding: 1} and status.dead_total == 1
    (failed,) = [f for f in status.failed if f.kind == exploding]
    assert failed.dead and failed.attempts == 2 and "Boom" in (failed.last_error or "")

    # fixed, retried by an operator: it runs and leaves
    handlers.register(exploding, lambda uow, job: None)
    assert queries.retry_dead(model_db, now + timedelta(days=30), max_attempts=2) == 1
    fixed = run_due(model_db, now + timedelta(days=30), max_attempts=2)
    assert fixed.noop[exploding] == 1 and jobs(model_db, exploding) == []


def test_an_unknown_kind_is_a_recorded_failure(model_db: Database) -> None:
    with UnitOfWork(model_db, now=ASKED_AT) as uow:
        uow.schedule("no.such.kind", ASKED_AT, ref="x")
    result = run_due(model_db, AFTER)
    assert result.failed == {"no.such.kind": 1}
    (row,) = jobs(model_db, "no.such.kind")
    assert "no handler for job kind 'no.such.kind'" in str(row["last_error"])


def test_every_capability_kind_has_a_handler() -> None:
    for kind in handlers.kinds():
        assert callable(handlers.handler_for(kind)), kind


def test_backoff_doubles_up_to_an_hour() -> None:
    waits = [backoff(n) for n in range(1, 12)]
    assert waits[:3] == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    assert waits[-1] == timedelta(hours=1) and waits == sorted(waits)
    assert backoff(10_000) == timedelta(hours=1)


def test_queue_status_counts_due_and_later(model_db: Database) -> None:
    requested_exceptions(model_db, 2)
    requested_exceptions(model_db, 1, at=ASKED_AT + timedelta(days=3))
    status = queries.queue_status(model_db, AFTER)
    assert status.due["exception.expire"] == 2
    assert status.later["exception.expire"] == 1
    # the earliest job still to come: the SLA timers of these tickets may come sooner
    assert status.next_run_at is not None
    assert AFTER < status.next_run_at <= ASKED_AT + timedelta(days=3) + MAX_DURATION
    assert status.failed == [] and status.dead_total == 0
