"""Team scoping and who may speak as whom, over HTTP and on the queries themselves."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from opsdesk.desk import queries, service
from opsdesk.desk.access import Access, Scope, customer_reached
from opsdesk.docsgen import SECTIONS, with_section
from opsdesk.domain.errors import DomainError
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from tests import factories

from .conftest import Caller, assert_problem, event_count, make_caller

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _vip_ticket(db: Database) -> int:
    """A VIP customer's ticket, owned by vip_care and accepted by one of its agents."""
    owner = factories.user(db, teams=["vip_care"])
    customer = factories.customer(db, tier="vip")
    ticket = factories.ticket(db, request_type="vip_request", customer_id=customer.id)
    with UnitOfWork(db) as uow:
        service.accept_ticket(uow, ticket.id, owner.id)
    return ticket.id


def test_an_agent_cannot_take_another_teams_vip_ticket(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    ticket_id = _vip_ticket(model_db)
    before = event_count(model_db)
    attempts = [
        ("post", f"/tickets/{ticket_id}/transfer", {"to_agent": agent.id, "reason": "mine"}),
        ("post", f"/tickets/{ticket_id}/accept", None),
        ("post", f"/tickets/{ticket_id}/status", {"status": "solved"}),
        ("post", f"/tickets/{ticket_id}/priority", {"priority": "low"}),
        ("post", f"/tickets/{ticket_id}/tags", {"add": ["mine"]}),
        ("post", f"/tickets/{ticket_id}/messages", {"body": "hello"}),
        ("get", f"/tickets/{ticket_id}", None),
        ("get", f"/tickets/{ticket_id}/sla", None),
    ]
    for method, path, body in attempts:
        r = client.request(method, "/api/v1" + path, json=body, headers=agent.headers)
        assert_problem(r, 404, "not-found")
    assert event_count(model_db) == before


def test_out_of_scope_answers_exactly_like_missing(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    ticket_id = _vip_ticket(model_db)
    with model_db.read() as conn:
        customer_id = conn.execute(
            select(t.tickets.c.customer_id).where(t.tickets.c.id == ticket_id)
        ).scalar_one()
    missing_ticket, missing_customer = 10**9, 10**9
    for path, missing in (
        (f"/tickets/{ticket_id}", f"/tickets/{missing_ticket}"),
        (f"/customers/{customer_id}", f"/customers/{missing_customer}"),
        (f"/customers/{customer_id}/timeline", f"/customers/{missing_customer}/timeline"),
    ):
        hidden = client.get("/api/v1" + path, headers=agent.headers)
        absent = client.get("/api/v1" + missing, headers=agent.headers)
        assert hidden.status_code == absent.status_code == 404
        assert hidden.headers["content-type"] == absent.headers["content-type"]
        real_id, fake_id = path.split("/")[2], missing.split("/")[2]
        assert hidden.json() == {
            k: v.replace(fake_id, real_id) if isinstance(v, str) else v
            for k, v in absent.json().items()
        }


def test_lists_and_pages_hold_only_tickets_in_scope(client: TestClient, model_db: Database) -> None:
    agent = make_caller(model_db, roles=["agent"], teams=["billing"])
    mine = set()
    for n in range(9):
        # interleaved: billing, tech_support, billing...; pages must not come up short
        request_type = "refund" if n % 2 == 0 else "device_fault"
        ticket = factories.ticket(model_db, request_type=request_type)
        if request_type == "refund":
            mine.add(ticket.id)
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/tickets", params=params, headers=agent.headers).json()
        assert len(page["items"]) == 2 or page["next_cursor"] is None
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert set(seen) == mine and len(seen) == len(mine)
    # a filter cannot widen the scope
    other = client.get(
        "/api/v1/tickets", params={"owning_team": "tech_support"}, headers=agent.headers
    ).json()
    assert other["items"] == []


def test_a_transfer_out_of_ones_team_puts_the_ticket_out_of_reach(
    client: TestClient, model_db: Database
) -> None:
    agent = make_caller(model_db, roles=["agent"], teams=["billing"])
    ticket = factories.ticket(model_db)
    r = client.post(f"/api/v1/tickets/{ticket.id}/accept", headers=agent.headers)
    assert r.status_code == 200, r.text
    r = client.post(
        f"/api/v1/tickets/{ticket.id}/transfer",
        json={"to_team": "tech_support", "reason": "a meter fault"},
        headers=agent.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["owning_team"] == "tech_support"
    # the ticket left billing and its owner with it: out of reach now
    assert_problem(client.get(f"/api/v1/tickets/{ticket.id}", headers=agent.headers), 404)


def test_opening_a_ticket_for_a_customer_outside_scope(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    ticket_id = _vip_ticket(model_db)
    with model_db.read() as conn:
        customer_id, handle = conn.execute(
            select(t.tickets.c.customer_id, t.customer_handles.c.value)
            .join(t.customer_handles, t.customer_handles.c.customer_id == t.tickets.c.customer_id)
            .where(t.tickets.c.id == ticket_id)
        ).one()
    new = {"subject": "Calling about my heat pump", "channel": "phone", "body": "It is cold."}
    by_id = client.post(
        "/api/v1/tickets", json={**new, "customer": {"id": customer_id}}, headers=agent.headers
    )
    assert_problem(by_id, 404, "not-found")
    # by the handle the caller gives: opened, here as a refund (the agent's own team)
    by_handle = client.post(
        "/api/v1/tickets",
        json={**new, "customer": {"email": handle}, "request_type": "refund"},
        headers=agent.headers,
    )
    assert by_handle.status_code == 201, by_handle.text
    assert by_handle.json()["customer_id"] == customer_id
    # the customer is reached through the new ticket; their VIP ticket stays out of reach
    assert_problem(client.get(f"/api/v1/tickets/{ticket_id}", headers=agent.headers), 404)
    timeline = client.get(f"/api/v1/customers/{customer_id}/timeline", headers=agent.headers)
    assert timeline.status_code == 200
    assert ticket_id not in {e["ticket_id"] for e in timeline.json()["items"]}


# --- who may speak as whom ----------------------------------------------------------


def _solved_ticket(db: Database, team_agent: Caller) -> int:
    ticket = factories.ticket(db)
    with UnitOfWork(db) as uow:
        service.accept_ticket(uow, ticket.id, team_agent.id)
        service.change_status(uow, ticket.id, "open")
        service.change_status(uow, ticket.id, "solved", "refunded")
    return ticket.id


def test_an_agent_cannot_post_as_the_customer(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    ticket_id = _solved_ticket(model_db, agent)
    before = event_count(model_db)
    for kind in ("customer", "bot"):
        r = client.post(
            f"/api/v1/tickets/{ticket_id}/messages",
            json={"body": "Not fixed after all", "author_kind": kind},
            headers=agent.headers,
        )
        assert "messages.customer" in assert_problem(r, 403, "permission-denied")["detail"]
    r = client.post(
        f"/api/v1/tickets/{ticket_id}/messages",
        json={"body": "maintenance tonight", "author_kind": "system"},
        headers=agent.headers,
    )
    assert_problem(r, 422, "validation-failed")
    assert event_count(model_db) - before == 0
    ticket = client.get(f"/api/v1/tickets/{ticket_id}", headers=agent.headers).json()
    assert ticket["status"] == "solved"


def test_a_channel_integration_posts_the_customers_words_as_itself(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    channel = make_caller(model_db, roles=["integration"], teams=[])
    ticket_id = _solved_ticket(model_db, agent)
    r = client.post(
        f"/api/v1/tickets/{ticket_id}/messages",
        json={"body": "Still charged twice", "author_kind": "customer"},
        headers=channel.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["author_kind"] == "customer"
    with model_db.read() as conn:
        added = conn.execute(
            select(t.events)
            .where(t.events.c.ticket_id == ticket_id, t.events.c.type == "message.added")
            .order_by(t.events.c.seq.desc())
        ).first()
        customer_id = conn.execute(
            select(t.tickets.c.customer_id).where(t.tickets.c.id == ticket_id)
        ).scalar_one()
    assert added is not None
    assert (added.actor_kind, added.actor_id) == ("user", channel.id)
    assert added.payload["author_kind"] == "customer"
    assert added.payload["author_id"] == customer_id
    # the customer's reply reopened the solved ticket
    assert (
        client.get(f"/api/v1/tickets/{ticket_id}", headers=agent.headers).json()["status"] == "open"
    )
    # and the integration cannot speak as an agent
    r = client.post(
        f"/api/v1/tickets/{ticket_id}/messages", json={"body": "Refunded!"}, headers=channel.headers
    )
    assert "messages.write" in assert_problem(r, 403, "permission-denied")["detail"]


def test_a_ticket_an_agent_opens_records_the_customers_words_relayed_by_the_agent(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    r = client.post(
        "/api/v1/tickets",
        json={
            "customer": {"email": "relayed@example.com"},
            "subject": "Refund",
            "channel": "phone",
            "request_type": "refund",
            "body": "I was charged twice.",
        },
        headers=agent.headers,
    )
    assert r.status_code == 201, r.text
    with model_db.read() as conn:
        added = conn.execute(
            select(t.events).where(
                t.events.c.ticket_id == r.json()["id"], t.events.c.type == "message.added"
            )
        ).one()
    assert (added.actor_kind, added.actor_id) == ("user", agent.id)
    assert added.payload["author_kind"] == "customer"


def test_system_is_refused_by_the_desk_for_any_user(agent: Caller, model_db: Database) -> None:
    """The API schema refuses `system`; the domain refuses it too (CLI, future routes)."""
    ticket = factories.ticket(model_db)
    before = event_count(model_db)
    with (
        pytest.raises(DomainError, match="cannot post as `system`"),
        UnitOfWork(model_db, actor_kind="user", actor_id=agent.id) as uow,
    ):
        service.add_message(uow, ticket.id, body="maintenance", author_kind="system")
    assert event_count(model_db) == before


# --- the scope rule itself -------------------------------------------------------------

TEAMS = ("billing", "tech_support", "metering")


@pytest.fixture
def spread(model_db: Database) -> tuple[Database, dict[int, tuple[str | None, int | None]]]:
    """Tickets of every ownership shape: untriaged, team only, team and agent."""
    agents = {team: factories.user(model_db, teams=[team]).id for team in TEAMS}
    owners: dict[int, tuple[str | None, int | None]] = {}
    with UnitOfWork(model_db) as uow:
        for n, request_type in enumerate([None, "refund", "device_fault", "smart_meter_fault"] * 2):
            customer = service.create_customer(
                uow, name=f"Spread {n}", handles=[("email", f"spread{n}@example.test")]
            )
            ticket = service.create_ticket(
                uow,
                customer_id=customer.id,
                subject="x",
                channel="email",
                request_type=request_type,
            )
            if n >= 4 and ticket.owning_team is not None:
                service.accept_ticket(uow, ticket.id, agents[ticket.owning_team])
            owners[ticket.id] = (ticket.owning_team, ticket.owning_agent)
        # and a customer with no ticket yet, whom every scope reaches
        service.create_customer(uow, name="Spread new", handles=[("email", "new@example.test")])
    return model_db, owners


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    teams=st.one_of(st.none(), st.frozensets(st.sampled_from(TEAMS))),
    user_pick=st.integers(min_value=0, max_value=7),
)
def test_sql_scope_and_write_scope_agree(
    spread: tuple[Database, dict[int, tuple[str | None, int | None]]],
    teams: frozenset[str] | None,
    user_pick: int,
) -> None:
    """The one rule, two forms: what the queries list is what the commands may touch."""
    db, owners = spread
    agent_ids = sorted({a for _, a in owners.values() if a is not None})
    user_id = agent_ids[user_pick % len(agent_ids)] if agent_ids else None
    scope = Scope(teams, user_id)
    access = Access(user_id, frozenset({"tickets.read", "events.read"}), scope)
    with db.read() as conn:
        listed = {
            tk.id for tk in queries.list_tickets(conn, access, limit=100).items if tk.id in owners
        }
        fed = {
            e.ticket_id
            for e in queries.events_feed(conn, access, limit=1000).items
            if e.ticket_id in owners
        }
    expected = {tid for tid, (team, agent) in owners.items() if scope.covers(team, agent)}
    assert listed == expected
    assert fed == expected


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    teams=st.one_of(st.none(), st.frozensets(st.sampled_from(TEAMS))),
    user_pick=st.integers(min_value=0, max_value=7),
)
def test_customer_scope_reads_and_writes_agree(
    spread: tuple[Database, dict[int, tuple[str | None, int | None]]],
    teams: frozenset[str] | None,
    user_pick: int,
) -> None:
    """The customer rule, in its two forms: the reads' SQL clause and the write path's
    hand-rendered query reach the same customers (and a customer with no ticket)."""
    db, owners = spread
    agent_ids = sorted({a for _, a in owners.values() if a is not None})
    user_id = agent_ids[user_pick % len(agent_ids)] if agent_ids else None
    scope = Scope(teams, user_id)
    with db.read() as conn:
        customers = [
            row.id for row in conn.execute(select(t.customers.c.id).order_by(t.customers.c.id))
        ]
        by_clause = {
            row.id
            for row in conn.execute(
                select(t.customers.c.id).where(scope.customers_clause(t.customers.c.id))
            )
        }
        by_query = {cid for cid in customers if customer_reached(conn, scope, cid)}
    assert by_query == by_clause
    customer_of = {}
    with db.read() as conn:
        for row in conn.execute(select(t.tickets.c.id, t.tickets.c.customer_id)):
            customer_of[row.id] = row.customer_id
    reached_through_tickets = {
        customer_of[tid] for tid, (team, agent) in owners.items() if scope.covers(team, agent)
    }
    ticketless = set(customers) - set(customer_of.values())
    assert len(ticketless) == 1
    assert by_clause == reached_through_tickets | ticketless


def test_roles_table_in_security_md_is_current() -> None:
    for (name, section), render in SECTIONS.items():
        text = (DOCS / name).read_text(encoding="utf-8")
        assert with_section(text, section, render()) == text, (
            f"the {section} section of docs/{name} is stale: run `make docs`"
        )


def test_a_merged_in_identity_out_of_scope_stays_out_of_the_timeline(
    client: TestClient, agent: Caller, model_db: Database
) -> None:
    vip_ticket = _vip_ticket(model_db)
    with model_db.read() as conn:
        source = conn.execute(
            select(t.tickets.c.customer_id).where(t.tickets.c.id == vip_ticket)
        ).scalar_one()
    target = factories.ticket(model_db).customer_id  # a billing ticket: the agent's team
    with UnitOfWork(model_db) as uow:
        service.merge_customers(uow, source, target)
    page = client.get(f"/api/v1/customers/{target}/timeline", headers=agent.headers).json()
    assert page["items"], "the target's own events are there"
    assert {e["customer_id"] for e in page["items"]} == {target}
    # an unscoped reader sees both identities
    admin = make_caller(model_db, roles=["admin"], teams=[])
    page = client.get(f"/api/v1/customers/{target}/timeline", headers=admin.headers).json()
    assert {e["customer_id"] for e in page["items"]} == {source, target}
