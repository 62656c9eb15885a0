"""Password sign-in: an e-mail and a password exchanged for a short-lived token, with the
throttle's lockout and every attempt in the audit trail.

The API's ``POST /api/v1/auth/token`` calls :func:`sign_in`; the web workspace's login
form calls it too. The order matters: the throttle is asked before the password is
checked (a locked account is refused even with the right password), a failure is
counted before it is answered, and a success clears the account's failures.

>>> result = sign_in(db, throttle, email="ana@example.com", password="...",
...                  client="203.0.113.7", lifetime=timedelta(hours=12))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from opsdesk.desk import security
from opsdesk.desk.audit import record_login_failed
from opsdesk.desk.throttle import Throttle
from opsdesk.domain.errors import DomainError
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

#: scopes of a signed-in token: what a person does at the desk; account management
#: (``admin``) needs a token made on purpose (``opsdesk token create --scope admin``)
SIGN_IN_SCOPES = ("read", "write")
MAX_EMAIL = 320
MAX_PASSWORD = 1000


class SignInFailed(DomainError):
    """Wrong e-mail or password, or a deactivated account: one answer for all three, so
    a caller cannot learn which addresses have an account."""


class SignInThrottled(DomainError):
    """Sign-in refused for ``retry_after`` seconds (the account is locked, or the client
    failed too often)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignedIn:
    user_id: int
    token: security.CreatedToken


def sign_in(
    db: Database,
    throttle: Throttle,
    *,
    email: str,
    password: str,
    client: str,
    lifetime: timedelta,
    name: str = "sign-in",
) -> SignedIn:
    """A new token for the account ``email`` when ``password`` is its password.

    Raises :class:`SignInThrottled` while the account is locked or the client is over its
    failure limit (recorded once, when the lock begins), :class:`SignInFailed` on a wrong
    e-mail or password or a deactivated account (recorded as ``auth.login_failed``). A
    success records ``auth.login`` in the transaction that creates the token.
    """
    email = email.strip().lower()
    if not email or len(email) > MAX_EMAIL or len(password) > MAX_PASSWORD:
        raise SignInFailed("wrong e-mail or password")
    wait = throttle.check_login_allowed(client, email)
    if wait is not None:
        raise SignInThrottled(_throttled(wait), wait)
    with db.read() as conn:
        user = security.check_password(conn, email, password)
    if user is None:
        failure = throttle.hit_failed_login(client, email)
        record_login_failed(
            db,
            email=email,
            client=client,
            locked_for=failure.retry_after if failure.locked_out else None,
        )
        raise SignInFailed("wrong e-mail or password")
    throttle.clear_login_failures(email)
    with UnitOfWork(db, actor_kind="user", actor_id=user.id) as uow:
        uow.client = client
        token = security.create_token(
            uow, user.id, name, scopes=SIGN_IN_SCOPES, expires_in=lifetime, signed_in=True
        )
        uow.audit(
            "auth.login",
            subject=f"user:{user.id}",
            details={"token_id": token.id, "hours": lifetime / timedelta(hours=1)},
        )
    return SignedIn(user.id, token)


def _throttled(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return (
        "too many failed sign-ins for this account or from this address; try again in "
        f"about {minutes} minute{'s' if minutes != 1 else ''}, or ask an admin to reset "
        "the password"
    )
