"""The API against its own OpenAPI document: schemathesis generates requests (valid and
invalid) for every operation and checks that none answers 5xx and every response
matches the document (status, content type, headers, body schema).

In-process on SQLite, authenticated as an admin, a bounded number of examples per
operation so the whole run stays well under a minute.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from opsdesk.api import create_app
from opsdesk.desk import service
from opsdesk.desk.models import apply_model_file
from opsdesk.model import example_model_path
from opsdesk.settings import Settings
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from tests.api.conftest import make_caller

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_db(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Database]:
    path = tmp_path_factory.mktemp("fuzz") / "opsdesk.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    with UnitOfWork(db) as uow:
        apply_model_file(uow, example_model_path(), author="tests")
    with UnitOfWork(db) as uow:
        # something for the generated ids to find: customer 1, ticket 1
        customer = service.create_customer(uow, name="Ada", handles=[("email", "ada@example.com")])
        service.create_ticket(uow, customer_id=customer.id, subject="Hello", channel="email")
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def auth_headers(fuzz_db: Database) -> dict[str, str]:
    return make_caller(fuzz_db, roles=["admin"], teams=["billing"]).headers


@pytest.fixture(scope="module")
def fuzz_app(fuzz_db: Database) -> FastAPI:
    return create_app(Settings(database_url=fuzz_db.url, page_size_max=100), db=fuzz_db)


# The document is the same for any database; building it touches none. (Loaded here rather
# than through schemathesis.pytest.from_fixture, which fails on pytest 9.2: no `_nodeid`.)
schema = schemathesis.openapi.from_dict(create_app(db=Database("sqlite://")).openapi())


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_conforms_to_its_schema(
    case: Any, fuzz_app: FastAPI, auth_headers: dict[str, str]
) -> None:
    case.call_and_validate(headers=auth_headers, checks=CHECKS, app=fuzz_app)
