"""Password sign-in over the API: a short-lived token for the right password, one answer
for every wrong one, lockout after repeated failures, every attempt audited."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from opsdesk.desk import service
from opsdesk.desk.security import set_password
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

from .conftest import assert_problem

PASSWORD = "correct horse battery"


def person(db: Database, email: str, *, active: bool = True) -> int:
    with UnitOfWork(db) as uow:
        user = service.create_user(uow, name="Ana", email=email, roles=["agent"], teams=["billing"])
        set_password(uow, user.id, PASSWORD)
    if not active:
        with UnitOfWork(db) as uow:
            service.deactivate_user(uow, user.id, "left")
    return user.id


def audit_rows(db: Database, action: str) -> list[Any]:
    with db.read() as conn:
        return list(conn.execute(select(t.audit_log).where(t.audit_log.c.action == action)).all())


def sign_in(client: TestClient, email: str, password: str) -> Any:
    return client.post("/api/v1/auth/token", json={"email": email, "password": password})


def test_the_right_password_gives_a_short_lived_token_that_works(
    client: TestClient, model_db: Database
) -> None:
    user_id = person(model_db, "ana@example.test")
    r = sign_in(client, " Ana@Example.test ", PASSWORD)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user_id"] == user_id and body["scopes"] == ["read", "write"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.json()["user"]["id"] == user_id
    (login,) = audit_rows(model_db, "auth.login")
    assert (login.actor_kind, login.actor_id, login.subject) == ("user", user_id, f"user:{user_id}")
    assert login.details["token_id"] == body["id"] and login.details["hours"] == 12
    assert login.client == "testclient"


def test_wrong_password_unknown_email_and_deactivated_get_one_answer(
    client: TestClient, model_db: Database
) -> None:
    person(model_db, "bo@example.test")
    person(model_db, "gone@example.test", active=False)
    answers = [
        sign_in(client, "bo@example.test", "not the password"),
        sign_in(client, "nobody@example.test", PASSWORD),
        sign_in(client, "gone@example.test", PASSWORD),
    ]
    details = {assert_problem(r, 401, "unauthorized")["detail"] for r in answers}
    assert len(details) == 1
    failed = audit_rows(model_db, "auth.login_failed")
    assert [r.subject for r in failed] == [
        "bo@example.test",
        "nobody@example.test",
        "gone@example.test",
    ]
    assert {r.outcome for r in failed} == {"failed"}
    assert audit_rows(model_db, "auth.login") == []


def test_repeated_failures_lock_the_account_even_for_the_right_password(
    client: TestClient, model_db: Database
) -> None:
    person(model_db, "cy@example.test")
    for _ in range(5):  # the default: 5 failures per account in 15 minutes
        assert sign_in(client, "cy@example.test", "guess").status_code == 401
    locked = sign_in(client, "cy@example.test", PASSWORD)
    assert_problem(locked, 429, "rate-limited")
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    (row,) = audit_rows(model_db, "auth.locked_out")
    assert row.subject == "cy@example.test" and row.outcome == "refused"
    # another account is not locked by it
    person(model_db, "di@example.test")
    assert sign_in(client, "di@example.test", PASSWORD).status_code == 201


def test_a_success_forgets_earlier_failures(client: TestClient, model_db: Database) -> None:
    person(model_db, "ed@example.test")
    for _ in range(4):
        assert sign_in(client, "ed@example.test", "guess").status_code == 401
    assert sign_in(client, "ed@example.test", PASSWORD).status_code == 201
    for _ in range(4):
        assert sign_in(client, "ed@example.test", "guess").status_code == 401
    assert sign_in(client, "ed@example.test", PASSWORD).status_code == 201


def test_bad_bodies_change_nothing(client: TestClient, model_db: Database) -> None:
    before = len(audit_rows(model_db, "auth.login_failed"))
    for body in ({}, {"email": "x@example.test"}, {"email": "a" * 400, "password": "p"}):
        assert client.post("/api/v1/auth/token", json=body).status_code == 422
    assert len(audit_rows(model_db, "auth.login_failed")) == before
