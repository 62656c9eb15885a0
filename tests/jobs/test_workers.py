"""`opsdesk worker` as real processes: two of them on one PostgreSQL database fire each
job exactly once; `--once`, `--status` and the in-process timers of `opsdesk serve`."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsdesk.cli import app
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from tests.conftest import fresh_database
from tests.jobs.helpers import (
    exception_status,
    expired_events,
    expiry_job_count,
    jobs,
    requested_exceptions,
)

runner = CliRunner()
WORKER = [sys.executable, "-m", "opsdesk.cli", "worker"]


@pytest.fixture
def pg_model_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    db = fresh_database(request, "postgresql", tmp_path_factory)()
    yield db
    db.dispose()


def wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def test_two_worker_processes_never_fire_a_job_twice(pg_model_db: Database, tmp_path: Path) -> None:
    count = 2000
    ids = requested_exceptions(
        pg_model_db, count, at=datetime.now(UTC) - timedelta(days=8), triaged=False
    )
    assert expiry_job_count(pg_model_db) == count
    env = {**os.environ, "OPSDESK_DATABASE_URL": pg_model_db.url}
    workers = {}
    logs = {}
    for name in ("w1", "w2"):
        logs[name] = tmp_path / f"{name}.log"
        with logs[name].open("wb") as sink:
            workers[name] = subprocess.Popen(
                [*WORKER, "--interval", "0.05", "--batch", "25", "--name", name],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
    try:
        drained = wait_for(lambda: expiry_job_count(pg_model_db) == 0, timeout=120)
    finally:
        codes = {name: stop(process) for name, process in workers.items()}
    output = {name: path.read_text() for name, path in logs.items()}
    assert drained, output
    assert codes == {"w1": 0, "w2": 0}, output

    ran = {}
    for name, text in output.items():
        match = re.search(r"ran .*?exception\.expire ([\d,]+)", text)
        ran[name] = int(match.group(1).replace(",", "")) if match else 0
    print(f"exception.expire jobs run per worker: {ran}")
    assert sum(ran.values()) == count  # each job ran in exactly one worker
    assert expired_events(pg_model_db) == {x: 1 for x in ids}
    assert set(exception_status(pg_model_db).values()) == {"expired"}
    assert not [j for j in jobs(pg_model_db, "exception.expire")]


def run(db: Database, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"OPSDESK_DATABASE_URL": db.url})
    return result.exit_code, result.output


def test_worker_once_prints_what_fired(model_db: Database) -> None:
    ids = requested_exceptions(model_db, 3, at=datetime.now(UTC) - timedelta(days=8))
    code, output = run(model_db, "worker", "--once", "--name", "cli")
    assert code == 0, output
    assert "one sweep by cli" in output and "exception.expire" in output
    assert expired_events(model_db) == {x: 1 for x in ids}
    code, output = run(model_db, "worker", "--once")
    assert code == 0 and "exception.expire" not in output


def test_worker_status_lists_dead_jobs_and_retry_dead_revives_them(model_db: Database) -> None:
    with UnitOfWork(model_db) as uow:
        uow.schedule("no.such.kind", uow.now - timedelta(minutes=1), ref="42")
    code, output = run(model_db, "worker", "--once")
    assert code == 1 and "no.such.kind" in output
    code, output = run(model_db, "worker", "--status")
    assert code == 0 and "no handler for job kind" in output
    from sqlalchemy import update

    from opsdesk.store import tables as t

    with model_db.engine.begin() as conn:  # as if it had failed OPSDESK_JOBS_MAX_ATTEMPTS times
        conn.execute(update(t.jobs).values(attempts=8))
    code, output = run(model_db, "worker", "--status")
    assert code == 1 and "attempt(s), dead" in output
    code, output = run(model_db, "worker", "--retry-dead")
    assert code == 0 and "1 dead job(s)" in output
    (row,) = jobs(model_db, "no.such.kind")
    assert row["attempts"] == 0


def test_worker_help_shows_an_example() -> None:
    result = runner.invoke(app, ["worker", "--help"])
    assert result.exit_code == 0 and "Example: opsdesk worker" in result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_serve_runs_the_timers_in_process_on_sqlite(sqlite_db: Database) -> None:
    from opsdesk.desk.models import apply_model_file
    from opsdesk.model import example_model_path

    with UnitOfWork(sqlite_db) as uow:
        apply_model_file(uow, example_model_path(), author="tests")
    (x,) = requested_exceptions(sqlite_db, 1, at=datetime.now(UTC) - timedelta(days=8))
    port = free_port()
    env = {
        **os.environ,
        "OPSDESK_DATABASE_URL": sqlite_db.url,
        "OPSDESK_JOBS_INTERVAL": "0.1",
        "OPSDESK_PORT": str(port),
        "OPSDESK_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "opsdesk.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        fired = wait_for(lambda: exception_status(sqlite_db) == {x: "expired"}, timeout=60)
        assert wait_for(lambda: answers(port), timeout=60)  # uvicorn now handles SIGTERM
    finally:
        code = stop(server)
    output = server.stdout.read().decode() if server.stdout else ""
    assert fired, output
    assert "timers run in this process" in output
    assert code == 0, output
    assert expired_events(sqlite_db) == {x: 1}
