"""Escalation never forgets: for random sequences of commands and timer runs at
advancing instants, after every step each level of the ticket's chain whose conditions
hold has fired, whatever fired before it; no level fires twice; the fired levels in the
ticket's state are exactly those in its log; replay rebuilds them."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from opsdesk.desk import service
from opsdesk.domain.errors import DomainError
from opsdesk.domain.lifecycle import ACTIVE_STATUSES
from opsdesk.sla import escalation
from opsdesk.store import tables as t
from opsdesk.store.uow import UnitOfWork
from opsdesk.store.verify import verify

from .conftest import MON, Desk, apply_model, example_model_data

# refund: vip -> complaint_risk -> standard; smart_meter_fault: technical -> standard
REQUEST_TYPES = ["refund", "device_fault", "smart_meter_fault", "payment_plan"]
TEAMS = ["frontline", "billing", "metering", "logistics", "tech_support"]
STEPS = st.one_of(
    st.tuples(st.just("customer")),
    st.tuples(st.just("reply")),
    st.tuples(st.just("status"), st.sampled_from(["open", "pending", "on_hold"])),
    st.tuples(st.just("priority"), st.sampled_from(["low", "normal", "high", "urgent"])),
    st.tuples(st.just("transfer"), st.sampled_from(TEAMS)),
    st.tuples(st.just("deny")),
    st.tuples(st.just("jobs")),
)
SCENARIO = st.tuples(
    st.sampled_from(REQUEST_TYPES),
    st.sampled_from(["standard", "vip"]),
    st.sampled_from(["low", "normal", "high", "urgent"]),
    st.lists(st.tuples(st.integers(min_value=1, max_value=600), STEPS), min_size=3, max_size=20),
)


def holding_but_not_fired(desk: Desk, ticket_id: int, now: Any) -> list[str]:
    """Levels of the ticket's chain whose conditions hold at ``now`` but never fired."""
    with UnitOfWork(desk.db, now=now) as uow:
        ticket = uow.ticket(ticket_id)
        if ticket.status not in ACTIVE_STATUSES or ticket.request_type is None:
            return []
        head = uow.model.request_type(ticket.request_type).escalation_path
        assert head is not None
        denied = (
            uow.conn.execute(
                select(t.exceptions.c.id).where(
                    t.exceptions.c.ticket_id == ticket_id, t.exceptions.c.status == "denied"
                )
            ).first()
            is not None
        )
        facts = escalation.Facts(
            now,
            ticket,
            tier=lambda: uow.customer(ticket.customer_id).tier,
            clocks=lambda: uow.sla_clocks(ticket_id),
            has_denied_exception=lambda: denied,
        )
        done = {(p, n) for p, n in ticket.escalation_fired}
        return [
            step.label
            for step in escalation.chain(uow.model, head)
            if step.key not in done and escalation.conditions_hold(step.level.when, facts)
        ]


def test_every_level_fires_when_its_conditions_first_hold(desk: Desk) -> None:
    data = example_model_data()
    # transfers here are the system's: keep the ping-pong guard out of the way
    data["settings"]["ping_pong_transfer_limit"] = 1000
    apply_model(desk.db, data)
    agent = desk.user(TEAMS)
    ops = desk.user([], ["ops_lead"])

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(SCENARIO)
    def run(scenario: tuple[str, str, str, list[tuple[int, tuple[Any, ...]]]]) -> None:
        request_type, tier, priority, steps = scenario
        ticket = desk.ticket(
            request_type=request_type, priority=priority, customer=desk.customer(tier)
        )
        now = MON
        for minutes, step in steps:
            now += timedelta(minutes=minutes)
            with contextlib.suppress(DomainError):  # a refused command changes nothing
                play(desk, now, ticket, agent, ops, step)
            desk.run_jobs(now)
            missed = holding_but_not_fired(desk, ticket, now)
            assert not missed, f"after {step} at {now}: {missed} hold but did not fire"
        desk.run_jobs(now + timedelta(days=30))
        assert not holding_but_not_fired(desk, ticket, now + timedelta(days=30))

        events = desk.events(ticket, "escalation.f")
        keys = [[e.payload["path"], e.payload["name"]] for e in events]
        assert len(keys) == len({tuple(k) for k in keys}), f"a level fired twice: {keys}"
        assert desk.do(now, lambda uow: uow.ticket(ticket).escalation_fired) == keys
        assert len(desk.events(ticket, "escalation.exhausted")) <= 1

    run()
    report = verify(desk.db)
    assert report.ok, report.differences


def play(desk: Desk, now: Any, ticket: int, agent: int, ops: int, step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "customer":
        desk.customer_writes(now, ticket)
    elif kind == "reply":
        desk.reply(now, ticket, agent)
    elif kind == "status":
        desk.status(now, ticket, step[1], actor=agent)
    elif kind == "priority":
        desk.priority(now, ticket, step[1])
    elif kind == "transfer":
        desk.do(now, service.transfer_ticket, ticket, reason="try them", to_team=step[1])
    elif kind == "deny":
        x = desk.do(now, service.request_exception, ticket, "priority_jump", "please", actor=agent)
        desk.do(now, service.decide_exception, x.id, approve=False, actor=ops)
    elif kind == "jobs":
        desk.run_jobs(now)
