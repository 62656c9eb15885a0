"""The timer benchmark's bulk copies are valid data: they replay cleanly before and
after a sweep, and each copy's due jobs fire on that copy's own rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bench import timers

from opsdesk.jobs.outbox import run_due
from opsdesk.store.db import Database
from opsdesk.store.verify import verify
from tests.conftest import _reset_pg
from tests.jobs.helpers import exception_status, expired_events


@pytest.fixture
def empty_pg(pg_url: str) -> Iterator[Database]:
    db = Database(pg_url)
    _reset_pg(db)
    yield db
    db.dispose()


def test_copies_of_a_block_replay_and_sweep_cleanly(
    sqlite_db: Database, empty_pg: Database
) -> None:
    block = timers.build_block(sqlite_db, tickets=12, due=2, customers=3, timers="exception")
    block_due = timers.due_jobs(sqlite_db, timers.SWEEP_AT)
    assert block_due.get("exception.expire") == 2
    written = timers.replicate(block, empty_pg, copies=3)
    assert written["tickets"] == 36 and written["customers"] == 9
    report = verify(empty_pg)
    assert report.ok, report.differences[:5]
    assert timers.due_jobs(empty_pg, timers.SWEEP_AT) == {k: 3 * n for k, n in block_due.items()}

    result = run_due(empty_pg, timers.SWEEP_AT, batch=4)
    assert result.fired["exception.expire"] == 6 and not result.failed
    expired = expired_events(empty_pg)
    assert sorted(expired.values()) == [1] * 6
    statuses = exception_status(empty_pg)
    assert sorted(statuses.values()).count("expired") == 6 and len(statuses) == 36
    assert {x for x, status in statuses.items() if status == "expired"} == set(expired)
    assert timers.due_jobs(empty_pg, timers.SWEEP_AT) == {}
    report = verify(empty_pg)
    assert report.ok, report.differences[:5]
