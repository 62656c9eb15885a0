"""The throttle policy: what is counted, per what key, over which window, and for how
long a caller is then refused. Interfaces translate its answers (the API into ``429``
with ``Retry-After``; the web sign-in, when it exists, into its own page).

Counters live in the ``limits`` package's storage: in this process's memory by
default, in Redis when a URL is given, so every API process shares them.

What is counted (docs/security.md#rate-limits):

- **bad tokens per client address**: each request whose bearer token is refused;
  once a client reaches ``bad_tokens_per_minute`` in a window, its requests are refused
  until the window ends, before the token is even looked up (no database work at all);
- **requests per token**: every authenticated request, ``requests_per_minute`` per
  token (keyed by the token's id, never by the token itself);
- **failed sign-ins per account**: ``login_failures_per_account`` failures within
  ``login_window_minutes`` lock the account for ``login_lockout_minutes``, even for the
  right password; **per client address**: ``login_failures_per_client`` failures within
  the same window refuse that address's sign-ins until the oldest failure ages out.

Bad tokens and requests use a fixed window (one counter, a few microseconds in memory);
failed sign-ins a moving window (every failure timed, so "5 in any 15 minutes" holds
exactly). A storage that fails (Redis down) is logged and lets the request through:
the throttle protects the service, it must not become the outage.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Final

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

log = logging.getLogger("opsdesk.throttle")

_KEY_PREFIX: Final = "opsdesk"


@dataclass(frozen=True)
class ThrottlePolicy:
    """The numbers of the throttle (the settings of the same names set them)."""

    bad_tokens_per_minute: int = 30
    requests_per_minute: int = 3000
    login_failures_per_account: int = 5
    login_failures_per_client: int = 20
    login_window_minutes: int = 15
    login_lockout_minutes: int = 15


@dataclass(frozen=True)
class Refusal:
    """A caller over a limit: refuse for ``retry_after`` seconds. ``first`` is true for
    the first refusal of this key in the window (record it once, not per request)."""

    limit: str  # which limit: bad_tokens, requests, login_account, login_client
    retry_after: int
    first: bool


@dataclass(frozen=True)
class LoginFailure:
    """What a failed sign-in led to: ``locked_out`` when this failure locked the account
    (record ``auth.locked_out`` once); ``retry_after`` while sign-ins stay refused."""

    locked_out: bool
    retry_after: int | None


def account_key(email: str) -> str:
    """The key an account is counted under: a hash of its normalised e-mail, so the
    counters (in Redis too) hold no address."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


class Throttle:
    """Counts and judges; never touches the application database.

    >>> throttle = Throttle(ThrottlePolicy(bad_tokens_per_minute=2))
    >>> throttle.hit_bad_token("203.0.113.7"), throttle.hit_bad_token("203.0.113.7")
    (None, None)
    >>> throttle.check_bad_token("203.0.113.7").limit
    'bad_tokens'
    """

    def __init__(
        self,
        policy: ThrottlePolicy | None = None,
        *,
        redis_url: str | None = None,
        key_prefix: str = _KEY_PREFIX,
    ) -> None:
        self.policy = policy = policy or ThrottlePolicy()
        self.storage: Storage = (
            RedisStorage(redis_url, key_prefix=key_prefix, wrap_exceptions=True)
            if redis_url
            else MemoryStorage(wrap_exceptions=True)
        )
        #: whether counting is a network call (then interfaces keep it off the event loop)
        self.shared = redis_url is not None
        self._fixed = FixedWindowRateLimiter(self.storage)
        self._moving = MovingWindowRateLimiter(self.storage)

        def per_minute(amount: int, kind: str) -> RateLimitItem:
            return RateLimitItemPerMinute(amount, 1, namespace=f"{key_prefix}:{kind}")

        window, lockout = policy.login_window_minutes, policy.login_lockout_minutes
        self._bad_tokens = per_minute(policy.bad_tokens_per_minute, "bad_tokens")
        self._requests = per_minute(policy.requests_per_minute, "requests")
        self._login_account = RateLimitItemPerMinute(
            policy.login_failures_per_account, window, namespace=f"{key_prefix}:login_account"
        )
        self._login_client = RateLimitItemPerMinute(
            policy.login_failures_per_client, window, namespace=f"{key_prefix}:login_client"
        )
        self._lock = RateLimitItemPerMinute(1, lockout, namespace=f"{key_prefix}:locked")
        # one "first refusal" per key and window: the audit trail gets one row, not a flood
        self._notices = {
            "bad_tokens": per_minute(1, "notice_bad_tokens"),
            "requests": per_minute(1, "notice_requests"),
        }

    # --- bad tokens and requests (the API) ----------------------------------------------

    def check_bad_token(self, client: str) -> Refusal | None:
        """Refuse ``client`` while it is over the bad-token limit (called before the token
        is looked up, so a flood never reaches the database)."""
        try:
            if self._fixed.test(self._bad_tokens, client):
                return None
            return self._refusal("bad_tokens", self._bad_tokens, client, self._fixed)
        except StorageError:
            log.exception("rate-limit storage failed; bad tokens not throttled")
            return None

    def hit_bad_token(self, client: str) -> None:
        """Count one refused token from ``client``."""
        try:
            self._fixed.hit(self._bad_tokens, client)
        except StorageError:
            log.exception("rate-limit storage failed; a bad token was not counted")

    def hit_request(self, token_key: str) -> Refusal | None:
        """Count one request with the token ``token_key`` names (``token:<id>``); a refusal
        when the token is over its limit."""
        try:
            if self._fixed.hit(self._requests, token_key):
                return None
            return self._refusal("requests", self._requests, token_key, self._fixed)
        except StorageError:
            log.exception("rate-limit storage failed; requests not throttled")
            return None

    # --- sign-in (the web workspace calls these) -----------------------------------------

    def check_login_allowed(self, client: str, account: str) -> int | None:
        """Seconds to wait before ``client`` may try to sign in as ``account`` (an
        e-mail), or None. Ask before checking the password: a locked account is refused
        even with the right one."""
        key = account_key(account)
        waits: list[float] = []
        try:
            if not self._fixed.test(self._lock, key):
                waits.append(self._fixed.get_window_stats(self._lock, key).reset_time)
            if not self._moving.test(self._login_client, client):
                waits.append(self._moving.get_window_stats(self._login_client, client).reset_time)
        except StorageError:
            log.exception("rate-limit storage failed; sign-in not throttled")
            return None
        return _seconds_until(max(waits)) if waits else None

    def hit_failed_login(self, client: str, account: str) -> LoginFailure:
        """Count a failed sign-in (unknown e-mail, wrong password, deactivated user) of
        ``client`` as ``account``; lock the account at the limit."""
        key = account_key(account)
        try:
            self._moving.hit(self._login_client, client)
            counted = self._moving.hit(self._login_account, key)
            full = not self._moving.test(self._login_account, key)
            locked_out = False
            if (full or not counted) and self._fixed.hit(self._lock, key):
                locked_out = True
                # the lock now counts the time: the failures that caused it are forgotten,
                # so the account is open again when the lock ends
                self._moving.clear(self._login_account, key)
        except StorageError:
            log.exception("rate-limit storage failed; a failed sign-in was not counted")
            return LoginFailure(False, None)
        return LoginFailure(locked_out, self.check_login_allowed(client, account))

    def clear_login_failures(self, account: str) -> None:
        """Forget an account's failures and lock (after a successful sign-in, or an
        admin's unlock)."""
        key = account_key(account)
        try:
            self._moving.clear(self._login_account, key)
            self._fixed.clear(self._lock, key)
        except StorageError:
            log.exception("rate-limit storage failed; sign-in failures not cleared")

    # --- helpers ------------------------------------------------------------------------

    def _refusal(
        self,
        limit: str,
        item: RateLimitItem,
        key: str,
        limiter: FixedWindowRateLimiter | MovingWindowRateLimiter,
    ) -> Refusal:
        reset = limiter.get_window_stats(item, key).reset_time
        first = self._fixed.hit(self._notices[limit], key)
        return Refusal(limit, _seconds_until(reset), first)


def _seconds_until(instant: float) -> int:
    """Whole seconds from now until ``instant`` (a Unix time), at least 1."""
    return max(1, math.ceil(instant - time.time()))
