"""SLA clocks through the real desk on SQLite and PostgreSQL: every metric's life, pause
and resume, re-targeting, business hours, and the timers that record warnings and
breaches. Time is controlled with fixed ``now=`` instants; the example model's
``standard`` policy runs on the uk_site calendar (Mon-Thu 08:00-20:00 London)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsdesk.desk import service
from opsdesk.model import OperatingModel, example_model_path, load_model_file
from opsdesk.sla import clocks
from opsdesk.sla.businesstime import BusinessCalendar
from opsdesk.store.uow import UnitOfWork
from opsdesk.store.verify import verify

from .conftest import MON, Desk, utc

H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.fixture
def agent(desk: Desk) -> int:
    """An agent of billing, the team that owns refunds."""
    return desk.user(["billing"])


def accepted(desk: Desk, agent: int, **kw: object) -> int:
    """A refund created at MON and accepted by ``agent`` at MON + 30 min."""
    ticket = desk.ticket(**kw)  # type: ignore[arg-type]
    desk.do(MON + 30 * M, service.accept_ticket, ticket, actor=agent)
    return ticket


def test_first_reply_and_resolution_start_at_creation(desk: Desk) -> None:
    ticket = desk.ticket()
    first, resolution = desk.clocks(ticket)
    assert (first.metric, first.status, first.policy, first.priority) == (
        "first_reply",
        "running",
        "standard",
        "normal",
    )
    assert first.started_at == MON and first.target_minutes == 8 * 60
    assert first.due_at == MON.replace(hour=17)  # 8 business hours, all on Monday
    assert first.warning_at == MON.replace(hour=15)  # 0.75 of the target
    assert first.business_hours and first.calendar == "uk_site"
    # 5d = 120 business hours: Mon 11 + Tue-Thu 36 + Fri 16 + Sat 7 + Mon-Thu 48 + Fri 2
    assert resolution.metric == "resolution" and resolution.due_at == utc(2026, 12, 4, 10)
    assert desk.types(ticket) == [("sla.activated", "first_reply"), ("sla.activated", "resolution")]
    assert verify(desk.db).ok


def test_due_times_follow_the_calendar_over_a_weekend(desk: Desk) -> None:
    friday_evening = utc(2026, 11, 27, 19)
    ticket = desk.ticket(friday_evening)
    first = desk.clock(ticket, "first_reply")
    # Fri 19-20 and the 21-01 late shift give 5h, Saturday 09:00-12:00 the other 3
    assert first.due_at == utc(2026, 11, 28, 12)
    assert first.warning_at == utc(2026, 11, 28, 10)


def test_a_ticket_without_request_type_or_target_runs_no_clock(desk: Desk) -> None:
    untriaged = desk.ticket(request_type=None)
    desk.customer_writes(MON + H, untriaged)
    assert desk.clocks(untriaged) == []

    # field_service has no next_reply target for low priority
    metering = desk.user(["metering"])
    ticket = desk.ticket(request_type="smart_meter_fault", priority="low")
    desk.do(MON + H, service.accept_ticket, ticket, actor=metering)
    desk.reply(MON + 2 * H, ticket, metering)
    desk.customer_writes(MON + 3 * H, ticket)
    assert {c.metric for c in desk.clocks(ticket)} == {"first_reply", "resolution"}


def test_triage_after_creation_counts_from_creation(desk: Desk) -> None:
    ticket = desk.ticket(request_type=None)
    desk.do(MON + 2 * H, service.triage_ticket, ticket, "refund")
    first = desk.clock(ticket, "first_reply")
    assert first.started_at == MON
    assert first.due_at == MON.replace(hour=17)


def test_first_reply_is_achieved_by_a_public_reply_not_a_note(desk: Desk, agent: int) -> None:
    ticket = accepted(desk, agent)
    desk.reply(MON + H, ticket, agent, internal=True)
    assert desk.clock(ticket, "first_reply").status == "running"
    desk.reply(MON + 2 * H, ticket, agent)
    first = desk.clock(ticket, "first_reply")
    assert (first.status, first.outcome, first.elapsed_minutes) == ("ended", "achieved", 120.0)
    achieved = desk.events(ticket, "sla.achieved")[0]
    assert achieved.payload["reason"] == "fulfilled"
    assert achieved.payload["target_minutes"] == 480
    assert verify(desk.db).ok


def test_a_late_reply_records_the_breach_first(desk: Desk, agent: int) -> None:
    ticket = accepted(desk, agent)
    desk.reply(MON.replace(hour=17, minute=30), ticket, agent)  # no timer ran before it
    assert desk.types(ticket)[-2:] == [
        ("sla.breached", "first_reply"),
        ("sla.stopped", "first_reply"),
    ]
    # the warning instant had passed as well: the log says so, before the breach
    assert ("sla.warning", "first_reply") in desk.types(ticket)
    first = desk.clock(ticket, "first_reply")
    assert (first.outcome, first.breached) == ("breached", True)
    assert desk.events(ticket, "sla.stopped")[0].payload["reason"] == "fulfilled after breach"
    assert verify(desk.db).ok


def test_next_reply_runs_from_a_customer_message_after_our_reply(desk: Desk, agent: int) -> None:
    ticket = accepted(desk, agent)
    desk.customer_writes(MON + H, ticket)  # before any reply: still first_reply's business
    assert [c.metric for c in desk.clocks(ticket)] == ["first_reply", "resolution"]
    desk.reply(MON + 2 * H, ticket, agent)
    desk.customer_writes(MON + 3 * H, ticket)
    desk.customer_writes(MON + 4 * H, ticket)  # one clock, from the first unanswered message
    nxt = desk.clock(ticket, "next_reply")
    assert (nxt.started_at, nxt.target_minutes) == (MON + 3 * H, 1440)
    # 24 business hours: Mon 12-20, Tue 08-20, Wed 08-12
    assert nxt.due_at == utc(2026, 11, 25, 12)
    desk.reply(MON + 5 * H, ticket, agent)
    assert desk.clock(ticket, "next_reply").outcome == "achieved"
    assert desk.types(ticket).count(("sla.activated", "next_reply")) == 1
    desk.customer_writes(MON + 6 * H, ticket)
    assert desk.types(ticket).count(("sla.activated", "next_reply")) == 2
    assert verify(desk.db).ok


def test_periodic_update_restarts_at_each_reply_and_stops_at_solve(desk: Desk, agent: int) -> None:
    ticket = accepted(desk, agent, priority="high")
    desk.reply(MON + H, ticket, agent)
    first_update = desk.clock(ticket, "periodic_update")
    assert (first_update.started_at, first_update.target_minutes) == (MON + H, 1440)
    desk.reply(MON + 3 * H, ticket, agent)
    updates = [c for c in desk.clocks(ticket) if c.metric == "periodic_update"]
    assert [(c.status, c.outcome) for c in updates] == [("ended", "achieved"), ("running", None)]
    assert updates[0].elapsed_minutes == 120.0
    desk.status(MON + 4 * H, ticket, "solved", actor=agent)
    assert desk.clock(ticket, "periodic_update").outcome == "stopped"
    assert desk.events(ticket, "sla.stopped")[-1].payload["reason"] == "ticket solved"
    assert all(c.status == "ended" for c in desk.clocks(ticket))


def test_resolution_is_achieved_at_solve_and_restarts_at_reopen(desk: Desk, agent: int) -> None:
    ticket = accepted(desk, agent)
    desk.status(MON + 3 * H, ticket, "solved", actor=agent)
    first, resolution = desk.clocks(ticket)
    assert (resolution.outcome, resolution.elapsed_minutes) == ("achieved", 180.0)
    # solved without a reply: the first-reply clock no longer applies
    assert first.outcome == "stopped"

    tuesday = utc(2026, 11, 24, 9)
    desk.customer_writes(tuesday, ticket)  # reopens
    reopened = desk.clock(ticket, "resolution")
    assert reopened.id != resolution.id
    assert (reopened.status, reopened.started_at) == ("running", tuesday)
    desk.status(tuesday + H, ticket, "solved", actor=agent)
    desk.status(tuesday + 2 * H, ticket, "closed", actor=agent)
    assert all(c.status == "ended" for c in desk.clocks(ticket))
    assert verify(desk.db).ok


def test_pending_pauses_and_the_customer_reply_resumes(desk: Desk, agent: int) -> None:
    ticket = accepted(desk, agent)
    desk.reply(MON + H, ticket, agent)
    desk.status(MON + 2 * H, ticket, "pending", actor=agent)
    resolution = desk.clock(ticket, "resolution")
    assert (resolution.status, resolution.elapsed_minutes, resolution.due_at) == (
        "paused",
        120.0,
        None,
    )
    tuesday = utc(2026, 11, 24, 10)
    desk.customer_writes(tuesday, ticket)
    resolution = desk.clock(ticket, "resolution")
    assert resolution.status == "running" and resolution.resumed_at == tuesday
    # the due time moved by the 11 business hours spent waiting (Mon 11-20, Tue 08-10)
    assert resolution.due_at == utc(2026, 12, 4, 22)
    assert desk.types(ticket)[-2:] == [
        ("sla.activated", "next_reply"),
        ("sla.resumed", "resolution"),
    ]

    with UnitOfWork(desk.db) as uow:
        view = clocks.clock_view(uow.model, resolution, tuesday + H)
    assert view.elapsed_minutes == 180.0 and view.remaining_minutes == 7200 - 180
    assert verify(desk.db).ok


def test_an_agent_moving_pending_to_on_hold_resumes(desk: Desk, agent: int) -> None:
    ticket = accepted(desk, agent)
    desk.status(MON + H, ticket, "pending", actor=agent)
    assert {c.status for c in desk.clocks(ticket)} == {"paused"}
    desk.status(MON + 3 * H, ticket, "on_hold", actor=agent)
    first = desk.clock(ticket, "first_reply")
    assert first.status == "running"
    assert first.due_at == MON.replace(hour=19)  # 8h target, 1h used, 7h from 12:00


def test_on_hold_does_not_pause(desk: Desk, agent: int) -> None:
    ticket = accepted(desk, agent)
    desk.status(MON + H, ticket, "on_hold", actor=agent)
    assert {c.status for c in desk.clocks(ticket)} == {"running"}
    assert not desk.events(ticket, "sla.paused")


def test_a_policy_without_pause_keeps_counting_while_pending(desk: Desk, agent: int) -> None:
    ticket = accepted(desk, agent, request_type="payment_plan")
    desk.status(MON + H, ticket, "pending", actor=agent)
    assert {c.status for c in desk.clocks(ticket)} == {"running"}
    first = desk.clock(ticket, "first_reply")
    assert not first.business_hours
    assert first.due_at == MON + 4 * H  # priority_care: 4h, 24x7


def test_priority_change_retargets_from_the_time_used(desk: Desk) -> None:
    ticket = desk.ticket()
    desk.priority(MON + 30 * M, ticket, "urgent")
    first = desk.clock(ticket, "first_reply")
    assert (first.priority, first.target_minutes) == ("urgent", 60)
    assert first.due_at == MON + H  # 30 of 60 minutes used
    assert first.warning_at == MON + 45 * M
    retargeted = desk.events(ticket, "sla.retargeted")
    assert [e.payload["before_target_minutes"] for e in retargeted] == [480, 7200]
    assert verify(desk.db).ok


def test_retarget_past_the_new_target_is_due_at_once(desk: Desk) -> None:
    ticket = desk.ticket()
    now = MON + 90 * M
    desk.priority(now, ticket, "urgent")  # 90 minutes used of a new 60
    first = desk.clock(ticket, "first_reply")
    assert first.due_at == now and first.warned and first.breached
    assert [kind for kind, metric in desk.types(ticket) if metric == "first_reply"] == [
        "sla.activated",
        "sla.retargeted",
        "sla.warning",
        "sla.breached",
    ]


def test_retarget_of_a_paused_clock_applies_when_it_resumes(desk: Desk, agent: int) -> None:
    ticket = accepted(desk, agent)
    desk.status(MON + H, ticket, "pending", actor=agent)
    desk.priority(MON + 2 * H, ticket, "high")
    first = desk.clock(ticket, "first_reply")
    assert (first.status, first.target_minutes, first.due_at) == ("paused", 240, None)
    tuesday = utc(2026, 11, 24, 10)
    desk.customer_writes(tuesday, ticket)
    assert desk.clock(ticket, "first_reply").due_at == tuesday + 3 * H  # 240 - 60 used


def test_a_priority_without_target_stops_the_clock(desk: Desk, agent: int) -> None:
    ticket = accepted(desk, agent, priority="high")
    desk.reply(MON + H, ticket, agent)
    desk.priority(MON + 2 * H, ticket, "normal")  # no periodic_update target at normal
    update = desk.clock(ticket, "periodic_update")
    assert update.outcome == "stopped"
    stopped = desk.events(ticket, "sla.stopped")[-1].payload
    assert stopped["reason"] == "no periodic_update target for priority normal"


def test_retriage_to_another_policy_restarts_from_the_same_start(desk: Desk) -> None:
    ticket = desk.ticket()
    desk.do(MON + H, service.triage_ticket, ticket, "payment_plan")
    old_first, old_resolution, first, resolution = desk.clocks(ticket)
    assert old_first.outcome == old_resolution.outcome == "stopped"
    reasons = {e.payload["reason"] for e in desk.events(ticket, "sla.stopped")}
    assert reasons == {"policy changed from standard to priority_care"}
    assert (first.policy, first.started_at, first.due_at) == ("priority_care", MON, MON + 4 * H)
    assert resolution.due_at == MON + timedelta(days=2)
    assert verify(desk.db).ok


def test_timers_record_the_warning_then_the_breach_once(desk: Desk) -> None:
    ticket = desk.ticket()
    first = desk.clock(ticket, "first_reply")
    timers = [j for j in desk.jobs(clocks.TIMER_KIND) if j.ref == str(first.id)]
    assert [j.run_at for j in timers] == [MON.replace(hour=15), MON.replace(hour=17)]

    assert desk.run_jobs(MON.replace(hour=14, minute=59)) == []
    desk.run_jobs(MON.replace(hour=15))
    assert desk.clock(ticket, "first_reply").warned
    assert desk.types(ticket).count(("sla.warning", "first_reply")) == 1
    desk.run_jobs(MON.replace(hour=17))
    assert desk.clock(ticket, "first_reply").breached
    # a stale or duplicated timer changes nothing
    for _ in range(2):
        desk.handler(MON.replace(hour=18), clocks.TIMER_KIND, ticket, str(first.id))
    types = desk.types(ticket)
    assert types.count(("sla.warning", "first_reply")) == 1
    assert types.count(("sla.breached", "first_reply")) == 1
    assert verify(desk.db).ok


def test_a_timer_for_an_ended_or_paused_clock_does_nothing(desk: Desk, agent: int) -> None:
    ticket = accepted(desk, agent)
    desk.reply(MON + H, ticket, agent)
    desk.status(MON + 2 * H, ticket, "pending", actor=agent)
    first, resolution = desk.clocks(ticket)
    late = utc(2026, 12, 31, 12)
    assert desk.handler(late, clocks.TIMER_KIND, ticket, str(first.id)) == []
    assert desk.handler(late, clocks.TIMER_KIND, ticket, str(resolution.id)) == []
    assert desk.handler(late, clocks.TIMER_KIND, ticket, "not-a-clock") == []


def test_a_timer_whose_times_moved_later_waits_for_them(desk: Desk) -> None:
    ticket = desk.ticket()
    desk.priority(MON + H, ticket, "low")  # first reply: 1d, 60 minutes used
    first = desk.clock(ticket, "first_reply")
    assert first.due_at == utc(2026, 11, 25, 9)
    desk.run_jobs(MON.replace(hour=17))  # the timers of the old target fire
    assert not desk.clock(ticket, "first_reply").breached
    desk.run_jobs(utc(2026, 11, 25, 9))
    assert desk.clock(ticket, "first_reply").breached

    # the stale timers did not queue duplicates of the ones the re-target queued
    assert desk.jobs(clocks.TIMER_KIND) == [
        j for j in desk.jobs(clocks.TIMER_KIND) if j.run_at > utc(2026, 11, 25, 9)
    ]


def test_elapsed_is_counted_in_business_minutes(desk: Desk) -> None:
    ticket = desk.ticket(MON.replace(hour=19))
    first = desk.clock(ticket, "first_reply")
    calendar = BusinessCalendar.from_model(desk.db.model_in_force()[1].calendar("uk_site"))
    with UnitOfWork(desk.db) as uow:
        view = clocks.clock_view(uow.model, first, utc(2026, 11, 24, 9))
    assert view.elapsed_minutes == 120.0  # Mon 19-20 and Tue 08-09
    assert view.remaining_minutes == 360.0
    assert first.due_at == calendar.add(first.started_at, 480) == utc(2026, 11, 24, 15)


@functools.cache
def example_model() -> OperatingModel:
    model = load_model_file(example_model_path()).model
    assert model is not None
    return model


@settings(max_examples=60, deadline=None)
@given(
    calendar=st.sampled_from(["uk_site", "nl_site"]),
    start=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=0, max_value=20 * 1440),
)
def test_the_remembering_calendar_answers_like_the_plain_one(
    calendar: str, start: datetime, minutes: int
) -> None:
    model = example_model()
    plain = BusinessCalendar.from_model(model.calendar(calendar))
    measure = clocks.measure_for(model, True, calendar)
    for _ in range(2):  # the second time from what it remembered
        due = measure.add(start, minutes)
        assert due == plain.add(start, minutes)
        assert measure.between(start, due) == plain.between(start, due)
