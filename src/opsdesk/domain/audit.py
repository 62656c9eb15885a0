"""The audit vocabulary, declared once: the security and admin actions the audit trail
records, and how each can end.

``docs/audit.md`` is generated from :data:`AUDIT_ACTIONS`; recording an action that is
not declared here raises :class:`UndeclaredAuditAction`. Actions marked not recorded
yet have no code path today (password logins, lockouts); the feature
that adds one only has to call ``uow.audit`` with the declared name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["ok", "refused", "failed"]
OUTCOMES: tuple[str, ...] = ("ok", "refused", "failed")

#: who acted: the event log's actor kinds, plus ``anonymous`` (an unauthenticated caller)
AUDIT_ACTOR_KINDS: tuple[str, ...] = ("user", "customer", "bot", "system", "importer", "anonymous")


class UndeclaredAuditAction(Exception):
    """An audit action (or outcome) that the vocabulary does not declare."""


@dataclass(frozen=True)
class AuditAction:
    """One declared audit action: its name, meaning and what its subject names."""

    name: str
    meaning: str
    subject: str
    recorded: bool = True


AUDIT_ACTIONS: dict[str, AuditAction] = {
    a.name: a
    for a in (
        AuditAction(
            "auth.login",
            "A person signed in with a password (`POST /api/v1/auth/token`).",
            "user:ID",
        ),
        AuditAction(
            "auth.login_failed",
            "A password sign-in failed (unknown e-mail, wrong password, deactivated user).",
            "the e-mail tried",
        ),
        AuditAction(
            "auth.locked_out",
            "An account was locked after repeated failed sign-ins (outcome refused).",
            "the e-mail tried",
        ),
        AuditAction(
            "auth.token_refused",
            "An API call presented a bearer token that is unknown, revoked, expired or belongs "
            "to a deactivated user (outcome failed).",
            "token:ID when the token is known, else none",
        ),
        AuditAction(
            "auth.rate_limited",
            "A caller went over a rate limit and is answered 429 (outcome refused): one row "
            "per limit, key and window, not one per request; details name the limit "
            "(`bad_tokens` per client address, `requests` per token) and the route.",
            "`client:ADDRESS` for bad tokens, `user:ID` for a token's requests",
        ),
        AuditAction(
            "access.refused",
            "An authenticated caller was refused for lack of a permission or approver role "
            "(outcome refused); details name the permission and the route.",
            "the route, e.g. `GET /api/v1/audit`",
        ),
        AuditAction("user.created", "A user account was created with roles and teams.", "user:ID"),
        AuditAction("user.roles_changed", "A user's roles changed (before, after).", "user:ID"),
        AuditAction("user.teams_changed", "A user's teams changed (before, after).", "user:ID"),
        AuditAction("user.deactivated", "A user account was deactivated.", "user:ID"),
        AuditAction(
            "user.password_set",
            "A user's password was set or changed (never the password).",
            "user:ID",
        ),
        AuditAction(
            "token.created", "An API token was created (never the token; its prefix).", "token:ID"
        ),
        AuditAction(
            "token.revoked",
            "An API token was revoked (by hand, or with every credential of its user on a "
            "password change or deactivation); details give the reason.",
            "token:ID",
        ),
        AuditAction(
            "model.applied",
            "A new operating model version was put in force.",
            "model:VERSION",
        ),
        AuditAction(
            "events.exported",
            "The event log was exported (`opsdesk export events`).",
            "the output file, or stdout",
        ),
        AuditAction(
            "audit.exported",
            "The audit trail was exported (`opsdesk audit export`).",
            "the output file, or stdout",
        ),
        AuditAction(
            "customer.erased",
            "A customer's personal data was erased on request (`opsdesk customer erase`); "
            "details give the customers of the merge group and what was destroyed or blanked.",
            "customer:ID",
        ),
        AuditAction(
            "retention.applied",
            "Message bodies older than the retention age were purged (`opsdesk retention "
            "apply`); details give the age, the cut-off and the counts.",
            "retention:messages",
        ),
    )
}


def check_action(action: str, outcome: str) -> None:
    """Refuse an action or outcome the vocabulary does not declare."""
    if action not in AUDIT_ACTIONS:
        raise UndeclaredAuditAction(
            f"audit action {action!r} is not declared in opsdesk.domain.audit"
        )
    if outcome not in OUTCOMES:
        raise UndeclaredAuditAction(f"audit outcome {outcome!r} is not one of {OUTCOMES}")


def render_audit_markdown() -> str:
    """The body of docs/audit.md, generated from the vocabulary."""
    lines = [
        "# Audit actions",
        "",
        "<!-- generated by `python -m opsdesk.docsgen`; do not edit by hand -->",
        "",
        "Every row of the audit trail has one of these actions and an outcome ("
        + ", ".join(f"`{o}`" for o in OUTCOMES)
        + ").",
        "See [security.md](security.md#audit-trail) for what is recorded, how the rows are",
        "chained and how to verify and export them.",
        "",
        "| action | meaning | subject | recorded today |",
        "|---|---|---|---|",
    ]
    for a in AUDIT_ACTIONS.values():
        lines.append(
            f"| `{a.name}` | {a.meaning} | {a.subject} | "
            f"{'yes' if a.recorded else 'not yet: declared for the feature that adds it'} |"
        )
    lines.append("")
    return "\n".join(lines)
