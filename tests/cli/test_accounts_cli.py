"""`opsdesk user deactivate|password` and `opsdesk token create|list|revoke`, end to
end through OPSDESK_DATABASE_URL, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from opsdesk.cli import app
from opsdesk.desk.security import principal_for_token
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from tests import factories

runner = CliRunner()


def run(db: Database, *args: str, prompt: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"OPSDESK_DATABASE_URL": db.url}, input=prompt)
    return result.exit_code, result.output


def works(db: Database, token: str) -> bool:
    with db.engine.connect() as conn:
        return principal_for_token(conn, token) is not None


def actions(db: Database) -> list[tuple[str, str | None]]:
    with db.read() as conn:
        rows = conn.execute(select(t.audit_log.c.action, t.audit_log.c.subject))
        return [(r.action, r.subject) for r in rows]


def new_token(db: Database, email: str, *args: str) -> str:
    code, output = run(db, "token", "create", "--user", email, *args)
    assert code == 0, output
    return output.splitlines()[0].strip()


def test_token_create_with_scopes_and_expiry_then_list(model_db: Database) -> None:
    user = factories.user(model_db, teams=["billing"])
    token = new_token(model_db, user.email, "--scope", "read", "--expires-in", "12h")
    with model_db.engine.connect() as conn:
        principal = principal_for_token(conn, token)
    assert principal is not None and principal.scopes == {"read"}
    left = principal.expires_at - datetime.now(UTC)
    assert timedelta(hours=11) < left <= timedelta(hours=12)
    default = new_token(model_db, user.email)
    with model_db.engine.connect() as conn:
        principal = principal_for_token(conn, default)
    assert principal is not None and principal.scopes == {"read", "write"}
    assert timedelta(days=89) < principal.expires_at - datetime.now(UTC) <= timedelta(days=90)

    code, output = run(model_db, "token", "list", "--user", user.email)
    assert code == 0 and "active" in output and token not in output and token[:10] in output

    before = actions(model_db)
    for bad, says in (
        (["--expires-in", "400d"], "at most 365 days"),
        (["--expires-in", "soon"], "not a duration"),
        (["--expires-in", "0m"], "must be positive"),
        (["--scope", "root"], "root"),
    ):
        code, output = run(model_db, "token", "create", "--user", user.email, *bad)
        assert code != 0 and says in output, (bad, output)
    assert actions(model_db) == before


def test_token_revoke_by_id_and_every_token_of_a_user(model_db: Database) -> None:
    user = factories.user(model_db, teams=["billing"])
    first = new_token(model_db, user.email)
    second = new_token(model_db, user.email)
    third = new_token(model_db, user.email)
    with model_db.read() as conn:
        first_id = conn.execute(
            select(t.api_tokens.c.id)
            .where(t.api_tokens.c.user_id == user.id)
            .order_by(t.api_tokens.c.id)
        ).scalar()
    code, output = run(model_db, "token", "revoke", str(first_id), "--reason", "leaked")
    assert code == 0 and f"revoked token {first_id}" in output
    assert not works(model_db, first) and works(model_db, second)
    assert ("token.revoked", f"token:{first_id}") in actions(model_db)

    before = actions(model_db)
    code, output = run(model_db, "token", "revoke", str(first_id))
    assert code == 1 and "already revoked" in output
    code, output = run(model_db, "token", "revoke", "99999")
    assert code == 1 and "does not exist" in output
    code, output = run(model_db, "token", "revoke")
    assert code == 1 and "--user" in output
    code, output = run(model_db, "token", "revoke", str(2**63))
    assert code == 1 and "does not exist" in output
    assert actions(model_db) == before

    code, output = run(model_db, "token", "revoke", "--user", user.email, "--reason", "stolen")
    assert code == 0 and "revoked 2 token(s)" in output
    assert not works(model_db, second) and not works(model_db, third)
    code, output = run(model_db, "token", "list", "--user", user.email)
    assert output.count("revoked") == 3


def test_user_deactivate_revokes_tokens_and_is_refused_while_owning_tickets(
    model_db: Database,
) -> None:
    from opsdesk.desk import service
    from opsdesk.store.uow import UnitOfWork

    owner = factories.user(model_db, teams=["billing"])
    token = new_token(model_db, owner.email)
    ticket = factories.ticket(model_db)
    with UnitOfWork(model_db, actor_kind="user", actor_id=owner.id) as uow:
        service.accept_ticket(uow, ticket.id)
    before = actions(model_db)
    code, output = run(model_db, "user", "deactivate", owner.email, "--reason", "left")
    assert code == 1 and "transfer them first" in output
    assert actions(model_db) == before and works(model_db, token)

    leaver = factories.user(model_db, teams=["billing"])
    tokens = [new_token(model_db, leaver.email) for _ in range(2)]
    code, output = run(model_db, "user", "deactivate", leaver.email, "--reason", "left")
    assert code == 0 and "revoked 2 token(s)" in output, output
    assert not any(works(model_db, tok) for tok in tokens)
    done = actions(model_db)[-3:]
    assert done[0] == ("user.deactivated", f"user:{leaver.id}")
    assert [a for a, _ in done[1:]] == ["token.revoked", "token.revoked"]
    code, output = run(model_db, "user", "deactivate", leaver.email, "--reason", "again")
    assert code == 1 and "already deactivated" in output
    code, output = run(model_db, "user", "deactivate", "nobody@example.test", "--reason", "x")
    assert code == 1 and "no user" in output


def test_user_password_change_revokes_tokens(model_db: Database) -> None:
    user = factories.user(model_db, teams=["billing"])
    code, output = run(model_db, "user", "password", user.email, prompt="first secret 1\n" * 2)
    assert code == 0 and "revoked 0 token(s)" in output, output
    token = new_token(model_db, user.email)
    code, output = run(model_db, "user", "password", user.email, prompt="short\nshort\n")
    assert code == 1 and "at least 10 characters" in output
    assert works(model_db, token)
    code, output = run(model_db, "user", "password", user.email, prompt="second secret 2\n" * 2)
    assert code == 0 and "revoked 1 token(s)" in output, output
    assert not works(model_db, token)
    assert [a for a, _ in actions(model_db)][-3:] == [
        "token.created",
        "token.revoked",
        "user.password_set",
    ]
