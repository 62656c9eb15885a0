"""`POST /api/v1/customers/{id}/erase`: admins only, dry run, idempotent, 404 for unknown."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from opsdesk.domain.events import ERASED
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.verify import verify

from .conftest import Caller, assert_problem, event_count


def test_erase_over_http(
    client: TestClient, agent: Caller, admin: Caller, model_db: Database
) -> None:
    r = client.post(
        "/api/v1/customers",
        json={"name": "Zelda Http", "handles": [{"kind": "email", "value": "zh@x.io"}]},
        headers={**agent.headers, "Idempotency-Key": "create-zelda"},
    )
    assert "Zelda Http" in str(_cached_responses(model_db))
    cid = r.json()["id"]
    url = f"/api/v1/customers/{cid}/erase"

    before = event_count(model_db)
    r = client.post(url, json={"reason": "request 9"}, headers=agent.headers)
    assert_problem(r, 403, "permission-denied")
    r = client.post(url, json={"dry_run": True}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["dry_run"] and r.json()["handles_removed"] == 1
    assert event_count(model_db) == before

    r = client.post(url, json={"reason": "request 9"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["cached_responses_dropped"] == 1
    assert "Zelda Http" not in str(_cached_responses(model_db))
    assert r.json()["keys_destroyed"] == 1 and not r.json()["nothing_to_do"]
    got = client.get(f"/api/v1/customers/{cid}", headers=admin.headers).json()
    assert got["name"] == ERASED and got["handles"] == []
    timeline = client.get(f"/api/v1/customers/{cid}/timeline", headers=admin.headers).json()
    assert [e["type"] for e in timeline["items"]] == ["customer.created", "customer.erased"]
    assert timeline["items"][0]["payload"]["name"] == ERASED

    r = client.post(url, json={}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["nothing_to_do"]
    assert verify(model_db).ok

    assert_problem(
        client.post("/api/v1/customers/4242/erase", json={}, headers=admin.headers),
        404,
        "not-found",
    )
    r = client.post(url, json={"reason": "x" * 501}, headers=admin.headers)
    assert r.status_code == 422


def _cached_responses(db: Database) -> list[object]:
    with db.read() as conn:
        return list(conn.execute(select(t.idempotency_keys.c.response)).scalars())
