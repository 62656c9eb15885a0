"""Exceptions over HTTP: request, decide (by an approver only) and count."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from opsdesk.store.db import Database
from tests import factories

from .conftest import Caller, assert_problem, event_count, make_caller


def _request(client: TestClient, caller: Caller, ticket_id: int) -> dict[str, object]:
    r = client.post(
        f"/api/v1/tickets/{ticket_id}/exceptions",
        json={"exception_type": "refund_outside_policy", "reason": "order is 40 days old"},
        headers=caller.headers,
    )
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def test_request_and_approve_by_finance(
    client: TestClient, agent: Caller, finance: Caller, model_db: Database
) -> None:
    ticket = factories.ticket(model_db)
    x = _request(client, agent, ticket.id)
    assert (x["status"], x["request_type"], x["requested_by"]) == ("requested", "refund", agent.id)

    before = event_count(model_db)
    r = client.post(
        f"/api/v1/exceptions/{x['id']}/decision",
        json={"decision": "approve"},
        headers=agent.headers,
    )
    assert "finance_approver" in assert_problem(r, 403, "permission-denied")["detail"]
    assert event_count(model_db) == before

    r = client.post(
        f"/api/v1/exceptions/{x['id']}/decision",
        json={"decision": "approve", "note": "loyal customer"},
        headers=finance.headers,
    )
    assert r.status_code == 200, r.text
    decided = r.json()
    assert (decided["status"], decided["decided_by"]) == ("approved", finance.id)
    assert decided["expires_at"] is not None

    r = client.post(
        f"/api/v1/exceptions/{x['id']}/decision", json={"decision": "deny"}, headers=finance.headers
    )
    assert_problem(r, 409, "conflict")

    listed = client.get(
        "/api/v1/exceptions", params={"ticket_id": ticket.id}, headers=agent.headers
    ).json()
    assert [item["id"] for item in listed["items"]] == [x["id"]]


def test_unknown_exception_type_is_refused(client: TestClient, model_db: Database) -> None:
    # device faults belong to tech_support: an agent of that team asks
    agent = make_caller(model_db, roles=["agent"], teams=["tech_support"])
    ticket = factories.ticket(model_db, request_type="device_fault")
    r = client.post(
        f"/api/v1/tickets/{ticket.id}/exceptions",
        json={"exception_type": "refund_outside_policy", "reason": "x"},
        headers=agent.headers,
    )
    assert "not allowed for request type" in assert_problem(r, 422, "refused")["detail"]
    assert_problem(
        client.post(
            "/api/v1/exceptions/999/decision", json={"decision": "deny"}, headers=agent.headers
        ),
        404,
    )


def test_exception_stats(
    client: TestClient, agent: Caller, finance: Caller, model_db: Database
) -> None:
    refunds = [factories.ticket(model_db) for _ in range(4)]
    factories.ticket(model_db, request_type="device_fault")
    first = _request(client, agent, refunds[0].id)
    second = _request(client, agent, refunds[1].id)
    _request(client, agent, refunds[1].id)
    for x, decision in ((first, "approve"), (second, "deny")):
        client.post(
            f"/api/v1/exceptions/{x['id']}/decision",
            json={"decision": decision},
            headers=finance.headers,
        )

    assert_problem(client.get("/api/v1/exceptions/stats", headers=agent.headers), 403)
    r = client.get("/api/v1/exceptions/stats", headers=finance.headers)
    assert r.status_code == 200, r.text
    stats = {item["request_type"]: item for item in r.json()["items"]}
    refund = stats["refund"]
    assert (refund["requested"], refund["approved"], refund["denied"]) == (3, 1, 1)
    assert (refund["pending"], refund["expired"]) == (1, 0)
    assert (refund["tickets"], refund["tickets_with_exceptions"]) == (4, 2)
    assert refund["exception_rate"] == pytest.approx(0.5)
    assert stats["device_fault"]["exception_rate"] == 0
