"""A ticket's SLA clocks over HTTP: GET /tickets/{id}/sla."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from opsdesk.model import OperatingModel
from opsdesk.sla.businesstime import clock_for_policy
from opsdesk.store.db import Database

from .conftest import Caller, assert_problem, make_caller

NEW_TICKET = {
    "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
    "subject": "Refund for a double charge",
    "channel": "email",
    "request_type": "refund",
    "body": "I was charged twice for May.",
}


def _model(db: Database) -> OperatingModel:
    return db.model_in_force()[1]


def test_a_new_ticket_shows_its_running_clocks_with_due_times(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    created = client.post("/api/v1/tickets", json=NEW_TICKET, headers=agent.headers).json()
    r = client.get(f"/api/v1/tickets/{created['id']}/sla", headers=agent.headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(c["metric"], c["status"], c["target_minutes"]) for c in items] == [
        ("first_reply", "running", 480),
        ("resolution", "running", 7200),
    ]
    model = _model(model_db)
    measure = clock_for_policy(model, model.sla_policy("standard"))
    started = datetime.fromisoformat(created["created_at"])
    first = items[0]
    assert datetime.fromisoformat(first["started_at"]) == started
    assert datetime.fromisoformat(first["due_at"]) == measure.add(started, 480)
    assert datetime.fromisoformat(first["warning_at"]) == measure.add(started, 360)
    assert first["policy"] == "standard" and first["calendar"] == "uk_site"
    assert first["business_hours"] is True
    assert first["outcome"] is None and not first["breached"]
    assert 0 <= first["elapsed_minutes"] <= 480
    assert first["remaining_minutes"] == 480 - first["elapsed_minutes"]


def test_a_reply_ends_the_first_reply_clock(client: TestClient, agent: Caller) -> None:
    ticket = client.post("/api/v1/tickets", json=NEW_TICKET, headers=agent.headers).json()
    url = f"/api/v1/tickets/{ticket['id']}"
    assert client.post(f"{url}/accept", headers=agent.headers).status_code == 200
    reply = client.post(f"{url}/messages", json={"body": "On it."}, headers=agent.headers)
    assert reply.status_code == 201, reply.text
    first, resolution = client.get(f"{url}/sla", headers=agent.headers).json()["items"]
    assert (first["status"], first["outcome"], first["due_at"]) == ("ended", "achieved", None)
    assert first["ended_at"] is not None and first["remaining_minutes"] is None
    assert resolution["status"] == "running"

    pending = client.post(f"{url}/status", json={"status": "pending"}, headers=agent.headers)
    assert pending.status_code == 200, pending.text
    _, resolution = client.get(f"{url}/sla", headers=agent.headers).json()["items"]
    assert (resolution["status"], resolution["due_at"]) == ("paused", None)


def test_a_ticket_without_policy_has_no_clocks(client: TestClient, agent: Caller) -> None:
    body = {**NEW_TICKET, "request_type": None}
    ticket = client.post("/api/v1/tickets", json=body, headers=agent.headers).json()
    r = client.get(f"/api/v1/tickets/{ticket['id']}/sla", headers=agent.headers)
    assert r.json() == {"items": []}


def test_sla_needs_a_known_ticket_and_read_access(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    assert_problem(client.get("/api/v1/tickets/999/sla", headers=agent.headers), 404)
    assert_problem(client.get("/api/v1/tickets/1/sla"), 401)
    nobody = make_caller(model_db, roles=["finance_approver"], teams=[])
    ticket = client.post("/api/v1/tickets", json=NEW_TICKET, headers=agent.headers).json()
    # finance approvers may read tickets; a role without tickets.read may not
    assert client.get(f"/api/v1/tickets/{ticket['id']}/sla", headers=nobody.headers).is_success
    no_read = make_caller(model_db, roles=[], teams=[])
    assert_problem(client.get(f"/api/v1/tickets/{ticket['id']}/sla", headers=no_read.headers), 403)


def test_the_elapsed_time_is_counted_on_the_policy_calendar(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    ticket = client.post("/api/v1/tickets", json=NEW_TICKET, headers=agent.headers).json()
    before = datetime.now(UTC)
    r = client.get(f"/api/v1/tickets/{ticket['id']}/sla", headers=agent.headers)
    after = datetime.now(UTC)
    first = r.json()["items"][0]
    model = _model(model_db)
    measure = clock_for_policy(model, model.sla_policy("standard"))
    started = datetime.fromisoformat(first["started_at"])
    low = measure.between(started, before) / timedelta(minutes=1)
    high = measure.between(started, after) / timedelta(minutes=1)
    assert round(low, 3) - 0.001 <= first["elapsed_minutes"] <= round(high, 3) + 0.001
