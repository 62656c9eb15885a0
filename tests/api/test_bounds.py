"""Bounds on every input (issue #11 point 5): ids, sizes, counts, text and CSAT."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from opsdesk.api import create_app
from opsdesk.desk import service
from opsdesk.domain import limits
from opsdesk.settings import Settings
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from tests import factories

from .conftest import Caller, assert_problem, event_count

TOO_BIG = 2**63


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/tickets/{id}"),
        ("GET", "/api/v1/tickets/{id}/sla"),
        ("POST", "/api/v1/tickets/{id}/accept"),
        ("GET", "/api/v1/customers/{id}"),
        ("POST", "/api/v1/exceptions/{id}/decision"),
        ("PUT", "/api/v1/users/{id}/presence"),
    ],
)
@pytest.mark.parametrize("bad_id", [TOO_BIG, 10**30, 0, -1])
def test_an_id_out_of_range_in_a_path_is_422_not_500(
    client: TestClient, admin: Caller, method: str, path: str, bad_id: int
) -> None:
    r = client.request(method, path.format(id=bad_id), json={}, headers=admin.headers)
    body = assert_problem(r, 422, "validation-failed")
    assert body["errors"][0]["loc"][0] == "path"


def test_the_largest_id_is_an_unknown_one(client: TestClient, admin: Caller) -> None:
    r = client.get(f"/api/v1/tickets/{limits.MAX_ID}", headers=admin.headers)
    assert_problem(r, 404, "not-found")


@pytest.mark.parametrize(
    "query", [f"customer_id={TOO_BIG}", f"owning_agent={TOO_BIG}", "tag=" + "x" * 65]
)
def test_query_parameters_are_bounded(client: TestClient, admin: Caller, query: str) -> None:
    assert_problem(client.get(f"/api/v1/tickets?{query}", headers=admin.headers), 422)
    if query.startswith("customer_id"):
        r = client.get(f"/api/v1/events?after_seq={TOO_BIG}", headers=admin.headers)
        assert_problem(r, 422)


def test_ids_in_bodies_are_bounded(client: TestClient, admin: Caller, model_db: Database) -> None:
    before = event_count(model_db)
    bodies = [
        ("/api/v1/tickets", {"customer": {"id": TOO_BIG}, "subject": "x", "channel": "email"}),
        ("/api/v1/customers/1/merge", {"source_id": TOO_BIG}),
    ]
    for path, body in bodies:
        assert_problem(client.post(path, json=body, headers=admin.headers), 422)
    assert event_count(model_db) == before


def test_twenty_thousand_tags_are_refused(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    ticket = factories.ticket(model_db)
    tags = [f"t{i}" for i in range(20_000)]
    r = client.post(f"/api/v1/tickets/{ticket.id}/tags", json={"add": tags}, headers=agent.headers)
    assert_problem(r, 422, "validation-failed")
    new = {
        "customer": {"email": "ada@example.com"},
        "subject": "x",
        "channel": "email",
        "tags": tags,
    }
    assert_problem(client.post("/api/v1/tickets", json=new, headers=agent.headers), 422)


def test_tags_add_up_to_the_limit_per_ticket(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    ticket = factories.ticket(model_db)
    base = f"/api/v1/tickets/{ticket.id}/tags"
    first = [f"a{i}" for i in range(limits.MAX_TAGS)]
    r = client.post(base, json={"add": first}, headers=agent.headers)
    assert len(r.json()["tags"]) == limits.MAX_TAGS, r.text
    # each request is within bounds, but together they pass the ticket's limit: the domain
    body = assert_problem(client.post(base, json={"add": ["one-more"]}, headers=agent.headers), 422)
    assert str(limits.MAX_TAGS) in body["detail"]
    long_tag = "x" * (limits.MAX_TAG + 1)
    r = client.post(base, json={"remove": ["a0"], "add": [long_tag]}, headers=agent.headers)
    assert_problem(r, 422)


@pytest.fixture
def small_client(model_db: Database) -> Iterator[TestClient]:
    """An app with the default body limit (1 MiB)."""
    app: FastAPI = create_app(Settings(database_url=model_db.url), db=model_db)
    assert Settings().max_body_bytes == 1_048_576
    with TestClient(app) as c:
        yield c


def _two_mib_ticket() -> bytes:
    return b'{"subject": "' + b"x" * (2 * 1024 * 1024) + b'", "channel": "email"}'


def test_a_2_mib_body_with_content_length_is_413(
    small_client: TestClient, agent: Caller, model_db: Database
) -> None:
    before = event_count(model_db)
    r = small_client.post(
        "/api/v1/tickets",
        content=_two_mib_ticket(),
        headers={**agent.headers, "Content-Type": "application/json"},
    )
    body = assert_problem(r, 413, "body-too-large")
    assert "OPSDESK_MAX_BODY_BYTES" in body["detail"]
    assert event_count(model_db) == before


def test_a_2_mib_chunked_body_is_413(
    small_client: TestClient, agent: Caller, model_db: Database
) -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        data = _two_mib_ticket()
        for start in range(0, len(data), 64 * 1024):
            sent.append(start)
            yield data[start : start + 64 * 1024]

    r = small_client.post(
        "/api/v1/tickets",
        content=chunks(),
        headers={**agent.headers, "Content-Type": "application/json"},
    )
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert_problem(r, 413, "body-too-large")


def test_a_body_under_the_limit_is_read(small_client: TestClient, agent: Caller) -> None:
    r = small_client.post(
        "/api/v1/tickets",
        json={"customer": {"email": "ada@example.com"}, "subject": "hi", "channel": "email"},
        headers=agent.headers,
    )
    assert r.status_code == 201, r.text


def test_the_body_limit_is_a_setting(model_db: Database, agent: Caller) -> None:
    app = create_app(Settings(database_url=model_db.url, max_body_bytes=100), db=model_db)
    with TestClient(app) as c:
        r = c.post("/api/v1/tickets", json={"subject": "x" * 200}, headers=agent.headers)
    assert_problem(r, 413, "body-too-large")


@pytest.fixture
def solved_ticket(agent: Caller, model_db: Database) -> int:
    ticket = factories.ticket(model_db)
    with UnitOfWork(model_db, actor_kind="user", actor_id=agent.id) as uow:
        service.accept_ticket(uow, ticket.id)
        service.change_status(uow, ticket.id, "solved")
    return ticket.id


@pytest.mark.parametrize("score", [True, False, "5", 0, 6, 4.5, 5.0, None, [5]])
def test_csat_is_a_strict_integer_from_1_to_5(
    client: TestClient, agent: Caller, solved_ticket: int, score: object
) -> None:
    r = client.post(
        f"/api/v1/tickets/{solved_ticket}/csat", json={"score": score}, headers=agent.headers
    )
    assert_problem(r, 422, "validation-failed")


def test_csat_is_recorded_once(client: TestClient, agent: Caller, solved_ticket: int) -> None:
    url = f"/api/v1/tickets/{solved_ticket}/csat"
    r = client.post(url, json={"score": 5}, headers=agent.headers)
    assert r.json()["csat_score"] == 5, r.text
    body = assert_problem(client.post(url, json={"score": 1}, headers=agent.headers), 409)
    assert body["code"] == "conflict" and "once" in body["detail"]


@pytest.mark.parametrize("name", ["\x00", "\x01\x02", " \u200b\u200e ", "\t\x7f", "Ada\x00"])
def test_a_name_without_visible_text_is_refused(
    client: TestClient, admin: Caller, name: str
) -> None:
    r = client.post("/api/v1/customers", json={"name": name}, headers=admin.headers)
    assert_problem(r, 422, "validation-failed")


@pytest.mark.parametrize("tag", ["\x01", "\u200b", "a\x00b"])
def test_a_tag_without_visible_text_is_refused(
    client: TestClient, agent: Caller, model_db: Database, tag: str
) -> None:
    ticket = factories.ticket(model_db)
    r = client.post(f"/api/v1/tickets/{ticket.id}/tags", json={"add": [tag]}, headers=agent.headers)
    assert_problem(r, 422, "validation-failed")


@pytest.mark.parametrize(
    "address", ["not-an-address", "a@b", "@example.com", "ada@", "ada@exa mple.com", "a@@b.com"]
)
def test_a_bad_email_handle_is_refused(client: TestClient, admin: Caller, address: str) -> None:
    r = client.post(
        "/api/v1/customers",
        json={"name": "Ada", "handles": [{"kind": "email", "value": address}]},
        headers=admin.headers,
    )
    assert_problem(r, 422, "validation-failed")
    r = client.post(
        "/api/v1/tickets",
        json={"customer": {"email": address}, "subject": "hi", "channel": "email"},
        headers=admin.headers,
    )
    assert_problem(r, 422, "validation-failed")


def test_handles_and_strings_have_maximums(client: TestClient, admin: Caller) -> None:
    handles = [{"kind": "chat", "value": f"c{i}"} for i in range(limits.MAX_HANDLES + 1)]
    r = client.post(
        "/api/v1/customers", json={"name": "A", "handles": handles}, headers=admin.headers
    )
    assert_problem(r, 422)
    too_long = {"name": "A" * (limits.MAX_NAME + 1)}
    assert_problem(client.post("/api/v1/customers", json=too_long, headers=admin.headers), 422)
    subject = "s" * (limits.MAX_SUBJECT + 1)
    new = {"customer": {"email": "ada@example.com"}, "subject": subject, "channel": "email"}
    assert_problem(client.post("/api/v1/tickets", json=new, headers=admin.headers), 422)
