"""Assignment through the desk: queued tickets go to eligible agents, agents pull work,
tickets overflow and wait for shifts, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from opsdesk.desk import service
from opsdesk.routing.assign import (
    OVERFLOW_JOB,
    SHIFT_OPEN_JOB,
    fire_overflow,
    fire_shift_open,
)
from opsdesk.store.jobs import Job
from opsdesk.store.verify import verify

from .conftest import Desk, team_of

BILLING = ["billing_systems"]


def job(row: Any) -> Job:
    return Job(row.id, row.kind, row.ticket_id, row.ref, row.run_at, row.attempts)


def small_billing(data: dict[str, Any]) -> None:
    team_of(data, "billing")["routing"].update(
        max_open_per_agent=2, max_per_channel={"chat": 1}, strategy="least_loaded"
    )


def test_nobody_online_leaves_the_ticket_queued(desk: Desk) -> None:
    desk.user(["billing"], skills=BILLING)
    ticket = desk.ticket("refund")
    assert (ticket.owning_team, ticket.owning_agent, ticket.status) == ("billing", None, "new")
    assert ticket.queued_at == desk.now


def test_a_triaged_ticket_goes_to_an_online_agent_with_the_skills(desk: Desk) -> None:
    desk.user(["billing"], online=True)  # lacks billing_systems
    desk.user(["frontline"], skills=BILLING, online=True)  # not in billing
    desk.user(["billing"], skills=BILLING)  # offline
    away = desk.user(["billing"], skills=BILLING, online=True)
    desk.presence(away.id, "away")
    right = desk.user(["billing"], skills=BILLING, online=True)
    ticket = desk.ticket("refund")
    assert (ticket.owning_agent, ticket.status, ticket.queued_at) == (right.id, "open", None)
    accepted = [e for e in desk.events(ticket.id) if e.type == "ticket.accepted"]
    assert [e.payload for e in accepted] == [{"agent_id": right.id, "team": "billing"}]
    assert verify(desk.db).ok


def test_triage_rules_then_routing_in_one_transaction(desk: Desk) -> None:
    agent = desk.user(["tech_support"], skills=["heat_pumps"], online=True)
    ticket = desk.ticket(None, subject="No heating", body="Since last night")
    assert (ticket.request_type, ticket.owning_agent, ticket.priority) == (
        "device_fault",
        agent.id,
        "urgent",
    )


def test_capacity_per_agent_and_pull_when_capacity_frees(desk: Desk) -> None:
    desk.apply(small_billing)
    agent = desk.user(["billing"], skills=BILLING, online=True)
    first, second, third = (desk.ticket("refund") for _ in range(3))
    assert desk.get(first.id).owning_agent == agent.id
    assert desk.get(second.id).owning_agent == agent.id
    assert desk.get(third.id).owning_agent is None  # at 2/2
    desk.tick()
    desk.status(first.id, "solved")
    assert desk.get(third.id).owning_agent == agent.id
    assert verify(desk.db).ok


def test_pending_and_on_hold_still_count_as_load(desk: Desk) -> None:
    desk.apply(small_billing)
    agent = desk.user(["billing"], skills=BILLING, online=True)
    first, _second = desk.ticket("refund"), desk.ticket("refund")
    desk.status(first.id, "pending")
    assert desk.ticket("refund").owning_agent is None
    assert {desk.get(first.id).owning_agent} == {agent.id}


def test_channel_cap(desk: Desk) -> None:
    desk.apply(small_billing)
    agent = desk.user(["billing"], skills=BILLING, online=True)
    chat1 = desk.ticket("refund", channel="chat")
    chat2 = desk.ticket("refund", channel="chat")
    mail = desk.ticket("refund", channel="email")
    assert [desk.get(t.id).owning_agent for t in (chat1, chat2, mail)] == [agent.id, None, agent.id]


def test_closed_shift_waits_for_the_opening(desk: Desk) -> None:
    desk.now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # Sunday: uk_site closed
    agent = desk.user(["billing"], skills=BILLING, online=True)
    first, second = desk.ticket("refund"), desk.ticket("refund")
    assert (first.owning_agent, second.owning_agent) == (None, None)
    (row,) = desk.jobs(SHIFT_OPEN_JOB)  # one per team and opening
    assert (row.ticket_id, row.ref) == (None, "billing")
    assert row.run_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 08:00 London
    desk.now = row.run_at
    appended = desk.run_job(fire_shift_open, job(row))
    assert [e.type for e in appended].count("ticket.accepted") == 2
    assert {desk.get(t.id).owning_agent for t in (first, second)} == {agent.id}
    assert desk.run_job(fire_shift_open, job(row)) == []  # a second run is a no-op


def test_an_agent_online_before_the_shift_gets_the_queue_when_it_opens(desk: Desk) -> None:
    desk.now = datetime(2026, 11, 26, 21, 0, tzinfo=UTC)  # Thursday after 20:00 London
    agent = desk.user(["billing"], skills=BILLING)
    ticket = desk.ticket("refund")
    desk.presence(agent.id, "online")
    assert desk.get(ticket.id).owning_agent is None
    (row,) = desk.jobs(SHIFT_OPEN_JOB)
    assert row.run_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    desk.now = row.run_at
    desk.run_job(fire_shift_open, job(row))
    assert desk.get(ticket.id).owning_agent == agent.id


def test_a_shift_opening_with_nobody_online_does_nothing(desk: Desk) -> None:
    desk.now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    desk.user(["billing"], skills=BILLING)
    ticket = desk.ticket("refund")
    (row,) = desk.jobs(SHIFT_OPEN_JOB)
    desk.now = row.run_at
    assert desk.run_job(fire_shift_open, job(row)) == []
    assert desk.get(ticket.id).owning_agent is None


def test_least_loaded_strategy(desk: Desk) -> None:
    desk.apply(lambda d: team_of(d, "billing")["routing"].update(strategy="least_loaded"))
    busy = desk.user(["billing"], skills=BILLING, online=True)
    for _ in range(2):
        desk.ticket("refund")
        desk.tick()
    idle = desk.user(["billing"], skills=BILLING, online=True)
    owners = []
    for _ in range(3):
        owners.append(desk.ticket("refund").owning_agent)
        desk.tick()
    # fewer open tickets twice; then 2 each, and busy has waited longer since the last
    assert owners == [idle.id, idle.id, busy.id]


def test_round_robin_strategy(desk: Desk) -> None:
    a = desk.user(["billing"], skills=BILLING, online=True)
    b = desk.user(["billing"], skills=BILLING, online=True)
    c = desk.user(["billing"], skills=BILLING, online=True)
    owners = []
    for _ in range(6):
        owners.append(desk.ticket("refund").owning_agent)
        desk.tick()
    assert owners == [a.id, b.id, c.id, a.id, b.id, c.id]


def test_continuity_sends_a_repeat_contact_to_the_previous_agent(desk: Desk) -> None:
    desk.apply(lambda d: team_of(d, "billing")["routing"].update(strategy="least_loaded"))
    first = desk.user(["billing"], skills=BILLING, online=True)
    customer = desk.customer()
    earlier = desk.ticket("refund", customer_id=customer.id)
    assert earlier.owning_agent == first.id
    desk.user(["billing"], skills=BILLING, online=True)  # less loaded
    desk.tick(60)
    again = desk.ticket("bill_explanation", customer_id=customer.id)
    assert again.owning_agent == first.id
    other = desk.ticket("refund")
    assert other.owning_agent != first.id
    desk.apply(
        lambda d: team_of(d, "billing")["routing"].update(strategy="least_loaded", continuity=False)
    )
    desk.tick()
    assert desk.ticket("refund", customer_id=customer.id).owning_agent != first.id


def test_continuity_window(desk: Desk) -> None:
    desk.apply(lambda d: team_of(d, "billing")["routing"].update(strategy="least_loaded"))
    first = desk.user(["billing"], skills=BILLING, online=True)
    customer = desk.customer()
    desk.ticket("refund", customer_id=customer.id)
    desk.user(["billing"], skills=BILLING, online=True)
    desk.tick(8 * 24 * 60)  # past repeat_contact_window_days (7)
    assert desk.ticket("refund", customer_id=customer.id).owning_agent != first.id


def test_coming_online_pulls_the_oldest_queued_tickets_up_to_capacity(desk: Desk) -> None:
    desk.apply(small_billing)
    tickets = []
    for _ in range(3):
        tickets.append(desk.ticket("refund"))
        desk.tick()
    desk.ticket("device_fault")  # another team's queue
    agent = desk.user(["billing"], skills=BILLING)
    desk.presence(agent.id, "online")
    owners = [desk.get(t.id).owning_agent for t in tickets]
    assert owners == [agent.id, agent.id, None]


def test_transfer_to_a_team_queue_routes_and_frees_the_sender(desk: Desk) -> None:
    desk.apply(small_billing)
    sender = desk.user(["billing", "frontline"], skills=[*BILLING, "english"], online=True)
    # the request type (refund) still asks for billing_systems in frontline
    receiver = desk.user(["frontline"], skills=BILLING, online=True)
    first, second, waiting = desk.ticket("refund"), desk.ticket("refund"), desk.ticket("refund")
    assert desk.get(waiting.id).owning_agent is None
    desk.tick()
    with desk.uow(sender.id) as uow:
        from opsdesk.desk import service

        service.transfer_ticket(uow, first.id, reason="needs login help", to_team="frontline")
    assert desk.get(first.id).owning_team == "frontline"
    assert desk.get(first.id).owning_agent == receiver.id  # least loaded in frontline
    # the sender freed billing capacity and pulled the waiting ticket
    assert desk.get(waiting.id).owning_agent == sender.id
    assert desk.get(second.id).owning_agent == sender.id


# --- overflow ------------------------------------------------------------------------


def overflow_row(desk: Desk, ticket_id: int) -> Any:
    rows = [r for r in desk.jobs(OVERFLOW_JOB) if r.ticket_id == ticket_id]
    assert rows, "no overflow job"
    return rows[-1]


def test_overflow_moves_a_waiting_ticket_to_the_secondary_team(desk: Desk) -> None:
    desk.user(["frontline"], skills=["english"])  # offline
    helper = desk.user(["billing"], skills=["english"], online=True)
    ticket = desk.ticket("move_home")
    row = overflow_row(desk, ticket.id)
    assert (row.ref, row.run_at) == ("frontline", desk.now + timedelta(minutes=30))

    desk.tick(10)
    assert desk.run_job(fire_overflow, job(row)) == []  # early: it re-schedules itself
    assert overflow_row(desk, ticket.id).run_at == row.run_at

    desk.now = row.run_at
    appended = desk.run_job(fire_overflow, job(row))
    assert [e.type for e in appended][:1] == ["ticket.transferred"]
    transfer = appended[0].payload
    assert (transfer["from_team"], transfer["to_team"]) == ("frontline", "billing")
    assert transfer["reason"] == "overflow: waited 30 min in frontline"
    after = desk.get(ticket.id)
    assert (after.owning_team, after.owning_agent) == ("billing", helper.id)
    assert desk.run_job(fire_overflow, job(row)) == []  # stale now
    assert verify(desk.db).ok


def test_overflow_waits_while_the_secondary_team_cannot_take_it(desk: Desk) -> None:
    ticket = desk.ticket("move_home")
    row = overflow_row(desk, ticket.id)
    desk.now = row.run_at
    assert desk.run_job(fire_overflow, job(row)) == []
    assert desk.get(ticket.id).owning_team == "frontline"
    again = overflow_row(desk, ticket.id)
    assert again.id != row.id and again.run_at == desk.now + timedelta(minutes=30)


def test_an_accepted_ticket_does_not_overflow(desk: Desk) -> None:
    desk.user(["billing"], skills=["english"], online=True)
    agent = desk.user(["frontline"], skills=["english"])
    ticket = desk.ticket("move_home")
    row = overflow_row(desk, ticket.id)
    desk.tick(5)
    desk.presence(agent.id, "online")  # pulls it
    assert desk.get(ticket.id).owning_agent == agent.id
    desk.now = row.run_at
    assert desk.run_job(fire_overflow, job(row)) == []
    assert desk.get(ticket.id).owning_team == "frontline"


def test_an_overflowed_ticket_does_not_overflow_back(desk: Desk) -> None:
    def mutual(data: dict[str, Any]) -> None:
        team_of(data, "billing")["routing"]["overflow_after"] = "30m"

    desk.apply(mutual)
    ticket = desk.ticket("move_home")
    assert [r.ref for r in desk.jobs(OVERFLOW_JOB)] == ["frontline"]
    # as fire_overflow moves it when billing's agent went away in the meantime
    with desk.uow() as uow:
        from opsdesk.desk import service

        service.transfer_ticket(
            uow, ticket.id, reason="overflow: waited 30 min in frontline", to_team="billing"
        )
    assert desk.get(ticket.id).owning_team == "billing"
    assert [r.ref for r in desk.jobs(OVERFLOW_JOB)] == ["frontline"]
    # an ordinary transfer into billing's queue does overflow from there
    other = desk.ticket("move_home")
    with desk.uow() as uow:
        service.transfer_ticket(uow, other.id, reason="billing question", to_team="billing")
    refs = [(r.ticket_id, r.ref) for r in desk.jobs(OVERFLOW_JOB)]
    assert refs == [(ticket.id, "frontline"), (other.id, "frontline"), (other.id, "billing")]


def test_a_retriage_within_the_team_routes_again_without_a_new_entry(desk: Desk) -> None:
    agent = desk.user(["frontline"], online=True)  # no skills
    ticket = desk.ticket("account_access")  # needs english
    assert desk.get(ticket.id).owning_agent is None
    with desk.uow() as uow:
        from opsdesk.desk import service

        service.triage_ticket(uow, ticket.id, "move_home")  # needs no skill
    assert desk.get(ticket.id).owning_agent == agent.id
    assert len(desk.jobs(OVERFLOW_JOB)) == 1  # from the first entry only


def test_overflow_looks_again_when_the_secondary_shift_opens(desk: Desk) -> None:
    def always_on_frontline(data: dict[str, Any]) -> None:
        team_of(data, "frontline")["routing"]["calendar"] = "always_on"

    desk.apply(always_on_frontline)
    desk.now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # Sunday: billing (uk_site) closed
    desk.user(["billing"], skills=["english"], online=True)
    ticket = desk.ticket("move_home")
    row = overflow_row(desk, ticket.id)
    desk.now = row.run_at
    assert desk.run_job(fire_overflow, job(row)) == []
    again = overflow_row(desk, ticket.id)
    assert again.run_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 08:00 London
    desk.now = again.run_at
    desk.run_job(fire_overflow, job(again))
    assert desk.get(ticket.id).owning_team == "billing"


def test_routing_in_one_unit_of_work_sees_its_own_assignments(desk: Desk) -> None:
    """The load query skips the flush only when nothing pending can change a load: a
    ticket assigned earlier in the same unit of work still counts."""
    desk.apply(small_billing)  # at most 2 open per agent, least loaded first
    a = desk.user(["billing"], skills=BILLING, online=True)
    b = desk.user(["billing"], skills=BILLING, online=True)
    customer = desk.customer()
    with desk.uow(customer.id, kind="customer") as uow:
        owners = [
            service.create_ticket(
                uow,
                customer_id=customer.id,
                subject="Refund",
                channel="email",
                request_type="refund",
                body="Twice charged.",
            ).owning_agent
            for _ in range(5)
        ]
    assert sorted(owners[:4], key=lambda x: x or 0) == sorted([a.id, a.id, b.id, b.id])
    assert owners[4] is None  # both at capacity: queued
    assert verify(desk.db).ok


def test_a_ticket_routed_as_it_opens_is_written_once(desk: Desk) -> None:
    agent = desk.user(["billing"], skills=BILLING, online=True)
    customer = desk.customer()
    with desk.uow(customer.id, kind="customer") as uow:
        ticket = service.create_ticket(
            uow,
            customer_id=customer.id,
            subject="Refund",
            channel="email",
            request_type="refund",
            body="Twice charged.",
        )
    assert ticket.owning_agent == agent.id
    assert (uow.rows_written["tickets", "insert"], uow.rows_written["tickets", "update"]) == (1, 0)
    assert desk.get(ticket.id).owning_agent == agent.id
    assert verify(desk.db).ok
