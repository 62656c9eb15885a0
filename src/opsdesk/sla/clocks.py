"""SLA clocks: each ticket's first reply, next reply, periodic update and resolution,
measured against the SLA policy of its request type.

A clock is one (ticket, metric) instance with an id from ``uow.next_id("sla_clock")``.
Its whole life is in the event log (the metric-event style of the large helpdesks), so
KPIs and audits read it from there and ``opsdesk verify`` rebuilds it::

    sla.activated -> (sla.paused | sla.resumed | sla.retargeted | sla.warning | sla.breached)*
                  -> sla.achieved | sla.stopped

The rules (docs/sla.md says the same for people):

- The policy is the request type's ``sla_policy``; no request type or no policy means
  no clocks. A priority with no target for a metric runs no clock for it.
- ``first_reply`` and ``resolution`` start at the ticket's creation when the ticket gets
  a policy (triage may come later; the customer has waited since creation).
  ``first_reply`` and ``next_reply`` are fulfilled by an agent or bot public reply.
  ``next_reply`` starts at a customer public message after our first reply when none
  is counting. ``periodic_update`` starts at each agent or bot public reply while the
  ticket is unsolved and the next such reply fulfils it (and starts the next one).
  ``resolution`` is fulfilled by the move to solved; a reopen starts a new one.
- Solve and close stop the reply and update clocks (``sla.stopped`` with the reason).
- Fulfilled in time: ``sla.achieved``. Fulfilled late: ``sla.breached`` first when it
  was not recorded yet (a breach is never lost because a timer had not run), then
  ``sla.stopped`` with reason "fulfilled after breach".
- ``pending`` pauses running clocks when the policy says ``pause_on_pending``; leaving
  pending resumes them with due times moved by the remaining target. ``on_hold`` (an
  internal party) never pauses.
- A priority change re-targets running and paused clocks from the time counted so far.
  A re-triage to a request type with another policy stops the old policy's clocks and
  starts the new policy's from the same start (see docs/sla.md for why).
- Warning (at the policy's ``warning_share`` of the target) and breach instants are put
  in the jobs outbox as ``sla.timer`` jobs whenever a clock gets them (activate, resume,
  re-target); :func:`fire_sla_timer` records them. A mark whose instant has already
  passed when a clock is decided is recorded at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

from pydantic import BaseModel

from opsdesk.domain import events as ev
from opsdesk.domain.events import Event, NewEvent, new_event
from opsdesk.domain.lifecycle import ACTIVE_STATUSES
from opsdesk.domain.state import SlaClockState, TicketState
from opsdesk.model import OperatingModel
from opsdesk.model.schema import SlaPolicy
from opsdesk.sla.businesstime import ALWAYS_OPEN, BusinessCalendar, BusinessClock
from opsdesk.store.jobs import Job
from opsdesk.store.uow import UnitOfWork

__all__ = [
    "METRICS",
    "TIMER_KIND",
    "ClockView",
    "activate",
    "clock_view",
    "elapsed_minutes",
    "fire_sla_timer",
    "fulfil",
    "marks_due",
    "measure_for",
    "pause",
    "policy_of",
    "react",
    "restart_stranded",
    "resume",
    "retarget",
    "stop",
    "target_of",
]

METRICS: Final = ("first_reply", "next_reply", "periodic_update", "resolution")
#: the jobs-outbox kind of a clock's warning and breach instants; ``ref`` is the clock id
TIMER_KIND: Final = "sla.timer"
#: authors whose public message is a reply to the customer
_OURS: Final = frozenset({"agent", "bot"})
_ACTIVE: Final = frozenset({"running", "paused"})
_DEFAULT_WARNING_SHARE: Final = float(SlaPolicy.model_fields["warning_share"].default)
_TRIGGERS: Final = frozenset(
    {"ticket.triaged", "ticket.priority_changed", "ticket.status_changed", "message.added"}
)


# --- policy, targets and measuring ------------------------------------------------------


def policy_of(model: OperatingModel, request_type: str | None) -> SlaPolicy | None:
    """The SLA policy of a request type, or None (no type, no policy, unknown to the model)."""
    if request_type is None:
        return None
    try:
        policy_id = model.request_type(request_type).sla_policy
        return model.sla_policy(policy_id) if policy_id is not None else None
    except KeyError:
        return None


def target_of(policy: SlaPolicy, priority: str, metric: str) -> int | None:
    """The policy's target in minutes for ``metric`` at ``priority``; None runs no clock."""
    targets = policy.targets.get(priority)
    value = getattr(targets, metric, None) if targets is not None else None
    return value if isinstance(value, int) and value > 0 else None


def _share_of(model: OperatingModel, policy_id: str) -> float:
    try:
        return model.sla_policy(policy_id).warning_share
    except KeyError:  # the policy left the model in force; keep measuring with the default
        return _DEFAULT_WARNING_SHARE


# (id of the model, calendar id) -> (model, calendar). Models are cached per version and
# immutable, so a calendar built once serves every command under that version; the model
# is kept in the value so its id cannot be reused by another object while cached.
_CALENDARS: dict[tuple[int, str], tuple[OperatingModel, BusinessClock]] = {}


def measure_for(model: OperatingModel, business_hours: bool, calendar: str | None) -> BusinessClock:
    """The clock a policy (or an existing SLA clock) is measured on.

    The same choice as :func:`opsdesk.sla.businesstime.clock_for_policy`: wall-clock time
    without a calendar or with ``business_hours: false``, else the calendar's hours.
    """
    if calendar is None or not business_hours:
        return ALWAYS_OPEN
    key = (id(model), calendar)
    cached = _CALENDARS.get(key)
    if cached is not None and cached[0] is model:
        return cached[1]
    try:
        built: BusinessClock = BusinessCalendar.from_model(model.calendar(calendar))
    except KeyError:
        # the calendar left the model in force: measure the clock's rest in wall-clock time
        return ALWAYS_OPEN
    if len(_CALENDARS) > 256:
        _CALENDARS.clear()
    _CALENDARS[key] = (model, built)
    return built


def _measure(model: OperatingModel, clock: SlaClockState) -> BusinessClock:
    return measure_for(model, clock.business_hours, clock.calendar)


def elapsed_minutes(clock: SlaClockState, measure: BusinessClock, now: datetime) -> float:
    """Business (or wall-clock) minutes the clock has counted by ``now``."""
    if clock.status == "running" and clock.resumed_at is not None:
        counted = measure.between(clock.resumed_at, now).total_seconds() / 60
        return clock.elapsed_minutes + counted
    return clock.elapsed_minutes


def _after(measure: BusinessClock, now: datetime, minutes: float) -> datetime:
    """``minutes`` of measured time after ``now``; nothing left means due now."""
    return now if minutes <= 0 else measure.add(now, minutes)


# --- decisions: each returns the events to append ---------------------------------------


def _metric(name: str) -> ev.SlaMetric:
    if name not in METRICS:
        raise ValueError(f"unknown SLA metric {name!r}; use one of {', '.join(METRICS)}")
    return cast("ev.SlaMetric", name)


def _event(type_: str, payload: BaseModel, ticket: TicketState) -> NewEvent:
    return new_event(type_, payload, ticket_id=ticket.id, customer_id=ticket.customer_id)


def activate(
    *,
    clock_id: int,
    ticket: TicketState,
    metric: str,
    policy: SlaPolicy,
    target: int,
    measure: BusinessClock,
    start: datetime,
) -> NewEvent:
    """Start a clock at ``start``: due when ``target`` minutes are measured, warned at the
    policy's share of them."""
    payload = ev.SlaActivated(
        clock_id=clock_id,
        metric=_metric(metric),
        policy=policy.id,
        priority=ticket.priority,
        target_minutes=target,
        business_hours=policy.business_hours,
        calendar=policy.calendar,
        started_at=start,
        due_at=measure.add(start, target),
        warning_at=measure.add(start, target * policy.warning_share),
    )
    return _event("sla.activated", payload, ticket)


def marks_due(clock: SlaClockState, ticket: TicketState, now: datetime) -> list[NewEvent]:
    """The warning and breach of a running clock whose instants have come and that are
    not recorded yet (the timer's decision, also used to catch up before any change)."""
    if clock.status != "running" or clock.due_at is None:
        return []
    out = []
    mark = ev.SlaMark(clock_id=clock.id, metric=_metric(clock.metric), due_at=clock.due_at)
    if not clock.warned and clock.warning_at is not None and clock.warning_at <= now:
        out.append(_event("sla.warning", mark, ticket))
    if not clock.breached and clock.due_at <= now:
        out.append(_event("sla.breached", mark, ticket))
    return out


def pause(
    clock: SlaClockState, ticket: TicketState, measure: BusinessClock, now: datetime
) -> NewEvent:
    """Stop counting (the ticket waits on the customer), keeping the time counted."""
    payload = ev.SlaPaused(
        clock_id=clock.id,
        metric=_metric(clock.metric),
        elapsed_minutes=elapsed_minutes(clock, measure, now),
    )
    return _event("sla.paused", payload, ticket)


def resume(
    clock: SlaClockState,
    ticket: TicketState,
    measure: BusinessClock,
    now: datetime,
    warning_share: float,
) -> NewEvent:
    """Count again from ``now``; due and warning move by what is left of the target."""
    used = clock.elapsed_minutes
    payload = ev.SlaResumed(
        clock_id=clock.id,
        metric=_metric(clock.metric),
        due_at=_after(measure, now, clock.target_minutes - used),
        warning_at=_after(measure, now, clock.target_minutes * warning_share - used),
    )
    return _event("sla.resumed", payload, ticket)


def retarget(
    clock: SlaClockState,
    ticket: TicketState,
    measure: BusinessClock,
    now: datetime,
    *,
    priority: str,
    target: int,
    warning_share: float,
) -> NewEvent:
    """Take the target of a new priority; due times follow from the time counted so far
    (a paused clock gets them when it resumes)."""
    due = warning = None
    if clock.status == "running":
        used = elapsed_minutes(clock, measure, now)
        due = _after(measure, now, target - used)
        warning = _after(measure, now, target * warning_share - used)
    payload = ev.SlaRetargeted(
        clock_id=clock.id,
        metric=_metric(clock.metric),
        priority=priority,
        before_target_minutes=clock.target_minutes,
        target_minutes=target,
        due_at=due,
        warning_at=warning,
    )
    return _event("sla.retargeted", payload, ticket)


def _ended(
    type_: str,
    clock: SlaClockState,
    ticket: TicketState,
    measure: BusinessClock,
    now: datetime,
    reason: str,
) -> NewEvent:
    payload = ev.SlaEnded(
        clock_id=clock.id,
        metric=_metric(clock.metric),
        elapsed_minutes=elapsed_minutes(clock, measure, now),
        target_minutes=clock.target_minutes,
        reason=reason,
    )
    return _event(type_, payload, ticket)


def fulfil(
    clock: SlaClockState, ticket: TicketState, measure: BusinessClock, now: datetime
) -> list[NewEvent]:
    """The clock's goal was met: achieved in time, else the breach (if not recorded yet)
    and a stop "fulfilled after breach"."""
    out = marks_due(clock, ticket, now)
    late = clock.breached or any(e.type == "sla.breached" for e in out)
    if late:
        out.append(_ended("sla.stopped", clock, ticket, measure, now, "fulfilled after breach"))
    else:
        out.append(_ended("sla.achieved", clock, ticket, measure, now, "fulfilled"))
    return out


def stop(
    clock: SlaClockState, ticket: TicketState, measure: BusinessClock, now: datetime, reason: str
) -> list[NewEvent]:
    """End a clock that no longer applies, recording a breach that had already happened."""
    return [
        *marks_due(clock, ticket, now),
        _ended("sla.stopped", clock, ticket, measure, now, reason),
    ]


# --- the reactor -----------------------------------------------------------------------------


def react(uow: UnitOfWork, events: Sequence[Event]) -> list[Event]:
    """Start, pause, resume, re-target and end the clocks the ``events`` call for.

    Runs inside the command's unit of work (see ``opsdesk.desk.reactions``) and returns
    the events it appended.
    """
    relevant = [e for e in events if e.ticket_id is not None and e.type in _TRIGGERS]
    if not relevant:
        return []
    run = _Run(uow)
    for event in relevant:
        run.handle(event)
    return run.appended


class _Run:
    """One reaction pass: appends as it decides, so later events see earlier changes."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.model = uow.model
        self.now = uow.now
        self.appended: list[Event] = []

    # --- plumbing ---

    def emit(self, new: Iterable[NewEvent]) -> None:
        batch = list(new)
        if batch:
            self.appended.extend(self.uow.append(batch))

    def active(self, ticket: TicketState, metric: str | None = None) -> list[SlaClockState]:
        return [
            c
            for c in self.uow.sla_clocks(ticket.id)
            if c.status in _ACTIVE and (metric is None or c.metric == metric)
        ]

    def settle(self, clock: SlaClockState, ticket: TicketState) -> None:
        """After a clock got due times: timers for the instants to come, marks for the
        instants already past."""
        if clock.status != "running":
            return
        instants = set()
        if not clock.warned and clock.warning_at is not None and clock.warning_at > self.now:
            instants.add(clock.warning_at)
        if not clock.breached and clock.due_at is not None and clock.due_at > self.now:
            instants.add(clock.due_at)
        for at in sorted(instants):
            self.uow.schedule(TIMER_KIND, at, ticket_id=ticket.id, ref=str(clock.id))
        self.emit(marks_due(clock, ticket, self.now))

    def start(self, ticket: TicketState, policy: SlaPolicy, metric: str, at: datetime) -> None:
        target = target_of(policy, ticket.priority, metric)
        if target is None or ticket.status not in ACTIVE_STATUSES:
            return
        measure = measure_for(self.model, policy.business_hours, policy.calendar)
        clock_id = self.uow.next_id("sla_clock")
        self.emit(
            [
                activate(
                    clock_id=clock_id,
                    ticket=ticket,
                    metric=metric,
                    policy=policy,
                    target=target,
                    measure=measure,
                    start=at,
                )
            ]
        )
        clock = self.uow.projection.sla_clocks[clock_id]
        if ticket.status == "pending" and policy.pause_on_pending:
            # started while the ticket waits on the customer: it counts from their reply
            self.emit(
                [*marks_due(clock, ticket, self.now), pause(clock, ticket, measure, self.now)]
            )
        else:
            self.settle(clock, ticket)

    def baseline(self, ticket: TicketState, policy: SlaPolicy | None) -> None:
        """First reply and resolution from creation, for a never-solved ticket that
        lacks them (first triage, or a priority that now has a target)."""
        if policy is None or ticket.status not in ACTIVE_STATUSES or ticket.reopen_count:
            return
        counting = {c.metric for c in self.active(ticket)}
        if "first_reply" not in counting and ticket.first_reply_at is None:
            self.start(ticket, policy, "first_reply", ticket.created_at)
        if "resolution" not in counting:
            self.start(ticket, policy, "resolution", ticket.created_at)

    def fulfil(self, clock: SlaClockState, ticket: TicketState) -> None:
        self.emit(fulfil(clock, ticket, _measure(self.model, clock), self.now))

    def stop(self, clock: SlaClockState, ticket: TicketState, reason: str) -> None:
        self.emit(stop(clock, ticket, _measure(self.model, clock), self.now, reason))

    # --- what happened ---

    def handle(self, event: Event) -> None:
        assert event.ticket_id is not None
        ticket = self.uow.ticket(event.ticket_id)
        if ticket.request_type is None:
            return  # never triaged: no policy, no clocks
        if event.type == "ticket.triaged":
            self.on_triaged(ticket, event)
        elif event.type == "ticket.priority_changed":
            self.on_priority(ticket, event.payload["after"])
        elif event.type == "ticket.status_changed":
            self.on_status(ticket, event)
        elif event.type == "message.added" and event.payload["visibility"] == "public":
            self.on_message(ticket, event)

    def on_triaged(self, ticket: TicketState, event: Event) -> None:
        policy = policy_of(self.model, event.payload["request_type"])
        for clock in self.active(ticket):
            if policy is not None and clock.policy == policy.id:
                continue
            if policy is None:
                reason = f"request type {event.payload['request_type']} has no SLA policy"
            else:
                reason = f"policy changed from {clock.policy} to {policy.id}"
            self.stop(clock, ticket, reason)
            if policy is not None:
                # the customer has waited since the old clock started, whatever the policy
                self.start(ticket, policy, clock.metric, clock.started_at)
        self.baseline(ticket, policy)

    def on_priority(self, ticket: TicketState, priority: str) -> None:
        for clock in self.active(ticket):
            try:
                policy = self.model.sla_policy(clock.policy)
            except KeyError:
                continue  # the policy left the model: the clock keeps its target
            target = target_of(policy, priority, clock.metric)
            measure = _measure(self.model, clock)
            if target is None:
                self.stop(clock, ticket, f"no {clock.metric} target for priority {priority}")
                continue
            if clock.priority == priority and clock.target_minutes == target:
                continue
            # what happened under the old target stays recorded under it
            self.emit(marks_due(clock, ticket, self.now))
            self.emit(
                [
                    retarget(
                        clock,
                        ticket,
                        measure,
                        self.now,
                        priority=priority,
                        target=target,
                        warning_share=policy.warning_share,
                    )
                ]
            )
            self.settle(clock, ticket)
        self.baseline(ticket, policy_of(self.model, ticket.request_type))

    def on_status(self, ticket: TicketState, event: Event) -> None:
        before, after = event.payload["before"], event.payload["after"]
        if after == "pending":
            for clock in self.active(ticket):
                if clock.status == "running" and self._pauses(clock):
                    measure = _measure(self.model, clock)
                    self.emit(marks_due(clock, ticket, self.now))
                    self.emit([pause(clock, ticket, measure, self.now)])
        elif after == "solved":
            for clock in self.active(ticket):
                if clock.metric == "resolution":
                    self.fulfil(clock, ticket)
                else:
                    self.stop(clock, ticket, "ticket solved")
        elif after == "closed":
            for clock in self.active(ticket):
                self.stop(clock, ticket, "ticket closed")
        if before == "pending" and after in ("open", "on_hold"):
            for clock in self.active(ticket):
                if clock.status == "paused":
                    share = _share_of(self.model, clock.policy)
                    measure = _measure(self.model, clock)
                    self.emit([resume(clock, ticket, measure, self.now, share)])
                    self.settle(clock, ticket)
        if event.payload.get("reopened"):
            policy = policy_of(self.model, ticket.request_type)
            if policy is not None and not self.active(ticket, "resolution"):
                self.start(ticket, policy, "resolution", self.now)

    def _pauses(self, clock: SlaClockState) -> bool:
        try:
            return self.model.sla_policy(clock.policy).pause_on_pending
        except KeyError:
            return True

    def on_message(self, ticket: TicketState, event: Event) -> None:
        author = event.payload["author_kind"]
        if author in _OURS:
            for clock in self.active(ticket):
                if clock.metric != "resolution":
                    self.fulfil(clock, ticket)
            policy = policy_of(self.model, ticket.request_type)
            if policy is not None and ticket.status in ACTIVE_STATUSES:
                self.start(ticket, policy, "periodic_update", event.at)
        elif author == "customer":
            replied = ticket.first_reply_at is not None and ticket.first_reply_at <= event.at
            if replied and not self.active(ticket, "next_reply"):
                policy = policy_of(self.model, ticket.request_type)
                if policy is not None:
                    self.start(ticket, policy, "next_reply", event.at)


def restart_stranded(
    uow: UnitOfWork, clocks: Iterable[tuple[int, int]], reason: str
) -> list[Event]:
    """Stop the given clocks (their policy or calendar left the model in force) and start,
    for each, the clock of the same metric under the policy the ticket's request type has
    now, from the same start: what a re-triage to another policy does. Returns the events
    appended (the caller runs the reactions to them). ``clocks`` are (ticket id, clock id)
    pairs."""
    pairs = list(clocks)
    wanted = {clock_id for _, clock_id in pairs}
    run = _Run(uow)
    for ticket_id in sorted({ticket_id for ticket_id, _ in pairs}):
        ticket = uow.ticket(ticket_id)
        for clock in uow.sla_clocks(ticket_id):
            if clock.id not in wanted or clock.status not in _ACTIVE:
                continue
            run.stop(clock, ticket, reason)
            policy = policy_of(run.model, ticket.request_type)
            if policy is not None:
                run.start(ticket, policy, clock.metric, clock.started_at)
    return run.appended


# --- the timer ---------------------------------------------------------------------------------


def fire_sla_timer(uow: UnitOfWork, job: Job) -> None:
    """Job handler for ``sla.timer``: record the clock's warning and breach when their
    instants have come.

    Idempotent: a clock already warned, breached, paused or ended is left alone. Every
    change that moves a clock's instants (resume, re-target) queues timers for the new
    instants in the same transaction, so a timer that finds them moved later is stale
    and does nothing; queueing again here would only duplicate the timer already there.
    """
    if job.ticket_id is None:
        return
    try:
        clock_id = int(job.ref)
    except ValueError:
        return
    clock = next((c for c in uow.sla_clocks(job.ticket_id) if c.id == clock_id), None)
    if clock is None or clock.status != "running":
        return
    new = marks_due(clock, uow.ticket(job.ticket_id), uow.now)
    if new:
        uow.append(new)


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClockView:
    """A clock as the API shows it, with the time counted up to ``now``."""

    id: int
    metric: str
    policy: str
    priority: str
    status: str
    target_minutes: int
    business_hours: bool
    calendar: str | None
    started_at: datetime
    due_at: datetime | None
    warning_at: datetime | None
    warned: bool
    breached: bool
    outcome: str | None
    ended_at: datetime | None
    elapsed_minutes: float
    remaining_minutes: float | None


def clock_view(model: OperatingModel, clock: SlaClockState, now: datetime) -> ClockView:
    """The clock with its elapsed and remaining (business) minutes at ``now``."""
    used = elapsed_minutes(clock, _measure(model, clock), now)
    return ClockView(
        id=clock.id,
        metric=clock.metric,
        policy=clock.policy,
        priority=clock.priority,
        status=clock.status,
        target_minutes=clock.target_minutes,
        business_hours=clock.business_hours,
        calendar=clock.calendar,
        started_at=clock.started_at,
        due_at=clock.due_at,
        warning_at=clock.warning_at,
        warned=clock.warned,
        breached=clock.breached,
        outcome=clock.outcome,
        ended_at=clock.ended_at,
        elapsed_minutes=round(used, 3),
        remaining_minutes=None
        if clock.status == "ended"
        else round(clock.target_minutes - used, 3),
    )
