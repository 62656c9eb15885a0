"""The throttle over HTTP: ``429 Too Many Requests`` with ``Retry-After``, as a problem.

The policy (what is counted, per what, for how long) is ``opsdesk.desk.throttle``; this
module builds it from the settings, runs it where it costs least (inline for the
in-memory store, a worker thread for Redis) and renders its refusals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from opsdesk.api.problems import ApiProblem
from opsdesk.desk.audit import record_rate_limited
from opsdesk.desk.throttle import Refusal, Throttle, ThrottlePolicy
from opsdesk.settings import Settings

T = TypeVar("T")

_WHAT = {
    "bad_tokens": "too many requests with a refused token from your address",
    "requests": "too many requests with this token",
}


def throttle_for(settings: Settings) -> Throttle:
    """The throttle the settings describe (counters in Redis when a URL is set)."""
    return Throttle(
        ThrottlePolicy(
            bad_tokens_per_minute=settings.rate_limit_bad_tokens_per_minute,
            requests_per_minute=settings.rate_limit_requests_per_minute,
            login_failures_per_account=settings.login_failures_per_account,
            login_failures_per_client=settings.login_failures_per_client,
            login_window_minutes=settings.login_window_minutes,
            login_lockout_minutes=settings.login_lockout_minutes,
        ),
        redis_url=settings.redis_url,
        key_prefix=settings.rate_limit_prefix,
    )


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (behind a proxy, the one the proxy
    forwards when uvicorn trusts it: ``--forwarded-allow-ips``)."""
    return request.client.host if request.client else "unknown"


async def consult(throttle: Throttle, ask: Callable[..., T], *args: str) -> T:
    """Ask the throttle: inline when its counters are in memory (microseconds), in a
    worker thread when they are in Redis (a network round trip)."""
    if throttle.shared:
        return await run_in_threadpool(ask, *args)
    return ask(*args)


async def refuse(
    request: Request,
    refusal: Refusal,
    *,
    actor_id: int | None = None,
    subject: str | None = None,
) -> ApiProblem:
    """The 429 problem for ``refusal``; the first refusal of a window is recorded in the
    audit trail (``auth.rate_limited``), the rest only answered."""
    if refusal.first:
        await run_in_threadpool(
            record_rate_limited,
            request.app.state.db,
            limit=refusal.limit,
            actor_id=actor_id,
            subject=subject,
            route=f"{request.method} {request.url.path}",
            client=client_address(request),
        )
    seconds = refusal.retry_after
    return ApiProblem(
        429,
        "rate-limited",
        f"{_WHAT.get(refusal.limit, 'too many requests')}; retry after {seconds} "
        f"second{'s' if seconds != 1 else ''} (see the Retry-After header)",
        headers={"Retry-After": str(seconds)},
    )
