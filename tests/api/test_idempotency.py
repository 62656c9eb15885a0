"""Idempotency-Key: a retry replays the first response and changes nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from opsdesk.store import tables as t
from opsdesk.store.db import Database
from tests import factories

from .conftest import Caller, assert_problem, count_rows, event_count, make_caller

TICKET = {
    "customer": {"email": "retry@example.com", "name": "Retry"},
    "subject": "Where is my refund?",
    "channel": "email",
    "request_type": "refund",
}


def _post(client: TestClient, caller: Caller, key: str, body: dict[str, object]) -> object:
    return client.post(
        "/api/v1/tickets", json=body, headers={**caller.headers, "Idempotency-Key": key}
    )


def test_retry_returns_the_first_response_and_creates_one_ticket(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    first = _post(client, agent, "k-1", TICKET)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    events = event_count(model_db)

    # same body with keys in another order is the same request
    retry = _post(client, agent, "k-1", dict(reversed(list(TICKET.items()))))
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert count_rows(model_db, t.tickets) == 1
    assert event_count(model_db) == events

    other = _post(client, agent, "k-1", {**TICKET, "subject": "Something else"})
    assert "different request" in assert_problem(other, 422, "idempotency-key-reused")["detail"]
    assert count_rows(model_db, t.tickets) == 1

    # the same key on another path is another request too
    r = client.post(
        "/api/v1/customers",
        json={"name": "X"},
        headers={**agent.headers, "Idempotency-Key": "k-1"},
    )
    assert_problem(r, 422, "idempotency-key-reused")

    # keys belong to their user: another user's "k-1" is a new request
    colleague = make_caller(model_db, roles=["agent"], teams=["billing"])
    r = _post(client, colleague, "k-1", TICKET)
    assert r.status_code == 201
    assert "idempotent-replayed" not in r.headers
    assert count_rows(model_db, t.tickets) == 2


def test_failed_requests_are_not_remembered(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    ticket = factories.ticket(model_db)
    path = f"/api/v1/tickets/{ticket.id}/status"
    headers = {**agent.headers, "Idempotency-Key": "status-1"}
    assert_problem(client.post(path, json={"status": "solved"}, headers=headers), 409)
    assert count_rows(model_db, t.idempotency_keys) == 0

    client.post(f"/api/v1/tickets/{ticket.id}/accept", headers=agent.headers)
    r = client.post(path, json={"status": "solved"}, headers=headers)
    assert r.status_code == 200, r.text
    assert count_rows(model_db, t.idempotency_keys) == 1


def test_expired_keys_run_again(client: TestClient, agent: Caller, model_db: Database) -> None:
    assert _post(client, agent, "old", TICKET).status_code == 201
    with model_db.engine.begin() as conn:
        conn.execute(
            update(t.idempotency_keys).values(created_at=datetime.now(UTC) - timedelta(hours=25))
        )
    r = _post(client, agent, "old", TICKET)
    assert r.status_code == 201
    assert "idempotent-replayed" not in r.headers
    assert count_rows(model_db, t.tickets) == 2


def test_bad_keys_are_refused(client: TestClient, agent: Caller) -> None:
    assert_problem(_post(client, agent, "x" * 201, TICKET), 400, "invalid-idempotency-key")


def test_concurrent_duplicates_write_once(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    barrier = threading.Barrier(4)
    responses: list[object] = []

    def send() -> None:
        barrier.wait()
        responses.append(_post(client, agent, "race", TICKET))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count_rows(model_db, t.tickets) == 1
    bodies = {r.json()["id"] for r in responses}  # type: ignore[attr-defined]
    assert len(bodies) == 1
    assert all(r.status_code == 201 for r in responses)  # type: ignore[attr-defined]
    replayed = [r for r in responses if r.headers.get("idempotent-replayed")]  # type: ignore[attr-defined]
    assert len(replayed) == 3


def test_primary_key_conflict_replays_the_winner(agent: Caller, model_db: Database) -> None:
    """If another transaction stores the key while our command runs, ours rolls back
    and the stored response is replayed."""
    if model_db.dialect != "postgresql":
        pytest.skip("needs two concurrent writers; SQLite serialises them at BEGIN")
    from opsdesk.api.idempotency import Writer, request_fingerprint
    from opsdesk.api.schemas import Health

    fingerprint = request_fingerprint(b"{}")
    writer = Writer(
        model_db,
        agent.user,
        key="k",
        method="POST",
        path="/x",
        fingerprint=fingerprint,
        ttl_hours=24,
    )

    def command(uow: object) -> Health:
        # the "other request" commits its row between our lookup and our insert
        with model_db.engine.begin() as other:
            other.execute(
                insert(t.idempotency_keys).values(
                    user_id=agent.id,
                    key="k",
                    method="POST",
                    path="/x",
                    request_hash=fingerprint,
                    status_code=201,
                    response={"winner": True},
                    created_at=datetime.now(UTC),
                )
            )
        return Health(status="ok")

    response = writer.run(command, status_code=201)
    assert response.status_code == 201
    assert response.headers["idempotent-replayed"] == "true"
    assert response.body == b'{"winner":true}'
