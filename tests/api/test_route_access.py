"""Every /api/v1 route, tried with a token of every role from inside and outside the
ticket's team, against an access rule declared here for it.

The routes come from the application's own route table, so a new route without a rule
fails the suite ("new route X has no access rule"). The expected answer is derived from
the rule (which permissions the route needs, whether it is scoped by ticket or customer,
read or write) and the example model's roles:

- a read: 403 without the permission, else 404 out of scope (exactly as for a missing
  id), else success;
- a write: 404 out of scope (the command finds its target first, as for a missing id),
  else 403 without the permission, else success;
- a list (tickets, events, exceptions): the target is listed iff it is in scope.

Ticket scope here: the target is a refund ticket, owned by ``billing``. Inside callers
are in ``billing``, outside callers in ``tech_support``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from opsdesk.desk import service
from opsdesk.desk.access import ALL_TEAMS
from opsdesk.desk.security import create_token
from opsdesk.model import ALL_PERMISSIONS, OperatingModel
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

from .conftest import Caller, make_caller

_n = itertools.count(1)

ROLES = ("agent", "team_lead", "ops_lead", "qa_analyst", "finance_approver", "auditor")
ROLES += ("integration", "admin")
SCOPED_ROLES = ("agent", "team_lead")  # the others reach every team


@dataclass(frozen=True)
class Target:
    """What one attempt acts on: a billing ticket, its customer, maybe an exception."""

    ticket_id: int
    customer_id: int
    owner_id: int
    exception_id: int | None = None
    other_customer_id: int | None = None
    user_id: int | None = None  # a fresh billing agent, for the account routes
    token_id: int | None = None  # a token of that agent


class World:
    """Builds fresh targets (one unit of work each) so writes never see each other."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.owner = make_caller(db, roles=["agent"], teams=["billing"]).user

    def _customer_with_ticket(self, uow: UnitOfWork) -> tuple[int, int]:
        n = next(_n)
        customer = service.create_customer(
            uow, name=f"Route {n}", handles=[("email", f"route{n}@example.test")]
        )
        ticket = service.create_ticket(
            uow,
            customer_id=customer.id,
            subject="Charged twice",
            channel="email",
            request_type="refund",
            body="Please refund the second charge.",
        )
        return ticket.id, customer.id

    def target(
        self,
        *,
        solved: bool = False,
        exception: str | None = None,
        second: bool = False,
        user: bool = False,
    ) -> Target:
        fresh = make_caller(self.db, roles=["agent"], teams=["billing"]) if user else None
        token_id = None
        if fresh is not None:
            with UnitOfWork(self.db) as uow:
                token_id = create_token(uow, fresh.id, "route test").id
        with UnitOfWork(self.db) as uow:
            ticket_id, customer_id = self._customer_with_ticket(uow)
            other = self._customer_with_ticket(uow)[1] if second else None
            if solved:
                service.accept_ticket(uow, ticket_id, self.owner.id)
                service.change_status(uow, ticket_id, "open")
                service.change_status(uow, ticket_id, "solved", "refunded")
            x = service.request_exception(uow, ticket_id, exception, "asked") if exception else None
        return Target(
            ticket_id,
            customer_id,
            self.owner.id,
            x.id if x else None,
            other,
            fresh.id if fresh else None,
            token_id,
        )


Request = tuple[str, dict[str, Any] | None]  # (path under /api/v1, JSON body)


@dataclass(frozen=True)
class Rule:
    """How a route is guarded. ``needs``: every permission it needs; ``approvers``: the
    roles that may (when the domain asks for an approver role rather than a permission);
    ``scoped``: the path's id is a ticket's, a customer's, an exception's or a user's, and
    out of scope it answers 404; ``lists``: a list filtered by scope, given a check that
    the target is in the page; ``reach``: the permission that lifts the scope (users are
    scoped by team like tickets, but lifted by ``users.read``); ``scope_first``: a read
    that finds its target (404) before it checks the permission (403), as writes do."""

    kind: Literal["read", "write"]
    needs: tuple[str, ...]
    request: Callable[[Target, Caller], Request]
    scoped: Literal["ticket", "customer", "exception", "user"] | None = None
    target: dict[str, Any] = field(default_factory=dict)
    approvers: frozenset[str] | None = None
    lists: Callable[[dict[str, Any], Target], bool] | None = None
    ok: int = 200
    reach: str = ALL_TEAMS
    scope_first: bool = False
    permission_first: bool = False  # a write that checks the permission before the lookup


def _handle() -> str:
    return f"fresh{next(_n)}@example.test"


def _ids(page: dict[str, Any]) -> set[int]:
    return {item["id"] for item in page["items"]}


RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/tickets"): Rule(
        "read",
        ("tickets.read",),
        lambda x, c: (f"/tickets?customer_id={x.customer_id}", None),
        lists=lambda page, x: x.ticket_id in _ids(page),
    ),
    ("POST", "/tickets"): Rule(
        "write",
        ("tickets.write",),
        lambda x, c: (
            "/tickets",
            {
                "customer": {"id": x.customer_id},
                "subject": "Another question",
                "channel": "phone",
                "body": "The customer asks about their meter.",
            },
        ),
        scoped="customer",
        ok=201,
    ),
    ("GET", "/tickets/{ticket_id}"): Rule(
        "read", ("tickets.read",), lambda x, c: (f"/tickets/{x.ticket_id}", None), "ticket"
    ),
    ("GET", "/tickets/{ticket_id}/sla"): Rule(
        "read", ("tickets.read",), lambda x, c: (f"/tickets/{x.ticket_id}/sla", None), "ticket"
    ),
    ("POST", "/tickets/{ticket_id}/status"): Rule(
        "write",
        ("tickets.write",),
        lambda x, c: (f"/tickets/{x.ticket_id}/status", {"status": "open"}),
        "ticket",
    ),
    ("POST", "/tickets/{ticket_id}/priority"): Rule(
        "write",
        ("tickets.write",),
        lambda x, c: (f"/tickets/{x.ticket_id}/priority", {"priority": "urgent"}),
        "ticket",
    ),
    ("POST", "/tickets/{ticket_id}/transfer"): Rule(
        "write",
        ("tickets.transfer",),
        lambda x, c: (
            f"/tickets/{x.ticket_id}/transfer",
            {"to_team": "tech_support", "reason": "a meter fault, not a bill"},
        ),
        "ticket",
    ),
    ("POST", "/tickets/{ticket_id}/messages"): Rule(
        "write",
        ("messages.write",),
        lambda x, c: (f"/tickets/{x.ticket_id}/messages", {"body": "We are on it."}),
        "ticket",
        ok=201,
    ),
    ("POST", "/tickets/{ticket_id}/accept"): Rule(
        "write",
        ("tickets.write", "tickets.assign"),
        # naming a billing agent (not oneself) needs tickets.assign
        lambda x, c: (f"/tickets/{x.ticket_id}/accept", {"agent_id": x.owner_id}),
        "ticket",
    ),
    ("POST", "/tickets/{ticket_id}/triage"): Rule(
        "write",
        ("tickets.write",),
        lambda x, c: (f"/tickets/{x.ticket_id}/triage", {"request_type": "bill_explanation"}),
        "ticket",
    ),
    ("POST", "/tickets/{ticket_id}/tags"): Rule(
        "write",
        ("tickets.write",),
        lambda x, c: (f"/tickets/{x.ticket_id}/tags", {"add": ["checked"]}),
        "ticket",
    ),
    ("POST", "/tickets/{ticket_id}/csat"): Rule(
        "write",
        ("tickets.write",),
        lambda x, c: (f"/tickets/{x.ticket_id}/csat", {"score": 4}),
        "ticket",
        target={"solved": True},
    ),
    ("POST", "/tickets/{ticket_id}/exceptions"): Rule(
        "write",
        ("exceptions.request",),
        lambda x, c: (
            f"/tickets/{x.ticket_id}/exceptions",
            {"exception_type": "refund_outside_policy", "reason": "order is 40 days old"},
        ),
        "ticket",
        ok=201,
    ),
    ("POST", "/customers"): Rule(
        "write",
        ("customers.write",),
        lambda x, c: (
            "/customers",
            {"name": "Grace", "handles": [{"kind": "email", "value": _handle()}]},
        ),
        ok=201,
    ),
    ("GET", "/customers/{customer_id}"): Rule(
        "read",
        ("customers.read",),
        lambda x, c: (f"/customers/{x.customer_id}", None),
        "customer",
    ),
    ("POST", "/customers/{customer_id}/handles"): Rule(
        "write",
        ("customers.write",),
        lambda x, c: (
            f"/customers/{x.customer_id}/handles",
            {"kind": "email", "value": _handle()},
        ),
        "customer",
        ok=201,
    ),
    ("POST", "/customers/{customer_id}/merge"): Rule(
        "write",
        ("customers.merge",),
        lambda x, c: (f"/customers/{x.customer_id}/merge", {"source_id": x.other_customer_id}),
        "customer",
        target={"second": True},
    ),
    ("POST", "/customers/{customer_id}/erase"): Rule(
        "write",
        ("customers.erase",),
        lambda x, c: (f"/customers/{x.customer_id}/erase", {"reason": "erasure request"}),
        "customer",
        # refused before the customer is looked up: a 403 says nothing about the id
        permission_first=True,
    ),
    ("GET", "/customers/{customer_id}/timeline"): Rule(
        "read",
        ("customers.read",),
        lambda x, c: (f"/customers/{x.customer_id}/timeline", None),
        "customer",
    ),
    ("GET", "/exceptions"): Rule(
        "read",
        ("tickets.read",),
        lambda x, c: (f"/exceptions?ticket_id={x.ticket_id}", None),
        target={"exception": "refund_outside_policy"},
        lists=lambda page, x: x.exception_id in _ids(page),
    ),
    ("GET", "/exceptions/stats"): Rule(
        "read", ("kpis.read",), lambda x, c: ("/exceptions/stats", None)
    ),
    ("POST", "/exceptions/{exception_id}/decision"): Rule(
        "write",
        (),
        lambda x, c: (f"/exceptions/{x.exception_id}/decision", {"decision": "approve"}),
        "exception",
        target={"exception": "priority_jump"},
        approvers=frozenset({"team_lead", "ops_lead"}),  # the type's approver_roles
    ),
    ("GET", "/events"): Rule(
        "read",
        ("events.read",),
        lambda x, c: (f"/events?ticket_id={x.ticket_id}", None),
        lists=lambda page, x: any(e["ticket_id"] == x.ticket_id for e in page["items"]),
    ),
    ("GET", "/model"): Rule("read", ("model.read",), lambda x, c: ("/model", None)),
    ("PUT", "/users/{user_id}/presence"): Rule(
        # one's own presence: anyone (someone else's is the domain's rule, tested there)
        "write",
        (),
        lambda x, c: (f"/users/{c.id}/presence", {"presence": "away"}),
    ),
    ("GET", "/audit"): Rule("read", ("audit.read",), lambda x, c: ("/audit", None)),
    # accounts: a user sees the members of their own teams and themselves, everyone with
    # users.read; managing accounts needs users.manage (and an admin-scoped token)
    ("GET", "/me"): Rule("read", (), lambda x, c: ("/me", None)),
    ("GET", "/users"): Rule(
        "read",
        (),
        lambda x, c: ("/users?team=billing&limit=100", None),
        lists=lambda page, x: x.owner_id in _ids(page),
        reach="users.read",
    ),
    ("GET", "/users/{user_id}"): Rule(
        "read", (), lambda x, c: (f"/users/{x.owner_id}", None), "user", reach="users.read"
    ),
    ("GET", "/users/{user_id}/tokens"): Rule(
        "read",
        ("users.manage",),
        lambda x, c: (f"/users/{x.owner_id}/tokens", None),
        "user",
        reach="users.read",
        scope_first=True,
    ),
    ("POST", "/users"): Rule(
        "write",
        ("users.manage",),
        lambda x, c: (
            "/users",
            {"name": "New Agent", "email": _handle(), "roles": ["agent"], "teams": ["billing"]},
        ),
        ok=201,
    ),
    ("PUT", "/users/{user_id}/roles"): Rule(
        "write",
        ("users.manage",),
        lambda x, c: (f"/users/{x.user_id}/roles", {"roles": ["agent", "team_lead"]}),
        target={"user": True},
    ),
    ("PUT", "/users/{user_id}/teams"): Rule(
        "write",
        ("users.manage",),
        lambda x, c: (f"/users/{x.user_id}/teams", {"teams": ["billing", "frontline"]}),
        target={"user": True},
    ),
    ("POST", "/users/{user_id}/deactivate"): Rule(
        "write",
        ("users.manage",),
        lambda x, c: (f"/users/{x.user_id}/deactivate", {"reason": "left the company"}),
        target={"user": True},
    ),
    ("POST", "/users/{user_id}/tokens"): Rule(
        "write",
        ("users.manage",),
        lambda x, c: (f"/users/{x.user_id}/tokens", {"name": "integration"}),
        target={"user": True},
        ok=201,
    ),
    # public: no bearer token needed, the credentials decide (tests/api/test_sign_in.py)
    ("POST", "/auth/token"): Rule(
        "write",
        (),
        lambda x, c: ("/auth/token", {"email": _handle(), "password": "not a password"}),
        ok=401,
    ),
    ("POST", "/tokens/{token_id}/revoke"): Rule(
        "write",
        ("users.manage",),
        lambda x, c: (f"/tokens/{x.token_id}/revoke", {"reason": "rotated"}),
        target={"user": True},
    ),
}


def _api_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path under /api/v1) of every route the application serves there,
    through included routers (which FastAPI mounts lazily)."""
    found = []
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        path = route.path or ""
        if path == "/api/v1" or path.startswith("/api/"):
            methods = getattr(route, "methods", None) or {"?"}
            found += [(m, path.removeprefix("/api/v1")) for m in sorted(methods) if m != "HEAD"]
    return found


def _expected(rule: Rule, model: OperatingModel, role: str, inside: bool) -> int | str:
    granted = model.permissions_for([role])
    allowed = all(p in granted for p in rule.needs)
    if rule.approvers is not None:
        allowed = allowed and role in rule.approvers
    reaches = inside or rule.reach in granted or ALL_PERMISSIONS in granted
    if rule.lists is not None:
        return ("listed" if reaches else "hidden") if allowed else 403
    if rule.scoped is None:
        return rule.ok if allowed else 403
    if (rule.kind == "write" and not rule.permission_first) or rule.scope_first:
        return 404 if not reaches else (rule.ok if allowed else 403)
    return 403 if not allowed else (404 if not reaches else rule.ok)


def _callers(db: Database) -> list[tuple[str, bool, Caller]]:
    out = []
    for role in ROLES:
        sides = (True, False) if role in SCOPED_ROLES else (False,)
        for inside in sides:
            teams = ["billing"] if inside else ["tech_support"]
            out.append((role, inside, make_caller(db, roles=[role], teams=teams)))
    return out


def test_every_route_has_an_access_rule(client: TestClient) -> None:
    routes = _api_routes(client)
    assert len(routes) >= len(RULES) // 2, "the route table was not read"
    missing = [f"{m} /api/v1{p}" for m, p in routes if (m, p) not in RULES]
    assert not missing, "new route(s) without an access rule: " + ", ".join(missing)
    stale = sorted(set(RULES) - set(routes))
    assert not stale, f"rules for routes that no longer exist: {stale}"


def test_every_route_answers_every_role_as_its_rule_says(
    client: TestClient, model_db: Database
) -> None:
    model = model_db.model_in_force()[1]
    world = World(model_db)
    callers = _callers(model_db)
    shared = world.target(exception="refund_outside_policy")  # for reads: nothing changes
    failures: list[str] = []
    for (method, path), rule in RULES.items():
        for role, inside, caller in callers:
            target = world.target(**rule.target) if rule.kind == "write" else shared
            url, body = rule.request(target, caller)
            r = client.request(method, "/api/v1" + url, json=body, headers=caller.headers)
            want = _expected(rule, model, role, inside)
            side = "inside" if inside else "outside"
            if want in ("listed", "hidden"):
                got: int | str = r.status_code
                if r.status_code == 200:
                    assert rule.lists is not None
                    got = "listed" if rule.lists(r.json(), target) else "hidden"
            else:
                got = r.status_code
            if got != want:
                failures.append(f"{method} {path} as {role} ({side}): {got}, expected {want}")
                continue
            if want == 404:
                # exactly the answer for a missing id: nothing confirms it exists
                assert rule.scoped is not None
                ident = {
                    "ticket": target.ticket_id,
                    "customer": target.customer_id,
                    "exception": target.exception_id,
                    "user": target.owner_id,
                }[rule.scoped]
                detail = r.json()["detail"]
                if detail != f"{rule.scoped} {ident} does not exist":
                    failures.append(f"{method} {path} as {role} ({side}): 404 says {detail!r}")
    assert not failures, "\n".join(failures)


def test_read_only_roles_change_nothing(client: TestClient, model_db: Database) -> None:
    """Pinned independently of the model: the auditor and the QA analyst are read-only."""
    model = model_db.model_in_force()[1]
    for role in ("auditor", "qa_analyst"):
        for (_method, path), rule in RULES.items():
            # one's own presence, and signing in (public), change no one else's work
            if rule.kind == "write" and path not in ("/users/{user_id}/presence", "/auth/token"):
                assert _expected(rule, model, role, inside=True) in (403, 404), (role, path)


@pytest.mark.parametrize("role", ["agent", "team_lead"])
def test_scoped_roles_reach_nothing_of_another_team(
    client: TestClient, model_db: Database, role: str
) -> None:
    """Pinned independently of the model: an agent or lead outside billing gets 404 for
    every route about a billing ticket, customer or exception."""
    model = model_db.model_in_force()[1]
    for rule in RULES.values():
        if rule.scoped is not None:
            assert _expected(rule, model, role, inside=False) in (403, 404)
            if rule.kind == "write" and not rule.permission_first:
                assert _expected(rule, model, role, inside=False) == 404
