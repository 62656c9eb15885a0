"""`opsdesk customer erase`, `opsdesk retention apply` and the master key at `init`."""

from __future__ import annotations

import csv
import io
import stat
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from opsdesk.cli import app
from opsdesk.domain.events import ERASED
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from tests.store.test_erasure import event_shape, person

runner = CliRunner()


def run(db: Database, *args: str, **env: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"OPSDESK_DATABASE_URL": db.url, **env})
    return result.exit_code, result.output


def test_erase_dry_run_then_erase_then_again(model_db: Database) -> None:
    zelda = person(model_db, "CLI1")
    shape = event_shape(model_db)
    code, output = run(model_db, "customer", "erase", str(zelda.id), "--dry-run")
    assert code == 0 and "dry run, nothing changed" in output and "2 message bodies" in output
    assert event_shape(model_db) == shape

    code, output = run(model_db, "customer", "erase", str(zelda.id), "--reason", "request 881")
    assert code == 0 and f"erased customers {zelda.id}" in output
    code, output = run(model_db, "verify")
    assert code == 0 and "ok" in output
    code, output = run(model_db, "export", "events", "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(output)))
    exported = "\n".join(",".join(r) for r in rows)
    assert ERASED in exported and "enc:" not in exported
    for secret in zelda.secrets:
        assert secret not in exported

    code, output = run(model_db, "customer", "erase", str(zelda.id))
    assert code == 0 and "already erased, nothing to do" in output
    with model_db.read() as conn:
        erased = conn.execute(
            select(func.count()).select_from(t.events).where(t.events.c.type == "customer.erased")
        ).scalar()
    assert erased == 1


def test_erase_refuses_unknown_and_bad_ids(model_db: Database) -> None:
    code, output = run(model_db, "customer", "erase", "999")
    assert code == 1 and "customer 999 does not exist" in output
    code, output = run(model_db, "customer", "erase", "abc")
    assert code == 2
    code, output = run(model_db, "customer", "erase", "1", "--reason", "x" * 501)
    assert code == 1 and "at most 500" in output


def test_retention_apply_needs_an_age_and_dry_runs(model_db: Database) -> None:
    person(model_db, "CLI2")
    code, output = run(model_db, "retention", "apply")
    assert code == 1 and "OPSDESK_RETENTION_MESSAGE_DAYS" in output
    code, output = run(model_db, "retention", "apply", "--older-than-days", "0")
    assert code == 2
    shape = event_shape(model_db)
    code, output = run(
        model_db, "retention", "apply", "--dry-run", OPSDESK_RETENTION_MESSAGE_DAYS="30"
    )
    assert code == 0 and "nothing to purge" in output  # this month's messages stay
    code, output = run(model_db, "retention", "apply", "--older-than-days", "30")
    assert code == 0 and "nothing to purge" in output
    assert event_shape(model_db) == shape


def test_init_creates_the_master_key_file_private(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = runner.invoke(app, ["init"], env={"OPSDESK_DATABASE_URL": url})
    key = tmp_path / "fresh.db.key"
    assert result.exit_code == 0 and "master key created" in result.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    text = key.read_text()
    result = runner.invoke(app, ["init"], env={"OPSDESK_DATABASE_URL": url})
    assert result.exit_code == 0 and key.read_text() == text  # never replaced
