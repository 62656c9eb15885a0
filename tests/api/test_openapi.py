"""The OpenAPI document states every limit and every problem status an operation answers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from opsdesk.api.app import V1_PROBLEMS
from opsdesk.domain import limits


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _problem(op: dict[str, Any], status: int) -> bool:
    response = op["responses"].get(str(status))
    if response is None:
        return False
    schema = response["content"]["application/problem+json"]["schema"]
    return bool(schema == {"$ref": "#/components/schemas/Problem"})


def test_every_operation_declares_its_problem_responses(spec: dict[str, Any]) -> None:
    assert set(V1_PROBLEMS) == {400, 401, 403, 413, 422, 429}
    missing = []
    for method, path, op in _operations(spec):
        expected: set[int] = {413}
        if path.startswith("/api/v1/"):
            expected |= set(V1_PROBLEMS)
        if "{" in path:
            expected.add(404)
        if method in ("POST", "PUT"):
            expected.add(409)
        missing += [f"{method} {path}: {s}" for s in sorted(expected) if not _problem(op, s)]
    assert not missing, missing
    assert "Problem" in spec["components"]["schemas"]


def _schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    props: dict[str, Any] = spec["components"]["schemas"][name]["properties"]
    return props


def _plain(prop: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional property."""
    for branch in prop.get("anyOf", []):
        if branch.get("type") != "null":
            return dict(branch)
    return prop


def test_the_limits_are_in_the_document(spec: dict[str, Any]) -> None:
    ticket = _schema(spec, "TicketCreate")
    assert ticket["subject"]["maxLength"] == limits.MAX_SUBJECT
    assert ticket["tags"]["maxItems"] == limits.MAX_TAGS
    assert ticket["tags"]["items"]["maxLength"] == limits.MAX_TAG
    assert _plain(ticket["body"])["maxLength"] == limits.MAX_BODY
    assert _plain(ticket["follow_up_of"])["maximum"] == limits.MAX_ID
    customer = _schema(spec, "CustomerCreate")
    assert customer["name"]["maxLength"] == limits.MAX_NAME
    assert customer["handles"]["maxItems"] == limits.MAX_HANDLES
    assert _schema(spec, "HandleIn")["value"]["maxLength"] == limits.MAX_HANDLE
    assert _schema(spec, "Transfer")["reason"]["maxLength"] == limits.MAX_REASON
    assert _schema(spec, "ExceptionRequest")["reason"]["maxLength"] == limits.MAX_NOTE
    assert _schema(spec, "TagsChange")["add"]["maxItems"] == limits.MAX_TAGS
    score = _schema(spec, "Csat")["score"]
    assert (score["type"], score["minimum"], score["maximum"]) == ("integer", 1, 5)
    get_ticket = spec["paths"]["/api/v1/tickets/{ticket_id}"]["get"]
    (param,) = [p for p in get_ticket["parameters"] if p["name"] == "ticket_id"]
    assert (param["schema"]["minimum"], param["schema"]["maximum"]) == (1, limits.MAX_ID)
