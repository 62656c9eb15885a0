"""Accounts over the API: /me, scoped /users, admin management of users and tokens,
token scopes and expiry, and revocation on deactivation or a password change."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from opsdesk.desk import accounts, security, service
from opsdesk.model import PERMISSIONS, example_model_path, load_model_file
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from tests import factories
from tests.conftest import examples

from .conftest import Caller, assert_problem, count_rows, event_count

_n = itertools.count(1)


def caller(
    db: Database,
    *,
    roles: list[str],
    teams: list[str],
    scopes: tuple[str, ...] = security.SCOPES,
) -> Caller:
    """A user with a token of ``scopes``."""
    n = next(_n)
    with UnitOfWork(db) as uow:
        user = service.create_user(
            uow, name=f"Acct {n}", email=f"acct{n}@example.test", roles=roles, teams=teams
        )
        token = security.create_token(uow, user.id, "tests", scopes=scopes)
    return Caller(user, token.token)


def token_for(db: Database, user_id: int, scopes: tuple[str, ...] = security.SCOPES) -> str:
    with UnitOfWork(db) as uow:
        return security.create_token(uow, user_id, "more", scopes=scopes).token


def audit_rows(db: Database, action: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            select(t.audit_log).where(t.audit_log.c.action == action).order_by(t.audit_log.c.seq)
        )
        return [dict(r._mapping) for r in rows]


def credential_events(db: Database, what: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            select(t.events.c.payload).where(t.events.c.type == "user.credentials_changed")
        )
        return [r.payload for r in rows if r.payload["what"] == what]


def state(db: Database) -> tuple[int, ...]:
    """Everything an account action could change, to prove a refusal changed nothing."""
    return (
        event_count(db),
        count_rows(db, t.users),
        count_rows(db, t.api_tokens),
        count_rows(db, t.audit_log),
    )


# --- expiry and revocation --------------------------------------------------------------


def test_an_expired_token_is_refused_like_a_revoked_one_and_recorded(
    client: TestClient, model_db: Database
) -> None:
    stale = caller(model_db, roles=["agent"], teams=["billing"])
    fresh = caller(model_db, roles=["agent"], teams=["billing"])
    with model_db.engine.begin() as conn:  # its 90 days have passed
        conn.execute(
            update(t.api_tokens)
            .where(t.api_tokens.c.user_id == stale.id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert client.get("/api/v1/me", headers=fresh.headers).status_code == 200
    r = client.get("/api/v1/me", headers=stale.headers)
    body = assert_problem(r, 401, "unauthorized")
    assert "expired" in body["detail"]
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    refused = audit_rows(model_db, "auth.token_refused")[-1]
    assert (refused["actor_id"], refused["details"]["reason"]) == (stale.id, "expired token")
    assert refused["subject"].startswith("token:")
    assert stale.token not in str(refused)


def test_a_revoked_token_is_refused_on_its_next_request(
    client: TestClient, model_db: Database
) -> None:
    admin = caller(model_db, roles=["admin"], teams=[])
    agent = caller(model_db, roles=["agent"], teams=["billing"])
    me = client.get("/api/v1/me", headers=agent.headers).json()
    token_id = me["token"]["id"]
    assert client.get("/api/v1/tickets", headers=agent.headers).status_code == 200
    r = client.post(
        f"/api/v1/tokens/{token_id}/revoke",
        json={"reason": "leaked in a CI log"},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["active"], out["revoked_by"], out["revoked_reason"]) == (
        False,
        admin.id,
        "leaked in a CI log",
    )
    assert "token" not in out and "token_hash" not in out
    assert_problem(client.get("/api/v1/tickets", headers=agent.headers), 401, "unauthorized")
    revoked = audit_rows(model_db, "token.revoked")
    assert [(r["subject"], r["actor_id"]) for r in revoked] == [(f"token:{token_id}", admin.id)]
    assert revoked[0]["details"] == {"user_id": agent.id, "reason": "leaked in a CI log"}
    assert credential_events(model_db, "token_revoked")[-1]["token_id"] == token_id
    # twice is a conflict, and changes nothing
    before = state(model_db)
    r = client.post(f"/api/v1/tokens/{token_id}/revoke", json={}, headers=admin.headers)
    assert_problem(r, 409, "conflict")
    assert state(model_db) == before


def test_anyone_may_revoke_their_own_token_but_not_someone_elses(
    client: TestClient, model_db: Database
) -> None:
    agent = caller(model_db, roles=["agent"], teams=["billing"])
    other = caller(model_db, roles=["agent"], teams=["billing"])
    other_id = client.get("/api/v1/me", headers=other.headers).json()["token"]["id"]
    before = state(model_db)
    r = client.post(f"/api/v1/tokens/{other_id}/revoke", json={}, headers=agent.headers)
    assert_problem(r, 403, "permission-denied")
    assert state(model_db)[:3] == before[:3]  # the refusal itself is audited
    assert audit_rows(model_db, "access.refused")[-1]["details"]["permission"] == "users.manage"
    mine = client.get("/api/v1/me", headers=agent.headers).json()["token"]["id"]
    r = client.post(f"/api/v1/tokens/{mine}/revoke", json={}, headers=agent.headers)
    assert r.status_code == 200, r.text
    assert_problem(client.get("/api/v1/me", headers=agent.headers), 401)
    assert_problem(client.post("/api/v1/tokens/999999/revoke", json={}, headers=other.headers), 404)


def test_a_password_change_revokes_every_token_of_the_user(
    client: TestClient, model_db: Database
) -> None:
    agent = caller(model_db, roles=["agent"], teams=["billing"])
    second = token_for(model_db, agent.id)
    with UnitOfWork(model_db) as uow:
        assert security.set_password(uow, agent.id, "first password 1") == 0  # not a change
    assert client.get("/api/v1/me", headers=agent.headers).status_code == 200
    with UnitOfWork(model_db) as uow:
        assert security.set_password(uow, agent.id, "second password 2") == 2
    for token in (agent.token, second):
        r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert_problem(r, 401, "unauthorized")
    assert [r["details"]["reason"] for r in audit_rows(model_db, "token.revoked")] == [
        "password changed"
    ] * 2
    changed = audit_rows(model_db, "user.password_set")[-1]
    assert changed["details"]["changed"] is True and len(changed["details"]["revoked_tokens"]) == 2
    with model_db.read() as conn:
        assert security.check_password(conn, agent.user.email, "second password 2") is not None


# --- scopes --------------------------------------------------------------------------------


TICKET = {"customer": {"email": "ada@example.com"}, "subject": "Hi", "channel": "email"}


def test_a_read_token_can_only_read_and_a_write_token_only_write(
    client: TestClient, model_db: Database
) -> None:
    reader = caller(model_db, roles=["agent"], teams=["billing"], scopes=("read",))
    assert client.get("/api/v1/tickets", headers=reader.headers).status_code == 200
    before = state(model_db)
    body = assert_problem(
        client.post("/api/v1/tickets", json=TICKET, headers=reader.headers),
        403,
        "permission-denied",
    )
    assert "'write' scope" in body["detail"] and "--scope write" in body["detail"]
    assert state(model_db)[:3] == before[:3]
    refused = audit_rows(model_db, "access.refused")[-1]
    assert (refused["actor_id"], refused["details"]["permission"], refused["subject"]) == (
        reader.id,
        "scope:write",
        "POST /api/v1/tickets",
    )
    writer = caller(model_db, roles=["agent"], teams=["billing"], scopes=("write",))
    assert client.post("/api/v1/tickets", json=TICKET, headers=writer.headers).status_code == 201
    body = assert_problem(client.get("/api/v1/tickets", headers=writer.headers), 403)
    assert "'read' scope" in body["detail"]


def test_account_management_needs_the_admin_scope_and_the_permission(
    client: TestClient, model_db: Database
) -> None:
    new = {"name": "Bo", "email": "bo@example.com", "roles": ["agent"], "teams": ["billing"]}
    admin_rw = caller(model_db, roles=["admin"], teams=[], scopes=("read", "write"))
    before = state(model_db)
    body = assert_problem(client.post("/api/v1/users", json=new, headers=admin_rw.headers), 403)
    assert "'admin' scope" in body["detail"]
    # scopes only narrow: an agent's admin-scoped token is still an agent's
    agent = caller(model_db, roles=["agent"], teams=["billing"])
    body = assert_problem(client.post("/api/v1/users", json=new, headers=agent.headers), 403)
    assert "users.manage" in body["detail"]
    r = client.post(f"/api/v1/users/{admin_rw.id}/tokens", json={}, headers=agent.headers)
    assert_problem(r, 403, "permission-denied")
    r = client.post(f"/api/v1/users/{agent.id}/tokens", json={}, headers=agent.headers)
    assert "tokens.create" in assert_problem(r, 403)["detail"]
    r = client.put(
        f"/api/v1/users/{agent.id}/roles", json={"roles": ["admin"]}, headers=agent.headers
    )
    assert_problem(r, 403)
    r = client.post(
        f"/api/v1/users/{admin_rw.id}/deactivate", json={"reason": "x"}, headers=agent.headers
    )
    assert_problem(r, 403)
    after = state(model_db)
    # two more users and tokens were made by the test itself; the refusals made nothing
    assert after[1:3] == (before[1] + 1, before[2] + 1)
    me = client.get("/api/v1/me", headers=agent.headers).json()
    assert "users.manage" not in me["permissions"]
    assert "users.manage" not in me["effective_permissions"]


def test_a_token_cannot_mint_a_token_with_more_scopes_than_itself(
    client: TestClient, model_db: Database
) -> None:
    admin = caller(model_db, roles=["admin"], teams=[], scopes=("read", "admin"))
    agent = factories.user(model_db, teams=["billing"])
    before = state(model_db)
    r = client.post(
        f"/api/v1/users/{agent.id}/tokens",
        json={"scopes": ["read", "write"]},
        headers=admin.headers,
    )
    assert "'write'" in assert_problem(r, 403)["detail"]
    assert state(model_db)[:3] == before[:3]
    r = client.post(
        f"/api/v1/users/{agent.id}/tokens", json={"scopes": ["read"]}, headers=admin.headers
    )
    assert r.status_code == 201, r.text


def test_me_shows_roles_teams_permissions_and_the_tokens_scopes_and_expiry(
    client: TestClient, model_db: Database
) -> None:
    lead = caller(model_db, roles=["team_lead"], teams=["billing"], scopes=("read",))
    r = client.get("/api/v1/me", headers=lead.headers)
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["user"]["id"] == lead.id
    assert (me["user"]["roles"], me["user"]["teams"]) == (["team_lead"], ["billing"])
    assert "tickets.write" in me["permissions"] and "tickets.read" in me["permissions"]
    assert me["effective_permissions"] == [p for p in me["permissions"] if p.endswith(".read")]
    assert me["token"]["scopes"] == ["read"]
    expires = datetime.fromisoformat(me["token"]["expires_at"])
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)


@settings(max_examples=examples(50))
@given(
    roles=st.sets(st.sampled_from(["agent", "team_lead", "ops_lead", "auditor", "admin"])),
    scopes=st.sets(st.sampled_from(security.SCOPES)),
)
def test_scopes_only_ever_narrow_what_the_roles_grant(roles: set[str], scopes: set[str]) -> None:
    model = load_model_file(example_model_path()).model
    assert model is not None
    granted = model.permissions_for(sorted(roles))
    effective = set(accounts.effective_permissions(granted, frozenset(scopes)))
    everything = set(accounts.effective_permissions(granted, frozenset(security.SCOPES)))
    assert effective <= everything <= set(PERMISSIONS)
    assert everything == {p for p in granted if p != "*"}
    for scope in security.SCOPES:
        more = set(accounts.effective_permissions(granted, frozenset(scopes | {scope})))
        assert effective <= more


# --- who sees whom -------------------------------------------------------------------------


def _ids(client: TestClient, who: Caller, **params: Any) -> set[int]:
    r = client.get("/api/v1/users", params=params, headers=who.headers)
    assert r.status_code == 200, r.text
    return {u["id"] for u in r.json()["items"]}


def test_users_are_scoped_to_ones_teams_unless_users_read(
    client: TestClient, model_db: Database
) -> None:
    agent = caller(model_db, roles=["agent"], teams=["billing"], scopes=("read",))
    mate = factories.user(model_db, teams=["billing", "metering"])
    stranger = factories.user(model_db, teams=["tech_support"])
    loner = caller(model_db, roles=["agent"], teams=[], scopes=("read",))
    lead = caller(model_db, roles=["team_lead"], teams=["tech_support"], scopes=("read",))
    auditor = caller(model_db, roles=["auditor"], teams=[], scopes=("read",))
    ops = caller(model_db, roles=["ops_lead"], teams=[], scopes=("read",))
    everyone = {agent.id, mate.id, stranger.id, loner.id, lead.id, auditor.id, ops.id}

    assert _ids(client, agent) == {agent.id, mate.id}
    assert _ids(client, loner) == {loner.id}
    assert _ids(client, lead) == {lead.id, stranger.id}
    assert _ids(client, auditor) == everyone
    assert _ids(client, ops) == everyone
    assert _ids(client, ops, team="metering") == {mate.id}
    assert _ids(client, agent, team="tech_support") == set()
    # out of sight answers exactly like missing
    hidden = client.get(f"/api/v1/users/{stranger.id}", headers=agent.headers)
    missing = client.get("/api/v1/users/999999", headers=agent.headers)
    assert_problem(hidden, 404, "not-found")
    assert hidden.json()["detail"].replace(str(stranger.id), "N") == missing.json()[
        "detail"
    ].replace("999999", "N")
    assert client.get(f"/api/v1/users/{mate.id}", headers=agent.headers).json()["id"] == mate.id
    # tokens of someone else: hidden user 404, visible user without users.manage 403
    assert_problem(client.get(f"/api/v1/users/{stranger.id}/tokens", headers=agent.headers), 404)
    assert_problem(client.get(f"/api/v1/users/{mate.id}/tokens", headers=agent.headers), 403)
    assert (
        len(client.get(f"/api/v1/users/{agent.id}/tokens", headers=agent.headers).json()["items"])
        == 1
    )


def test_users_pages_follow_next_after_id(client: TestClient, model_db: Database) -> None:
    ops = caller(model_db, roles=["ops_lead"], teams=[], scopes=("read",))
    for _ in range(4):
        factories.user(model_db, teams=["billing"])
    seen: list[int] = []
    after = 0
    while True:
        page = client.get(
            "/api/v1/users", params={"limit": 2, "after_id": after}, headers=ops.headers
        ).json()
        seen += [u["id"] for u in page["items"]]
        if page["next_after_id"] is None:
            break
        after = page["next_after_id"]
    assert seen == sorted(seen) and len(seen) == 5
    assert_problem(client.get("/api/v1/users", params={"limit": 101}, headers=ops.headers), 422)


# --- admins manage accounts ------------------------------------------------------------------


def test_admin_creates_changes_and_deactivates_a_user_with_audit_rows(
    client: TestClient, model_db: Database
) -> None:
    admin = caller(model_db, roles=["admin"], teams=[])
    new = {"name": "Bo Lind", "email": "Bo@Example.com", "roles": ["agent"], "teams": ["billing"]}
    r = client.post("/api/v1/users", json=new, headers=admin.headers)
    assert r.status_code == 201, r.text
    bo = r.json()
    assert (bo["email"], bo["roles"], bo["active"]) == ("bo@example.com", ["agent"], True)
    assert audit_rows(model_db, "user.created")[-1]["subject"] == f"user:{bo['id']}"
    assert_problem(client.post("/api/v1/users", json=new, headers=admin.headers), 409)

    r = client.put(
        f"/api/v1/users/{bo['id']}/roles",
        json={"roles": ["agent", "team_lead"]},
        headers=admin.headers,
    )
    assert r.json()["roles"] == ["agent", "team_lead"]
    r = client.put(
        f"/api/v1/users/{bo['id']}/teams",
        json={"teams": ["billing", "metering"]},
        headers=admin.headers,
    )
    assert r.json()["teams"] == ["billing", "metering"]
    assert audit_rows(model_db, "user.roles_changed")[-1]["details"] == {
        "before": ["agent"],
        "after": ["agent", "team_lead"],
    }
    assert audit_rows(model_db, "user.teams_changed")[-1]["details"]["after"] == [
        "billing",
        "metering",
    ]

    r = client.post(
        f"/api/v1/users/{bo['id']}/tokens",
        json={"name": "laptop", "scopes": ["read"], "expires_in_days": 7},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["token"].startswith("odk_") and created["scopes"] == ["read"]
    bo_headers = {"Authorization": f"Bearer {created['token']}"}
    assert client.get("/api/v1/me", headers=bo_headers).json()["user"]["id"] == bo["id"]
    listed = client.get(f"/api/v1/users/{bo['id']}/tokens", headers=admin.headers).json()
    assert [(i["id"], i["name"], i["active"]) for i in listed["items"]] == [
        (created["id"], "laptop", True)
    ]
    assert created["token"] not in str(listed) and "token_hash" not in str(listed)
    token_row = audit_rows(model_db, "token.created")[-1]
    assert token_row["subject"] == f"token:{created['id']}"
    assert token_row["details"]["scopes"] == ["read"] and created["token"] not in str(token_row)

    r = client.post(
        f"/api/v1/users/{bo['id']}/deactivate",
        json={"reason": "left the company"},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["user"]["active"] is False
    assert r.json()["revoked_tokens"] == [created["id"]]
    assert_problem(client.get("/api/v1/me", headers=bo_headers), 401)
    assert audit_rows(model_db, "user.deactivated")[-1]["subject"] == f"user:{bo['id']}"
    assert audit_rows(model_db, "token.revoked")[-1]["details"]["reason"] == "user deactivated"
    listed = client.get(f"/api/v1/users/{bo['id']}/tokens", headers=admin.headers).json()
    assert listed["items"][0]["revoked_reason"] == "user deactivated"
    # a deactivated user gets no new token; nobody deactivates themselves
    before = state(model_db)
    r = client.post(f"/api/v1/users/{bo['id']}/tokens", json={}, headers=admin.headers)
    assert_problem(r, 409)
    r = client.post(
        f"/api/v1/users/{admin.id}/deactivate", json={"reason": "oops"}, headers=admin.headers
    )
    assert_problem(r, 422)
    assert state(model_db)[:3] == before[:3]


def test_bad_account_input_changes_nothing(client: TestClient, model_db: Database) -> None:
    admin = caller(model_db, roles=["admin"], teams=[])
    owner = caller(model_db, roles=["agent"], teams=["billing"])
    ticket = factories.ticket(model_db)
    with UnitOfWork(model_db, actor_kind="user", actor_id=owner.id) as uow:
        service.accept_ticket(uow, ticket.id)
    before = state(model_db)
    bad = [
        ("post", "/api/v1/users", {"name": "X", "email": "x@example.com", "roles": ["wizard"]}),
        ("post", "/api/v1/users", {"name": "X", "email": "not-an-email", "roles": ["agent"]}),
        ("post", "/api/v1/users", {"name": "\u200b", "email": "y@example.com", "roles": ["agent"]}),
        ("post", "/api/v1/users", {"name": "X", "email": "z@example.com", "roles": ["agent"] * 51}),
        ("put", f"/api/v1/users/{owner.id}/teams", {"teams": ["tech_support"]}),
        ("put", f"/api/v1/users/{owner.id}/roles", {"roles": ["nobody"]}),
        ("post", f"/api/v1/users/{owner.id}/deactivate", {"reason": "left"}),
        ("post", f"/api/v1/users/{owner.id}/deactivate", {"reason": ""}),
        ("post", f"/api/v1/users/{owner.id}/tokens", {"scopes": []}),
        ("post", f"/api/v1/users/{owner.id}/tokens", {"scopes": ["root"]}),
        ("post", f"/api/v1/users/{owner.id}/tokens", {"expires_in_days": 400}),
        ("post", f"/api/v1/users/{owner.id}/tokens", {"expires_in_days": 0}),
        ("post", f"/api/v1/users/{owner.id}/tokens", {"name": "n" * 101}),
        ("post", "/api/v1/users/999999/tokens", {}),
        ("post", "/api/v1/tokens/1/revoke", {"reason": "r" * 201}),
        ("put", f"/api/v1/users/{2**63}/roles", {"roles": ["agent"]}),
    ]
    for method, path, body in bad:
        r = client.request(method.upper(), path, json=body, headers=admin.headers)
        assert r.status_code in (404, 409, 422), (path, body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert state(model_db) == before
    # the owner keeps their token: the refused deactivation revoked nothing
    assert client.get("/api/v1/me", headers=owner.headers).status_code == 200


def test_token_creation_takes_no_idempotency_key(client: TestClient, model_db: Database) -> None:
    admin = caller(model_db, roles=["admin"], teams=[])
    before = state(model_db)
    r = client.post(
        f"/api/v1/users/{admin.id}/tokens",
        json={},
        headers={**admin.headers, "Idempotency-Key": "k1"},
    )
    assert "shown once" in assert_problem(r, 400, "invalid-idempotency-key")["detail"]
    assert state(model_db) == before
    with model_db.read() as conn:
        assert not conn.execute(select(t.idempotency_keys)).first()
