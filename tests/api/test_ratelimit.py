"""Rate limits: the throttle's policy (bad tokens per address, requests per token, failed
sign-ins per account and address) and its 429 answers, in memory and shared through
Redis by two app instances."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from opsdesk.api import create_app
from opsdesk.desk.throttle import Throttle, ThrottlePolicy
from opsdesk.settings import Settings
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from tests.api.conftest import Caller, assert_problem, event_count
from tests.conftest import examples

REDIS_URL = os.environ.get("OPSDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BAD = {"Authorization": "Bearer odk_not-a-token-anyone-was-given"}


def _audit(db: Database, action: str) -> list[Any]:
    with db.read() as conn:
        return list(
            conn.execute(
                select(t.audit_log)
                .where(t.audit_log.c.action == action)
                .order_by(t.audit_log.c.seq)
            )
        )


def _retry_after(response: Any, at_most: int) -> int:
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= at_most, seconds
    return seconds


class Checkouts:
    """Counts connections taken from the database's pool: zero means no query at all."""

    def __init__(self, db: Database) -> None:
        self.n = 0
        event.listen(db.engine, "checkout", self._seen)

    def _seen(self, *_: Any) -> None:
        self.n += 1


# --- the policy, as the capability offers it -------------------------------------------


def test_bad_tokens_are_refused_per_address_once_over_the_limit() -> None:
    throttle = Throttle(ThrottlePolicy(bad_tokens_per_minute=3))
    for _ in range(3):
        assert throttle.check_bad_token("203.0.113.7") is None
        throttle.hit_bad_token("203.0.113.7")
    first = throttle.check_bad_token("203.0.113.7")
    assert first is not None and first.limit == "bad_tokens" and first.first
    assert 1 <= first.retry_after <= 60
    again = throttle.check_bad_token("203.0.113.7")
    assert again is not None and not again.first  # recorded once per window
    assert throttle.check_bad_token("203.0.113.8") is None  # another address


def test_requests_are_counted_per_token() -> None:
    throttle = Throttle(ThrottlePolicy(requests_per_minute=2))
    assert throttle.hit_request("a") is None
    assert throttle.hit_request("a") is None
    refusal = throttle.hit_request("a")
    assert refusal is not None and refusal.limit == "requests" and 1 <= refusal.retry_after <= 60
    assert throttle.hit_request("b") is None


def test_an_account_is_locked_at_the_nth_failure_even_for_the_right_password() -> None:
    policy = ThrottlePolicy(login_failures_per_account=3, login_lockout_minutes=20)
    throttle = Throttle(policy)
    for n in (1, 2):
        assert throttle.check_login_allowed("198.51.100.1", "Ana@Example.com") is None
        failure = throttle.hit_failed_login("198.51.100.1", "ana@example.com")
        assert not failure.locked_out and failure.retry_after is None, n
    failure = throttle.hit_failed_login("198.51.100.2", " ANA@example.com ")
    assert failure.locked_out
    assert failure.retry_after is not None and 19 * 60 < failure.retry_after <= 20 * 60
    # locked for everyone, from any address: the caller refuses before checking a password
    for client in ("198.51.100.1", "192.0.2.99"):
        wait = throttle.check_login_allowed(client, "ana@example.com")
        assert wait is not None and wait > 19 * 60
    assert throttle.check_login_allowed("198.51.100.1", "bob@example.com") is None
    throttle.clear_login_failures("ana@example.com")  # an admin's unlock
    assert throttle.check_login_allowed("198.51.100.1", "ana@example.com") is None


def test_an_address_is_refused_after_too_many_failures_across_accounts() -> None:
    throttle = Throttle(ThrottlePolicy(login_failures_per_client=4, login_window_minutes=15))
    for n in range(4):
        assert throttle.check_login_allowed("192.0.2.1", f"user{n}@example.com") is None
        assert not throttle.hit_failed_login("192.0.2.1", f"user{n}@example.com").locked_out
    wait = throttle.check_login_allowed("192.0.2.1", "someone-new@example.com")
    assert wait is not None and 14 * 60 < wait <= 15 * 60
    assert throttle.check_login_allowed("192.0.2.2", "someone-new@example.com") is None


attempts = st.lists(
    st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.sampled_from(["a@x.io", "b@x.io"])),
    max_size=40,
)


@settings(max_examples=examples(60), deadline=None)
@given(attempts=attempts, per_account=st.integers(1, 4), per_client=st.integers(1, 6))
def test_sign_in_throttle_matches_a_counting_model(
    attempts: list[tuple[str, str]], per_account: int, per_client: int
) -> None:
    """Within one window: an attempt is refused iff its account is locked or its address
    has used up its failures; an account locks exactly at its Nth counted failure."""
    throttle = Throttle(
        ThrottlePolicy(login_failures_per_account=per_account, login_failures_per_client=per_client)
    )
    account_failures: dict[str, int] = {}
    client_failures: dict[str, int] = {}
    locked: set[str] = set()
    for client, account in attempts:
        refused = account in locked or client_failures.get(client, 0) >= per_client
        assert (throttle.check_login_allowed(client, account) is not None) == refused
        if refused:
            continue  # the sign-in page refuses without checking the password
        outcome = throttle.hit_failed_login(client, account)
        client_failures[client] = client_failures.get(client, 0) + 1
        account_failures[account] = account_failures.get(account, 0) + 1
        assert outcome.locked_out == (account_failures[account] == per_account)
        if outcome.locked_out:
            locked.add(account)


def test_a_storage_that_fails_lets_requests_through(caplog: pytest.LogCaptureFixture) -> None:
    throttle = Throttle(ThrottlePolicy(), redis_url="redis://127.0.0.1:1/0")  # nothing there
    assert throttle.check_bad_token("203.0.113.7") is None
    assert throttle.hit_request("k") is None
    assert throttle.check_login_allowed("203.0.113.7", "a@x.io") is None
    assert "rate-limit storage failed" in caplog.text


# --- over HTTP ------------------------------------------------------------------------


def _app(db: Database, **limits: Any) -> FastAPI:
    return create_app(Settings(database_url=db.url, **limits), db=db)


@pytest.fixture
def limited(model_db: Database) -> Iterator[TestClient]:
    app = _app(model_db, rate_limit_bad_tokens_per_minute=3, rate_limit_requests_per_minute=4)
    with TestClient(app) as client:
        yield client


def test_a_bad_token_flood_is_answered_429_without_the_database(
    limited: TestClient, model_db: Database, agent: Caller
) -> None:
    for _ in range(3):
        assert_problem(limited.get("/api/v1/tickets", headers=BAD), 401, "unauthorized")
    assert len(_audit(model_db, "auth.token_refused")) == 3
    first = limited.get("/api/v1/tickets", headers=BAD)
    body = assert_problem(first, 429, "rate-limited")
    assert "Retry-After" in body["detail"]
    _retry_after(first, 60)
    checkouts = Checkouts(model_db)
    for _ in range(20):
        response = limited.get("/api/v1/tickets", headers=BAD)
        assert_problem(response, 429, "rate-limited")
        _retry_after(response, 60)
    assert checkouts.n == 0  # no lookup, no audit row: the flood never reached the database
    # the whole address waits, a good token too: the check comes before any lookup
    assert_problem(limited.get("/api/v1/tickets", headers=agent.headers), 429)
    assert len(_audit(model_db, "auth.token_refused")) == 3
    (row,) = _audit(model_db, "auth.rate_limited")
    assert row.outcome == "refused" and row.actor_kind == "anonymous"
    assert row.subject == "client:testclient" and row.details["limit"] == "bad_tokens"


def test_requests_over_a_tokens_limit_get_429_and_other_tokens_do_not(
    limited: TestClient, model_db: Database, agent: Caller, lead: Caller
) -> None:
    for _ in range(4):
        assert limited.get("/api/v1/tickets", headers=agent.headers).status_code == 200
    for _ in range(3):
        response = limited.get("/api/v1/tickets", headers=agent.headers)
        assert_problem(response, 429, "rate-limited")
        _retry_after(response, 60)
    assert limited.get("/api/v1/tickets", headers=lead.headers).status_code == 200
    (row,) = _audit(model_db, "auth.rate_limited")
    assert (row.actor_kind, row.actor_id, row.subject) == ("user", agent.id, f"user:{agent.id}")
    assert row.details["limit"] == "requests"


def test_a_refused_write_changes_nothing(
    limited: TestClient, model_db: Database, agent: Caller
) -> None:
    from tests.api.test_tickets import NEW_TICKET

    for _ in range(3):
        limited.get("/api/v1/tickets", headers=agent.headers)
    assert (
        limited.post("/api/v1/tickets", headers=agent.headers, json=NEW_TICKET).status_code == 201
    )
    before = event_count(model_db)
    response = limited.post("/api/v1/tickets", headers=agent.headers, json=NEW_TICKET)
    assert_problem(response, 429, "rate-limited")
    assert event_count(model_db) == before


# --- shared through Redis -------------------------------------------------------------


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in the local Redis; its keys are deleted after."""
    try:
        import redis
    except ImportError:  # pragma: no cover - a dependency of opsdesk
        pytest.fail("the redis package is missing: pip install -e '.[dev]'")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        message = f"Redis is not reachable at {REDIS_URL} (`make services` starts it)"
        if os.environ.get("OPSDESK_REQUIRE_REDIS") == "1":
            pytest.fail(f"{message}; OPSDESK_REQUIRE_REDIS=1 requires it", pytrace=False)
        pytest.skip(message)
    prefix = f"opsdesk-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    assert not list(client.scan_iter(match=f"{prefix}*"))
    client.close()


def test_two_api_processes_share_the_limits_through_redis(
    model_db: Database, agent: Caller, redis_prefix: str
) -> None:
    def instance() -> FastAPI:
        return _app(
            model_db,
            redis_url=REDIS_URL,
            rate_limit_prefix=redis_prefix,
            rate_limit_bad_tokens_per_minute=4,
            rate_limit_requests_per_minute=5,
        )

    with TestClient(instance()) as one, TestClient(instance()) as two:
        # requests per token: 5 in all, whichever instance serves them
        answers = [
            (one if n % 2 else two).get("/api/v1/tickets", headers=agent.headers).status_code
            for n in range(5)
        ]
        assert answers == [200] * 5
        assert_problem(one.get("/api/v1/tickets", headers=agent.headers), 429, "rate-limited")
        assert_problem(two.get("/api/v1/tickets", headers=agent.headers), 429, "rate-limited")
        # bad tokens per address: 4 in all, then both refuse
        for n in range(4):
            response = (one if n % 2 else two).get("/api/v1/tickets", headers=BAD)
            assert_problem(response, 401)
        for client in (one, two):
            response = client.get("/api/v1/tickets", headers=BAD)
            assert_problem(response, 429, "rate-limited")
            _retry_after(response, 60)
    # one audit row per limit and window, however many processes refused
    assert [r.details["limit"] for r in _audit(model_db, "auth.rate_limited")] == [
        "requests",
        "bad_tokens",
    ]


def test_a_lockout_holds_across_processes_through_redis(redis_prefix: str) -> None:
    policy = ThrottlePolicy(login_failures_per_account=2, login_failures_per_client=100)
    one = Throttle(policy, redis_url=REDIS_URL, key_prefix=redis_prefix)
    two = Throttle(policy, redis_url=REDIS_URL, key_prefix=redis_prefix)
    assert one.shared and two.shared
    assert not one.hit_failed_login("192.0.2.5", "ana@example.com").locked_out
    assert two.hit_failed_login("192.0.2.6", "ana@example.com").locked_out
    wait = one.check_login_allowed("192.0.2.7", "ana@example.com")
    assert wait is not None and wait > 14 * 60
    assert two.check_login_allowed("192.0.2.7", "bob@example.com") is None
    two.clear_login_failures("ana@example.com")
    assert one.check_login_allowed("192.0.2.7", "ana@example.com") is None
