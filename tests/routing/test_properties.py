"""Property: whatever agents do, the router never gives an agent more than the caps
allow, and every ticket it hands out goes to an online member with the skills."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsdesk.domain.lifecycle import ACTIVE_STATUSES
from opsdesk.store.db import Database
from opsdesk.store.verify import verify

from .conftest import Desk, team_of

AGENTS = [  # (teams, skills)
    (["billing"], ["billing_systems"]),
    (["billing"], ["billing_systems", "vulnerable_customers"]),
    (["billing"], []),
    (["billing", "frontline"], ["billing_systems", "english"]),
]
TYPES = ["refund", "payment_plan", "bill_explanation"]
MAX_OPEN, CAPS = 3, {"chat": 1, "phone": 1}

operations = st.lists(
    st.one_of(
        st.tuples(st.just("ticket"), st.sampled_from(TYPES),
                  st.sampled_from(["email", "chat", "phone"])),
        st.tuples(st.just("presence"), st.integers(0, len(AGENTS) - 1),
                  st.sampled_from(["online", "away", "offline"])),
        st.tuples(st.just("solve"), st.integers(0, 30), st.just("")),
    ),
    min_size=1,
    max_size=30,
)  # fmt: skip


def small_billing(data: dict[str, Any]) -> None:
    routing = team_of(data, "billing")["routing"]
    routing.update(max_open_per_agent=MAX_OPEN, max_per_channel=CAPS, strategy="least_loaded")


def run(db: Database, ops: list[tuple[str, Any, Any]]) -> None:
    desk = Desk(db)
    desk.apply(small_billing)
    agents = [desk.user(teams, skills=skills) for teams, skills in AGENTS]
    tickets: list[int] = []
    for kind, a, b in ops:
        desk.tick()
        if kind == "ticket":
            tickets.append(desk.ticket(a, channel=b).id)
        elif kind == "presence":
            desk.presence(agents[a].id, b)
        elif tickets:
            ticket = desk.get(tickets[a % len(tickets)])
            if ticket.owning_agent is not None and ticket.status == "open":
                desk.status(ticket.id, "solved")
        check(desk, {u.id: (set(t), set(s)) for u, (t, s) in zip(agents, AGENTS, strict=True)})
    assert verify(db).ok


def check(desk: Desk, agents: dict[int, tuple[set[str], set[str]]]) -> None:
    presence = {agent: "offline" for agent in agents}
    skills_of = {"refund": {"billing_systems"}, "bill_explanation": {"billing_systems"},
                 "payment_plan": {"billing_systems", "vulnerable_customers"}}  # fmt: skip
    kinds: dict[int, str] = {}
    for e in desk.events():
        if e.type == "user.presence_changed":
            presence[e.payload["user_id"]] = e.payload["after"]
        elif e.type == "ticket.triaged":
            kinds[e.ticket_id] = e.payload["request_type"]
        elif e.type == "ticket.accepted":
            agent = e.payload["agent_id"]
            teams, skills = agents[agent]
            assert presence[agent] == "online", f"ticket {e.ticket_id} to {presence[agent]} agent"
            assert e.payload["team"] in teams
            assert skills_of[kinds[e.ticket_id]] <= skills
    held: Counter[int] = Counter()
    per_channel: Counter[tuple[int, str]] = Counter()
    waiting_while_free = []
    for ticket_id in kinds:
        ticket = desk.get(ticket_id)
        if ticket.status in ACTIVE_STATUSES and ticket.owning_agent is not None:
            held[ticket.owning_agent] += 1
            per_channel[(ticket.owning_agent, ticket.channel)] += 1
        elif ticket.owning_agent is None:
            waiting_while_free.append(ticket)
    assert all(n <= MAX_OPEN for n in held.values()), held
    assert all(n <= CAPS.get(channel, MAX_OPEN) for (_, channel), n in per_channel.items())
    # and nobody who could take a waiting ticket is left idle
    for ticket in waiting_while_free:
        need = skills_of[kinds[ticket.id]]
        for agent, (_teams, skills) in agents.items():
            free = (
                presence[agent] == "online"
                and need <= skills
                and held[agent] < MAX_OPEN
                and per_channel[(agent, ticket.channel)] < CAPS.get(ticket.channel, MAX_OPEN)
            )
            assert not free, f"ticket {ticket.id} waits while agent {agent} could take it"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_router_respects_capacity_presence_and_skills(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.conftest import examples, fresh_database

    factory = fresh_database(request, backend, tmp_path_factory)

    @settings(
        max_examples=examples(20 if backend == "sqlite" else 8),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(operations)
    def prop(ops: list[tuple[str, Any, Any]]) -> None:
        db = factory()
        try:
            run(db, ops)
        finally:
            db.dispose()

    prop()
