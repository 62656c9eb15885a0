"""Security headers on every response, no redirect built from the Host header, and CORS
off unless origins are configured."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from opsdesk.api import create_app
from opsdesk.api.headers import API_CSP
from opsdesk.settings import Settings
from opsdesk.store.db import Database
from tests.api.conftest import Caller, make_caller


def _assert_secure(response: httpx.Response, *, https: bool = False) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert ("strict-transport-security" in headers) is https
    # each header once: a route's own header is kept, never doubled
    for name in ("x-content-type-options", "content-security-policy", "x-frame-options"):
        assert len(headers.get_list(name)) == 1, name


@pytest.fixture
def desk_db(sqlite_db: Database) -> Database:
    """SQLite with the example model in force: headers do not depend on the backend."""
    from opsdesk.desk.models import apply_model_file
    from opsdesk.model import example_model_path
    from opsdesk.store.uow import UnitOfWork

    with UnitOfWork(sqlite_db) as uow:
        apply_model_file(uow, example_model_path(), author="tests")
    return sqlite_db


@pytest.fixture
def app(desk_db: Database) -> FastAPI:
    app = create_app(Settings(database_url=desk_db.url), db=desk_db)

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def agent(desk_db: Database) -> Caller:
    return make_caller(desk_db, roles=["agent"], teams=["billing"])


def test_every_kind_of_response_carries_the_security_headers(
    client: TestClient, agent: Caller
) -> None:
    responses = {
        "success": client.get("/api/v1/tickets", headers=agent.headers),
        "health": client.get("/healthz"),
        "401": client.get("/api/v1/tickets"),
        "404": client.get("/nowhere"),
        "422": client.get("/api/v1/tickets?limit=-1", headers=agent.headers),
        "413": client.post("/api/v1/tickets", content=b"x" * 2_000_000, headers=agent.headers),
        "500": client.get("/boom"),
        "openapi": client.get("/openapi.json"),
        "redirect": client.get("/", follow_redirects=False),
        "docs": client.get("/docs"),
        "asset": client.get("/static/docs/swagger-ui.css"),
    }
    expected = {"success": 200, "401": 401, "404": 404, "422": 422, "413": 413, "500": 500}
    for kind, response in responses.items():
        if kind in expected:
            assert response.status_code == expected[kind], (kind, response.text)
        _assert_secure(response)
    assert responses["success"].headers["content-security-policy"] == API_CSP
    assert responses["docs"].headers["content-security-policy"] != API_CSP


def test_hsts_only_over_https(app: FastAPI) -> None:
    with TestClient(app, base_url="https://testserver") as secure:
        response = secure.get("/healthz")
        _assert_secure(response, https=True)
        assert response.headers["strict-transport-security"].startswith("max-age=")
    with TestClient(app, base_url="http://testserver") as plain:
        _assert_secure(plain.get("/healthz"), https=False)


@pytest.mark.parametrize("path", ["/", "/api/v1/tickets/", "/docs/", "/healthz/"])
def test_no_redirect_names_the_host_the_client_sent(client: TestClient, path: str) -> None:
    response = client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
    location = response.headers.get("location")
    if location is not None:
        assert location.startswith("/") and not location.startswith("//"), location
        assert "evil" not in location
    assert "evil.example" not in response.text


def test_the_front_door_redirects_to_the_docs_by_path(client: TestClient) -> None:
    response = client.get("/", headers={"Host": "evil.example:8443"}, follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/docs"


def test_a_trailing_slash_is_a_404_problem_not_a_redirect(
    client: TestClient, agent: Caller
) -> None:
    response = client.get(
        "/api/v1/tickets/",
        headers={**agent.headers, "Host": "evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("application/problem+json")


# --- CORS ------------------------------------------------------------------------------


def _preflight(client: TestClient, origin: str) -> httpx.Response:
    return client.options(
        "/api/v1/tickets",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )


def test_cors_is_off_by_default(client: TestClient, agent: Caller) -> None:
    response = client.get(
        "/api/v1/tickets", headers={**agent.headers, "Origin": "https://desk.example.com"}
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = _preflight(client, "https://desk.example.com")
    assert "access-control-allow-origin" not in preflight.headers
    _assert_secure(preflight)


def test_cors_allows_exactly_the_configured_origins(desk_db: Database, agent: Caller) -> None:
    settings = Settings(
        database_url=desk_db.url,
        cors_origins="https://desk.example.com, http://localhost:5173",
    )
    with TestClient(create_app(settings, db=desk_db)) as client:
        allowed = client.get(
            "/api/v1/tickets", headers={**agent.headers, "Origin": "https://desk.example.com"}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://desk.example.com"
        _assert_secure(allowed)
        preflight = _preflight(client, "http://localhost:5173")
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        for other in ("https://evil.example", "https://desk.example.com.evil.example", "null"):
            response = client.get("/api/v1/tickets", headers={**agent.headers, "Origin": other})
            assert "access-control-allow-origin" not in response.headers, other
            refused = _preflight(client, other)
            assert refused.status_code == 400, other
            assert "access-control-allow-origin" not in refused.headers, other


@pytest.mark.parametrize(
    "origins",
    ["*", "https://desk.example.com/", "desk.example.com", "https://*.example.com", "ftp://x.y"],
)
def test_a_cors_origin_must_be_exact(origins: str) -> None:
    with pytest.raises(ValidationError, match="exact origin"):
        Settings(cors_origins=origins)
