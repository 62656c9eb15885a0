"""Tickets over HTTP: create, read, list (filters, cursor, query budget) and commands."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from opsdesk.desk import service
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from tests import factories

from .conftest import Caller, assert_problem, count_rows, event_count

NEW_TICKET = {
    "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
    "subject": "Refund for a double charge",
    "channel": "email",
    "request_type": "refund",
    "tags": ["Billing"],
    "body": "I was charged twice for May.",
}


def test_create_ticket_finds_or_creates_the_customer_by_handle(
    client: TestClient, agent: Caller
) -> None:
    r = client.post("/api/v1/tickets", json=NEW_TICKET, headers=agent.headers)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["owning_team"] == "billing"
    assert first["status"] == "new"
    assert first["tags"] == ["billing"]
    assert first["message_count"] == 1

    again = client.post(
        "/api/v1/tickets",
        json={**NEW_TICKET, "customer": {"email": "ADA@example.com"}, "tags": []},
        headers=agent.headers,
    )
    assert again.status_code == 201, again.text
    assert again.json()["customer_id"] == first["customer_id"]

    by_id = client.post(
        "/api/v1/tickets",
        json={**NEW_TICKET, "customer": {"id": first["customer_id"]}},
        headers=agent.headers,
    )
    assert by_id.json()["customer_id"] == first["customer_id"]


def test_create_ticket_is_one_transaction(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    customers, events = count_rows(model_db, t.customers), event_count(model_db)
    r = client.post(
        "/api/v1/tickets",
        json={**NEW_TICKET, "customer": {"email": "new@example.com"}, "request_type": "nope"},
        headers=agent.headers,
    )
    assert_problem(r, 422, "refused")
    assert "unknown request type" in r.json()["detail"]
    # the customer the command created before failing was rolled back with it
    assert count_rows(model_db, t.customers) == customers
    assert event_count(model_db) == events


def test_create_ticket_validates_the_customer_reference(client: TestClient, agent: Caller) -> None:
    r = client.post(
        "/api/v1/tickets",
        json={**NEW_TICKET, "customer": {"id": 1, "email": "a@example.com"}},
        headers=agent.headers,
    )
    body = assert_problem(r, 422, "validation-failed")
    assert body["errors"][0]["loc"][:2] == ["body", "customer"]


def test_get_ticket_includes_messages(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    ticket = factories.ticket(model_db)
    r = client.get(f"/api/v1/tickets/{ticket.id}", headers=agent.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == ticket.id
    assert [m["body"] for m in body["messages"]] == ["Please check my last invoice."]
    assert body["messages"][0]["author_kind"] == "customer"

    assert_problem(client.get("/api/v1/tickets/999999", headers=agent.headers), 404, "not-found")


def _ids(client: TestClient, caller: Caller, **params: Any) -> list[int]:
    r = client.get("/api/v1/tickets", params={"limit": 100, **params}, headers=caller.headers)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


def test_list_tickets_filters(client: TestClient, lead: Caller, model_db: Database) -> None:
    alice = factories.customer(model_db)
    refund = factories.ticket(model_db, customer_id=alice.id, tags=["vip"])
    fault = factories.ticket(model_db, request_type="device_fault", priority="high")
    untriaged_id: int
    with UnitOfWork(model_db) as uow:
        untriaged_id = service.create_ticket(
            uow, customer_id=alice.id, subject="Hello", channel="chat"
        ).id
    with UnitOfWork(model_db, actor_kind="user", actor_id=lead.id) as uow:
        service.accept_ticket(uow, refund.id)

    assert _ids(client, lead) == [untriaged_id, fault.id, refund.id]
    assert _ids(client, lead, status="open") == [refund.id]
    assert _ids(client, lead, status="new") == [untriaged_id, fault.id]
    assert _ids(client, lead, owning_team="tech_support") == [fault.id]
    assert _ids(client, lead, owning_agent=lead.id) == [refund.id]
    assert _ids(client, lead, request_type="refund") == [refund.id]
    assert _ids(client, lead, priority="high") == [fault.id]
    assert _ids(client, lead, channel="chat") == [untriaged_id]
    assert _ids(client, lead, tag="VIP") == [refund.id]
    assert _ids(client, lead, customer_id=alice.id) == [untriaged_id, refund.id]
    assert _ids(client, lead, customer_id=alice.id, channel="email") == [refund.id]
    assert _ids(client, lead, status="closed") == []


def _bulk_tickets(db: Database, n: int) -> list[int]:
    customer = factories.customer(db)
    with UnitOfWork(db) as uow:
        return [
            service.create_ticket(
                uow,
                customer_id=customer.id,
                subject=f"Ticket {i}",
                channel="email",
                request_type="refund",
                tags=["bulk", f"t{i}"],
            ).id
            for i in range(n)
        ]


def test_list_tickets_cursor_pagination(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    ids = _bulk_tickets(model_db, 7)
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, "tag": "bulk"}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/tickets", params=params, headers=agent.headers).json()
        seen += [item["id"] for item in body["items"]]
        assert all(len(item["tags"]) == 2 for item in body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(ids, reverse=True)


def test_list_tickets_bad_cursor_and_limit(client: TestClient, agent: Caller) -> None:
    r = client.get("/api/v1/tickets", params={"cursor": "garbage!"}, headers=agent.headers)
    assert_problem(r, 422, "invalid-cursor")
    r = client.get("/api/v1/tickets", params={"limit": 101}, headers=agent.headers)
    assert "at most 100" in assert_problem(r, 422, "validation-failed")["detail"]
    assert_problem(client.get("/api/v1/tickets?limit=0", headers=agent.headers), 422)


def test_list_tickets_query_count_does_not_grow_with_page_size(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    _bulk_tickets(model_db, 60)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    def run(limit: int) -> int:
        statements.clear()
        r = client.get("/api/v1/tickets", params={"limit": limit}, headers=agent.headers)
        assert len(r.json()["items"]) == limit
        return len(statements)

    client.get("/api/v1/tickets", headers=agent.headers)  # warm the model cache
    event.listen(model_db.engine, "before_cursor_execute", count)
    try:
        small, large = run(5), run(50)
    finally:
        event.remove(model_db.engine, "before_cursor_execute", count)
    assert small == large, statements


def test_status_change_and_refused_transition(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    ticket = factories.ticket(model_db)
    before = event_count(model_db)
    r = client.post(
        f"/api/v1/tickets/{ticket.id}/status", json={"status": "closed"}, headers=agent.headers
    )
    body = assert_problem(r, 409, "invalid-transition")
    assert "cannot go from new to closed" in body["detail"]
    assert event_count(model_db) == before
    assert (
        client.get(f"/api/v1/tickets/{ticket.id}", headers=agent.headers).json()["status"] == "new"
    )

    r = client.post(f"/api/v1/tickets/{ticket.id}/accept", headers=agent.headers)
    assert r.status_code == 200, r.text
    assert r.json()["owning_agent"] == agent.id
    assert r.json()["status"] == "open"
    r = client.post(
        f"/api/v1/tickets/{ticket.id}/status",
        json={"status": "pending", "reason": "asked for a photo"},
        headers=agent.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending"

    r = client.post(
        f"/api/v1/tickets/{ticket.id}/status", json={"status": "bogus"}, headers=agent.headers
    )
    assert_problem(r, 422, "validation-failed")


def test_transfer(client: TestClient, lead: Caller, model_db: Database) -> None:
    ticket = factories.ticket(model_db)
    r = client.post(
        f"/api/v1/tickets/{ticket.id}/transfer",
        json={"to_team": "tech_support", "reason": "it is the heat pump, not the bill"},
        headers=lead.headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["owning_team"], r.json()["transfer_count"]) == ("tech_support", 1)

    r = client.post(
        f"/api/v1/tickets/{ticket.id}/transfer",
        json={"to_team": "tech_support", "reason": "again"},
        headers=lead.headers,
    )
    assert_problem(r, 422, "refused")
    r = client.post(
        f"/api/v1/tickets/{ticket.id}/transfer",
        json={"to_team": "tech_support", "to_agent": lead.id, "reason": "I will take it"},
        headers=lead.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["owning_agent"] == lead.id


def test_messages(client: TestClient, agent: Caller, model_db: Database) -> None:
    ticket = factories.ticket(model_db)
    r = client.post(
        f"/api/v1/tickets/{ticket.id}/messages",
        json={"body": "We refunded the second charge."},
        headers=agent.headers,
    )
    assert r.status_code == 201, r.text
    message = r.json()
    assert (message["author_kind"], message["author_id"]) == ("agent", agent.id)
    assert message["channel"] == "email"
    r = client.post(
        f"/api/v1/tickets/{ticket.id}/messages",
        json={"body": "note to self", "visibility": "internal"},
        headers=agent.headers,
    )
    assert r.status_code == 201, r.text

    detail = client.get(f"/api/v1/tickets/{ticket.id}", headers=agent.headers).json()
    assert [m["visibility"] for m in detail["messages"]] == ["public", "public", "internal"]
    assert detail["first_reply_at"] is not None
    assert detail["message_count"] == 3


def test_triage_tags_priority_and_csat(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    customer = factories.customer(model_db)
    with UnitOfWork(model_db) as uow:
        ticket_id = service.create_ticket(
            uow, customer_id=customer.id, subject="Hi", channel="web"
        ).id
    base = f"/api/v1/tickets/{ticket_id}"
    r = client.post(f"{base}/triage", json={"request_type": "refund"}, headers=agent.headers)
    assert r.json()["owning_team"] == "billing", r.text
    r = client.post(f"{base}/tags", json={"add": ["a", "b"], "remove": []}, headers=agent.headers)
    assert r.json()["tags"] == ["a", "b"], r.text
    r = client.post(f"{base}/tags", json={"remove": ["a"]}, headers=agent.headers)
    assert r.json()["tags"] == ["b"]
    r = client.post(f"{base}/priority", json={"priority": "urgent"}, headers=agent.headers)
    assert r.json()["priority"] == "urgent"
    assert_problem(
        client.post(f"{base}/csat", json={"score": 5}, headers=agent.headers),
        409,
        "invalid-transition",
    )
    client.post(f"{base}/accept", headers=agent.headers)
    r = client.post(f"{base}/status", json={"status": "solved"}, headers=agent.headers)
    assert r.json()["status"] == "solved", r.text
    r = client.post(f"{base}/csat", json={"score": 4, "comment": "ok"}, headers=agent.headers)
    assert r.json()["csat_score"] == 4, r.text
    assert_problem(client.post(f"{base}/csat", json={"score": 6}, headers=agent.headers), 422)


def test_read_only_role_cannot_write(client: TestClient, model_db: Database) -> None:
    from .conftest import make_caller

    auditor = make_caller(model_db, roles=["auditor"], teams=[])
    ticket = factories.ticket(model_db)
    assert client.get(f"/api/v1/tickets/{ticket.id}", headers=auditor.headers).status_code == 200
    r = client.post(
        f"/api/v1/tickets/{ticket.id}/priority", json={"priority": "high"}, headers=auditor.headers
    )
    assert_problem(r, 403, "permission-denied")


def test_a_write_waits_for_a_taken_write_slot_while_reads_go_on(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    """With SQLite's write slot held (as by the in-process timers' sweep), a write waits
    for it off the event loop: reads still answer meanwhile, and the write lands after."""
    lock = model_db.write_lock
    if lock is None:
        pytest.skip("PostgreSQL has no single write slot")
    taken, done = threading.Event(), threading.Event()

    def hold_the_slot() -> None:
        with lock:
            taken.set()
            done.wait(timeout=10)  # bounded, so a regression fails instead of hanging

    holder = threading.Thread(target=hold_the_slot)
    holder.start()
    taken.wait()
    results: list[Any] = []
    writer = threading.Thread(
        target=lambda: results.append(
            client.post("/api/v1/tickets", json=NEW_TICKET, headers=agent.headers)
        )
    )
    writer.start()
    try:
        time.sleep(0.2)  # the write is in flight, waiting for the slot
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/v1/tickets", headers=agent.headers).json()["items"] == []
        assert holder.is_alive() and not results  # answered while the slot was held
    finally:
        done.set()
        holder.join()
        writer.join(timeout=30)
    assert results[0].status_code == 201, results[0].text
    assert count_rows(model_db, t.tickets) == 1
