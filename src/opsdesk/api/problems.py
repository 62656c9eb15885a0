"""RFC 9457 problem details: one error shape for every response that is not a success.

Domain refusals keep their status and code; request validation, unknown routes,
authentication and unexpected failures are mapped here, so no route renders an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from opsdesk.desk.audit import record_refusal
from opsdesk.domain.errors import DomainError, PermissionDenied
from opsdesk.store.db import DatabaseNotReady

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:opsdesk:problem:"

log = logging.getLogger("opsdesk.api")

_TITLES = {
    "refused": "Request refused",
    "not-found": "Not found",
    "invalid-transition": "Invalid transition",
    "ownership-violation": "Ownership violation",
    "permission-denied": "Permission denied",
    "conflict": "Conflict",
    "no-model": "No operating model in force",
    "validation-failed": "Invalid request",
    "unauthorized": "Authentication required",
    "idempotency-key-reused": "Idempotency key reused",
    "invalid-idempotency-key": "Invalid Idempotency-Key header",
    "invalid-cursor": "Invalid cursor",
    "body-too-large": "Request body too large",
    "rate-limited": "Too many requests",
    "database-not-ready": "Database not ready",
    "internal-error": "Internal server error",
}


class ApiProblem(Exception):
    """An error the API itself raises (as opposed to a domain refusal)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem details response for ``request``."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title or _TITLES.get(code) or _phrase(status),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _code_for_status(status: int) -> str:
    return {
        401: "unauthorized",
        403: "permission-denied",
        404: "not-found",
        409: "conflict",
        413: "body-too-large",
        429: "rate-limited",
    }.get(status, _phrase(status).lower().replace(" ", "-"))


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    if isinstance(exc, PermissionDenied):
        # the refused transaction rolled back: the refusal gets a unit of work of its own
        await run_in_threadpool(
            record_refusal,
            request.app.state.db,
            exc,
            actor_id=getattr(request.state, "user_id", None),
            route=f"{request.method} {request.url.path}",
            client=request.client.host if request.client else None,
        )
    return problem_response(request, exc.status, exc.code, exc.message)


async def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(request, exc.status, exc.code, exc.detail, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [part if isinstance(part, int) else str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    summary = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:] or e['loc'])}: {e['msg']}" for e in errors[:3]
    )
    return problem_response(
        request, 422, "validation-failed", summary or "the request is not valid", errors=errors
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _phrase(exc.status_code)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"there is no resource at {request.url.path}; see /docs for the API"
    return problem_response(
        request,
        exc.status_code,
        _code_for_status(exc.status_code),
        detail,
        headers=exc.headers,
    )


async def _not_ready(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 503, "database-not-ready", str(exc))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # the traceback goes to the log, never to the client
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        request, 500, "internal-error", "an unexpected error occurred; it has been logged"
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` as problem details."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DatabaseNotReady, _not_ready)
    app.add_exception_handler(Exception, _unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem details for ``statuses``."""
    return {
        status: {
            "description": _phrase(status),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
