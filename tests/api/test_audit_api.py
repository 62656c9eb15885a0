"""GET /api/v1/audit for auditors and admins; refusals and bad tokens are recorded."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from opsdesk.desk import audit
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

from .conftest import Caller, assert_problem, make_caller


def last_row(db: Database) -> dict[str, object]:
    with db.read() as conn:
        row = conn.execute(select(t.audit_log).order_by(t.audit_log.c.seq.desc())).first()
    assert row is not None
    return dict(row._mapping)


def test_auditor_and_admin_page_and_filter_the_trail(
    client: TestClient, model_db: Database, admin: Caller
) -> None:
    auditor = make_caller(model_db, roles=["auditor"], teams=[])
    everything = client.get("/api/v1/audit", headers=auditor.headers)
    assert everything.status_code == 200, everything.text
    items = everything.json()["items"]
    # model applied, then admin and auditor each created with a token
    assert [i["action"] for i in items] == ["model.applied"] + [
        "user.created",
        "token.created",
    ] * 2
    assert items[1]["prev_hash"] == items[0]["hash"]
    assert everything.json()["next_after_seq"] is None
    first = client.get("/api/v1/audit", params={"limit": 2}, headers=admin.headers).json()
    assert [i["seq"] for i in first["items"]] == [1, 2]
    rest = client.get(
        "/api/v1/audit", params={"after_seq": first["next_after_seq"]}, headers=admin.headers
    ).json()
    assert [i["seq"] for i in rest["items"]] == [3, 4, 5]
    tokens = client.get(
        "/api/v1/audit", params={"action": "token.created"}, headers=admin.headers
    ).json()["items"]
    assert [i["subject"] for i in tokens] == [items[2]["subject"], items[4]["subject"]]
    since = client.get(
        "/api/v1/audit", params={"since": items[3]["at"]}, headers=admin.headers
    ).json()["items"]
    assert [i["seq"] for i in since] == [4, 5]
    with UnitOfWork(model_db, actor_kind="user", actor_id=admin.id) as uow:
        uow.audit("events.exported", subject="stdout")
    mine = client.get(
        "/api/v1/audit", params={"actor_kind": "user", "actor_id": admin.id}, headers=admin.headers
    ).json()["items"]
    assert [i["action"] for i in mine] == ["events.exported"]


def test_a_refused_read_is_recorded_with_actor_permission_and_route(
    client: TestClient, model_db: Database, agent: Caller
) -> None:
    response = client.get("/api/v1/audit", headers=agent.headers)
    assert_problem(response, 403, "permission-denied")
    row = last_row(model_db)
    assert (row["action"], row["outcome"], row["actor_kind"], row["actor_id"]) == (
        "access.refused",
        "refused",
        "user",
        agent.id,
    )
    assert row["subject"] == "GET /api/v1/audit"
    assert row["details"]["permission"] == "audit.read"  # type: ignore[index]
    assert row["client"] == "testclient"
    assert audit.verify_chain(model_db).ok


def test_a_refused_write_rolls_back_but_its_refusal_stays(
    client: TestClient, model_db: Database, agent: Caller
) -> None:
    auditor = make_caller(model_db, roles=["auditor"], teams=[])
    ticket = client.post(
        "/api/v1/tickets",
        json={
            "customer": {"email": "ann@example.test", "name": "Ann"},
            "subject": "Refund please",
            "channel": "email",
            "request_type": "refund",
        },
        headers=agent.headers,
    )
    assert ticket.status_code in (200, 201), ticket.text
    before = last_row(model_db)["seq"]
    refused = client.post(
        f"/api/v1/tickets/{ticket.json()['id']}/priority",
        json={"priority": "high"},
        headers=auditor.headers,
    )
    assert_problem(refused, 403, "permission-denied")
    row = last_row(model_db)
    assert row["seq"] == before + 1  # type: ignore[operator]
    assert (row["action"], row["actor_id"]) == ("access.refused", auditor.id)
    assert row["details"]["permission"] == "tickets.write"  # type: ignore[index]


def test_bad_tokens_are_recorded_without_the_token(
    client: TestClient, model_db: Database, admin: Caller
) -> None:
    bogus = "odk_" + "x" * 43
    response = client.get("/api/v1/events", headers={"Authorization": f"Bearer {bogus}"})
    assert_problem(response, 401, "unauthorized")
    row = last_row(model_db)
    assert (row["action"], row["outcome"], row["actor_kind"], row["subject"]) == (
        "auth.token_refused",
        "failed",
        "anonymous",
        None,
    )
    assert row["details"] == {"reason": "unknown token", "route": "GET /api/v1/events"}
    assert bogus not in str(row)
    with UnitOfWork(model_db) as uow:
        uow.conn.execute(
            t.api_tokens.update()
            .where(t.api_tokens.c.user_id == admin.id)
            .values(revoked_at=uow.now)
        )
    assert_problem(client.get("/api/v1/events", headers=admin.headers), 401)
    row = last_row(model_db)
    assert (row["actor_kind"], row["actor_id"], row["details"]["reason"]) == (  # type: ignore[index]
        "user",
        admin.id,
        "revoked token",
    )
    assert str(row["subject"]).startswith("token:")
    assert admin.token not in str(row)
    assert audit.verify_chain(model_db).ok
