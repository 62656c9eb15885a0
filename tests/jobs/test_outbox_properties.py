"""Property: whatever mix of due, later, failing and no-op jobs and whatever batch size,
one sweep runs every due job that succeeds exactly once (its effects and its removal
commit together), leaves later jobs untouched and keeps failing jobs, without their
effects, for a retry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from opsdesk.desk import service
from opsdesk.jobs import handlers
from opsdesk.jobs.outbox import backoff, run_due
from opsdesk.store import tables as t
from opsdesk.store.jobs import Job
from opsdesk.store.uow import UnitOfWork
from tests.conftest import examples, fresh_database
from tests.jobs.helpers import ASKED_AT, jobs

NOW = ASKED_AT + timedelta(days=1)


def tag_ticket(uow: UnitOfWork, job: Job) -> None:
    assert job.ticket_id is not None
    service.change_tags(uow, job.ticket_id, add=[f"job-{job.ref}"])


def tag_then_fail(uow: UnitOfWork, job: Job) -> None:
    tag_ticket(uow, job)
    raise RuntimeError(f"job {job.ref} failed")


def nothing(uow: UnitOfWork, job: Job) -> None:
    return None


BEHAVIOURS = {"test.tag": tag_ticket, "test.fail": tag_then_fail, "test.noop": nothing}


@pytest.fixture
def behaviours() -> Iterator[None]:
    for kind, handler in BEHAVIOURS.items():
        handlers.register(kind, handler)
    yield
    for kind in BEHAVIOURS:
        handlers.unregister(kind)


job_specs = st.lists(
    st.tuples(st.sampled_from(sorted(BEHAVIOURS)), st.integers(-120, 120), st.integers(0, 2)),
    min_size=1,
    max_size=25,
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_one_sweep_runs_each_due_job_once(
    backend: str,
    behaviours: None,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    make_db = fresh_database(request, backend, tmp_path_factory)

    @settings(
        max_examples=examples(30 if backend == "sqlite" else 8),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(specs=job_specs, batch=st.integers(1, 6))
    def check(specs: list[tuple[str, int, int]], batch: int) -> None:
        db = make_db()
        try:
            with UnitOfWork(db, now=ASKED_AT) as uow:
                customer = service.create_customer(uow, name="Ada")
                tickets = [
                    service.create_ticket(
                        uow, customer_id=customer.id, subject=f"T{n}", channel="email"
                    ).id
                    for n in range(3)
                ]
                for ref, (kind, minutes, which) in enumerate(specs):
                    uow.schedule(
                        kind,
                        NOW + timedelta(minutes=minutes),
                        ticket_id=tickets[which],
                        ref=str(ref),
                    )
            result = run_due(db, NOW, batch=batch)

            due = {ref for ref, (_, minutes, _) in enumerate(specs) if minutes <= 0}
            expect_fired = {r for r in due if specs[r][0] == "test.tag"}
            expect_noop = {r for r in due if specs[r][0] == "test.noop"}
            expect_failed = {r for r in due if specs[r][0] == "test.fail"}
            assert result.fired["test.tag"] == len(expect_fired)
            assert result.noop["test.noop"] == len(expect_noop)
            assert result.failed["test.fail"] == len(expect_failed)

            with db.read() as conn:
                added = Counter(
                    tag
                    for (payload,) in conn.execute(
                        select(t.events.c.payload).where(t.events.c.type == "ticket.tags_changed")
                    )
                    for tag in payload["added"]
                )
            assert added == Counter(f"job-{r}" for r in expect_fired)

            left = {int(str(row["ref"])): row for row in jobs(db) if row["kind"] in BEHAVIOURS}
            assert set(left) == set(range(len(specs))) - expect_fired - expect_noop
            for ref, row in left.items():
                if ref in expect_failed:
                    assert row["attempts"] == 1 and "failed" in str(row["last_error"])
                    assert row["run_at"] == NOW + backoff(1)
                else:
                    assert row["attempts"] == 0 and row["last_error"] is None
        finally:
            db.dispose()

    check()
