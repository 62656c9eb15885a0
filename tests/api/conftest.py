"""Fixtures for the API tests: an app on the `model_db` database (SQLite and PostgreSQL)
and users with tokens, created straight through the desk (not over HTTP) to stay fast."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from opsdesk.api import create_app
from opsdesk.desk import service
from opsdesk.desk.security import SCOPES, create_token
from opsdesk.domain.state import UserState
from opsdesk.settings import Settings
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

_n = itertools.count(1)


@dataclass(frozen=True)
class Caller:
    """A user and the headers that authenticate them."""

    user: UserState
    token: str

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_caller(db: Database, *, roles: list[str], teams: list[str]) -> Caller:
    n = next(_n)
    with UnitOfWork(db) as uow:
        user = service.create_user(
            uow, name=f"User {n}", email=f"api-user{n}@example.test", roles=roles, teams=teams
        )
        # every scope: what the callers' roles allow is what a test exercises
        token = create_token(uow, user.id, "tests", scopes=SCOPES)
    return Caller(user, token.token)


def count_rows(db: Database, table: Any) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def event_count(db: Database) -> int:
    return count_rows(db, t.events)


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status`` (and ``code``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert body["detail"]
    if code is not None:
        assert body["code"] == code, body
        assert body["type"] == f"urn:opsdesk:problem:{code}"
    return body


@pytest.fixture
def app(model_db: Database) -> FastAPI:
    return create_app(Settings(database_url=model_db.url, page_size_max=100), db=model_db)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def agent(model_db: Database) -> Caller:
    """An agent of the billing team (owner of refunds)."""
    return make_caller(model_db, roles=["agent"], teams=["billing"])


@pytest.fixture
def lead(model_db: Database) -> Caller:
    return make_caller(model_db, roles=["team_lead"], teams=["billing", "tech_support"])


@pytest.fixture
def finance(model_db: Database) -> Caller:
    return make_caller(model_db, roles=["finance_approver"], teams=[])


@pytest.fixture
def admin(model_db: Database) -> Caller:
    return make_caller(model_db, roles=["admin"], teams=["billing"])
