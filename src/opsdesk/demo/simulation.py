"""Discrete-event simulation of the demo company's service desk, on simpy.

Simulation time is in minutes since the start (midnight UTC of the first day). Every
state change is written through the desk service commands, one unit of work per
actor and moment, with ``now`` set to the simulated time, so the event log looks like
the desk was used for real.

Processes:

* ``_arrivals``: hourly Poisson arrivals with weekday and intraday seasonality; each
  arrival picks a request type, a customer and a channel, and starts a ticket story.
* ``_agent``: each agent works only during their shifts, takes tasks from their
  personal list (tickets they own) and their team's queue (by priority, channel and
  age, preferring tasks that match their skills), and takes short off-queue breaks.
* ``_story``: one ticket from intake to solve: misrouting, ping-pong, exceptions,
  pending and on-hold waits, reopens, CSAT and repeat contacts.
* ``_timers``: the jobs outbox swept every few simulated minutes (SLA warnings and
  breaches, escalations, exception expiry, overflow), as `opsdesk serve` does live.
* ``_nightly``: progress reporting and closing solved tickets.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import simpy
from sqlalchemy import func, select

from opsdesk.demo import texts
from opsdesk.demo.company import Company, CustomerProfile, StaffMember
from opsdesk.desk import service
from opsdesk.desk.access import ALL_TEAMS
from opsdesk.domain.state import TicketState
from opsdesk.jobs.outbox import run_due
from opsdesk.model import OperatingModel
from opsdesk.store import tables
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

HOUR = 60.0
DAY = 1440.0
#: simulated minutes between two sweeps of the jobs outbox
TIMER_SWEEP = 10.0
#: events by which a timer (an escalation, an overflow) changes a ticket under the agents
_MOVES = (
    "ticket.transferred",
    "ticket.accepted",
    "ticket.priority_changed",
    "ticket.status_changed",
)
LOCAL = ZoneInfo("Europe/London")

Proc = Generator[simpy.Event, Any, Any]

# --- demand ------------------------------------------------------------------------

#: expected new contacts on a weekday at scale 1 (before repeat contacts)
BASE_DAILY = 190.0
WEEKDAY_FACTOR = (1.18, 1.06, 1.0, 0.96, 0.9, 0.45, 0.3)
#: share of the day's contacts per local hour: night trickle, morning peak, lunch dip,
#: after-lunch peak, evening tail
HOUR_WEIGHTS = (
    0.3,
    0.2,
    0.15,
    0.15,
    0.2,
    0.4,
    1.0,
    2.5,
    5.5,
    8.0,
    8.5,
    7.5,
    5.5,
    6.5,
    7.5,
    7.0,
    6.0,
    5.0,
    3.5,
    2.8,
    2.2,
    1.6,
    1.0,
    0.6,
)
_HOUR_TOTAL = sum(HOUR_WEIGHTS)


@dataclass(frozen=True)
class TypeProfile:
    """Demand and handling of one request type."""

    share: float
    weekend_share: float
    channels: dict[str, float]
    handle_median: float  # minutes of agent work for the first touch
    pending: float  # chance the first touch asks the customer for information
    hold: float  # chance of an on-hold wait (engineer visit, carrier, finance run)
    hold_days: tuple[float, float]
    exceptions: tuple[tuple[str, float], ...] = ()
    misroute_as: tuple[str, ...] = ()
    partner: str | None = None  # team a ping-pong goes to and comes back from


TYPES: dict[str, TypeProfile] = {
    "account_access": TypeProfile(
        0.14,
        0.16,
        {"chat": 35, "email": 22, "web": 13, "bot": 22, "phone": 8},
        9,
        0.3,
        0.0,
        (0, 0),
        (("priority_jump", 0.004),),
        ("bill_explanation",),
        "billing",
    ),
    "move_home": TypeProfile(
        0.08,
        0.07,
        {"email": 40, "web": 30, "phone": 20, "chat": 10},
        16,
        0.45,
        0.15,
        (1, 3),
        (("priority_jump", 0.004),),
        ("bill_explanation",),
        "metering",
    ),
    "bill_explanation": TypeProfile(
        0.18,
        0.12,
        {"email": 45, "phone": 22, "chat": 15, "web": 13, "bot": 5},
        17,
        0.25,
        0.06,
        (0.5, 2),
        (("goodwill_credit", 0.02),),
        ("account_access", "meter_reading_dispute"),
        "metering",
    ),
    "refund": TypeProfile(
        0.09,
        0.08,
        {"email": 50, "web": 25, "chat": 15, "phone": 10},
        13,
        0.3,
        0.1,
        (1, 2),
        (("refund_outside_policy", 0.07),),
        ("account_access", "return_device"),
        "logistics",
    ),
    "payment_plan": TypeProfile(
        0.05,
        0.04,
        {"phone": 50, "email": 30, "chat": 20},
        28,
        0.4,
        0.0,
        (0, 0),
        (("priority_jump", 0.02),),
        ("account_access",),
    ),
    "device_fault": TypeProfile(
        0.10,
        0.15,
        {"phone": 45, "chat": 20, "email": 20, "web": 15},
        24,
        0.35,
        0.3,
        (1, 4),
        (("priority_jump", 0.03),),
        ("smart_meter_fault",),
        "logistics",
    ),
    "smart_meter_fault": TypeProfile(
        0.09,
        0.08,
        {"email": 30, "web": 30, "phone": 25, "bot": 15},
        19,
        0.25,
        0.35,
        (1, 5),
        (("goodwill_credit", 0.02),),
        ("device_fault",),
        "tech_support",
    ),
    "meter_reading_dispute": TypeProfile(
        0.06,
        0.05,
        {"email": 60, "web": 25, "phone": 15},
        21,
        0.6,
        0.0,
        (0, 0),
        (("priority_jump", 0.01),),
        ("bill_explanation",),
        "billing",
    ),
    "delivery_problem": TypeProfile(
        0.09,
        0.12,
        {"chat": 35, "email": 35, "web": 20, "bot": 10},
        11,
        0.2,
        0.25,
        (1, 2),
        (("goodwill_credit", 0.03),),
        ("move_home",),
        "frontline",
    ),
    "return_device": TypeProfile(
        0.06,
        0.07,
        {"web": 45, "email": 35, "chat": 20},
        11,
        0.25,
        0.3,
        (2, 5),
        (("extended_return_window", 0.05), ("refund_outside_policy", 0.03)),
        ("refund",),
        "billing",
    ),
    "complaint": TypeProfile(
        0.03,
        0.03,
        {"email": 60, "phone": 30, "web": 10},
        38,
        0.3,
        0.25,
        (1, 3),
        (("goodwill_credit", 0.15),),
        ("account_access",),
    ),
    "vip_request": TypeProfile(0.03, 0.03, {"phone": 60, "email": 40}, 26, 0.2, 0.0, (0, 0)),
}

MISROUTE_BY_CHANNEL = {"chat": 0.16, "bot": 0.2, "phone": 0.12, "email": 0.07, "web": 0.05}
#: scales every handling time (research, notes and wrap-up included)
HANDLE_FACTOR = 1.8
#: chance an agent goes off queue after a ticket (breaks, coaching, admin)
OFF_QUEUE = 0.35
PING_PONG = 0.04
ROUTING_OVERRIDE = 0.06  # of misroutes: ask to keep the ticket instead of transferring
NO_REPLY = 0.12
SECOND_PENDING = 0.2
REOPEN = 0.06
REPEAT = 0.055
CSAT = 0.25
#: owner away longer than this (hours) and a colleague takes the ticket over; normal
#: tickets wait over a weekend, urgent ones do not
OWNER_AWAY_HOURS = {"urgent": 2, "high": 16, "normal": 64, "low": 90}
CLOSE_AFTER_DAYS = 4
APPROVE_RATE = {
    "refund_outside_policy": 0.65,
    "priority_jump": 0.8,
    "routing_override": 0.6,
    "goodwill_credit": 0.75,
    "extended_return_window": 0.7,
}
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
CHANNEL_RANK = {"phone": 0, "voice": 0, "chat": 1, "bot": 1, "web": 2, "email": 2, "api": 2}


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median), sigma)


# --- runtime state --------------------------------------------------------------------


@dataclass(eq=False)
class Agent:
    member: StaffMember
    team: str
    skills: tuple[str, ...]
    lead: bool
    personal: list[Task] = field(default_factory=list)
    wake: simpy.Event | None = None

    @property
    def id(self) -> int:
        return self.member.user_id


@dataclass(eq=False)
class Case:
    """The simulation's view of one ticket."""

    id: int
    customer: CustomerProfile
    customer_id: int
    request_type: str
    team: str
    channel: str
    priority: str
    created: float
    plan: list[str]
    owner: Agent | None = None
    status: str = "new"
    transfers: int = 0
    reopened: bool = False
    denied: bool = False
    solved_at: float | None = None
    csat_given: bool = False
    ref: str = ""
    amount: int = 0

    def sync(self, state: TicketState) -> None:
        self.status = state.status
        self.priority = state.priority
        self.request_type = state.request_type or self.request_type
        assert state.owning_team is not None
        self.team = state.owning_team


@dataclass(eq=False)
class Task:
    case: Case
    team: str
    agent: Agent | None
    required: tuple[str, ...]
    key: tuple[int, int, float, int]
    assigned: simpy.Event
    done: simpy.Event


@dataclass
class Arrival:
    customer: CustomerProfile
    request_type: str
    channel: str
    follow_up_of: int | None = None
    repeat: bool = False


# --- the simulation ---------------------------------------------------------------------


class Simulation:
    def __init__(
        self,
        db: Database,
        model: OperatingModel,
        company: Company,
        rng: random.Random,
        *,
        start: datetime,
        days: int,
        scale: float = 1.0,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.db = db
        self.model = model
        self.company = company
        self.rng = rng
        self.start = start
        self.days = days
        self.scale = scale
        self.progress = progress
        self.env = simpy.Environment()
        self.counts: Counter[str] = Counter()
        #: minutes agents spent on tickets, per team
        self.busy: defaultdict[str, float] = defaultdict(float)
        self.reopens = 0
        self.unit_of_works = 0
        self._seq = 0
        self.customer_ids: dict[int, int] = {}
        self.solved: dict[int, Case] = {}
        #: every case by ticket id, so timers that move a ticket are mirrored here
        self.cases: dict[int, Case] = {}
        self.agents: dict[str, list[Agent]] = {}
        self.queues: dict[str, list[Task]] = {}
        for team in (t.id for t in model.teams):
            self.queues[team] = []
            self.agents[team] = [
                Agent(m, team, tuple(m.skills), "team_lead" in m.roles)
                for m in company.members(team)
            ]
        self.finance = company.with_role("finance_approver")
        self.ops_leads = company.with_role("ops_lead")
        self.required_skills = {rt.id: tuple(rt.required_skills) for rt in model.request_types}
        types = list(TYPES)
        self._types = types
        self._type_weights = [TYPES[t].share for t in types]
        self._weekend_weights = [TYPES[t].weekend_share for t in types]
        self._vip_customers = [c for c in company.customers if c.tier != "standard"]

    # --- plumbing ---------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.env.now

    def at(self, minutes: float | None = None) -> datetime:
        m = self.env.now if minutes is None else minutes
        return self.start + timedelta(seconds=round(m * 60))

    @contextmanager
    def write(self, actor_kind: str, actor_id: int | None = None) -> Iterator[UnitOfWork]:
        """One unit of work at the current simulated moment."""
        with UnitOfWork(self.db, actor_kind=actor_kind, actor_id=actor_id, now=self.at()) as uow:
            yield uow
        self.unit_of_works += 1
        for e in uow.appended:
            self.counts[e.type] += 1
            if e.type == "ticket.status_changed" and e.payload.get("reopened"):
                self.reopens += 1

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _fmt(self, template: str, case: Case, agent: Agent | None = None) -> str:
        return template.format(
            first=case.customer.first_name,
            agent=agent.member.first_name if agent else "Lumen support",
            ref=case.ref,
            amount=case.amount,
        )

    def _pick(self, options: tuple[str, ...], case: Case, agent: Agent | None = None) -> str:
        return self._fmt(self.rng.choice(options), case, agent)

    # --- running ------------------------------------------------------------------

    def run(self) -> None:
        for team_agents in self.agents.values():
            for agent in team_agents:
                self.env.process(self._agent(agent))
        self.env.process(self._arrivals())
        self.env.process(self._nightly())
        self.env.process(self._timers())
        self.env.run(until=self.days * DAY)
        if self.progress is not None:
            self.progress(self.days, self.days)

    def _timers(self) -> Proc:
        """Sweep the jobs outbox at the simulated time, then mirror what the timers did
        to tickets (an escalation that raised a priority, moved a ticket to another
        team or to a lead) into the cases, as the agents would see it on screen."""
        while True:
            yield self.env.timeout(TIMER_SWEEP)
            with self.db.read() as conn:
                before = conn.execute(select(func.max(tables.events.c.seq))).scalar() or 0
            result = run_due(self.db, now=self.at(), worker="demo")
            if not result.events:
                continue
            # the simulation is the only writer: every event after `before` is the sweep's
            with self.db.read() as conn:
                rows = conn.execute(
                    select(tables.events.c.type, tables.events.c.ticket_id).where(
                        tables.events.c.seq > before
                    )
                ).all()
            self.counts.update(r.type for r in rows)
            moved = sorted({r.ticket_id for r in rows if r.type in _MOVES} & self.cases.keys())
            if moved:
                with self.write("system") as uow:
                    for ticket_id in moved:
                        self._sync(self.cases[ticket_id], uow.ticket(ticket_id))

    def _sync(self, case: Case, state: TicketState) -> None:
        """The case follows the ticket: status, priority, team and owning agent."""
        case.sync(state)
        case.owner = next((a for a in self.agents[case.team] if a.id == state.owning_agent), None)

    def _nightly(self) -> Proc:
        day = 0
        while True:
            yield self.env.timeout(3 * HOUR)
            cutoff = self.now - CLOSE_AFTER_DAYS * DAY
            due = sorted(
                (
                    c
                    for c in self.solved.values()
                    if c.solved_at is not None and c.solved_at <= cutoff
                ),
                key=lambda c: (c.solved_at, c.id),
            )
            for case in due:
                with self.write("system") as uow:
                    case.sync(
                        service.change_status(
                            uow, case.id, "closed", f"closed {CLOSE_AFTER_DAYS} days after solve"
                        )
                    )
                del self.solved[case.id]
                self.cases.pop(case.id, None)
            yield self.env.timeout(DAY - 3 * HOUR)
            day += 1
            if self.progress is not None and day < self.days:
                self.progress(day, self.days)

    # --- demand ---------------------------------------------------------------------

    def _arrivals(self) -> Proc:
        hour = 0
        while True:
            at = self.at(hour * HOUR)
            local = at.astimezone(LOCAL)
            weekday = local.weekday()
            daily = BASE_DAILY * WEEKDAY_FACTOR[weekday] * self.scale
            lam = daily * HOUR_WEIGHTS[local.hour] / _HOUR_TOTAL
            n = _poisson(self.rng, lam)
            offsets = sorted(self.rng.random() * HOUR for _ in range(n))
            for off in offsets:
                arrival = self._new_arrival(weekday, local.hour)
                self.env.process(self._story(arrival, delay=off))
            hour += 1
            yield self.env.timeout(HOUR)

    def _new_arrival(self, weekday: int, local_hour: int) -> Arrival:
        rng = self.rng
        weights = self._weekend_weights if weekday >= 5 else self._type_weights
        rtype = rng.choices(self._types, weights)[0]
        if rtype == "vip_request":
            customer = rng.choice(self._vip_customers)
        else:
            customers = self.company.customers
            pick = rng.random() * self.company.customer_weights[-1]
            lo, hi = 0, len(customers) - 1
            cw = self.company.customer_weights
            while lo < hi:  # bisect on the cumulative weights
                mid = (lo + hi) // 2
                if cw[mid] < pick:
                    lo = mid + 1
                else:
                    hi = mid
            customer = customers[lo]
        channels = dict(TYPES[rtype].channels)
        if not 8 <= local_hour < 20:  # no live chat or phone lines at night: the bot answers
            channels["bot"] = channels.get("bot", 0) + channels.pop("chat", 0)
            channels.pop("phone", None)
            if not channels:
                channels = {"email": 1}
        channel = rng.choices(list(channels), list(channels.values()))[0]
        return Arrival(customer, rtype, channel)

    # --- agents -----------------------------------------------------------------------

    def _agent(self, agent: Agent) -> Proc:
        member = agent.member
        rng = self.rng
        while True:
            t = self.now
            if not member.on_shift(t):
                nxt = member.next_start(t)
                if nxt is None:
                    return
                yield self.env.timeout(nxt - t)
                continue
            task = self._take(agent)
            if task is None:
                end = member.shift_end(t)
                if end - t < 1:
                    yield self.env.timeout(end - t + 0.01)
                    continue
                agent.wake = self.env.event()
                yield agent.wake | self.env.timeout(end - t)
                agent.wake = None
                continue
            task.assigned.succeed(agent)
            began = self.now
            yield task.done
            self.busy[agent.team] += self.now - began
            # wrap-up, breaks, coaching: off-queue time (team leads have more of it)
            if rng.random() < (0.5 if agent.lead else OFF_QUEUE):
                yield self.env.timeout(_lognormal(rng, 30 if agent.lead else 20, 0.6))

    def _take(self, agent: Agent) -> Task | None:
        if agent.personal:
            best = min(agent.personal, key=lambda t: t.key)
            agent.personal.remove(best)
            return best
        queue = self.queues[agent.team]
        if not queue:
            return None
        skills = agent.skills
        now = self.now
        chosen: Task | None = None
        for task in queue:
            fits = all(s in skills for s in task.required) or now - task.key[2] > 20
            if fits and (chosen is None or task.key < chosen.key):
                chosen = task
        if chosen is not None:
            queue.remove(chosen)
        return chosen

    def _wake(self, agent: Agent) -> None:
        if agent.wake is not None and not agent.wake.triggered:
            agent.wake.succeed()
            agent.wake = None

    def _submit(self, task: Task) -> None:
        if task.agent is not None:
            task.agent.personal.append(task)
            self._wake(task.agent)
            return
        self.queues[task.team].append(task)
        idle = [a for a in self.agents[task.team] if a.wake is not None]
        if idle:
            fitting = [a for a in idle if all(s in a.skills for s in task.required)]
            self._wake((fitting or idle)[0])

    def _pickup(self, case: Case) -> Generator[simpy.Event, Any, tuple[Agent, Task]]:
        """Queue work on the case and wait until an agent starts on it.

        Work on an owned ticket goes to its owner, unless the owner is off shift for
        long (days off); then any team member may pick it up and take it over with a
        transfer.
        """
        owner = case.owner
        personal: Agent | None = None
        if owner is not None:
            nxt = owner.member.next_start(self.now)
            away = OWNER_AWAY_HOURS[case.priority] * HOUR
            if nxt is not None and nxt - self.now <= away:
                personal = owner
        # skills matter in the owning team's own queue; borrowed work goes to anyone
        required = self.required_skills.get(case.request_type, ())
        if case.team != self._owner_team(case.request_type):
            required = ()
        key = (
            PRIORITY_RANK[case.priority],
            CHANNEL_RANK.get(case.channel, 2),
            self.now,
            self._next_seq(),
        )
        task = Task(case, case.team, personal, required, key, self.env.event(), self.env.event())
        self._submit(task)
        agent: Agent = yield task.assigned
        if case.team != task.team:
            # a timer moved the ticket to another team while it waited: queue it there
            task.done.succeed()
            return (yield from self._pickup(case))
        if case.owner is None:
            with self.act(case, "user", agent.id) as uow:
                service.accept_ticket(uow, case.id)
            case.owner = agent
        elif case.owner is not agent:
            with self.act(case, "user", agent.id) as uow:
                service.transfer_ticket(
                    uow,
                    case.id,
                    to_agent=agent.id,
                    reason=self.rng.choice(texts.TRANSFER_REASONS["handover"]),
                )
            self._transferred(case, agent)
        return agent, task

    def _owner_team(self, request_type: str) -> str:
        team = self.model.request_type(request_type).owner_team
        assert team is not None
        return team

    def _handle(self, case: Case, factor: float = 1.0) -> float:
        base = TYPES[case.request_type].handle_median * factor * HANDLE_FACTOR
        if case.channel in ("phone", "chat"):
            base *= 0.85
        return max(1.0, _lognormal(self.rng, base, 0.55))

    def _transferred(self, case: Case, to_agent: Agent | None) -> None:
        # the owner itself was mirrored from the ticket when the unit of work ended (a
        # ping-pong guard may have handed the ticket to the lead instead of to_agent)
        case.transfers += 1

    def _reason(self, kind: str, rtype: str, team: str) -> str:
        return self.rng.choice(texts.TRANSFER_REASONS[kind]).format(
            type=rtype.replace("_", " "), team=team.replace("_", " ")
        )

    @contextmanager
    def act(self, case: Case, actor_kind: str, actor_id: int | None = None) -> Iterator[UnitOfWork]:
        """A unit of work on one ticket; the case follows the ticket's new state."""
        with self.write(actor_kind, actor_id) as uow:
            yield uow
        state = uow.projection.tickets.get(case.id)
        if state is not None:
            self._sync(case, state)

    # --- the ticket story --------------------------------------------------------------

    def _plan(self, rtype: str) -> list[str]:
        """What the ticket will need, drawn up front: each step is one agent touch."""
        rng, profile = self.rng, TYPES[rtype]
        plan: list[str] = []
        if profile.partner is not None and rng.random() < PING_PONG:
            plan.append("pingpong")
        for xtype, p in profile.exceptions:
            allowed = self.model.exception_type(xtype).request_types
            if allowed and rtype not in allowed:
                continue
            if rng.random() < p:
                plan.append(f"exception:{xtype}")
                break
        if rng.random() < profile.pending:
            plan.append("pending")
            if rng.random() < SECOND_PENDING:
                plan.append("pending")
        if rng.random() < profile.hold:
            plan.append("hold")
        return plan

    def _priority(self, arrival: Arrival) -> str:
        rng, rtype = self.rng, arrival.request_type
        if arrival.customer.tier == "vip" or rtype == "vip_request":
            return "high"
        r = rng.random()
        if rtype == "device_fault":
            return "urgent" if r < 0.05 else "high" if r < 0.3 else "normal"
        if rtype in ("payment_plan", "complaint"):
            return "high" if r < 0.35 else "normal"
        if rtype in ("move_home", "return_device", "account_access"):
            return "low" if r < 0.12 else "normal"
        return "high" if r < 0.05 else "normal"

    def _customer_id(self, customer: CustomerProfile) -> int:
        customer_id = self.customer_ids.get(customer.index)
        if customer_id is None:
            # first contact: the channel intake creates the customer's identity
            with self.write("system") as uow:
                customer_id = service.create_customer(
                    uow,
                    name=customer.name,
                    tier=customer.tier,
                    handles=[("email", customer.email), ("phone", customer.phone)],
                ).id
            self.customer_ids[customer.index] = customer_id
        return customer_id

    def _create(self, arrival: Arrival) -> tuple[Case, str]:
        """Intake: the ticket as the customer (or bot, or phone line) files it.

        Returns the case and its true request type, which differs from the one given
        at intake when the ticket is misrouted."""
        rng = self.rng
        customer = arrival.customer
        customer_id = self._customer_id(customer)
        rtype = arrival.request_type
        profile = TYPES[rtype]
        first_type = rtype
        if (
            not arrival.repeat
            and profile.misroute_as
            and rng.random() < MISROUTE_BY_CHANNEL.get(arrival.channel, 0.05)
        ):
            first_type = rng.choice(profile.misroute_as)
        case = Case(
            id=0,
            customer=customer,
            customer_id=customer_id,
            request_type=first_type,
            team=self._owner_team(first_type),
            channel=arrival.channel,
            priority=self._priority(arrival),
            created=self.now,
            plan=self._plan(rtype),
            ref=str(rng.randrange(100_000, 999_999)),
            amount=rng.randrange(20, 400),
        )
        if rtype == "complaint" and arrival.follow_up_of is not None:
            case.priority = "high"
        tags = []
        if customer.tier != "standard":
            tags.append(customer.tier)
        if customer.country == "NL":
            tags.append("nl")
        if case.priority == "urgent" and rtype == "device_fault":
            tags.append("no_heating")
        subject = self._pick(texts.SUBJECTS[rtype], case)
        body = self._pick(texts.REPEAT_OPENINGS if arrival.repeat else texts.OPENINGS[rtype], case)
        actor: tuple[str, int | None] = ("customer", customer_id)
        if arrival.channel == "phone":
            actor = ("system", None)  # the telephony integration files call-back requests
            body = f"Call-back request from the phone line: {body}"
        elif arrival.channel == "bot":
            actor = ("bot", None)
            body = f"Bot transcript: {body}"
        with self.write(*actor) as uow:
            state = service.create_ticket(
                uow,
                customer_id=customer_id,
                subject=subject,
                channel=arrival.channel,
                priority=case.priority,
                request_type=first_type,
                tags=tags,
                body=body,
                follow_up_of=arrival.follow_up_of,
            )
            if arrival.channel == "bot":
                service.add_message(
                    uow,
                    state.id,
                    body="I am handing you over to a colleague who will "
                    "reply here; no need to repeat yourself.",
                )
        case.id = state.id
        self.cases[case.id] = case
        self._sync(case, state)
        return case, rtype

    def _story(self, arrival: Arrival, delay: float = 0.0) -> Proc:
        if delay:
            yield self.env.timeout(delay)
        case, true_type = self._create(arrival)
        if true_type != case.request_type:
            yield from self._misrouted(case, true_type)
        yield from self._work(case)

    def _misrouted(self, case: Case, true_type: str) -> Proc:
        """The wrong team reads the ticket, re-triages it and sends it on (or asks to
        keep it with a routing override)."""
        rng = self.rng
        agent, task = yield from self._pickup(case)
        yield self.env.timeout(max(1.0, _lognormal(rng, 5, 0.5)))
        if case.owner is not agent:
            task.done.succeed()  # a timer moved it meanwhile; the story carries on
            return
        to_team = self._owner_team(true_type)
        if rng.random() < ROUTING_OVERRIDE:
            with self.act(case, "user", agent.id) as uow:
                service.triage_ticket(uow, case.id, true_type, rule="agent")
                xid = service.request_exception(
                    uow,
                    case.id,
                    "routing_override",
                    self._pick(texts.EXCEPTION_REASONS["routing_override"], case),
                ).id
                service.change_status(uow, case.id, "on_hold", "awaiting routing decision")
            task.done.succeed()
            outcome = yield from self._decide(case, xid, "routing_override", agent)
            if outcome == "approved":
                return  # the wrong team keeps it and works it
            agent, task = yield from self._pickup(case)
            yield self.env.timeout(2)
            with self.act(case, "user", agent.id) as uow:
                service.change_status(uow, case.id, "open", "routing override denied")
                service.transfer_ticket(
                    uow,
                    case.id,
                    to_team=to_team,
                    reason=self._reason("misroute", true_type, to_team),
                )
            self._transferred(case, None)
            task.done.succeed()
            return
        with self.act(case, "user", agent.id) as uow:
            service.triage_ticket(uow, case.id, true_type, rule="agent")
            service.add_message(
                uow,
                case.id,
                visibility="internal",
                body=f"Not ours: this is {true_type.replace('_', ' ')}.",
            )
            service.change_tags(uow, case.id, add=["misrouted"])
            service.transfer_ticket(
                uow, case.id, to_team=to_team, reason=self._reason("misroute", true_type, to_team)
            )
        self._transferred(case, None)
        task.done.succeed()

    def _resume(self, uow: UnitOfWork, case: Case) -> None:
        if case.status == "on_hold":
            service.change_status(uow, case.id, "open", "resumed")

    def _work(self, case: Case) -> Proc:
        """Agent touches until the ticket is solved, then its after-solve life."""
        rng = self.rng
        touches = 0
        while True:
            step = case.plan.pop(0) if case.plan else "solve"
            agent, task = yield from self._pickup(case)
            if case.transfers >= 3 and case.team != "complaints" and rng.random() < 0.5:
                # bounced too often: the complaint-risk path sends it to complaints
                yield self.env.timeout(3)
                with self.act(case, "user", agent.id) as uow:
                    self._resume(uow, case)
                    service.transfer_ticket(
                        uow,
                        case.id,
                        to_team="complaints",
                        reason=texts.TRANSFER_REASONS["escalate"][0].format(n=case.transfers),
                    )
                self._transferred(case, None)
                task.done.succeed()
                case.plan.insert(0, step)
                continue
            touches += 1
            yield self.env.timeout(self._handle(case, 1.0 if touches == 1 else 0.5))
            if case.owner is not agent:
                # a timer (an escalation) moved the ticket while the agent worked on it
                task.done.succeed()
                case.plan.insert(0, step)
                continue
            if step == "pingpong":
                yield from self._ping_pong(case, agent, task)
                continue
            if step.startswith("exception:"):
                xtype = step.split(":", 1)[1]
                with self.act(case, "user", agent.id) as uow:
                    self._resume(uow, case)
                    xid = service.request_exception(
                        uow, case.id, xtype, self._pick(texts.EXCEPTION_REASONS[xtype], case)
                    ).id
                    service.add_message(
                        uow,
                        case.id,
                        visibility="internal",
                        body=f"Requested a {xtype.replace('_', ' ')} exception.",
                    )
                    service.change_status(uow, case.id, "on_hold", "awaiting exception decision")
                task.done.succeed()
                outcome = yield from self._decide(case, xid, xtype, agent)
                case.plan.insert(0, f"decided:{outcome}:{xtype}")
                continue
            if step.startswith("decided:"):
                _, outcome, xtype = step.split(":")
                with self.act(case, "user", agent.id) as uow:
                    self._resume(uow, case)
                    if outcome != "approved":
                        case.denied = True
                        service.add_message(
                            uow, case.id, body=self._pick(texts.DENIED_REPLIES, case, agent)
                        )
                    elif xtype == "priority_jump":
                        service.change_priority(uow, case.id, "urgent", "priority jump approved")
                    else:
                        service.add_message(
                            uow,
                            case.id,
                            visibility="internal",
                            body="Exception approved; applying it.",
                        )
                    if not case.plan:
                        if outcome == "approved":
                            service.add_message(
                                uow,
                                case.id,
                                body=self._pick(texts.SOLUTIONS[case.request_type], case, agent),
                            )
                        service.change_status(uow, case.id, "solved", "resolved")
                task.done.succeed()
                if case.plan:
                    continue
                break
            if step == "pending":
                with self.act(case, "user", agent.id) as uow:
                    self._resume(uow, case)
                    service.add_message(
                        uow,
                        case.id,
                        body=self._pick(texts.ASK_INFO[case.request_type], case, agent),
                    )
                    service.change_status(uow, case.id, "pending", "waiting on customer")
                task.done.succeed()
                replied = yield from self._customer_wait(case)
                if not replied:
                    break
                continue
            if step == "hold":
                rt = case.request_type
                note = texts.HOLD_NOTES.get(rt, "Waiting on a colleague in another team.")
                with self.act(case, "user", agent.id) as uow:
                    self._resume(uow, case)
                    service.add_message(uow, case.id, visibility="internal", body=note)
                    service.change_tags(uow, case.id, add=[texts.HOLD_TAGS.get(rt, "internal")])
                    service.change_status(uow, case.id, "on_hold", note)
                task.done.succeed()
                lo, hi = TYPES[rt].hold_days
                if hi <= 0:
                    lo, hi = 0.5, 1.5
                yield self.env.timeout(rng.uniform(lo, hi) * DAY)
                continue
            with self.act(case, "user", agent.id) as uow:
                self._resume(uow, case)
                if rng.random() < 0.03 and case.priority in ("low", "normal"):
                    service.change_priority(uow, case.id, "high", "customer impact is higher")
                service.add_message(
                    uow, case.id, body=self._pick(texts.SOLUTIONS[case.request_type], case, agent)
                )
                service.change_status(uow, case.id, "solved", "resolved")
            task.done.succeed()
            break
        yield from self._after_solve(case)

    def _ping_pong(self, case: Case, agent: Agent, task: Task) -> Proc:
        """A -> B -> A: the owner asks another team to check, which sends it back."""
        rng = self.rng
        home = case.team
        partner = TYPES[case.request_type].partner
        assert partner is not None
        if partner == home:
            task.done.succeed()
            return
        with self.act(case, "user", agent.id) as uow:
            self._resume(uow, case)
            service.add_message(
                uow,
                case.id,
                visibility="internal",
                body=f"Asking {partner.replace('_', ' ')} to check first.",
            )
            service.transfer_ticket(
                uow,
                case.id,
                to_team=partner,
                reason=self._reason("pingpong_out", case.request_type, partner),
            )
        self._transferred(case, None)
        task.done.succeed()
        if case.team != partner:
            return  # the ping-pong guard handed it to the team lead instead
        other, task2 = yield from self._pickup(case)
        yield self.env.timeout(self._handle(case, 0.6))
        if case.owner is not other:
            task2.done.succeed()  # a timer moved it meanwhile; the story carries on
            return
        back: Agent | None = agent
        nxt = agent.member.next_start(self.now)
        if nxt is None or nxt - self.now > 2 * HOUR or rng.random() < 0.4:
            back = None  # to the team's queue instead of the previous owner
        with self.act(case, "user", other.id) as uow:
            service.add_message(
                uow, case.id, visibility="internal", body="Checked: nothing wrong on our side."
            )
            service.transfer_ticket(
                uow,
                case.id,
                to_team=home,
                to_agent=back.id if back else None,
                reason=self._reason("pingpong_back", case.request_type, home),
            )
        self._transferred(case, back)
        task2.done.succeed()

    def _decide(
        self, case: Case, xid: int, xtype: str, requester: Agent
    ) -> Generator[simpy.Event, Any, str]:
        """A holder of an approver role decides, within their working hours.

        Returns approved, denied or expired (nobody decided within the type's maximum
        duration, so the nightly job expired the request)."""
        rng = self.rng
        roles = self.model.exception_type(xtype).approver_roles
        candidates: list[StaffMember] = []
        if "team_lead" in roles:
            lead = self.company.lead_of(case.team)
            if lead is not None:
                candidates.append(lead)
        if "finance_approver" in roles:
            candidates.extend(self.finance)
        if "ops_lead" in roles and not candidates:
            candidates.extend(self.ops_leads)
        candidates = [c for c in candidates if c.user_id != requester.id]
        if not candidates:
            # an approver of another team cannot reach the ticket (team scoping)
            candidates = [
                m
                for m in self.company.staff
                if set(m.roles) & set(roles)
                and m.user_id != requester.id
                and (case.team in m.teams or ALL_TEAMS in self.model.granted(m.roles))
            ]
        if not candidates:
            # nobody who holds an approver role reaches the ticket: the request waits out
            # the type's maximum duration and the expiry sweep ends it, as it would live
            limit = float(self.model.exception_type(xtype).max_duration)
            yield self.env.timeout(limit + HOUR)
            return "expired"
        approver = rng.choice(candidates)
        t = self.now + _lognormal(rng, 45, 0.8)
        when = approver.next_start(t)
        yield self.env.timeout((t if when is None else when) - self.now)
        approve = rng.random() < APPROVE_RATE.get(xtype, 0.7)
        with self.act(case, "user", approver.user_id) as uow:
            if uow.exception(xid).status != "requested":
                return "expired"
            service.decide_exception(
                uow, xid, approve=approve, note=rng.choice(texts.DECISION_NOTES[approve])
            )
        return "approved" if approve else "denied"

    def _customer_wait(self, case: Case) -> Generator[simpy.Event, Any, bool]:
        """The customer answers a pending question, or never does (reminder, then solve)."""
        rng = self.rng
        reply_in = None if rng.random() < NO_REPLY else _lognormal(rng, 7 * HOUR, 1.1)
        reminder = 2 * DAY
        if reply_in is not None and reply_in < reminder:
            yield self.env.timeout(reply_in)
            self._customer_reply(case, rng.choice(texts.CUSTOMER_REPLIES))
            return True
        yield self.env.timeout(reminder)
        with self.act(case, "system") as uow:
            service.add_message(uow, case.id, body=texts.REMINDERS[0])
        if reply_in is not None and reply_in < reminder + 3 * DAY:
            yield self.env.timeout(reply_in - reminder)
            self._customer_reply(case, rng.choice(texts.CUSTOMER_REPLIES))
            return True
        yield self.env.timeout(3 * DAY)
        with self.act(case, "system") as uow:
            service.add_message(uow, case.id, body=texts.NO_REPLY_SOLVE)
            service.change_status(uow, case.id, "solved", "no reply after reminder")
        return False

    def _customer_reply(self, case: Case, body: str) -> None:
        channel = "email" if case.channel in ("phone", "bot") else None
        with self.act(case, "customer", case.customer_id) as uow:
            service.add_message(
                uow, case.id, body=self._fmt(body, case), author_kind="customer", channel=channel
            )

    def _after_solve(self, case: Case) -> Proc:
        """CSAT, a reopen (or, once closed, a follow-up ticket) and repeat contacts."""
        rng = self.rng
        case.solved_at = self.now
        self.solved[case.id] = case
        hours = (self.now - case.created) / HOUR
        reopen_p = REOPEN + (0.08 if case.denied else 0) + 0.02 * min(case.transfers, 3)
        reopen_in = _lognormal(rng, 30 * HOUR, 0.8) if rng.random() < reopen_p else None
        csat_in = (
            _lognormal(rng, 5 * HOUR, 1.0) if not case.csat_given and rng.random() < CSAT else None
        )
        repeat_p = REPEAT + (0.05 if case.denied else 0) + (0.03 if case.reopened else 0)
        if rng.random() < repeat_p and case.request_type != "vip_request":
            self.env.process(self._repeat(case, _lognormal(rng, 3 * DAY, 0.5)))
        waited = 0.0
        if csat_in is not None and (reopen_in is None or csat_in < reopen_in):
            yield self.env.timeout(csat_in)
            waited = csat_in
            score = self._csat_score(case, hours)
            with self.act(case, "customer", case.customer_id) as uow:
                service.record_csat(uow, case.id, score, rng.choice(texts.CSAT_COMMENTS[score]))
            case.csat_given = True
        if reopen_in is None:
            return
        yield self.env.timeout(max(0.0, reopen_in - waited))
        if case.status != "solved":
            # closed in the meantime: the customer writes again, as a follow-up ticket
            yield from self._story(
                Arrival(
                    case.customer,
                    case.request_type,
                    case.channel,
                    follow_up_of=case.id,
                    repeat=True,
                )
            )
            return
        self.solved.pop(case.id, None)
        case.reopened = True
        self._customer_reply(case, rng.choice(texts.REOPEN_MESSAGES))
        case.plan = ["pending"] if rng.random() < 0.3 else []
        yield from self._work(case)

    def _repeat(self, case: Case, delay: float) -> Proc:
        """The same customer comes back about the same need with a new ticket."""
        yield self.env.timeout(delay)
        rng = self.rng
        rtype = case.request_type
        if rng.random() < 0.15:
            rtype = "complaint"
        follow = case.id if rng.random() < 0.5 or rtype == "complaint" else None
        channels = TYPES[rtype].channels
        channel = rng.choices(list(channels), list(channels.values()))[0]
        yield from self._story(
            Arrival(case.customer, rtype, channel, follow_up_of=follow, repeat=True)
        )

    def _csat_score(self, case: Case, hours: float) -> int:
        """1-5, lower after long waits, transfers, reopens and denied exceptions."""
        score = 4.7 - 0.45 * min(case.transfers, 4) - (0.9 if case.reopened else 0)
        score -= 1.1 if case.denied else 0
        score -= 0.35 * math.log2(1 + hours / 8)
        score += self.rng.gauss(0, 0.7)
        return int(min(5, max(1, round(score))))
