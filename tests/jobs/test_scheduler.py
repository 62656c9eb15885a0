"""The in-process scheduler: a daemon thread that fires due jobs and survives errors."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsdesk.jobs.scheduler import InProcessScheduler
from opsdesk.store.db import Database
from tests.jobs.helpers import exception_status, expired_events, requested_exceptions


def wait_for(condition: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_the_scheduler_thread_fires_a_due_job(model_db: Database) -> None:
    (x,) = requested_exceptions(model_db, 1, at=datetime.now(UTC) - timedelta(days=8))
    scheduler = InProcessScheduler(model_db, interval=0.05, name="test-thread")
    scheduler.start()
    try:
        assert wait_for(lambda: exception_status(model_db) == {x: "expired"})
        assert scheduler.running
    finally:
        scheduler.stop()
    assert not scheduler.running and scheduler.sweeps >= 1
    assert expired_events(model_db) == {x: 1}


def test_the_scheduler_survives_a_failing_sweep(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Database(f"sqlite:///{tmp_path / 'no-schema.db'}")  # no tables at all
    scheduler = InProcessScheduler(broken, interval=0.02)
    with caplog.at_level(logging.ERROR, logger="opsdesk.jobs"):
        scheduler.start()
        try:
            assert wait_for(
                lambda: sum("the jobs sweep failed" in r.message for r in caplog.records) >= 2
            )
            assert scheduler.running
        finally:
            scheduler.stop()
            broken.dispose()
    assert not scheduler.running and scheduler.sweeps == 0


def test_the_scheduler_refuses_a_zero_interval(model_db: Database) -> None:
    with pytest.raises(ValueError, match="positive"):
        InProcessScheduler(model_db, interval=0)
