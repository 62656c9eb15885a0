"""For random sequences of commands and timer runs at advancing instants, every clock's
events obey activate -> (pause | resume | retarget | warning | breach)* -> achieved |
stopped, marks come at their instants, a ticket never has two counting clocks of one
metric, no escalation level fires twice, and replaying the log rebuilds the clocks
exactly."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsdesk.desk import service
from opsdesk.domain.errors import DomainError
from opsdesk.domain.events import Event
from opsdesk.store.verify import verify
from tests.conftest import examples

from .conftest import MON, Desk

REQUEST_TYPES = ["refund", "payment_plan", "meter_reading_dispute", "device_fault"]
STEPS = st.one_of(
    st.tuples(st.just("customer")),
    st.tuples(st.just("reply")),
    st.tuples(st.just("note")),
    st.tuples(st.just("status"), st.sampled_from(["open", "pending", "on_hold", "solved"])),
    st.tuples(st.just("close")),
    st.tuples(st.just("priority"), st.sampled_from(["low", "normal", "high", "urgent"])),
    st.tuples(st.just("triage"), st.sampled_from(REQUEST_TYPES)),
    st.tuples(st.just("jobs")),
)
SCENARIO = st.tuples(
    st.sampled_from(REQUEST_TYPES),
    st.sampled_from(["low", "normal", "high", "urgent"]),
    st.lists(st.tuples(st.integers(min_value=1, max_value=900), STEPS), min_size=3, max_size=25),
)


def _at(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def check_clock_life(events: list[Event]) -> None:
    """One clock's events, in log order, against the grammar and its instants."""
    assert events[0].type == "sla.activated", events[0].type
    status, due, warning = "running", _at(events[0].payload["due_at"]), None
    warning = _at(events[0].payload["warning_at"])
    breached = warned = False
    for e in events[1:]:
        assert status != "ended", f"{e.type} after the clock ended"
        if e.type == "sla.activated":
            raise AssertionError("a clock is activated once")
        if e.type == "sla.paused":
            assert status == "running"
            status, due, warning = "paused", None, None
        elif e.type == "sla.resumed":
            assert status == "paused"
            status, due, warning = "running", _at(e.payload["due_at"]), _at(e.payload["warning_at"])
        elif e.type == "sla.retargeted":
            due, warning = _at(e.payload["due_at"]), _at(e.payload["warning_at"])
            assert (due is None) == (status == "paused")
            if warning is not None and warning > e.at:
                warned = False
        elif e.type == "sla.warning":
            assert status == "running" and not warned
            assert warning is not None and e.at >= warning
            warned = True
        elif e.type == "sla.breached":
            assert status == "running" and not breached
            assert due is not None and e.at >= due
            breached = True
        elif e.type == "sla.achieved":
            assert not breached
            assert status == "paused" or (due is not None and e.at < due)
            status = "ended"
        elif e.type == "sla.stopped":
            if e.payload["reason"] == "fulfilled after breach":
                assert breached
            status = "ended"


def test_clock_lives_are_well_formed(desk: Desk) -> None:
    # one database for every example (a fresh ticket each): the property is per ticket,
    # and verify replays the whole log, examples before this one included
    agent = desk.user(["billing"])

    @settings(
        max_examples=examples(40),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(SCENARIO)
    def run(scenario: tuple[str, str, list[tuple[int, tuple[Any, ...]]]]) -> None:
        request_type, priority, steps = scenario
        ticket = desk.ticket(request_type="refund", priority=priority)
        desk.do(MON, service.accept_ticket, ticket, actor=agent)
        if request_type != "refund":
            desk.do(MON, service.triage_ticket, ticket, request_type)
        now = MON
        for minutes, step in steps:
            now += timedelta(minutes=minutes)
            # a refused command (a move the lifecycle forbids) changes nothing
            with contextlib.suppress(DomainError):
                play(desk, now, ticket, agent, step)
        desk.run_jobs(now + timedelta(days=60))

        lives: dict[int, list[Event]] = {}
        for e in desk.events(ticket, "sla."):
            lives.setdefault(e.payload["clock_id"], []).append(e)
        for life in lives.values():
            check_clock_life(life)
        levels = [
            (e.payload["path"], e.payload["level"]) for e in desk.events(ticket, "escalation.f")
        ]
        assert len(levels) == len(set(levels)), f"a level fired twice: {levels}"
        assert len(desk.events(ticket, "escalation.exhausted")) <= 1
        counting = [c.metric for c in desk.clocks(ticket) if c.status != "ended"]
        assert len(counting) == len(set(counting)), counting
        report = verify(desk.db)
        assert report.ok, report.differences

    run()


def play(desk: Desk, now: datetime, ticket: int, agent: int, step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "customer":
        desk.customer_writes(now, ticket)
    elif kind in ("reply", "note"):
        desk.reply(now, ticket, agent, internal=kind == "note")
    elif kind == "status":
        desk.status(now, ticket, step[1], actor=agent)
    elif kind == "close":
        desk.status(now, ticket, "closed", actor=agent)
    elif kind == "priority":
        desk.priority(now, ticket, step[1])
    elif kind == "triage":
        desk.do(now, service.triage_ticket, ticket, step[1])
    elif kind == "jobs":
        desk.run_jobs(now)
