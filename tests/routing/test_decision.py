"""The pure assignment decision: eligibility, strategies, continuity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from opsdesk.model.schema import TeamRouting
from opsdesk.routing.assign import Candidate, TicketNeed, choose_agent, ineligibility

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
ROUTING = TeamRouting(max_open_per_agent=3, max_per_channel={"chat": 1})
NEED = TicketNeed(100, "billing", "email", frozenset({"billing_systems"}))


def agent(agent_id: int, **kw: object) -> Candidate:
    values: dict[str, object] = {
        "teams": frozenset({"billing"}),
        "skills": frozenset({"billing_systems"}),
    }
    values.update(kw)
    return Candidate(agent_id, **values)  # type: ignore[arg-type]


def test_each_eligibility_rule() -> None:
    assert ineligibility(agent(1), NEED, ROUTING) is None
    assert ineligibility(agent(1, active=False), NEED, ROUTING) == "deactivated"
    assert ineligibility(agent(1, teams=frozenset({"frontline"})), NEED, ROUTING) == (
        "not a member of billing"
    )
    assert ineligibility(agent(1, presence="away"), NEED, ROUTING) == "away"
    assert ineligibility(agent(1, presence="offline"), NEED, ROUTING) == "offline"
    assert ineligibility(agent(1, skills=frozenset()), NEED, ROUTING) == "lacks billing_systems"
    assert ineligibility(agent(1, open_total=3), NEED, ROUTING) == "at capacity (3/3)"
    chat = TicketNeed(100, "billing", "chat", frozenset())
    busy = agent(1, open_total=1, open_by_channel={"chat": 1})
    assert ineligibility(busy, chat, ROUTING) == "at chat capacity (1)"
    assert ineligibility(busy, NEED, ROUTING) is None  # email has no cap of its own


def test_nobody_eligible_says_why() -> None:
    decision = choose_agent(
        NEED,
        [agent(1, presence="offline"), agent(2, open_total=3), agent(3, open_total=5)],
        ROUTING,
    )
    assert decision.agent is None
    assert decision.reason == "no eligible agent in team billing (2 at capacity; 1 offline)"


def test_closed_shift_gives_nobody() -> None:
    decision = choose_agent(NEED, [agent(1)], ROUTING, shift_open=False)
    assert (decision.agent, decision.reason) == (None, "team billing is outside its shift hours")


def test_least_loaded_then_longest_idle_then_lowest_id() -> None:
    routing = TeamRouting(strategy="least_loaded", max_open_per_agent=10)
    a = agent(1, open_total=2, last_assigned_at=T0)
    b = agent(2, open_total=1, last_assigned_at=T0)
    c = agent(3, open_total=1, last_assigned_at=T0 - timedelta(hours=1))
    d = agent(4, open_total=1, last_assigned_at=None)
    assert choose_agent(NEED, [a, b], routing).agent == 2
    assert choose_agent(NEED, [a, b, c], routing).agent == 3
    assert choose_agent(NEED, [a, b, c, d], routing).agent == 4  # never assigned: idle longest
    assert choose_agent(NEED, [agent(7), agent(5)], routing).agent == 5
    assert choose_agent(NEED, [a, b], routing).rule == "least_loaded"


def test_round_robin_takes_the_longest_idle_whatever_the_load() -> None:
    routing = TeamRouting(strategy="round_robin", max_open_per_agent=10)
    a = agent(1, open_total=0, last_assigned_at=T0)
    b = agent(2, open_total=6, last_assigned_at=T0 - timedelta(minutes=5))
    decision = choose_agent(NEED, [a, b], routing)
    assert (decision.agent, decision.rule) == (2, "round_robin")


def test_continuity_first_when_the_previous_owner_is_eligible() -> None:
    need = TicketNeed(100, "billing", "email", frozenset(), previous_owner=2)
    a, b = agent(1), agent(2, open_total=2)
    decision = choose_agent(need, [a, b], ROUTING)
    assert (decision.agent, decision.rule) == (2, "continuity")
    assert choose_agent(need, [a, b], TeamRouting(continuity=False)).agent == 1
    # not available: the strategy decides
    assert choose_agent(need, [a, agent(2, presence="away")], ROUTING).agent == 1
    assert choose_agent(need, [a, agent(2, open_total=3)], ROUTING).agent == 1


candidates = st.lists(
    st.builds(
        Candidate,
        id=st.integers(1, 40),
        teams=st.frozensets(st.sampled_from(["billing", "frontline"]), max_size=2),
        skills=st.frozensets(st.sampled_from(["billing_systems", "english", "dutch"])),
        presence=st.sampled_from(["online", "away", "offline"]),
        active=st.booleans(),
        open_total=st.integers(0, 6),
        open_by_channel=st.dictionaries(st.sampled_from(["chat", "email"]), st.integers(0, 4)),
        last_assigned_at=st.none() | st.datetimes(timezones=st.just(UTC)),
    ),
    max_size=12,
    unique_by=lambda c: c.id,
)
needs = st.builds(
    TicketNeed,
    id=st.integers(1, 10),
    team=st.sampled_from(["billing", "frontline"]),
    channel=st.sampled_from(["chat", "email"]),
    required_skills=st.frozensets(st.sampled_from(["billing_systems", "english"]), max_size=2),
    previous_owner=st.none() | st.integers(1, 40),
)
routings = st.builds(
    TeamRouting,
    strategy=st.sampled_from(["least_loaded", "round_robin"]),
    max_open_per_agent=st.integers(1, 6),
    max_per_channel=st.dictionaries(st.sampled_from(["chat", "email"]), st.integers(1, 4)),
    continuity=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(candidates, needs, routings)
def test_the_chosen_agent_is_an_eligible_online_member_below_capacity(
    pool: list[Candidate], need: TicketNeed, routing: TeamRouting
) -> None:
    decision = choose_agent(need, pool, routing)
    eligible = [c for c in pool if ineligibility(c, need, routing) is None]
    if not eligible:
        assert decision.agent is None
        return
    chosen = next(c for c in pool if c.id == decision.agent)
    assert chosen.active and chosen.presence == "online" and need.team in chosen.teams
    assert need.required_skills <= chosen.skills
    assert chosen.open_total < routing.max_open_per_agent
    cap = routing.max_per_channel.get(need.channel)
    assert cap is None or chosen.open_by_channel.get(need.channel, 0) < cap
    if decision.rule == "continuity":
        assert routing.continuity and chosen.id == need.previous_owner
    elif routing.strategy == "least_loaded":
        assert chosen.open_total == min(c.open_total for c in eligible)
