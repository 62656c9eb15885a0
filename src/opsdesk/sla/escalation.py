"""Escalation: the levels of a request type's escalation path fire and their actions run
as domain commands, each leaving its events.

The path is the request type's ``escalation_path`` followed through its ``then`` chain,
one list of levels. Levels fire in order and each at most once: the ticket remembers how
far it got (``escalation_path`` and ``escalation_level`` in its state, folded from
``escalation.fired``). A level fires when all its ``when`` conditions hold:

- ``before_breach: X``: a running SLA clock is due within X (now >= due - X);
- ``after_breach: X``: a running SLA clock is breached and now >= due + X;
- ``priority`` / ``customer_tier``: the ticket's priority / its customer's tier is that;
- ``transfers_at_least: N``: the ticket has been transferred N times or more;
- ``exception_denied``: the ticket has (true) or has not (false) a denied exception.

The first level at or after the ticket's position whose conditions hold fires; levels
it passes over are recorded in the event's ``skipped`` and never fire later. (A strict
one-by-one ladder would stall a ticket forever on a level that cannot hold for it, such
as "customer tier is vip" for any other customer.) A fired level emits
``escalation.fired`` and then runs its actions:

- ``notify_role``: ``notification.requested`` for that role in the owning team;
- ``transfer_to_team``: :func:`opsdesk.domain.commands.transfer_ticket` to that team's
  queue; skipped when that team already owns the ticket (never escalate to the owner);
- ``raise_priority``: :func:`opsdesk.domain.commands.change_priority` one step up
  :data:`opsdesk.model.vocabulary.PRIORITIES`; skipped at the top;
- ``assign_team_lead``: a transfer within the owning team to an active member holding
  the team's ``lead_role`` (online first, then least loaded); skipped when there is none.

When the last level has fired, ``escalation.exhausted`` is emitted once: there is
nowhere further to go, and nothing loops. Time-based levels are checked by
``escalation.check`` jobs (:func:`fire_escalation_check`) at the instant the next such
level can hold for the earliest-due running clock; any other change that can make a
level hold (priority, transfer, denial, SLA marks) re-evaluates at once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import bindparam, func, select

from opsdesk.domain import commands
from opsdesk.domain import events as ev
from opsdesk.domain.commands import Context
from opsdesk.domain.errors import DomainError, NotFound
from opsdesk.domain.events import Event, NewEvent, new_event
from opsdesk.domain.lifecycle import ACTIVE_STATUSES
from opsdesk.domain.state import SlaClockState, TicketState, UserState
from opsdesk.model import OperatingModel
from opsdesk.model.schema import EscalationAction, EscalationLevel, EscalationWhen, format_duration
from opsdesk.model.vocabulary import PRIORITIES
from opsdesk.store import tables as t
from opsdesk.store.jobs import Job
from opsdesk.store.uow import UnitOfWork

__all__ = [
    "CHECK_KIND",
    "Step",
    "chain",
    "conditions_hold",
    "evaluate",
    "fire_escalation_check",
    "position",
    "react",
]

#: the jobs-outbox kind of a time-based escalation check; ``ref`` names the level
CHECK_KIND: Final = "escalation.check"
# Events that can make a level's conditions hold. A clock that pauses or ends can only
# make them fail; a check queued for it finds nothing and queues the next one.
_TRIGGERS: Final = frozenset(
    {
        "ticket.triaged",
        "ticket.priority_changed",
        "ticket.transferred",
        "exception.denied",
        "sla.activated",
        "sla.resumed",
        "sla.retargeted",
        "sla.warning",
        "sla.breached",
    }
)
# Events that move the instants time-based levels wait for: the next check is queued
_RESCHEDULE: Final = frozenset({"ticket.triaged", "sla.activated", "sla.resumed", "sla.retargeted"})
# built once so SQLAlchemy reuses their compiled form
_DENIED_OF = (
    select(t.exceptions.c.id)
    .where(t.exceptions.c.ticket_id == bindparam("ticket_id_"), t.exceptions.c.status == "denied")
    .limit(1)
)
# per unit of work: tickets known to have (or not) a denied exception
_DENIED: weakref.WeakKeyDictionary[UnitOfWork, dict[int, bool]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class Step:
    """One level of a (chained) escalation path, with where it comes from."""

    path: str
    index: int
    level: EscalationLevel

    @property
    def label(self) -> str:
        return f"{self.path}#{self.index} {self.level.name!r}"


def chain(model: OperatingModel, path_id: str) -> list[Step]:
    """The levels of ``path_id`` followed by those of its ``then`` paths, in order.

    A path met twice ends the chain (the checker refuses such loops anyway).
    """
    steps: list[Step] = []
    seen: set[str] = set()
    current: str | None = path_id
    while current is not None and current not in seen:
        seen.add(current)
        try:
            path = model.escalation_path(current)
        except KeyError:
            break
        steps.extend(Step(path.id, i, level) for i, level in enumerate(path.levels))
        current = path.then
    return steps


def position(steps: Sequence[Step], ticket: TicketState) -> int:
    """How many steps of the chain the ticket has gone past (fired or passed over)."""
    if ticket.escalation_path is None:
        return 0
    for offset, step in enumerate(steps):
        if step.path == ticket.escalation_path:
            return offset + ticket.escalation_level
    return 0  # its path is not in this chain (re-triaged): start from the top


@dataclass
class Facts:
    """What the conditions of a level are judged on."""

    now: datetime
    ticket: TicketState
    tier: str
    clocks: list[SlaClockState]
    has_denied_exception: Callable[[], bool]

    @property
    def counting(self) -> list[SlaClockState]:
        """Running clocks with a due time, earliest due first."""
        running = [c for c in self.clocks if c.status == "running" and c.due_at is not None]
        return sorted(running, key=lambda c: (c.due_at, c.id))


def _at(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M UTC")


def conditions_hold(when: EscalationWhen, facts: Facts) -> list[str] | None:
    """The reasons the level fires when all its conditions hold, else None."""
    reasons: list[str] = []
    ticket = facts.ticket
    if when.priority is not None:
        if ticket.priority != when.priority:
            return None
        reasons.append(f"priority is {when.priority}")
    if when.customer_tier is not None:
        if facts.tier != when.customer_tier:
            return None
        reasons.append(f"customer tier is {when.customer_tier}")
    if when.transfers_at_least is not None:
        if ticket.transfer_count < when.transfers_at_least:
            return None
        reasons.append(
            f"transferred {ticket.transfer_count} times (at least {when.transfers_at_least})"
        )
    if when.before_breach is not None:
        margin = timedelta(minutes=when.before_breach)
        near = [c for c in facts.counting if c.due_at and facts.now >= c.due_at - margin]
        if not near:
            return None
        clock = near[0]
        assert clock.due_at is not None
        reasons.append(
            f"{clock.metric} due {_at(clock.due_at)}, within {format_duration(when.before_breach)}"
        )
    if when.after_breach is not None:
        margin = timedelta(minutes=when.after_breach)
        late = [
            c
            for c in facts.counting
            if c.due_at and (c.breached or c.due_at <= facts.now) and facts.now >= c.due_at + margin
        ]
        if not late:
            return None
        clock = late[0]
        assert clock.due_at is not None
        reasons.append(
            f"{clock.metric} breached at {_at(clock.due_at)}, "
            f"{format_duration(when.after_breach)} or more ago"
        )
    if when.exception_denied is not None:
        denied = facts.has_denied_exception()
        if denied != when.exception_denied:
            return None
        reasons.append("an exception was denied" if denied else "no exception was denied")
    return reasons or ["the level has no conditions"]


def _next_instant(when: EscalationWhen, facts: Facts) -> datetime | None:
    """When the level's time conditions can first hold for the earliest-due clock."""
    counting = facts.counting
    if not counting or (when.before_breach is None and when.after_breach is None):
        return None
    due = counting[0].due_at
    assert due is not None
    instants = []
    if when.before_breach is not None:
        instants.append(due - timedelta(minutes=when.before_breach))
    if when.after_breach is not None:
        instants.append(due + timedelta(minutes=when.after_breach))
    return max(instants)


# --- actions ------------------------------------------------------------------------------------


def _label(action: EscalationAction) -> str:
    kind = action.kind
    value = getattr(action, kind)
    return kind if value is True else f"{kind}: {value}"


def _team_lead(uow: UnitOfWork, team_id: str) -> UserState | None:
    """The team's lead who takes an escalated ticket (see ``commands.choose_lead``)."""
    uow.flush()
    u = t.users.c
    rows = uow.conn.execute(select(u.id, u.teams).where(u.active.is_(True))).all()
    members = [r.id for r in rows if team_id in r.teams]
    tk = t.tickets.c
    load: dict[int, int] = dict(
        uow.conn.execute(
            select(tk.owning_agent, func.count())
            .where(tk.owning_agent.in_(members), tk.status.in_(sorted(ACTIVE_STATUSES)))
            .group_by(tk.owning_agent)
        ).all()
    )
    candidates = [(uow.user(i), load.get(i, 0)) for i in members]
    return commands.choose_lead(uow.model, team_id, candidates)


def _plan_actions(
    uow: UnitOfWork, ctx: Context, ticket: TicketState, step: Step, why: str
) -> tuple[list[str], list[str], list[NewEvent]]:
    """Decide the level's actions in order against a scratch copy of the ticket (so each
    sees the one before it): the labels, the skipped ones with reasons, the events."""
    model = ctx.model
    sim = replace(ticket)
    labels: list[str] = []
    skipped: list[str] = []
    out: list[NewEvent] = []
    reason = f"escalation {step.path}: {step.level.name}"
    for action in step.level.actions:
        label = _label(action)
        labels.append(label)
        try:
            if action.notify_role is not None:
                payload = ev.NotificationRequested(
                    role=action.notify_role, team=sim.owning_team, reason=f"{reason} ({why})"
                )
                out.append(
                    new_event(
                        "notification.requested",
                        payload,
                        ticket_id=sim.id,
                        customer_id=sim.customer_id,
                    )
                )
            elif action.transfer_to_team is not None:
                team = action.transfer_to_team
                if team == sim.owning_team:
                    skipped.append(f"{label}: {team} already owns the ticket")
                    continue
                out += commands.transfer_ticket(ctx, sim, reason=reason, to_team=team)
                sim.owning_team, sim.owning_agent = team, None
            elif action.raise_priority:
                rank = PRIORITIES.index(sim.priority)
                if rank + 1 >= len(PRIORITIES):
                    skipped.append(f"{label}: already {sim.priority}, the highest priority")
                    continue
                out += commands.change_priority(ctx, sim, PRIORITIES[rank + 1], reason)
                sim.priority = PRIORITIES[rank + 1]
            elif action.assign_team_lead:
                skip = _assign_lead(uow, ctx, model, sim, reason, out)
                if skip:
                    skipped.append(f"{label}: {skip}")
            else:
                skipped.append(f"{label}: the action is switched off")
        except DomainError as exc:
            skipped.append(f"{label}: {exc}")
    return labels, skipped, out


def _assign_lead(
    uow: UnitOfWork,
    ctx: Context,
    model: OperatingModel,
    sim: TicketState,
    reason: str,
    out: list[NewEvent],
) -> str | None:
    """Plan the transfer to the owning team's lead; the reason to skip, if any."""
    if sim.owning_team is None:
        return "the ticket has no owning team"
    try:
        lead_role = model.team(sim.owning_team).lead_role
    except KeyError:
        return f"team {sim.owning_team} is not in the model in force"
    if lead_role is None:
        return f"team {sim.owning_team} has no lead role"
    if sim.owning_agent is not None and lead_role in uow.user(sim.owning_agent).roles:
        return f"already owned by {lead_role} user {sim.owning_agent}"
    lead = _team_lead(uow, sim.owning_team)
    if lead is None:
        return f"no active {lead_role} in team {sim.owning_team}"
    out += commands.transfer_ticket(ctx, sim, reason=reason, to_team=sim.owning_team, to_agent=lead)
    sim.owning_agent = lead.id
    return None


# --- evaluation -----------------------------------------------------------------------------------


def evaluate(uow: UnitOfWork, ticket_id: int, *, schedule: bool = True) -> list[Event]:
    """Fire every level of the ticket's escalation path that is due, in order; emit
    ``escalation.exhausted`` once after the last; with ``schedule`` (or when a level
    fired) queue the next time-based check. Returns the events appended."""
    ticket = uow.ticket(ticket_id)
    if ticket.status not in ACTIVE_STATUSES or ticket.request_type is None:
        return []
    model = uow.model
    try:
        head = model.request_type(ticket.request_type).escalation_path
    except KeyError:
        return []
    steps = chain(model, head) if head is not None else []
    if not steps:
        return []
    assert head is not None
    known = _DENIED.setdefault(uow, {})

    def has_denied_exception() -> bool:
        if ticket.id not in known:
            uow.flush()
            found = uow.conn.execute(_DENIED_OF, {"ticket_id_": ticket.id}).first()
            known[ticket.id] = found is not None
        return known[ticket.id]

    facts = Facts(
        now=uow.now,
        ticket=ticket,
        tier=uow.customer(ticket.customer_id).tier,
        clocks=uow.sla_clocks(ticket.id),
        has_denied_exception=has_denied_exception,
    )
    ctx = Context(model=model, now=uow.now, ids=uow, actor_kind="system")
    appended: list[Event] = []
    for _ in range(len(steps)):
        start = position(steps, ticket)
        fired = None
        for k in range(start, len(steps)):
            reasons = conditions_hold(steps[k].level.when, facts)
            if reasons is not None:
                fired = k, reasons
                break
        if fired is None:
            break
        k, reasons = fired
        step = steps[k]
        labels, skipped, actions = _plan_actions(uow, ctx, ticket, step, "; ".join(reasons))
        passed = [
            f"passed over level {s.label}: its conditions did not hold" for s in steps[start:k]
        ]
        payload = ev.EscalationFired(
            path=step.path,
            level=step.index,
            name=step.level.name,
            reasons=reasons,
            actions=labels,
            skipped=[*passed, *skipped],
        )
        fired_event = new_event(
            "escalation.fired", payload, ticket_id=ticket.id, customer_id=ticket.customer_id
        )
        appended += uow.append([fired_event, *actions])
        facts.clocks = uow.sla_clocks(ticket.id)
        schedule = True
    if position(steps, ticket) >= len(steps):
        if not ticket.escalation_exhausted:
            last = steps[-1]
            payload_x = ev.EscalationExhausted(
                path=head,
                levels=len(steps),
                reason=f"the last level ({last.label}) has fired; nowhere further to escalate",
            )
            appended += uow.append(
                [
                    new_event(
                        "escalation.exhausted",
                        payload_x,
                        ticket_id=ticket.id,
                        customer_id=ticket.customer_id,
                    )
                ]
            )
        return appended
    if schedule:
        _schedule_next_check(uow, steps, position(steps, ticket), facts)
    return appended


def _schedule_next_check(uow: UnitOfWork, steps: Sequence[Step], start: int, facts: Facts) -> None:
    """Queue a check at the first instant a remaining time-based level can hold, unless
    the same check is already queued. A check queued
    for an instant that has since moved later finds nothing and queues the next one."""
    upcoming = [
        (at, step)
        for step in steps[start:]
        if (at := _next_instant(step.level.when, facts)) is not None and at > facts.now
    ]
    if not upcoming:
        return
    at, step = min(upcoming, key=lambda pair: pair[0])
    uow.schedule(
        CHECK_KIND, at, ticket_id=facts.ticket.id, ref=f"{step.path}#{step.index}", once=True
    )


def react(uow: UnitOfWork, events: Sequence[Event]) -> list[Event]:
    """Evaluate the escalation path of every ticket the ``events`` may have moved."""
    tickets: dict[int, bool] = {}  # ticket -> whether its next check must be queued
    for e in events:
        if e.ticket_id is None:
            continue
        if e.type == "exception.denied":
            _DENIED.setdefault(uow, {})[e.ticket_id] = True
        reopened = e.type == "ticket.status_changed" and e.payload.get("reopened", False)
        if e.type in _TRIGGERS or reopened:
            moved = e.type in _RESCHEDULE or reopened
            tickets[e.ticket_id] = tickets.get(e.ticket_id, False) or moved
    appended: list[Event] = []
    for ticket_id, schedule in tickets.items():
        appended += evaluate(uow, ticket_id, schedule=schedule)
    return appended


def fire_escalation_check(uow: UnitOfWork, job: Job) -> None:
    """Job handler for ``escalation.check``: re-evaluate the ticket's path now. A stale
    check (solved ticket, level already fired, clock fulfilled) fires nothing."""
    if job.ticket_id is None:
        return
    try:
        uow.ticket(job.ticket_id)
    except NotFound:
        return
    evaluate(uow, job.ticket_id)
