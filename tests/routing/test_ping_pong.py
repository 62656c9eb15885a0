"""The ping-pong guard: the Nth transfer to another team goes to the owning team's lead.

The tickets here are VIP requests, whose escalation path (``standard``) only acts near an
SLA breach, so the guard is seen on its own.
"""

from __future__ import annotations

from typing import Any

import pytest

from opsdesk.desk import service
from opsdesk.domain.errors import Conflict, DomainError
from opsdesk.domain.state import TicketState
from opsdesk.store.verify import verify

from .conftest import Desk

SKILLS = ["vulnerable_customers"]


def transfer(
    desk: Desk, actor: int | None, ticket_id: int, to_team: str | None, to_agent: int | None = None
) -> TicketState:
    desk.tick()
    with desk.uow(actor) as uow:
        return service.transfer_ticket(
            uow, ticket_id, reason="not ours", to_team=to_team, to_agent=to_agent
        )


def bounced_twice(desk: Desk) -> tuple[TicketState, int]:
    """A VIP request moved vip_care -> frontline -> vip_care (two transfers), and an
    agent."""
    agent = desk.user(["vip_care", "frontline"], skills=SKILLS)
    ticket = desk.ticket("vip_request")
    transfer(desk, agent.id, ticket.id, "frontline")
    transfer(desk, agent.id, ticket.id, "vip_care")
    return desk.get(ticket.id), agent.id


def test_the_third_transfer_goes_to_the_owning_team_lead(desk: Desk) -> None:
    lead = desk.user(["vip_care"], roles=["team_lead"], skills=SKILLS)
    ticket, agent = bounced_twice(desk)
    assert (ticket.owning_team, ticket.transfer_count) == ("vip_care", 2)
    after = transfer(desk, agent, ticket.id, "frontline")
    assert (after.owning_team, after.owning_agent, after.transfer_count) == ("vip_care", lead.id, 3)
    events = desk.events(ticket.id)
    at = [e.type for e in events].index("ownership.contested")
    last = events[at : at + 2]
    assert [e.type for e in last] == ["ownership.contested", "ticket.transferred"]
    assert last[0].payload == {
        "transfer_number": 3,
        "requested_team": "frontline",
        "requested_agent": None,
        "owning_team": "vip_care",
        "lead_id": lead.id,
        "reason": "not ours",
    }
    assert last[1].payload["to_agent"] == lead.id
    assert last[1].payload["reason"].startswith("ownership contested: transfer 3")
    assert verify(desk.db).ok


def test_the_lead_decides_and_is_not_stopped(desk: Desk) -> None:
    lead = desk.user(["vip_care"], roles=["team_lead"], skills=SKILLS)
    ticket, agent = bounced_twice(desk)
    transfer(desk, agent, ticket.id, "frontline")
    moved = transfer(desk, lead.id, ticket.id, "frontline")
    assert (moved.owning_team, moved.owning_agent, moved.transfer_count) == ("frontline", None, 4)


def test_a_contested_ticket_already_with_the_lead_stays_there(desk: Desk) -> None:
    lead = desk.user(["vip_care"], roles=["team_lead"], skills=SKILLS)
    ticket, agent = bounced_twice(desk)
    transfer(desk, agent, ticket.id, "frontline")
    again = transfer(desk, agent, ticket.id, "logistics")
    assert (again.owning_team, again.owning_agent, again.transfer_count) == ("vip_care", lead.id, 3)
    assert desk.events(ticket.id)[-1].type == "ownership.contested"


def test_transfers_within_the_team_are_not_stopped(desk: Desk) -> None:
    desk.user(["vip_care"], roles=["team_lead"], skills=SKILLS)
    colleague = desk.user(["vip_care"], skills=SKILLS)
    ticket, agent = bounced_twice(desk)
    moved = transfer(desk, agent, ticket.id, None, colleague.id)
    assert (moved.owning_agent, moved.transfer_count) == (colleague.id, 3)


def test_without_a_lead_the_transfer_is_refused_and_nothing_changes(desk: Desk) -> None:
    ticket, agent = bounced_twice(desk)
    before = desk.events()
    with pytest.raises(Conflict, match="add a lead to the team"):
        transfer(desk, agent, ticket.id, "frontline")
    assert desk.events() == before


def test_online_leads_first_then_the_least_loaded(desk: Desk) -> None:
    busy = desk.user(["vip_care"], roles=["team_lead"], skills=SKILLS)
    free = desk.user(["vip_care"], roles=["team_lead"], skills=SKILLS)
    away = desk.user(["vip_care"], roles=["team_lead"], skills=SKILLS)
    for _ in range(2):
        held = desk.ticket("vip_request")
        with desk.uow(busy.id) as uow:
            service.accept_ticket(uow, held.id)
    ticket, agent = bounced_twice(desk)
    assert transfer(desk, agent, ticket.id, "frontline").owning_agent == free.id
    desk.presence(busy.id, "online")  # online wins over the lighter load
    other, agent2 = bounced_twice(desk)
    assert transfer(desk, agent2, other.id, "frontline").owning_agent == busy.id
    assert away.id not in {desk.get(t.id).owning_agent for t in (ticket, other)}


def test_the_limit_is_a_model_setting(desk: Desk) -> None:
    def limit_one(data: dict[str, Any]) -> None:
        data["settings"]["ping_pong_transfer_limit"] = 1

    desk.apply(limit_one)
    lead = desk.user(["vip_care"], roles=["team_lead"], skills=SKILLS)
    agent = desk.user(["vip_care"], skills=SKILLS)
    ticket = desk.ticket("vip_request")
    assert transfer(desk, agent.id, ticket.id, "frontline").owning_agent == lead.id


def test_a_bad_transfer_is_refused_as_such_even_at_the_limit(desk: Desk) -> None:
    desk.user(["vip_care"], roles=["team_lead"], skills=SKILLS)
    ticket, agent = bounced_twice(desk)
    with pytest.raises(DomainError, match="unknown team"):
        transfer(desk, agent, ticket.id, "nowhere")
