"""The CLI end to end, through OPSDESK_DATABASE_URL, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from opsdesk.cli import app
from opsdesk.model import example_model_path
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from tests import factories

runner = CliRunner()
EXAMPLE = example_model_path()


def run(db: Database | None, *args: str) -> tuple[int, str]:
    env = {"OPSDESK_DATABASE_URL": db.url} if db is not None else {}
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def _all_commands() -> list[list[str]]:
    """Every command path of the CLI, read from the app so a new command is covered."""
    import typer

    from opsdesk.cli import app

    out: list[list[str]] = []

    def walk(group: Any, prefix: list[str]) -> None:
        # typer ships its own click: test for a group by its sub-commands
        if getattr(group, "commands", None):
            for name, sub in group.commands.items():
                walk(sub, [*prefix, name])
        else:
            out.append(prefix)

    walk(typer.main.get_command(app), [])
    return out


@pytest.mark.parametrize("command", _all_commands(), ids=" ".join)
def test_every_help_shows_an_example(command: list[str]) -> None:
    code, output = run(None, *command, "--help")
    assert code == 0 and "Example: opsdesk" in output


def test_model_check_reports_positions_and_exit_code(tmp_path: Path) -> None:
    code, output = run(None, "model", "check", str(EXAMPLE))
    assert code == 0 and "0 error(s)" in output
    broken = tmp_path / "broken.yaml"
    text = EXAMPLE.read_text().replace("owner_team: billing", "owner_team: biling", 1)
    broken.write_text(text)
    code, output = run(None, "model", "check", str(broken))
    assert code == 1
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "owner_team: biling" in row)
    assert f"{broken}:{line}:" in output and "error:" in output and "biling" in output


def test_model_diff_groups_changes(tmp_path: Path) -> None:
    new = tmp_path / "new.yaml"
    new.write_text(EXAMPLE.read_text().replace("owner_team: billing", "owner_team: frontline", 1))
    code, output = run(None, "model", "diff", str(EXAMPLE), str(new))
    assert code == 0 and "Changed" in output and "owner_team" in output


def test_model_apply_is_idempotent(db: Database) -> None:
    code, output = run(db, "model", "apply", str(EXAMPLE))
    assert code == 0 and "applied" in output
    code, output = run(db, "model", "apply", str(EXAMPLE))
    assert code == 0 and "unchanged" in output


def test_apply_refuses_a_broken_model_and_changes_nothing(db: Database, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        EXAMPLE.read_text().replace("approver_roles: [ops_lead]", "approver_roles: []")
    )
    code, output = run(db, "model", "apply", str(broken))
    assert code == 1 and "nothing was applied" in output
    assert db.current_revision() is not None
    with db.read() as conn:
        assert conn.execute(t.log_head.select()).one().model_version is None


def test_apply_refuses_to_strand_open_exceptions_until_told_what_to_do(
    model_db: Database, tmp_path: Path
) -> None:
    from opsdesk.desk import service
    from opsdesk.store.uow import UnitOfWork

    with UnitOfWork(model_db) as uow:
        customer = service.create_customer(uow, name="Ada")
        ticket = service.create_ticket(
            uow, customer_id=customer.id, subject="Hi", channel="email", body="Hello."
        )
        service.request_exception(uow, ticket.id, "priority_jump", "please")
    text = EXAMPLE.read_text()
    start = text.index("  - id: priority_jump")
    new = tmp_path / "new.yaml"
    new.write_text(text[:start] + text[text.index("  - id: routing_override") :])

    code, output = run(model_db, "model", "apply", str(new))
    assert code == 1
    assert "1 open request(s) of removed exception type 'priority_jump'" in output
    assert "--expire-exceptions" in output
    code, output = run(model_db, "model", "apply", str(new), "--expire-exceptions")
    assert code == 0, output
    assert "expired 1 open exception request(s) of removed types" in output
    assert "applied" in output


def test_verify_exit_codes(model_db: Database) -> None:
    factories.ticket(model_db)
    code, output = run(model_db, "verify")
    assert code == 0 and "ok" in output
    with model_db.engine.begin() as conn:
        conn.execute(update(t.tickets).values(priority="urgent"))
    code, output = run(model_db, "verify")
    assert code == 1 and "priority is 'urgent' in the table" in output


def test_token_create_and_export(model_db: Database, tmp_path: Path) -> None:
    admin = factories.user(model_db, teams=[], roles=["admin"])
    factories.ticket(model_db)
    code, output = run(model_db, "token", "create", "--user", admin.email)
    assert code == 0 and output.strip().startswith("odk_")
    code, output = run(model_db, "token", "create", "--user", "nobody@example.test")
    assert code == 1 and "no user" in output
    code, output = run(model_db, "export", "events", "--format", "csv")
    rows = list(csv.reader(io.StringIO(output)))
    assert rows[0][:3] == ["seq", "at", "type"] and len(rows) > 3
    target = tmp_path / "events.parquet"
    code, _ = run(model_db, "export", "events", "--format", "parquet", "-o", str(target))
    table = pq.read_table(target)
    assert code == 0 and table.num_rows == len(rows) - 1
    assert table.column("seq").to_pylist() == sorted(table.column("seq").to_pylist())


def test_commands_refuse_an_uninitialised_database(tmp_path: Path) -> None:
    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    code, output = run(empty, "verify")
    assert code == 1 and "opsdesk init" in output


def test_init_creates_schema_model_and_admin(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'new.db'}")
    code, output = run(db, "init", "--model", str(EXAMPLE), "--admin", "boss@example.test")
    assert code == 0, output
    assert "odk_" in output and "boss@example.test" in output
    code, _ = run(db, "verify")
    assert code == 0


def test_diagnose_the_database_writes_both_reports(model_db: Database, tmp_path: Path) -> None:
    from datetime import date

    from opsdesk.demo import run_demo

    # a seed whose two days leave at least one finding to rank
    run_demo(model_db, days=2, seed=3, start=date(2026, 3, 2), scale=0.3)
    html, report = tmp_path / "r.html", tmp_path / "r.json"
    code, output = run(model_db, "diagnose", "--html", str(html), "--json", str(report))
    assert code == 0, output
    data = json.loads(report.read_text())
    with model_db.read() as conn:
        tickets = conn.execute(select(func.count()).select_from(t.tickets)).scalar_one()
    assert data["summary"]["cases"] == tickets and data["summary"]["teams"] > 3
    assert "<svg" in html.read_text() and "1." in output


def test_import_refuses_a_mapping_without_time(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("id,when,state\n1,2026-01-01 10:00,open\n")
    code, output = run(None, "import", str(log), "-o", str(tmp_path / "o.parquet"), "--case", "id")
    assert code == 1 and "--time" in output


def test_calendar_add_and_between_agree() -> None:
    code, output = run(
        None, "calendar", "add", "uk_site", "2026-07-03T16:00", "2h", "--model", str(EXAMPLE)
    )
    assert code == 0, output
    utc_line = output.splitlines()[0]
    due = utc_line.split()[0]
    assert "(UTC)" in utc_line and "local" in output
    code, output = run(
        None, "calendar", "between", "uk_site", "2026-07-03T16:00", due, "--model", str(EXAMPLE)
    )
    assert code == 0 and output.startswith("120 business minutes")


def test_calendar_errors_say_what_to_do() -> None:
    code, output = run(
        None, "calendar", "add", "mars", "2026-07-03T16:00", "2h", "--model", str(EXAMPLE)
    )
    assert code == 1 and "uk_site" in output
    code, output = run(None, "calendar", "add", "uk_site", "soon", "2h", "--model", str(EXAMPLE))
    assert code == 1 and "ISO 8601" in output


def test_diagnose_a_file_keeps_its_rejects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "mini.csv"
    log.write_text(
        "id,when,state\n1,2026-01-01 10:00,open\n2,bad,open\n1,2026-01-01 12:00,solved\n"
    )
    status_map = tmp_path / "map.csv"
    status_map.write_text("source,status\nopen,open\nsolved,solved\n")
    code, output = run(
        None,
        "diagnose",
        str(log),
        "--case",
        "id",
        "--time",
        "when",
        "--status",
        "state",
        "--status-map",
        str(status_map),
    )
    assert code == 0, output
    assert "3 input rows = 2 imported + 1 rejected" in output
    assert "bad time" in (tmp_path / "mini.rejects.csv").read_text()


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    # `opsdesk --help` answers at once: each command imports what it needs
    import subprocess
    import sys

    code = (
        "import sys, opsdesk.cli; "
        "heavy = {'sqlalchemy', 'alembic', 'pydantic_settings', 'duckdb', 'pyarrow', "
        "'matplotlib', 'fastapi'} & set(sys.modules); "
        "print(sorted(heavy)); sys.exit(bool(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_diagnosis_summary_and_json_report_leave_matplotlib_unloaded() -> None:
    # matplotlib costs about a second cold; only the HTML report needs it
    import subprocess
    import sys

    code = (
        "import sys; from opsdesk.analytics.report import format, write_reports; "
        "sys.exit('matplotlib' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
