"""The audit trail: recorded with the action, chained, verified, exported, readable.

Tampering is done as an attacker with database access would: switching the append-only
triggers off inside the transaction that edits, inserts or deletes rows.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from opsdesk.cli import app
from opsdesk.desk import audit, security, service
from opsdesk.domain.audit import AUDIT_ACTIONS, UndeclaredAuditAction
from opsdesk.domain.errors import DomainError, PermissionDenied
from opsdesk.store import tables as t
from opsdesk.store.audit import GENESIS, row_hash
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork


def audit_rows(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t.audit_log).order_by("seq"))]


def actions(db: Database) -> list[str]:
    return [r["action"] for r in audit_rows(db)]


def mixed_actions(db: Database) -> int:
    """Users, roles, teams, password, token, deactivation, refusal; returns an agent id."""
    with UnitOfWork(db) as uow:
        admin = service.create_user(
            uow, name="Ada", email="ada@example.test", roles=["admin"], teams=[]
        )
        security.set_password(uow, admin.id, "correct horse battery")
        security.create_token(uow, admin.id, "ci")
    with UnitOfWork(db, actor_kind="user", actor_id=admin.id) as uow:
        agent = service.create_user(
            uow, name="Bo", email="bo@example.test", roles=["agent"], teams=["billing"]
        )
        service.change_user(uow, agent.id, "roles", ["agent", "team_lead"])
        service.change_user(uow, agent.id, "teams", ["billing", "tech_support"])
        service.change_user(uow, agent.id, "skills", ["english"])  # not a security change
    with UnitOfWork(db, actor_kind="user", actor_id=admin.id) as uow:
        service.deactivate_user(uow, agent.id, "left the company")
    audit.record_refusal(
        db, PermissionDenied("no", "audit.read"), actor_id=agent.id, route="GET /api/v1/audit"
    )
    return agent.id


def verify_cli(db: Database, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OPSDESK_DATABASE_URL", db.url)
    return CliRunner().invoke(app, ["audit", "verify"])


def test_mixed_actions_are_recorded_in_order_and_the_chain_verifies(
    model_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent_id = mixed_actions(model_db)
    rows = audit_rows(model_db)
    assert [r["action"] for r in rows] == [
        "model.applied",
        "user.created",
        "user.password_set",
        "token.created",
        "user.created",
        "user.roles_changed",
        "user.teams_changed",
        "user.deactivated",
        "access.refused",
    ]
    assert [r["seq"] for r in rows] == list(range(1, 10))
    assert rows[0]["prev_hash"] == GENESIS
    for before, row in itertools.pairwise(rows):
        assert row["prev_hash"] == before["hash"]
        assert row_hash(row) == row["hash"]
    roles = rows[5]
    assert (roles["actor_kind"], roles["subject"]) == ("user", f"user:{agent_id}")
    assert roles["details"] == {"before": ["agent"], "after": ["agent", "team_lead"]}
    refused = rows[-1]
    assert (refused["outcome"], refused["actor_id"]) == ("refused", agent_id)
    assert refused["details"]["permission"] == "audit.read"
    # no secret anywhere: neither the password nor a token (nor its hash)
    dumped = json.dumps([r["details"] for r in rows])
    assert "correct horse" not in dumped and "odk_" not in dumped
    report = audit.verify_chain(model_db)
    assert (report.ok, report.rows, report.last_seq) == (True, 9, 9)
    result = verify_cli(model_db, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "9 audit rows" in result.output


def test_an_undeclared_action_is_refused(model_db: Database) -> None:
    with pytest.raises(UndeclaredAuditAction), UnitOfWork(model_db) as uow:
        uow.audit("user.teleported")
    assert "user.teleported" not in AUDIT_ACTIONS
    assert actions(model_db) == ["model.applied"]


def test_an_action_that_rolls_back_leaves_no_audit_row(model_db: Database) -> None:
    with pytest.raises(DomainError), UnitOfWork(model_db) as uow:
        user = service.create_user(
            uow, name="Cy", email="cy@example.test", roles=["agent"], teams=["billing"]
        )
        security.create_token(uow, user.id, "x")
        security.set_password(uow, user.id, "short")  # refused: fewer than 10 characters
    assert actions(model_db) == ["model.applied"]
    assert audit.verify_chain(model_db).ok


def test_the_database_refuses_updates_and_deletes(model_db: Database) -> None:
    for statement in ("UPDATE audit_log SET outcome = 'ok'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), model_db.engine.begin() as conn:
            conn.execute(text(statement))
    assert actions(model_db) == ["model.applied"]


# --- tampering ---------------------------------------------------------------------


@contextmanager
def attacker(db: Database) -> Iterator[Connection]:
    """A transaction with the append-only triggers off, restored before commit."""
    with db.engine.begin() as conn:
        if db.dialect == "sqlite":
            triggers = conn.execute(
                text(
                    "SELECT name, sql FROM sqlite_master "
                    "WHERE type = 'trigger' AND tbl_name = 'audit_log'"
                )
            ).all()
            for name, _ in triggers:
                conn.execute(text(f"DROP TRIGGER {name}"))
            yield conn
            for _, sql in triggers:
                conn.execute(text(sql))
        else:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            yield conn
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def rehash(db: Database, conn: Connection, seq: int) -> None:
    """Recompute a row's hash after an edit, as a careful attacker would."""
    row = dict(conn.execute(select(t.audit_log).where(t.audit_log.c.seq == seq)).one()._mapping)
    conn.execute(
        text("UPDATE audit_log SET hash = :h WHERE seq = :s"), {"h": row_hash(row), "s": seq}
    )


def renumber_from(conn: Connection, seq: int, by: int) -> None:
    """Shift rows seq.. by ``by``, one at a time so the primary key never clashes."""
    seqs = (
        conn.execute(text("SELECT seq FROM audit_log WHERE seq >= :s ORDER BY seq"), {"s": seq})
        .scalars()
        .all()
    )
    for s in sorted(seqs, reverse=by > 0):
        conn.execute(text("UPDATE audit_log SET seq = :n WHERE seq = :s"), {"n": s + by, "s": s})


def edit_details(db: Database, conn: Connection) -> None:
    conn.execute(
        text("UPDATE audit_log SET details = :d WHERE seq = 4"),
        {"d": json.dumps({"user_id": 99, "name": "forged"})},
    )


def edit_and_rehash(db: Database, conn: Connection) -> None:
    conn.execute(text("UPDATE audit_log SET actor_id = 99 WHERE seq = 4"))
    rehash(db, conn, 4)


def insert_forged(db: Database, conn: Connection) -> None:
    """A well-formed row chained from row 4, slipped in as row 5; later rows move up."""
    renumber_from(conn, 5, 1)
    four = dict(conn.execute(select(t.audit_log).where(t.audit_log.c.seq == 4)).one()._mapping)
    forged = {**four, "seq": 5, "action": "user.password_set", "prev_hash": four["hash"]}
    forged["hash"] = row_hash(forged)
    conn.execute(t.audit_log.insert().values(**forged))


def delete_middle(db: Database, conn: Connection) -> None:
    conn.execute(text("DELETE FROM audit_log WHERE seq = 4"))


def delete_middle_and_renumber(db: Database, conn: Connection) -> None:
    conn.execute(text("DELETE FROM audit_log WHERE seq = 4"))
    renumber_from(conn, 5, -1)


def delete_last(db: Database, conn: Connection) -> None:
    conn.execute(text("DELETE FROM audit_log WHERE seq = 9"))


@pytest.mark.parametrize(
    ("tamper", "message", "bad_seq"),
    [
        (edit_details, "row 4 was edited", 4),
        (edit_and_rehash, "row 4 was edited (its hash was recomputed", 4),
        (insert_forged, "a row was inserted before row 6 (row 5 is not in the chain)", 5),
        (delete_middle, "row 4 was deleted", 4),
        (delete_middle_and_renumber, "a row was deleted before row 4", 4),
        (delete_last, "row 9 was deleted (the end of the trail is missing)", 9),
    ],
)
def test_verify_names_the_first_tampered_row(
    model_db: Database, monkeypatch: pytest.MonkeyPatch, tamper: Any, message: str, bad_seq: int
) -> None:
    mixed_actions(model_db)
    assert audit.verify_chain(model_db).ok
    with attacker(model_db) as conn:
        tamper(model_db, conn)
    report = audit.verify_chain(model_db)
    assert not report.ok
    assert report.problem is not None and report.problem.startswith(message), report.problem
    assert report.bad_seq == bad_seq
    result = verify_cli(model_db, monkeypatch)
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())


def test_rows_appended_behind_the_head_are_found(model_db: Database) -> None:
    mixed_actions(model_db)
    with attacker(model_db) as conn:
        nine = dict(conn.execute(select(t.audit_log).where(t.audit_log.c.seq == 9)).one()._mapping)
        forged = {**nine, "seq": 10, "prev_hash": nine["hash"]}
        forged["hash"] = row_hash(forged)
        conn.execute(t.audit_log.insert().values(**forged))
    report = audit.verify_chain(model_db)
    assert report.problem == "row 10 was inserted after the head of the trail"


# --- concurrency -------------------------------------------------------------------


def test_concurrent_appenders_never_fork_the_chain(model_db: Database) -> None:
    threads, per_thread = 4, 6
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(per_thread):
                with UnitOfWork(model_db) as uow:
                    uow.audit("events.exported", subject=f"thread-{n}-{i}", details={"rows": i})
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    rows = audit_rows(model_db)
    assert [r["seq"] for r in rows] == list(range(1, 2 + threads * per_thread))
    assert len({r["prev_hash"] for r in rows}) == len(rows)  # no two rows share a parent
    report = audit.verify_chain(model_db)
    assert report.ok and report.rows == 1 + threads * per_thread


# --- export ------------------------------------------------------------------------


def test_export_writes_json_lines_and_is_itself_audited(
    model_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mixed_actions(model_db)
    monkeypatch.setenv("OPSDESK_DATABASE_URL", model_db.url)
    out = tmp_path / "audit.jsonl"
    result = CliRunner().invoke(app, ["audit", "export", "--since", "2", "--output", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["seq"] for row in lines] == list(range(3, 10))
    assert set(lines[0]) == {
        "seq", "at", "action", "outcome", "actor_kind", "actor_id", "subject", "client",
        "details", "prev_hash", "hash",
    }  # fmt: skip
    for before, row in itertools.pairwise(lines):
        assert row["prev_hash"] == before["hash"]
    assert actions(model_db)[-1] == "audit.exported"
    assert audit_rows(model_db)[-1]["details"] == {"since": 2, "rows": 7}
    stdout = CliRunner().invoke(app, ["audit", "export"])
    assert stdout.exit_code == 0
    assert len(stdout.output.splitlines()) == 10
    events = CliRunner().invoke(app, ["export", "events", "--output", str(tmp_path / "e.csv")])
    assert events.exit_code == 0, events.output
    assert actions(model_db)[-1] == "events.exported"
    assert audit.verify_chain(model_db).ok


def test_missing_head_row_is_reported(model_db: Database) -> None:
    with model_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_head"))
    assert audit.verify_chain(model_db).problem == "the audit head row is missing"
    with (
        pytest.raises(RuntimeError, match="audit_head row is missing"),
        UnitOfWork(model_db) as uow,
    ):
        uow.audit("events.exported")
    with model_db.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.audit_log)).scalar_one() == 1


def test_an_empty_trail_verifies_and_an_unwritable_export_records_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    report = audit.verify_chain(db)
    assert (report.ok, report.rows, report.last_seq) == (True, 0, 0)
    monkeypatch.setenv("OPSDESK_DATABASE_URL", db.url)
    missing = tmp_path / "no-such-dir" / "audit.jsonl"
    result = CliRunner().invoke(app, ["audit", "export", "--output", str(missing)])
    assert result.exit_code == 1
    assert "No such file or directory" in result.output
    assert actions(db) == []
