"""Assignment: which agent of the owning team takes a queued ticket.

The decision (:func:`choose_agent`) is pure. An agent is *eligible* for a ticket when
they are active, a member of the ticket's team, online, within the team's shift hours
(``routing.calendar``), hold every skill the request type requires, and are below both
the team's ``max_open_per_agent`` and its cap for the ticket's channel. Among eligible
agents, *continuity* comes first (the agent who last owned this customer's case, when
``routing.continuity`` is on), then the team's strategy:

- ``least_loaded``: fewest open tickets; ties go to the one idle longest (earliest last
  assignment), then the lowest id;
- ``round_robin``: the one idle longest, then the lowest id.

:func:`react` runs it after every command: a ticket entering a team queue with no agent
(triaged, transferred to a team, overflowed) is accepted on the chosen agent's behalf;
an agent who comes online or frees capacity (solve, close, transfer away) pulls the
oldest queued tickets of their teams they are eligible for. A ticket nobody can take
waits; when the team has ``overflow_after`` and a ``secondary_team``, a
``routing.overflow`` job moves it there after that wait (:func:`fire_overflow`), and
when the shift is closed a ``routing.shift_open`` job offers it again at the next
opening (:func:`fire_shift_open`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opsdesk.domain import commands as cmd
from opsdesk.domain.errors import NotFound
from opsdesk.domain.events import Event
from opsdesk.domain.state import TicketState
from opsdesk.model.schema import OperatingModel, TeamRouting
from opsdesk.routing import queries
from opsdesk.routing.queries import Load
from opsdesk.sla.businesstime import BusinessCalendar
from opsdesk.store.jobs import Job
from opsdesk.store.uow import UnitOfWork

OVERFLOW_JOB = "routing.overflow"
SHIFT_OPEN_JOB = "routing.shift_open"
#: the reason of an overflow transfer starts with this (a ticket that overflowed into a
#: team does not overflow again from there, so two teams backing each other up cannot
#: bounce it)
OVERFLOW_REASON = "overflow:"
#: an overflow finding no free agent in the secondary team looks again this much later
#: at the soonest
OVERFLOW_RECHECK = timedelta(minutes=5)
#: queued tickets an agent who frees capacity looks through, oldest first
PULL_SCAN = 50
#: queued tickets offered when a shift opens (more wait for agents to free capacity)
OPENING_SCAN = 500

_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An agent as the router sees them."""

    id: int
    teams: frozenset[str]
    skills: frozenset[str]
    presence: str = "online"
    active: bool = True
    open_total: int = 0
    open_by_channel: Mapping[str, int] = field(default_factory=dict)
    last_assigned_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TicketNeed:
    """What a queued ticket asks of its agent."""

    id: int
    team: str
    channel: str
    required_skills: frozenset[str] = frozenset()
    #: the agent who last owned this customer's case (for continuity)
    previous_owner: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The chosen agent (None when nobody may take the ticket now) and why."""

    agent: int | None
    #: continuity, least_loaded, round_robin, or none
    rule: str
    reason: str


def ineligibility(candidate: Candidate, need: TicketNeed, routing: TeamRouting) -> str | None:
    """Why ``candidate`` may not take the ticket, or None when they may."""
    if not candidate.active:
        return "deactivated"
    if need.team not in candidate.teams:
        return f"not a member of {need.team}"
    if candidate.presence != "online":
        return candidate.presence
    missing = need.required_skills - candidate.skills
    if missing:
        return f"lacks {', '.join(sorted(missing))}"
    if candidate.open_total >= routing.max_open_per_agent:
        return f"at capacity ({candidate.open_total}/{routing.max_open_per_agent})"
    cap = routing.max_per_channel.get(need.channel)
    if cap is not None and candidate.open_by_channel.get(need.channel, 0) >= cap:
        return f"at {need.channel} capacity ({cap})"
    return None


def choose_agent(
    need: TicketNeed,
    candidates: Iterable[Candidate],
    routing: TeamRouting,
    *,
    shift_open: bool = True,
) -> Decision:
    """Pick the agent for ``need`` among ``candidates`` under the team's ``routing``.

    >>> a = Candidate(1, frozenset({"billing"}), frozenset(), open_total=3)
    >>> b = Candidate(2, frozenset({"billing"}), frozenset(), open_total=1)
    >>> choose_agent(TicketNeed(9, "billing", "email"), [a, b], TeamRouting()).agent
    2
    """
    if not shift_open:
        return Decision(None, "none", f"team {need.team} is outside its shift hours")
    eligible: list[Candidate] = []
    refused: dict[str, int] = {}
    for candidate in candidates:
        why = ineligibility(candidate, need, routing)
        if why is None:
            eligible.append(candidate)
        else:
            kind = why.split(" (")[0]
            refused[kind] = refused.get(kind, 0) + 1
    if not eligible:
        detail = "; ".join(f"{n} {kind}" for kind, n in sorted(refused.items()))
        return Decision(
            None,
            "none",
            f"no eligible agent in team {need.team}" + (f" ({detail})" if detail else ""),
        )
    if routing.continuity and need.previous_owner is not None:
        for candidate in eligible:
            if candidate.id == need.previous_owner:
                return Decision(
                    candidate.id, "continuity", "the agent who last owned the customer's case"
                )
    if routing.strategy == "least_loaded":
        best = min(eligible, key=lambda c: (c.open_total, c.last_assigned_at or _NEVER, c.id))
        return Decision(best.id, "least_loaded", f"fewest open tickets ({best.open_total})")
    best = min(eligible, key=lambda c: (c.last_assigned_at or _NEVER, c.id))
    return Decision(best.id, "round_robin", "longest since their last assignment")


# --- loading what a decision needs ------------------------------------------------------


# Calendars per model version: the model is immutable and cached by the database per
# version, so its identity keys the cache (the entry keeps it alive).
_calendars: dict[tuple[int, str], tuple[OperatingModel, BusinessCalendar]] = {}


def shift_calendar(model: OperatingModel, routing: TeamRouting) -> BusinessCalendar | None:
    """The team's shift calendar (None: always on shift)."""
    if routing.calendar is None:
        return None
    key = (id(model), routing.calendar)
    entry = _calendars.get(key)
    if entry is None or entry[0] is not model:
        if len(_calendars) >= 256:
            _calendars.clear()
        entry = (model, BusinessCalendar.from_model(model.calendar(routing.calendar)))
        _calendars[key] = entry
    return entry[1]


def required_skills(model: OperatingModel, request_type: str | None) -> frozenset[str]:
    if request_type is None:
        return frozenset()
    try:
        return frozenset(model.request_type(request_type).required_skills)
    except KeyError:
        return frozenset()


def candidate(member: queries.Member, load: Load | None) -> Candidate:
    load = load or Load()
    return Candidate(
        id=member.id,
        teams=frozenset(member.teams),
        skills=frozenset(member.skills),
        presence=member.presence,
        active=member.active,
        open_total=load.total,
        open_by_channel=load.by_channel,
        last_assigned_at=load.last_assigned_at,
    )


def team_candidates(uow: UnitOfWork, team: str, channel: str | None) -> list[Candidate]:
    """The online active members of ``team`` with their current load (one query; the
    per-channel load is that of ``channel`` only, none when ``channel`` is None)."""
    uow.flush_for_owned_work()
    rows = queries.online_members_with_load(uow.conn, uow.db.dialect, team, channel)
    return [candidate(member, load) for member, load in rows]


def decide(uow: UnitOfWork, ticket: TicketState, team: str | None = None) -> Decision:
    """The routing decision for ``ticket`` in ``team`` (default: its owning team), with
    the candidates, loads and previous owner read from the database."""
    model = uow.model
    team = team or ticket.owning_team
    if team is None:
        return Decision(None, "none", f"ticket {ticket.id} has no team")
    try:
        routing = model.team(team).routing
    except KeyError:
        return Decision(None, "none", f"team {team} is not in the operating model")
    calendar = shift_calendar(model, routing)
    if calendar is not None and not calendar.is_open(uow.now):
        return choose_agent(
            TicketNeed(ticket.id, team, ticket.channel), [], routing, shift_open=False
        )
    capped = ticket.channel in routing.max_per_channel
    candidates = team_candidates(uow, team, ticket.channel if capped else None)
    previous = None
    if routing.continuity and candidates:
        window = timedelta(days=model.settings.repeat_contact_window_days)
        previous = queries.previous_owner(
            uow.conn,
            customer_id=ticket.customer_id,
            ticket_id=ticket.id,
            since=uow.now - window,
            follow_up_of=ticket.follow_up_of,
        )
    need = TicketNeed(
        ticket.id, team, ticket.channel, required_skills(model, ticket.request_type), previous
    )
    return choose_agent(need, candidates, routing)


# --- the reactor ---------------------------------------------------------------------------


def _system(uow: UnitOfWork) -> cmd.Context:
    # the router acts as the system: whoever's command freed the capacity or queued the
    # ticket need not hold tickets.assign for the router to hand out work
    return cmd.Context(model=uow.model, now=uow.now, ids=uow)


def _queued(ticket: TicketState, team: str | None = None) -> bool:
    return (
        ticket.owning_team is not None
        and ticket.owning_agent is None
        and ticket.queued_at is not None
        and ticket.status in queries.LOAD_STATUSES
        and (team is None or ticket.owning_team == team)
    )


def react(uow: UnitOfWork, events: Sequence[Event]) -> list[Event]:
    """Route tickets that entered a queue; let agents who can take more pull work."""
    # ticket id -> (it entered a queue, it may overflow from there); a re-triage within
    # the team is routed again (the skills needed may have changed) but is no new entry
    routes: dict[int, tuple[bool, bool]] = {}
    freed: dict[int, None] = {}  # agent ids, in order
    for e in events:
        if e.type == "ticket.triaged" or (
            e.type == "ticket.transferred" and e.payload["to_agent"] is None
        ):
            assert e.ticket_id is not None
            if e.type == "ticket.triaged":
                entry = e.payload["before_team"] != e.payload["owning_team"]
                may_overflow = True
            else:
                entry = True
                may_overflow = not str(e.payload["reason"]).startswith(OVERFLOW_REASON)
            before_entry, _ = routes.get(e.ticket_id, (False, True))
            routes[e.ticket_id] = (entry or before_entry, may_overflow)
        if e.type == "ticket.transferred":
            before, after = e.payload["from_agent"], e.payload["to_agent"]
            if before is not None and before != after:
                freed[before] = None
        elif e.type == "ticket.status_changed" and e.payload["after"] in ("solved", "closed"):
            assert e.ticket_id is not None
            owner = uow.ticket(e.ticket_id).owning_agent
            if owner is not None:
                freed[owner] = None
        elif _may_take_more(e):
            freed[int(e.payload["user_id"])] = None
    out: list[Event] = []
    for ticket_id, (entry, may_overflow) in routes.items():
        out += route_ticket(uow, ticket_id, on_entry=entry, may_overflow=may_overflow)
    for agent_id in freed:
        out += pull(uow, agent_id)
    return out


def _may_take_more(e: Event) -> bool:
    """A user event after which the agent may be eligible for more: they came online,
    or their teams or skills changed."""
    if e.type == "user.presence_changed":
        return bool(e.payload["after"] == "online")
    return e.type == "user.changed" and e.payload["field"] in ("teams", "skills")


def route_ticket(
    uow: UnitOfWork, ticket_id: int, *, on_entry: bool = False, may_overflow: bool = True
) -> list[Event]:
    """Give a queued ticket to the chosen agent. When nobody may take it and it has just
    entered the queue (``on_entry``), schedule its overflow and its offer at the next
    shift opening."""
    ticket = uow.ticket(ticket_id)
    if not _queued(ticket):
        return []
    decision = decide(uow, ticket)
    if decision.agent is not None:
        agent = uow.user(decision.agent)
        return uow.append(cmd.accept_ticket(_system(uow), ticket, agent))
    if not on_entry:
        return []
    team_id = ticket.owning_team
    assert team_id is not None and ticket.queued_at is not None
    model = uow.model
    try:
        team = model.team(team_id)
    except KeyError:
        return []
    routing = team.routing
    if may_overflow and routing.overflow_after is not None and team.secondary_team is not None:
        due = ticket.queued_at + timedelta(minutes=routing.overflow_after)
        uow.schedule(OVERFLOW_JOB, due, ticket_id=ticket.id, ref=team_id)
    calendar = shift_calendar(model, routing)
    if calendar is not None and not calendar.is_open(uow.now):
        offer_at_opening(uow, team_id, calendar)
    return []


def offer_at_opening(uow: UnitOfWork, team_id: str, calendar: BusinessCalendar) -> None:
    """Put one ``routing.shift_open`` job for the team at its next shift opening (one per
    team and opening, however many tickets and agents ask for it)."""
    at = calendar.next_open(uow.now)
    uow.flush()
    uow.schedule(SHIFT_OPEN_JOB, at, ref=team_id, once=True)


def pull(uow: UnitOfWork, agent_id: int) -> list[Event]:
    """An online agent takes the oldest queued tickets of their teams that they are
    eligible for, up to their capacity."""
    user = uow.user(agent_id)
    if not user.active or user.presence != "online" or not user.teams:
        return []
    model = uow.model
    routings: dict[str, TeamRouting] = {}
    for team_id in user.teams:
        try:
            routing = model.team(team_id).routing
        except KeyError:
            continue
        calendar = shift_calendar(model, routing)
        if calendar is None or calendar.is_open(uow.now):
            routings[team_id] = routing
        else:  # the agent is ready before the shift: give them its queue when it opens
            offer_at_opening(uow, team_id, calendar)
    if not routings:
        return []
    uow.flush()
    load = queries.loads(uow.conn, [agent_id]).get(agent_id) or Load()
    if all(load.total >= r.max_open_per_agent for r in routings.values()):
        return []
    out: list[Event] = []
    for ticket_id in queries.queued_tickets(uow.conn, routings, PULL_SCAN):
        ticket = uow.ticket(ticket_id)
        if not _queued(ticket) or ticket.owning_team not in routings:
            continue
        routing = routings[ticket.owning_team]
        member = queries.Member(
            user.id, user.teams, user.skills, user.roles, user.presence, user.active
        )
        need = TicketNeed(
            ticket.id,
            ticket.owning_team,
            ticket.channel,
            required_skills(model, ticket.request_type),
        )
        if ineligibility(candidate(member, load), need, routing) is not None:
            continue
        out += uow.append(cmd.accept_ticket(_system(uow), ticket, user))
        load = load.plus(ticket.channel, uow.now)
        if all(load.total >= r.max_open_per_agent for r in routings.values()):
            break
    return out


# --- jobs ------------------------------------------------------------------------------


def _job_ticket(uow: UnitOfWork, job: Job) -> TicketState | None:
    if job.ticket_id is None:
        return None
    try:
        ticket = uow.ticket(job.ticket_id)
    except NotFound:
        return None
    return ticket if _queued(ticket, job.ref) else None


def fire_overflow(uow: UnitOfWork, job: Job) -> None:
    """``routing.overflow`` (ref: the team): move a ticket still waiting in that team's
    queue after ``overflow_after`` to its ``secondary_team``.

    The move happens only when the secondary team has an agent who may take the ticket
    now (otherwise it would only add a transfer); if not, it looks again later. A ticket
    accepted, moved or re-queued since is left alone (a re-queued one has its own job).
    """
    ticket = _job_ticket(uow, job)
    if ticket is None or ticket.queued_at is None:
        return
    model = uow.model
    try:
        team = model.team(job.ref)
    except KeyError:
        return
    after = team.routing.overflow_after
    if after is None or team.secondary_team is None:
        return
    due = ticket.queued_at + timedelta(minutes=after)
    if due > uow.now:
        # queued again after this job was set, or the wait was lengthened
        uow.schedule(OVERFLOW_JOB, due, ticket_id=ticket.id, ref=team.id)
        return
    if decide(uow, ticket, team.secondary_team).agent is None:
        recheck = uow.now + max(timedelta(minutes=after), OVERFLOW_RECHECK)
        try:
            secondary = shift_calendar(model, model.team(team.secondary_team).routing)
        except KeyError:
            return
        if secondary is not None and not secondary.is_open(uow.now):
            recheck = max(recheck, secondary.next_open(uow.now))  # not before its shift
        uow.schedule(OVERFLOW_JOB, recheck, ticket_id=ticket.id, ref=team.id)
        return
    waited = int((uow.now - ticket.queued_at).total_seconds() // 60)
    uow.append(
        cmd.transfer_ticket(
            _system(uow),
            ticket,
            reason=f"{OVERFLOW_REASON} waited {waited} min in {team.id}",
            to_team=team.secondary_team,
        )
    )


def fire_shift_open(uow: UnitOfWork, job: Job) -> None:
    """``routing.shift_open`` (ref: the team): the team's shift has opened; offer the
    tickets waiting in its queue, oldest first, to its online agents."""
    model = uow.model
    try:
        routing = model.team(job.ref).routing
    except KeyError:
        return
    calendar = shift_calendar(model, routing)
    if calendar is not None and not calendar.is_open(uow.now):
        offer_at_opening(uow, job.ref, calendar)  # the calendar changed since
        return
    if not team_candidates(uow, job.ref, None):
        return  # nobody online: the first agent to come online pulls the queue
    for ticket_id in queries.queued_tickets(uow.conn, [job.ref], OPENING_SCAN):
        route_ticket(uow, ticket_id)
