"""Customers over HTTP: identities, handles, merges and the cross-channel timeline."""

from __future__ import annotations

from fastapi.testclient import TestClient

from opsdesk.desk import service
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

from .conftest import Caller, assert_problem


def test_create_get_and_add_handle(client: TestClient, agent: Caller) -> None:
    r = client.post(
        "/api/v1/customers",
        json={"name": "Grace", "tier": "gold", "handles": [{"kind": "email", "value": "G@x.io"}]},
        headers=agent.headers,
    )
    assert r.status_code == 201, r.text
    customer = r.json()
    assert customer["handles"] == [{"kind": "email", "value": "g@x.io"}]
    cid = customer["id"]

    r = client.post(
        f"/api/v1/customers/{cid}/handles",
        json={"kind": "phone", "value": "+44 161 000"},
        headers=agent.headers,
    )
    assert r.status_code == 201, r.text
    got = client.get(f"/api/v1/customers/{cid}", headers=agent.headers).json()
    assert {(h["kind"], h["value"]) for h in got["handles"]} == {
        ("email", "g@x.io"),
        ("phone", "+44 161 000"),
    }

    r = client.post(
        "/api/v1/customers",
        json={"name": "Other", "handles": [{"kind": "email", "value": "g@x.io"}]},
        headers=agent.headers,
    )
    assert "already belongs to customer" in assert_problem(r, 409, "conflict")["detail"]
    assert_problem(client.get("/api/v1/customers/4242", headers=agent.headers), 404, "not-found")


def test_timeline_spans_merged_customers_and_channels(
    client: TestClient, agent: Caller, lead: Caller, model_db: Database
) -> None:
    def customer(name: str, email: str) -> int:
        r = client.post(
            "/api/v1/customers",
            json={"name": name, "handles": [{"kind": "email", "value": email}]},
            headers=agent.headers,
        )
        return int(r.json()["id"])

    first, duplicate, stranger = (
        customer("Ada", "ada@a.io"),
        customer("Ada L.", "ada@b.io"),
        customer("Bob", "bob@b.io"),
    )
    tickets = {}
    for who, channel in ((first, "email"), (duplicate, "chat"), (stranger, "email")):
        r = client.post(
            "/api/v1/tickets",
            json={"customer": {"id": who}, "subject": "Help", "channel": channel, "body": "hi"},
            headers=agent.headers,
        )
        tickets[who] = r.json()["id"]

    # merging needs customers.merge, which agents lack
    r = client.post(
        f"/api/v1/customers/{first}/merge", json={"source_id": duplicate}, headers=agent.headers
    )
    assert_problem(r, 403, "permission-denied")
    r = client.post(
        f"/api/v1/customers/{first}/merge", json={"source_id": duplicate}, headers=lead.headers
    )
    assert r.status_code == 200, r.text
    assert {h["value"] for h in r.json()["handles"]} == {"ada@a.io", "ada@b.io"}

    # a later event on the merged-away customer's ticket still shows on the timeline
    with UnitOfWork(model_db, actor_kind="user", actor_id=agent.id) as uow:
        service.add_message(uow, tickets[duplicate], body="voice transcript", channel="voice")

    r = client.get(f"/api/v1/customers/{first}/timeline", headers=agent.headers)
    assert r.status_code == 200, r.text
    events = r.json()["items"]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)
    assert {e["customer_id"] for e in events} == {first, duplicate}
    assert {e["ticket_id"] for e in events if e["ticket_id"]} == {
        tickets[first],
        tickets[duplicate],
    }
    channels = {e["payload"]["channel"] for e in events if e["type"] == "message.added"}
    assert channels == {"email", "chat", "voice"}
    assert "customer.merged" in {e["type"] for e in events}

    # paginated by seq
    page1 = client.get(
        f"/api/v1/customers/{first}/timeline", params={"limit": 2}, headers=agent.headers
    ).json()
    assert [e["seq"] for e in page1["items"]] == seqs[:2]
    page2 = client.get(
        f"/api/v1/customers/{first}/timeline",
        params={"limit": 100, "after_seq": page1["next_after_seq"]},
        headers=agent.headers,
    ).json()
    assert [e["seq"] for e in page2["items"]] == seqs[2:]
    assert page2["next_after_seq"] is None

    # the duplicate's own timeline does not include the target's history
    own = client.get(f"/api/v1/customers/{duplicate}/timeline", headers=agent.headers).json()
    assert {e["customer_id"] for e in own["items"]} == {duplicate}


def test_timeline_follows_merges_transitively(
    client: TestClient, lead: Caller, model_db: Database
) -> None:
    with UnitOfWork(model_db) as uow:
        a, b, c = (service.create_customer(uow, name=n, handles=[("chat", n)]).id for n in "abc")
        service.merge_customers(uow, c, b)
        service.merge_customers(uow, b, a)
    r = client.get(f"/api/v1/customers/{a}/timeline", headers=lead.headers)
    assert {e["customer_id"] for e in r.json()["items"]} == {a, b, c}
    assert_problem(client.get("/api/v1/customers/999/timeline", headers=lead.headers), 404)
