"""The FastAPI application factory. Nothing is configured or connected at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi

from opsdesk.api import schemas
from opsdesk.api.bodylimit import BodySizeLimit
from opsdesk.api.docs import install_docs
from opsdesk.api.headers import SecurityHeaders
from opsdesk.api.problems import install_problem_handlers, problem_responses
from opsdesk.api.ratelimit import throttle_for
from opsdesk.api.routes import (
    audit,
    auth,
    customers,
    events,
    exceptions,
    meta,
    model,
    routing,
    tickets,
)
from opsdesk.api.routes import users as accounts
from opsdesk.settings import Settings
from opsdesk.store.db import Database

API_PREFIX = "/api/v1"
# problems any /api/v1 operation can answer; 429 comes with rate limiting (docs/api.md)
V1_PROBLEMS = (400, 401, 403, 413, 422, 429)

_DESCRIPTION = """\
The JSON API of opsdesk. Authenticate every `/api/v1` call with
`Authorization: Bearer <token>` (create one with `opsdesk token create --user EMAIL`).
Every POST honours an `Idempotency-Key` header. Errors are RFC 9457 problem details
(`application/problem+json`).
"""


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: from OPSDESK_* variables) on ``db``
    (default: opened from ``settings.database_url`` and closed on shutdown).

    >>> app = create_app(db=Database("sqlite:///var/opsdesk.db"))  # doctest: +SKIP
    """
    settings = settings or Settings()
    owns_db = db is None
    database = db or Database(
        settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database.ensure_ready()
        # SQLite has one write slot: writes that find it taken wait for it one at a time
        # in a worker thread (see Writer.submit)
        app.state.write_turns = anyio.CapacityLimiter(1) if database.dialect == "sqlite" else None
        yield
        if owns_db:
            database.dispose()

    app = FastAPI(
        title="opsdesk",
        version="1",
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from packaged assets by install_docs, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = database
    app.state.throttle = throttle_for(settings)  # per app: its memory counters are its own
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    _install_transport(app, settings)

    v1 = APIRouter(prefix=API_PREFIX, responses=problem_responses(*V1_PROBLEMS))
    for module in (tickets, customers, exceptions, events, model, routing, audit, accounts, auth):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(meta.router)
    install_docs(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            # problem responses refer to this schema by name; no route returns it directly
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            problem = schemas.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(problem.pop("$defs", {}))
            components["Problem"] = problem
            schemas.exact_integer_bounds(spec)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _install_transport(app: FastAPI, settings: Settings) -> None:
    """Security headers, CORS and redirects (docs/security.md#transport)."""
    origins = settings.cors_origin_list()
    if origins:  # off unless configured: a browser on another origin gets no CORS grant
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            max_age=600,
        )
    # Starlette's slash redirect builds an absolute URL from the Host header: a path that
    # is not a route answers 404 instead, so no Location ever names a client-chosen host
    app.router.redirect_slashes = False
    # outside Starlette's ServerErrorMiddleware too, so a 500 carries the headers as well
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: SecurityHeaders(build())  # type: ignore[method-assign]
