"""Escalation: the levels of a request type's escalation path fire and their actions run
as domain commands, each leaving its events.

The path is the request type's ``escalation_path`` followed through its ``then`` chain,
one list of levels. **Every level fires when its own conditions first hold, in any
order, at most once per ticket**: the ticket remembers the levels that fired
(``escalation_fired`` in its state, folded from ``escalation.fired``, so replay and
``opsdesk verify`` rebuild it), by path and level name. A level whose conditions do not
hold yet is simply not due: it waits, however many later levels fire before it. A level
fires when all its ``when`` conditions hold:

- ``before_breach: X``: a running SLA clock is due within X (now >= due - X);
- ``after_breach: X``: a running SLA clock is breached and now >= due + X;
- ``priority`` / ``customer_tier``: the ticket's priority / its customer's tier is that;
- ``transfers_at_least: N``: the ticket has been transferred N times or more;
- ``exception_denied``: the ticket has (true) or has not (false) a denied exception.

A fired level emits ``escalation.fired`` and then runs its actions:

- ``notify_role``: ``notification.requested`` for that role in the owning team;
- ``transfer_to_team``: :func:`opsdesk.domain.commands.transfer_ticket` to that team's
  queue; skipped when that team already owns the ticket (never escalate to the owner),
  and while the ticket is with a lead deciding a contested transfer (the ping-pong
  guard wins: escalation never takes a contested ticket from the lead who decides it);
- ``raise_priority``: :func:`opsdesk.domain.commands.change_priority` one step up
  :data:`opsdesk.model.vocabulary.PRIORITIES`; skipped at the top;
- ``assign_team_lead``: a transfer within the owning team to an active member holding
  the team's ``lead_role`` (online first, then least loaded); skipped when there is none.

When every level of the chain has fired, ``escalation.exhausted`` is emitted once.

What an evaluation costs is kept to what a change can affect. Each level knows the
events after which its conditions can newly hold (a transfer for ``transfers_at_least``,
a denial for ``exception_denied``, the SLA clock events for the time conditions, a
priority change for ``priority``); an event wakes only the levels waiting for it, and a
ticket with no pending level costs nothing. Triage and reopen evaluate every pending
level. Time-based levels are checked by ``escalation.check`` jobs
(:func:`fire_escalation_check`) at the first instant the next such level can hold for the
earliest-due running clock; a command queues a new check only when it moved that
clock's due time (or gave the ticket a new path), since an earlier check that finds
nothing queues the next one itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
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
    "Chain",
    "Facts",
    "Step",
    "chain",
    "compiled_chain",
    "conditions_hold",
    "deciding_lead",
    "evaluate",
    "fire_escalation_check",
    "react",
    "wakes_on",
]

#: the jobs-outbox kind of a time-based escalation check; ``ref`` names the level
CHECK_KIND: Final = "escalation.check"
# SLA clock events: a time condition can newly hold after them. (A clock that pauses or
# ends can only make them fail; a check queued for it finds nothing, queues the next.)
_CLOCK_EVENTS: Final = frozenset(
    {"sla.activated", "sla.resumed", "sla.retargeted", "sla.warning", "sla.breached"}
)
# the events after which each condition can newly hold; a tier never changes on a
# ticket, and "no exception denied" holds from the start, so only triage wakes those
_WAKES: Final[dict[str, frozenset[str]]] = {
    "before_breach": _CLOCK_EVENTS,
    "after_breach": _CLOCK_EVENTS,
    "priority": frozenset({"ticket.priority_changed"}),
    "customer_tier": frozenset(),
    "transfers_at_least": frozenset({"ticket.transferred"}),
    "exception_denied": frozenset({"exception.denied"}),
}
# events that evaluate every pending level: a (new) path, a reopened ticket
_EVERY_LEVEL: Final = frozenset({"ticket.triaged", "ticket.reopened"})
_TRIGGERS: Final = frozenset().union(*_WAKES.values(), _EVERY_LEVEL)
# events that move a clock's due time, hence the instant the next check is due
_MOVES_DUE: Final = frozenset({"sla.activated", "sla.resumed", "sla.retargeted"})
# built once so SQLAlchemy reuses their compiled form
_DENIED_OF = (
    select(t.exceptions.c.id)
    .where(t.exceptions.c.ticket_id == bindparam("ticket_id_"), t.exceptions.c.status == "denied")
    .limit(1)
)
_LAST_OWNERSHIP_EVENTS = (
    select(t.events.c.type, t.events.c.payload)
    .where(
        t.events.c.ticket_id == bindparam("ticket_id_"),
        t.events.c.type.in_(["ownership.contested", "ticket.transferred"]),
    )
    .order_by(t.events.c.seq.desc())
    .limit(2)
)


@dataclass(slots=True)
class _Memo:
    """What one unit of work already knows, so each command asks the database once."""

    #: tickets known to have (True) or not (False) a denied exception
    denied: dict[int, bool] = field(default_factory=dict)
    #: ticket -> the last seq a full evaluation of it had seen
    seen: dict[int, int] = field(default_factory=dict)
    #: tickets created in this unit of work (no check can be waiting for them yet)
    created: set[int] = field(default_factory=set)


_MEMO: weakref.WeakKeyDictionary[UnitOfWork, _Memo] = weakref.WeakKeyDictionary()


def _memo(uow: UnitOfWork) -> _Memo:
    memo = _MEMO.get(uow)
    if memo is None:
        memo = _MEMO[uow] = _Memo()
    return memo


def wakes_on(when: EscalationWhen) -> frozenset[str]:
    """The event types after which a level with these conditions can newly hold
    (besides triage and reopen, which wake every level)."""
    found: set[str] = set()
    for name, events in _WAKES.items():
        if getattr(when, name) is not None:
            found |= events
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Step:
    """One level of a (chained) escalation path, with where it comes from."""

    path: str
    index: int
    level: EscalationLevel
    #: the events after which its conditions can newly hold (see :func:`wakes_on`)
    wakes: frozenset[str] = frozenset()

    @property
    def key(self) -> tuple[str, str]:
        """How the ticket remembers that the level fired: its path and its name."""
        return (self.path, self.level.name)

    @property
    def timed(self) -> bool:
        when = self.level.when
        return when.before_breach is not None or when.after_breach is not None

    @property
    def label(self) -> str:
        return f"{self.path}#{self.index} {self.level.name!r}"


@dataclass(frozen=True, slots=True)
class Chain:
    """A path followed through its ``then`` chain, compiled once per model version."""

    head: str
    steps: tuple[Step, ...]
    keys: frozenset[tuple[str, str]]


# (id of the model, head path) -> (model, chain); models are immutable and cached per
# version, and the model is kept in the value so its id cannot be reused while cached
_CHAINS: dict[tuple[int, str], tuple[OperatingModel, Chain]] = {}


def compiled_chain(model: OperatingModel, path_id: str) -> Chain:
    """The levels of ``path_id`` and of its ``then`` paths, in order, compiled once per
    model. A path met twice ends the chain (the checker refuses such loops anyway)."""
    key = (id(model), path_id)
    cached = _CHAINS.get(key)
    if cached is not None and cached[0] is model:
        return cached[1]
    steps: list[Step] = []
    seen: set[str] = set()
    current: str | None = path_id
    while current is not None and current not in seen:
        seen.add(current)
        try:
            path = model.escalation_path(current)
        except KeyError:
            break
        steps.extend(
            Step(path.id, i, level, wakes_on(level.when)) for i, level in enumerate(path.levels)
        )
        current = path.then
    built = Chain(path_id, tuple(steps), frozenset(s.key for s in steps))
    if len(_CHAINS) > 1024:
        _CHAINS.clear()
    _CHAINS[key] = (model, built)
    return built


def chain(model: OperatingModel, path_id: str) -> list[Step]:
    """The levels of ``path_id`` followed by those of its ``then`` paths, in order."""
    return list(compiled_chain(model, path_id).steps)


def _chain_of(model: OperatingModel, request_type: str) -> Chain | None:
    try:
        head = model.request_type(request_type).escalation_path
    except KeyError:
        return None
    return compiled_chain(model, head) if head is not None else None


class Facts:
    """What the conditions of a level are judged on, each read only when a condition
    asks for it (the customer's tier, the clocks, a denied exception)."""

    def __init__(
        self,
        now: datetime,
        ticket: TicketState,
        *,
        tier: Callable[[], str],
        clocks: Callable[[], list[SlaClockState]],
        has_denied_exception: Callable[[], bool],
    ) -> None:
        self.now = now
        self.ticket = ticket
        self._tier = tier
        self._clocks = clocks
        self._counting: list[SlaClockState] | None = None
        self.has_denied_exception = has_denied_exception

    @property
    def tier(self) -> str:
        return self._tier()

    @property
    def counting(self) -> list[SlaClockState]:
        """Running clocks with a due time, earliest due first."""
        if self._counting is None:
            running = [c for c in self._clocks() if c.status == "running" and c.due_at is not None]
            self._counting = sorted(running, key=lambda c: (c.due_at, c.id))
        return self._counting

    def forget_clocks(self) -> None:
        """The clocks may have changed (an action re-targeted them): read them again."""
        self._counting = None


def _at(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M UTC")


def conditions_hold(when: EscalationWhen, facts: Facts) -> list[str] | None:
    """The reasons the level fires when all its conditions hold, else None. The cheap
    conditions are judged first, so a level that fails on them reads nothing more; the
    reasons keep the order of the conditions in :class:`EscalationWhen`."""
    found: dict[str, str] = {}
    ticket = facts.ticket
    if when.priority is not None:
        if ticket.priority != when.priority:
            return None
        found["priority"] = f"priority is {when.priority}"
    if when.transfers_at_least is not None:
        if ticket.transfer_count < when.transfers_at_least:
            return None
        found["transfers_at_least"] = (
            f"transferred {ticket.transfer_count} times (at least {when.transfers_at_least})"
        )
    if when.customer_tier is not None:
        if facts.tier != when.customer_tier:
            return None
        found["customer_tier"] = f"customer tier is {when.customer_tier}"
    if when.before_breach is not None:
        margin = timedelta(minutes=when.before_breach)
        near = [c for c in facts.counting if c.due_at and facts.now >= c.due_at - margin]
        if not near:
            return None
        clock = near[0]
        assert clock.due_at is not None
        found["before_breach"] = (
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
        found["after_breach"] = (
            f"{clock.metric} breached at {_at(clock.due_at)}, "
            f"{format_duration(when.after_breach)} or more ago"
        )
    if when.exception_denied is not None:
        denied = facts.has_denied_exception()
        if denied != when.exception_denied:
            return None
        found["exception_denied"] = (
            "an exception was denied" if denied else "no exception was denied"
        )
    reasons = [found[name] for name in _REASON_ORDER if name in found]
    return reasons or ["the level has no conditions"]


_REASON_ORDER: Final = (
    "priority",
    "customer_tier",
    "transfers_at_least",
    "before_breach",
    "after_breach",
    "exception_denied",
)


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


def deciding_lead(uow: UnitOfWork, ticket: TicketState) -> int | None:
    """The lead holding the ticket to decide a contested transfer (the ping-pong guard
    handed it to them and they have not moved it on since), or None.

    Read from the log: the ticket's last ``ownership.contested``, followed at most by
    the hand-over to that lead, and the ticket still with that lead in that team.
    """
    if ticket.owning_agent is None:
        return None
    uow.flush()
    rows = uow.conn.execute(_LAST_OWNERSHIP_EVENTS, {"ticket_id_": ticket.id}).all()
    contest = None
    if rows and rows[0].type == "ownership.contested":
        contest = rows[0].payload
    elif (
        len(rows) == 2
        and rows[1].type == "ownership.contested"
        and rows[0].payload.get("to_agent") == rows[1].payload["lead_id"]
    ):
        contest = rows[1].payload
    if (
        contest is not None
        and contest["lead_id"] == ticket.owning_agent
        and contest["owning_team"] == ticket.owning_team
    ):
        return int(contest["lead_id"])
    return None


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
                lead = deciding_lead(uow, sim)
                if lead is not None:
                    # the ping-pong guard wins: the lead it handed the ticket to decides
                    skipped.append(
                        f"{label}: ownership is contested and lead {lead} of "
                        f"{sim.owning_team} decides where the ticket goes (ping-pong guard)"
                    )
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


def evaluate(
    uow: UnitOfWork,
    ticket_id: int,
    *,
    woken_by: Collection[str] | None = None,
    moved_clocks: Collection[int] = (),
    reschedule: bool = True,
    once: bool = False,
) -> list[Event]:
    """Fire every pending level of the ticket's escalation path whose conditions hold,
    in chain order; emit ``escalation.exhausted`` once when every level has fired.
    Returns the events appended.

    ``woken_by`` (event types) limits the evaluation to the levels those events can make
    hold; None evaluates every pending level. The next time-based check is queued when
    ``reschedule`` is set or when one of ``moved_clocks`` is now the earliest-due running
    clock; ``once`` skips it when the same check is already waiting (what a check job,
    which may race with a command that queued the same instant, asks for).
    """
    memo = _memo(uow)
    if woken_by is None:
        memo.seen[ticket_id] = uow.last_seq
    ticket = uow.ticket(ticket_id)
    if ticket.status not in ACTIVE_STATUSES or ticket.request_type is None:
        return []
    model = uow.model
    path = _chain_of(model, ticket.request_type)
    if path is None or not path.steps:
        return []
    done = {(p, n) for p, n in ticket.escalation_fired}
    pending = [s for s in path.steps if s.key not in done]
    if not pending and ticket.escalation_exhausted:
        return []  # nothing left to fire, and the warning is given

    def has_denied_exception() -> bool:
        if ticket_id not in memo.denied:
            uow.flush()
            found = uow.conn.execute(_DENIED_OF, {"ticket_id_": ticket_id}).first()
            memo.denied[ticket_id] = found is not None
        return memo.denied[ticket_id]

    facts = Facts(
        uow.now,
        ticket,
        tier=lambda: uow.customer(ticket.customer_id).tier,
        clocks=lambda: uow.sla_clocks(ticket_id),
        has_denied_exception=has_denied_exception,
    )
    wake = None if woken_by is None else frozenset(woken_by)
    appended: list[Event] = []
    ctx: Context | None = None
    # a timed level woken by a change of its other conditions (a priority, a transfer)
    # may now wait for another clock's instant than the check queued for it
    waits_again = False
    for step in pending:
        if wake is not None and not (step.wakes & wake):
            continue
        if ticket.status not in ACTIVE_STATUSES:
            break
        reasons = conditions_hold(step.level.when, facts)
        if reasons is None:
            waits_again = waits_again or (
                step.timed and wake is not None and bool((wake - _CLOCK_EVENTS) & step.wakes)
            )
            continue
        ctx = ctx or Context(model=model, now=uow.now, ids=uow, actor_kind="system")
        labels, skipped, actions = _plan_actions(uow, ctx, ticket, step, "; ".join(reasons))
        payload = ev.EscalationFired(
            path=step.path,
            level=step.index,
            name=step.level.name,
            reasons=reasons,
            actions=labels,
            skipped=skipped,
        )
        fired_event = new_event(
            "escalation.fired", payload, ticket_id=ticket.id, customer_id=ticket.customer_id
        )
        appended += uow.append([fired_event, *actions])
        facts.forget_clocks()
    if appended:
        done = {(p, n) for p, n in ticket.escalation_fired}
        pending = [s for s in pending if s.key not in done]
    if not pending:
        if not ticket.escalation_exhausted:
            last = path.steps[-1]
            payload_x = ev.EscalationExhausted(
                path=path.head,
                levels=len(path.steps),
                reason=f"every level up to the last ({last.label}) has fired; "
                "nowhere further to escalate",
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
    if reschedule or (
        moved_clocks and facts.counting and facts.counting[0].id in set(moved_clocks)
    ):
        _schedule_next_check(uow, pending, facts, once=once)
    elif waits_again:
        _schedule_next_check(uow, pending, facts, once=True)
    return appended


def _schedule_next_check(
    uow: UnitOfWork, pending: Sequence[Step], facts: Facts, *, once: bool
) -> None:
    """Queue a check at the first instant a pending time-based level can hold (a level
    waiting for a tier the customer does not have never will). A check queued for an
    instant that has since moved later finds nothing and queues the next one."""
    upcoming = []
    for step in pending:
        if not step.timed:
            continue
        tier = step.level.when.customer_tier
        if tier is not None and facts.tier != tier:
            continue
        at = _next_instant(step.level.when, facts)
        if at is not None and at > facts.now:
            upcoming.append((at, step))
    if not upcoming:
        return
    at, step = min(upcoming, key=lambda pair: pair[0])
    uow.schedule(
        CHECK_KIND, at, ticket_id=facts.ticket.id, ref=f"{step.path}#{step.index}", once=once
    )


@dataclass(slots=True)
class _Wake:
    types: set[str] = field(default_factory=set)
    every: bool = False
    moved_clocks: set[int] = field(default_factory=set)


def react(uow: UnitOfWork, events: Sequence[Event]) -> list[Event]:
    """Evaluate the escalation path of every ticket the ``events`` may have moved, only
    the levels those events can make hold."""
    memo = _memo(uow)
    woken: dict[int, _Wake] = {}
    for e in events:
        tid = e.ticket_id
        if tid is None:
            continue
        kind = e.type
        if kind == "ticket.created":
            memo.denied.setdefault(tid, False)  # a new ticket has no exception yet
            memo.created.add(tid)
            continue
        if kind == "exception.denied":
            memo.denied[tid] = True
        elif kind == "ticket.status_changed":
            if not e.payload.get("reopened", False):
                continue
            kind = "ticket.reopened"
        if kind not in _TRIGGERS or e.seq <= memo.seen.get(tid, 0):
            continue  # not a trigger, or a full evaluation of the ticket already saw it
        wake = woken.get(tid)
        if wake is None:
            wake = woken[tid] = _Wake()
        wake.types.add(kind)
        if kind in _EVERY_LEVEL:
            wake.every = True
        elif kind in _MOVES_DUE:
            wake.moved_clocks.add(e.payload["clock_id"])
    appended: list[Event] = []
    for ticket_id, wake in woken.items():
        appended += evaluate(
            uow,
            ticket_id,
            woken_by=None if wake.every else wake.types,
            moved_clocks=wake.moved_clocks,
            reschedule=wake.every,
            # a re-triaged or reopened ticket may have the same check waiting already; a
            # moved due time makes a new instant, so a command asks no "already queued?"
            once=wake.every and ticket_id not in memo.created,
        )
    return appended


def fire_escalation_check(uow: UnitOfWork, job: Job) -> None:
    """Job handler for ``escalation.check``: re-evaluate the ticket's path now and queue
    the next check. A stale check (solved ticket, level already fired, clock fulfilled)
    fires nothing."""
    if job.ticket_id is None:
        return
    try:
        uow.ticket(job.ticket_id)
    except NotFound:
        return
    evaluate(uow, job.ticket_id, once=True)
