"""Presence: who may set it, what it records, and the API route."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from opsdesk.api import create_app
from opsdesk.desk import service
from opsdesk.domain.errors import Conflict, DomainError, PermissionDenied
from opsdesk.settings import Settings
from opsdesk.store.db import Database
from tests.api.conftest import assert_problem, make_caller

from .conftest import Desk


def set_as(desk: Desk, actor: int, user_id: int, presence: str) -> str:
    with desk.uow(actor) as uow:
        return service.set_presence(uow, user_id, presence).presence


def presence_events(desk: Desk) -> list[dict[str, object]]:
    return [e.payload for e in desk.events() if e.type == "user.presence_changed"]


def test_an_agent_sets_their_own_presence(desk: Desk) -> None:
    agent = desk.user(["billing"])
    assert agent.presence == "offline"
    assert set_as(desk, agent.id, agent.id, "online") == "online"
    assert set_as(desk, agent.id, agent.id, "away") == "away"
    assert set_as(desk, agent.id, agent.id, "away") == "away"  # unchanged: no event
    assert presence_events(desk) == [
        {"user_id": agent.id, "before": "offline", "after": "online"},
        {"user_id": agent.id, "before": "online", "after": "away"},
    ]
    events = [e for e in desk.events() if e.type == "user.presence_changed"]
    assert {(e.actor_kind, e.actor_id) for e in events} == {("user", agent.id)}


def test_unknown_presence_is_refused(desk: Desk) -> None:
    agent = desk.user(["billing"])
    with pytest.raises(DomainError, match="unknown presence 'busy'"):
        set_as(desk, agent.id, agent.id, "busy")
    assert presence_events(desk) == []


def test_who_may_set_someone_elses_presence(desk: Desk) -> None:
    agent = desk.user(["billing"])
    colleague = desk.user(["billing"])
    outsider = desk.user(["logistics"])
    lead = desk.user(["billing"], roles=["team_lead"])
    admin = desk.user([], roles=["admin"])
    with pytest.raises(PermissionDenied, match=r"tickets\.assign"):
        set_as(desk, colleague.id, agent.id, "online")
    assert set_as(desk, lead.id, agent.id, "online") == "online"
    with pytest.raises(PermissionDenied, match="members of their own teams"):
        set_as(desk, lead.id, outsider.id, "online")
    assert set_as(desk, admin.id, outsider.id, "online") == "online"


def test_a_deactivated_user_cannot_go_online(desk: Desk) -> None:
    agent = desk.user(["billing"])
    with desk.uow() as uow:
        service.deactivate_user(uow, agent.id, "left")
    with pytest.raises(Conflict, match="deactivated"):
        desk.presence(agent.id, "online")
    assert desk.presence(agent.id, "offline").presence == "offline"


def test_presence_over_the_api(model_db: Database) -> None:
    app = create_app(Settings(database_url=model_db.url), db=model_db)
    agent = make_caller(model_db, roles=["agent"], teams=["billing"])
    other = make_caller(model_db, roles=["agent"], teams=["billing"])
    lead = make_caller(model_db, roles=["team_lead"], teams=["billing"])
    with TestClient(app) as client:
        url = f"/api/v1/users/{agent.id}/presence"
        r = client.put(url, json={"presence": "online"}, headers=agent.headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"user_id": agent.id, "presence": "online"}
        assert_problem(client.put(url, json={"presence": "away"}, headers=other.headers), 403)
        r = client.put(url, json={"presence": "away"}, headers=lead.headers)
        assert r.json()["presence"] == "away"
        assert_problem(client.put(url, json={"presence": "busy"}, headers=agent.headers), 422)
        missing = client.put(
            "/api/v1/users/999/presence", json={"presence": "online"}, headers=lead.headers
        )
        assert_problem(missing, 404)
        assert_problem(client.put(url, json={"presence": "online"}), 401)
