"""Escalation paths through the real desk on SQLite and PostgreSQL: each kind of
condition, the actions as domain commands, never to the owning team, and exhaustion.

The example model's chain for refunds is vip -> complaint_risk -> standard; for heat
pump faults (device_fault) complaint_risk -> standard. A refund created at MON has its
first reply due at 17:00 (standard policy, normal priority)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, text, update

from opsdesk.desk import reactions, service
from opsdesk.domain import commands
from opsdesk.jobs.outbox import run_due
from opsdesk.model import example_model_path, load_model_file
from opsdesk.sla import escalation
from opsdesk.store import tables as t
from opsdesk.store.db import alembic_config
from opsdesk.store.verify import verify

from .conftest import MON, Desk, apply_model, example_model_data

H = timedelta(hours=1)
M = timedelta(minutes=1)


def fired(desk: Desk, ticket: int) -> list[tuple[str, int]]:
    return [(e.payload["path"], e.payload["level"]) for e in desk.events(ticket, "escalation.f")]


def notified(desk: Desk, ticket: int) -> list[tuple[str, str | None]]:
    return [(e.payload["role"], e.payload["team"]) for e in desk.events(ticket, "notification.")]


@pytest.fixture
def lead(desk: Desk) -> int:
    """The billing team's lead."""
    return desk.user(["billing"], ["team_lead"])


def test_the_chain_follows_then(desk: Desk) -> None:
    model = load_model_file(example_model_path()).model
    assert model is not None
    steps = escalation.chain(model, "vip")
    assert [(s.path, s.index) for s in steps] == [
        ("vip", 0),
        ("complaint_risk", 0),
        ("complaint_risk", 1),
        ("complaint_risk", 2),
        ("complaint_risk", 3),
        ("standard", 0),
        ("standard", 1),
        ("standard", 2),
    ]


def test_a_vip_near_breach_goes_to_vip_care(desk: Desk) -> None:
    ticket = desk.ticket(customer=desk.customer("vip"))
    checks = desk.jobs(escalation.CHECK_KIND)
    assert [(j.ticket_id, j.ref, j.run_at) for j in checks] == [(ticket, "vip#0", MON + 6 * H)]
    assert desk.run_jobs(MON + 6 * H - M) == []

    desk.run_jobs(MON + 6 * H)  # 15:00, two hours before the first reply is due
    assert fired(desk, ticket) == [("vip", 0)]
    event = desk.events(ticket, "escalation.fired")[0]
    assert event.payload["reasons"] == [
        "customer tier is vip",
        "first_reply due 2026-11-23 17:00 UTC, within 2h",
    ]
    assert event.payload["actions"] == ["transfer_to_team: vip_care", "notify_role: team_lead"]
    assert event.payload["skipped"] == []
    after = [e.type for e in desk.events(ticket) if e.seq > event.seq]
    assert after[:2] == ["ticket.transferred", "notification.requested"]
    assert desk.do(MON + 6 * H, lambda uow: uow.ticket(ticket).owning_team) == "vip_care"
    assert notified(desk, ticket) == [("team_lead", "vip_care")]
    assert verify(desk.db).ok


def test_never_escalate_to_the_team_that_owns(desk: Desk) -> None:
    ticket = desk.ticket(customer=desk.customer("vip"))
    desk.do(MON + H, service.transfer_ticket, ticket, reason="VIP", to_team="vip_care")
    desk.run_jobs(MON + 6 * H)
    event = desk.events(ticket, "escalation.fired")[0]
    assert event.payload["skipped"] == [
        "transfer_to_team: vip_care: vip_care already owns the ticket"
    ]
    transfers = desk.events(ticket, "ticket.transferred")
    assert len(transfers) == 1  # only the manual one
    assert notified(desk, ticket) == [("team_lead", "vip_care")]


def test_the_standard_ladder_for_everyone_else(desk: Desk, lead: int) -> None:
    ticket = desk.ticket()
    # the VIP level waits for a tier this customer does not have: no check is queued for it
    assert [j.ref for j in desk.jobs(escalation.CHECK_KIND)] == ["standard#0"]
    desk.run_jobs(MON + 6 * H)
    assert fired(desk, ticket) == []

    desk.run_jobs(MON + 7 * H)  # 16:00: first reply due within 1h
    assert fired(desk, ticket) == [("standard", 0)]
    warn = desk.events(ticket, "escalation.fired")[0]
    assert warn.payload["skipped"] == []  # no level is passed over: each waits for its own
    assert notified(desk, ticket) == [("team_lead", "billing")]

    desk.run_jobs(MON + 8 * H)  # 17:00: breached -> assign the lead, raise the priority
    assert fired(desk, ticket)[-1] == ("standard", 1)
    state = desk.do(MON + 8 * H, lambda uow: uow.ticket(ticket))
    assert (state.owning_agent, state.priority) == (lead, "high")
    # the raised priority re-targeted the clocks in the same transaction
    assert desk.clock(ticket, "resolution").priority == "high"

    desk.run_jobs(MON + 12 * H - M)
    assert fired(desk, ticket)[-1] == ("standard", 1)
    desk.run_jobs(MON + 12 * H)  # 4h after the breach: the last level of the chain
    assert fired(desk, ticket)[-1] == ("standard", 2)
    assert notified(desk, ticket)[-1] == ("ops_lead", "billing")
    # "VIP at risk", "Urgent ticket" and "Exception denied" still wait: not exhausted
    assert desk.events(ticket, "escalation.exhausted") == []
    assert desk.do(MON, lambda uow: uow.ticket(ticket).escalation_fired) == [
        ["standard", "Warn the team lead"],
        ["standard", "Breached"],
        ["standard", "Still breached"],
    ]

    desk.run_jobs(MON + 40 * H)
    assert len(desk.events(ticket, "escalation.")) == 3  # each level at most once
    # a level passed by long ago still fires when its own condition first holds
    desk.priority(MON + 41 * H, ticket, "urgent")
    assert fired(desk, ticket)[-1] == ("complaint_risk", 0)
    desk.priority(MON + 42 * H, ticket, "high")
    desk.priority(MON + 43 * H, ticket, "urgent")
    assert fired(desk, ticket).count(("complaint_risk", 0)) == 1
    assert verify(desk.db).ok


def test_a_priority_condition_fires_on_the_change(desk: Desk) -> None:
    ticket = desk.ticket(request_type="device_fault")
    desk.priority(MON + 2 * M, ticket, "urgent")
    # urgent: first reply in 1h, so "within 1h" holds at once too
    assert fired(desk, ticket) == [("complaint_risk", 0), ("standard", 0)]
    assert desk.events(ticket, "escalation.fired")[0].payload["reasons"] == ["priority is urgent"]
    assert notified(desk, ticket) == [("ops_lead", "tech_support"), ("team_lead", "tech_support")]


def test_a_denied_exception_escalates_as_the_system(desk: Desk) -> None:
    data = example_model_data()
    complaint_risk = next(p for p in data["escalation_paths"] if p["id"] == "complaint_risk")
    complaint_risk["levels"][1]["actions"].append({"raise_priority": True})
    apply_model(desk.db, data)
    agent = desk.user(["tech_support"])
    ops = desk.user([], ["ops_lead"])  # may approve priority jumps, may not write tickets
    ticket = desk.ticket(request_type="device_fault")
    x = desk.do(MON + H, service.request_exception, ticket, "priority_jump", "angry", actor=agent)
    assert fired(desk, ticket) == []
    desk.do(MON + 2 * H, service.decide_exception, x.id, approve=False, actor=ops)
    assert fired(desk, ticket) == [("complaint_risk", 1)]
    event = desk.events(ticket, "escalation.fired")[0]
    assert event.payload["reasons"] == ["an exception was denied"]
    state = desk.do(MON + 2 * H, lambda uow: uow.ticket(ticket))
    assert state.priority == "high"  # ran as the system, not as the ops lead
    assert verify(desk.db).ok


def test_transfers_at_least(desk: Desk) -> None:
    data = example_model_data()
    complaint_risk = next(p for p in data["escalation_paths"] if p["id"] == "complaint_risk")
    complaint_risk["levels"][2]["when"] = {"transfers_at_least": 2}
    complaint_risk["levels"][2]["actions"] = [{"transfer_to_team": "complaints"}]
    del complaint_risk["levels"][3]  # one level to complaints, or the checker sees a loop
    apply_model(desk.db, data)
    ticket = desk.ticket(request_type="device_fault")
    desk.do(MON + H, service.transfer_ticket, ticket, reason="meter?", to_team="metering")
    assert fired(desk, ticket) == []
    desk.do(MON + 2 * H, service.transfer_ticket, ticket, reason="billing?", to_team="billing")
    assert fired(desk, ticket) == [("complaint_risk", 2)]
    assert desk.events(ticket, "escalation.fired")[0].payload["reasons"] == [
        "transferred 2 times (at least 2)"
    ]
    last = desk.events(ticket, "ticket.transferred")[-1].payload
    assert (last["from_team"], last["to_team"]) == ("billing", "complaints")
    assert last["reason"] == "escalation complaint_risk: Bounced too often"


def _solo_path(desk: Desk, actions: list[dict[str, Any]]) -> None:
    """Refunds escalate on one level: an urgent ticket."""
    data = example_model_data()
    data["escalation_paths"].append(
        {
            "id": "solo",
            "name": "Solo",
            "levels": [{"name": "Urgent", "when": {"priority": "urgent"}, "actions": actions}],
        }
    )
    refund = next(r for r in data["request_types"] if r["id"] == "refund")
    refund["escalation_path"] = "solo"
    apply_model(desk.db, data)


def test_exhausted_once_every_level_has_fired(desk: Desk) -> None:
    _solo_path(desk, [{"notify_role": "ops_lead"}])
    ticket = desk.ticket()
    desk.priority(MON + M, ticket, "urgent")
    types = [e.type for e in desk.events(ticket, "escalation.")]
    assert types == ["escalation.fired", "escalation.exhausted"]
    for n, priority in enumerate(["high", "urgent", "high", "urgent"], start=2):
        desk.priority(MON + n * M, ticket, priority)
    desk.run_jobs(MON + 20 * H)
    assert [e.type for e in desk.events(ticket, "escalation.")] == types
    assert desk.do(MON, lambda uow: uow.ticket(ticket).escalation_exhausted)


def test_actions_that_cannot_run_are_skipped_with_the_reason(desk: Desk) -> None:
    _solo_path(desk, [{"raise_priority": True}, {"assign_team_lead": True}])
    ticket = desk.ticket(priority="urgent")
    event = desk.events(ticket, "escalation.fired")[0]
    assert event.payload["skipped"] == [
        "raise_priority: already urgent, the highest priority",
        "assign_team_lead: no active team_lead in team billing",
    ]
    assert not desk.events(ticket, "ticket.transferred")


def test_the_least_loaded_online_lead_is_assigned(desk: Desk) -> None:
    _solo_path(desk, [{"assign_team_lead": True}])
    busy = desk.user(["billing"], ["team_lead"])
    free = desk.user(["billing"], ["team_lead"])
    desk.user(["frontline"], ["team_lead"])  # a lead of another team
    owned = desk.ticket()
    desk.do(MON, service.accept_ticket, owned, actor=busy)
    ticket = desk.ticket()
    desk.priority(MON + M, ticket, "urgent")
    assert desk.do(MON, lambda uow: uow.ticket(ticket).owning_agent) == free


def test_a_check_is_idempotent(desk: Desk) -> None:
    ticket = desk.ticket(customer=desk.customer("vip"))
    for _ in range(2):
        desk.handler(MON + 6 * H, escalation.CHECK_KIND, ticket, "vip#0")
    assert fired(desk, ticket) == [("vip", 0)]
    assert len(desk.events(ticket, "ticket.transferred")) == 1


def test_solved_tickets_do_not_escalate(desk: Desk) -> None:
    agent = desk.user(["billing"])
    ticket = desk.ticket(customer=desk.customer("vip"))
    desk.do(MON + H, service.accept_ticket, ticket, actor=agent)
    desk.status(MON + 2 * H, ticket, "solved", actor=agent)
    desk.run_jobs(MON + 30 * H)
    assert fired(desk, ticket) == []


def test_the_jobs_runner_runs_the_checks_and_timers(desk: Desk) -> None:
    ticket = desk.ticket(customer=desk.customer("vip"))
    result = run_due(desk.db, MON + 6 * H)
    assert not result.failed
    # the warning timer ran first and its reactions already escalated: the check found
    # the level fired (a no-op), as a stale check must
    assert result.fired["sla.timer"] == 1 and result.noop["escalation.check"] == 1
    assert fired(desk, ticket) == [("vip", 0)]
    assert [e.payload["metric"] for e in desk.events(ticket, "sla.warning")] == ["first_reply"]


def run_every_job(desk: Desk, until: Any) -> None:
    """Run the timers and checks one instant after the other, as a worker would."""
    while True:
        due = [j.run_at for j in desk.jobs() if j.kind in ("sla.timer", "escalation.check")]
        if not due or min(due) > until:
            return
        desk.run_jobs(min(due))


def test_a_passed_over_level_fires_when_its_own_conditions_hold(desk: Desk) -> None:
    """The technical path's "Needs tier 2" (2h after a breach, at high priority) comes
    after standard levels that fire earlier; it still fires once it holds."""
    ticket = desk.ticket(request_type="smart_meter_fault")
    run_every_job(desk, MON + 30 * 24 * H)
    levels = fired(desk, ticket)
    assert ("technical", 0) in levels
    assert levels.index(("standard", 1)) < levels.index(("technical", 0))  # in any order
    event = next(e for e in desk.events(ticket, "escalation.f") if e.payload["path"] == "technical")
    assert event.payload["reasons"][0] == "priority is high"  # raised by "Breached"
    moved = desk.events(ticket, "ticket.transferred")[-1].payload
    assert (moved["from_team"], moved["to_team"]) == ("metering", "tech_support")
    assert len(levels) == len(set(levels))
    assert verify(desk.db).ok


def test_a_denial_after_the_ladder_still_escalates(desk: Desk) -> None:
    agent = desk.user(["tech_support"])
    ops = desk.user([], ["ops_lead"])
    ticket = desk.ticket(request_type="device_fault")
    run_every_job(desk, MON + 12 * H)  # the standard levels fire first
    assert ("standard", 1) in fired(desk, ticket)
    x = desk.do(MON + 13 * H, service.request_exception, ticket, "priority_jump", "!", actor=agent)
    desk.do(MON + 13 * H, service.decide_exception, x.id, approve=False, actor=ops)
    # "Exception denied", and "Denied and overdue" (the breach is over 4h old by now)
    assert fired(desk, ticket)[-2:] == [("complaint_risk", 1), ("complaint_risk", 3)]
    assert desk.do(MON + 13 * H, lambda uow: uow.ticket(ticket).owning_team) == "complaints"


def _contested(desk: Desk) -> tuple[int, int, int]:
    """A heat pump fault (tech_support) bounced twice, then an agent's third transfer:
    the ping-pong guard hands it to tech_support's lead. Returns ticket, lead, agent."""
    lead = desk.user(["tech_support"], ["team_lead"])
    agent = desk.user(["tech_support", "metering"])
    ticket = desk.ticket(request_type="device_fault")
    desk.do(MON + M, service.transfer_ticket, ticket, reason="meter?", to_team="metering")
    desk.do(MON + 2 * M, service.transfer_ticket, ticket, reason="no", to_team="tech_support")
    desk.do(
        MON + 3 * M,
        service.transfer_ticket,
        ticket,
        reason="billing?",
        to_team="billing",
        actor=agent,
    )
    assert [e.type for e in desk.events(ticket, "ownership.")] == ["ownership.contested"]
    return ticket, lead, agent


def test_the_ping_pong_guard_wins_over_an_escalation_transfer(desk: Desk) -> None:
    """A level that would move a contested ticket away from the deciding lead (the old
    example's "Bounced too often" -> complaints) fires, but its transfer is skipped; the
    lead then decides, and is not refused."""
    data = example_model_data()
    complaint_risk = next(p for p in data["escalation_paths"] if p["id"] == "complaint_risk")
    complaint_risk["levels"][2]["actions"] = [{"transfer_to_team": "complaints"}]
    del complaint_risk["levels"][3]  # one level to complaints, or the checker sees a loop
    apply_model(desk.db, data)
    ticket, lead, _ = _contested(desk)
    event = desk.events(ticket, "escalation.fired")[-1]
    assert (event.payload["path"], event.payload["name"]) == ("complaint_risk", "Bounced too often")
    assert event.payload["skipped"] == [
        f"transfer_to_team: complaints: ownership is contested and lead {lead} of "
        "tech_support decides where the ticket goes (ping-pong guard)"
    ]
    state = desk.do(MON + 3 * M, lambda uow: uow.ticket(ticket))
    assert (state.owning_team, state.owning_agent) == ("tech_support", lead)

    # the lead decides: complaints (no Conflict, whatever the complaints team's leads)
    desk.do(
        MON + H,
        service.transfer_ticket,
        ticket,
        reason="complaint",
        to_team="complaints",
        actor=lead,
    )
    state = desk.do(MON + H, lambda uow: uow.ticket(ticket))
    assert (state.owning_team, state.owning_agent) == ("complaints", None)
    assert verify(desk.db).ok


def test_an_escalation_transfer_runs_once_the_lead_has_decided(desk: Desk) -> None:
    data = example_model_data()
    data["escalation_paths"].append(
        {
            "id": "late",
            "name": "Late",
            "levels": [
                {
                    "name": "Very late",
                    "when": {"after_breach": "1h"},
                    "actions": [{"transfer_to_team": "complaints"}],
                }
            ],
        }
    )
    device_fault = next(r for r in data["request_types"] if r["id"] == "device_fault")
    device_fault["escalation_path"] = "late"
    apply_model(desk.db, data)
    ticket, lead, _ = _contested(desk)
    colleague = desk.user(["tech_support"])
    # the lead keeps it in the team and hands it to a colleague: the contest is decided
    desk.do(
        MON + H, service.transfer_ticket, ticket, reason="yours", to_agent=colleague, actor=lead
    )
    run_every_job(desk, MON + 12 * H)
    assert fired(desk, ticket) == [("late", 0)]
    assert desk.do(MON + 12 * H, lambda uow: uow.ticket(ticket).owning_team) == "complaints"


def test_the_example_bounced_level_keeps_the_ticket_with_the_lead(desk: Desk) -> None:
    ticket, lead, _ = _contested(desk)
    event = desk.events(ticket, "escalation.fired")[-1]
    assert event.payload["name"] == "Bounced too often"
    assert event.payload["actions"] == ["assign_team_lead", "notify_role: team_lead"]
    assert event.payload["skipped"] == [f"assign_team_lead: already owned by team_lead user {lead}"]
    assert notified(desk, ticket)[-1] == ("team_lead", "tech_support")
    desk.do(
        MON + H,
        service.transfer_ticket,
        ticket,
        reason="complaint",
        to_team="complaints",
        actor=lead,
    )
    assert desk.do(MON + H, lambda uow: uow.ticket(ticket).owning_team) == "complaints"


def test_automatic_transfers_to_the_limit_bring_in_the_lead(desk: Desk) -> None:
    """The guard does not stop the system's transfers; the example level then assigns
    the owning team's lead, who decides as after a contest."""
    lead = desk.user(["billing"], ["team_lead"])
    ticket = desk.ticket(request_type="device_fault")

    def automatic(uow: Any, team: str) -> None:  # as overflow or an escalation moves it
        moved = commands.transfer_ticket(
            uow.context(), uow.ticket(ticket), reason="overflow", to_team=team
        )
        reactions.append(uow, moved)

    for n, team in enumerate(["metering", "tech_support", "billing"], start=1):
        desk.do(MON + n * M, automatic, team)
    assert desk.events(ticket, "ownership.") == []
    state = desk.do(MON + H, lambda uow: uow.ticket(ticket))
    assert (state.owning_team, state.owning_agent) == ("billing", lead)


def test_the_fired_levels_are_rebuilt_from_the_log(desk: Desk) -> None:
    ticket = desk.ticket(request_type="device_fault")
    desk.priority(MON + M, ticket, "urgent")
    fired_levels = [["complaint_risk", "Urgent ticket"], ["standard", "Warn the team lead"]]
    assert desk.do(MON, lambda uow: uow.ticket(ticket).escalation_fired) == fired_levels
    assert verify(desk.db).ok
    with desk.db.engine.begin() as conn:  # a table that disagrees with the log is caught
        conn.execute(update(t.tickets).where(t.tickets.c.id == ticket).values(escalation_fired=[]))
    assert any("escalation_fired" in d for d in verify(desk.db).differences)


def test_the_migration_folds_the_levels_already_fired(desk: Desk) -> None:
    ticket = desk.ticket(request_type="device_fault")
    desk.priority(MON + M, ticket, "urgent")
    # the database as revision 0003 left it: no column, the levels only in the log
    config = alembic_config(desk.db.engine)
    with desk.db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE tickets DROP COLUMN escalation_fired"))
    command.stamp(config, "0003")
    assert "escalation_fired" not in {
        c["name"] for c in inspect(desk.db.engine).get_columns("tickets")
    }
    command.upgrade(config, "0004")
    command.stamp(config, "head")  # the later migrations' tables are there already
    assert desk.do(MON, lambda uow: uow.ticket(ticket).escalation_fired) == [
        ["complaint_risk", "Urgent ticket"],
        ["standard", "Warn the team lead"],
    ]
    assert verify(desk.db).ok
