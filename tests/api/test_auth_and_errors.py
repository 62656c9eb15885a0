"""Authentication, the problem shape of every error, health, docs and OpenAPI."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from opsdesk.desk import service
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

from .conftest import Caller, assert_problem


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/tickets"),
        ("GET", "/api/v1/tickets/1"),
        ("POST", "/api/v1/tickets"),
        ("GET", "/api/v1/customers/1/timeline"),
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/model"),
        ("POST", "/api/v1/exceptions/1/decision"),
    ],
)
def test_missing_token_is_401(client: TestClient, method: str, path: str) -> None:
    r = client.request(method, path, json={})
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


def test_invalid_revoked_or_basic_token_is_401(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    r = client.get("/api/v1/tickets", headers={"Authorization": "Bearer odk_nope"})
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    r = client.get("/api/v1/tickets", headers={"Authorization": "Basic dTpw"})
    assert_problem(r, 401, "unauthorized")

    assert client.get("/api/v1/tickets", headers=agent.headers).status_code == 200
    with model_db.engine.begin() as conn:
        conn.execute(update(t.api_tokens).values(revoked_at=t.api_tokens.c.created_at))
    assert_problem(client.get("/api/v1/tickets", headers=agent.headers), 401, "unauthorized")


def test_a_revoked_token_or_deactivated_user_cannot_write_from_the_next_request(
    client: TestClient, agent: Caller, lead: Caller, model_db: Database
) -> None:
    """Tokens are looked up on every request, writes too: nothing cached lets a token
    that worked a moment ago keep working once revoked or its user deactivated."""
    ticket = {"customer": {"email": "ada@example.com"}, "subject": "Hi", "channel": "email"}
    assert client.post("/api/v1/tickets", json=ticket, headers=agent.headers).status_code == 201
    with model_db.engine.begin() as conn:
        conn.execute(
            update(t.api_tokens)
            .where(t.api_tokens.c.user_id == agent.id)
            .values(revoked_at=t.api_tokens.c.created_at)
        )
    r = client.post("/api/v1/tickets", json=ticket, headers=agent.headers)
    assert_problem(r, 401, "unauthorized")

    assert client.post("/api/v1/tickets", json=ticket, headers=lead.headers).status_code == 201
    with UnitOfWork(model_db) as uow:
        service.deactivate_user(uow, lead.id, "left the company")
    r = client.post("/api/v1/tickets", json=ticket, headers=lead.headers)
    assert_problem(r, 401, "unauthorized")


def test_error_shapes(client: TestClient, agent: Caller) -> None:
    assert_problem(client.get("/api/v1/nowhere", headers=agent.headers), 404, "not-found")
    assert_problem(client.delete("/api/v1/tickets", headers=agent.headers), 405)
    body = assert_problem(
        client.post("/api/v1/tickets", json={"subject": 3}, headers=agent.headers),
        422,
        "validation-failed",
    )
    assert {tuple(e["loc"]) for e in body["errors"]} >= {
        ("body", "customer"),
        ("body", "channel"),
    }
    r = client.post(
        "/api/v1/tickets",
        content=b"{not json",
        headers={**agent.headers, "Content-Type": "application/json"},
    )
    assert_problem(r, 422, "validation-failed")
    assert_problem(client.get("/api/v1/tickets/abc", headers=agent.headers), 422)


def test_unexpected_errors_are_500_problems_without_internals(app: FastAPI, agent: Caller) -> None:
    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/boom", headers=agent.headers)
    body = assert_problem(r, 500, "internal-error")
    assert "secret" not in r.text
    assert "Traceback" not in body["detail"]


def test_health_root_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307)
    assert r.headers["location"] == "/docs"
    assert client.get("/docs").status_code == 200

    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/tickets",
        "/api/v1/tickets/{ticket_id}",
        "/api/v1/tickets/{ticket_id}/status",
        "/api/v1/tickets/{ticket_id}/priority",
        "/api/v1/tickets/{ticket_id}/transfer",
        "/api/v1/tickets/{ticket_id}/messages",
        "/api/v1/tickets/{ticket_id}/accept",
        "/api/v1/tickets/{ticket_id}/triage",
        "/api/v1/tickets/{ticket_id}/tags",
        "/api/v1/tickets/{ticket_id}/csat",
        "/api/v1/tickets/{ticket_id}/exceptions",
        "/api/v1/customers",
        "/api/v1/customers/{customer_id}",
        "/api/v1/customers/{customer_id}/handles",
        "/api/v1/customers/{customer_id}/merge",
        "/api/v1/customers/{customer_id}/timeline",
        "/api/v1/exceptions/{exception_id}/decision",
        "/api/v1/exceptions/stats",
        "/api/v1/events",
        "/api/v1/model",
        "/healthz",
    ):
        assert path in paths, path
    problem = paths["/api/v1/tickets"]["post"]["responses"]["401"]["content"]
    assert problem["application/problem+json"]["schema"]["$ref"] == "#/components/schemas/Problem"
    assert "Problem" in spec["components"]["schemas"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["components"]["schemas"]["TicketCreate"]["examples"]
