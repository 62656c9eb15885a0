"""The event feed over HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from opsdesk.store.db import Database
from tests import factories

from .conftest import Caller, assert_problem, make_caller


def test_events_feed_cursor_and_filters(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    auditor = make_caller(model_db, roles=["auditor"], teams=[])
    tickets = [factories.ticket(model_db) for _ in range(3)]

    everything = client.get("/api/v1/events", params={"limit": 100}, headers=auditor.headers)
    assert everything.status_code == 200, everything.text
    all_seqs = [e["seq"] for e in everything.json()["items"]]
    assert all_seqs == list(range(1, len(all_seqs) + 1))
    assert everything.json()["next_after_seq"] is None

    seen: list[int] = []
    after = 0
    while True:
        page = client.get(
            "/api/v1/events", params={"after_seq": after, "limit": 4}, headers=auditor.headers
        ).json()
        seen += [e["seq"] for e in page["items"]]
        if page["next_after_seq"] is None:
            break
        after = page["next_after_seq"]
    assert seen == all_seqs

    created = client.get(
        "/api/v1/events", params={"type": "ticket.created"}, headers=auditor.headers
    ).json()
    assert [e["ticket_id"] for e in created["items"]] == [t.id for t in tickets]
    one = client.get(
        "/api/v1/events", params={"ticket_id": tickets[1].id}, headers=auditor.headers
    ).json()
    assert {e["ticket_id"] for e in one["items"]} == {tickets[1].id}
    assert {e["type"] for e in one["items"]} == {
        "ticket.created",
        "ticket.triaged",
        "message.added",
        "sla.activated",  # the request type's SLA policy starts its clocks
    }

    # agents lack events.read
    assert_problem(client.get("/api/v1/events", headers=agent.headers), 403, "permission-denied")


def test_model_in_force(client: TestClient, agent: Caller, finance: Caller) -> None:
    r = client.get("/api/v1/model", headers=agent.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Lumen Home Energy"
    assert body["author"] == "tests"
    assert len(body["version"]) > 8
    assert body["applied_at"]
    assert_problem(client.get("/api/v1/model", headers=finance.headers), 403)
