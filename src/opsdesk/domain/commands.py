"""Domain commands: decide which events a request produces, or refuse it.

Each function takes the current state it needs and returns the events to append; it
never touches storage. A refused command raises a :class:`DomainError` subclass with a
message that says what to do instead. The store applies the events to the projections
and writes both in one transaction (see ``opsdesk.store.uow``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from email_validator import EmailNotValidError, validate_email

from opsdesk.domain import events as ev
from opsdesk.domain.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    OwnershipViolation,
    PermissionDenied,
)
from opsdesk.domain.events import NewEvent, new_event
from opsdesk.domain.lifecycle import TRANSITIONS, allowed, is_reopen
from opsdesk.domain.limits import (
    CSAT_MAX,
    CSAT_MIN,
    MAX_BODY,
    MAX_HANDLE,
    MAX_HANDLES,
    MAX_NAME,
    MAX_NOTE,
    MAX_REASON,
    MAX_SUBJECT,
    MAX_TAG,
    MAX_TAGS,
    text_problem,
)
from opsdesk.domain.state import CustomerState, ExceptionState, TicketState, UserState
from opsdesk.model import OperatingModel
from opsdesk.model.vocabulary import CHANNELS, CUSTOMER_TIERS, PRIORITIES

HANDLE_KINDS = ("email", "phone", "chat", "external")
PRESENCES = ("online", "away", "offline")


class IdAllocator(Protocol):
    def next_id(self, kind: str) -> int: ...


@dataclass(frozen=True)
class Context:
    """Who is acting, when, and under which operating model."""

    model: OperatingModel
    now: datetime
    ids: IdAllocator
    actor_kind: str = "system"
    actor: UserState | None = None

    def require(self, permission: str) -> None:
        """Refuse unless a user actor's roles grant ``permission`` (system and bots pass)."""
        if self.actor_kind != "user":
            return
        if self.actor is None or not self.actor.active:
            raise PermissionDenied("the acting user is unknown or deactivated", permission)
        granted = self.model.granted(self.actor.roles)
        if permission not in granted and "*" not in granted:
            raise PermissionDenied(
                f"user {self.actor.id} lacks the permission {permission!r}; "
                "ask an admin to grant a role that has it",
                permission,
            )


# --- helpers -----------------------------------------------------------------


def _text(value: str, what: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise DomainError(f"{what} must not be empty")
    if len(value) > limit:
        raise DomainError(f"{what} is longer than {limit} characters")
    problem = text_problem(value)
    if problem:
        raise DomainError(f"{what} {problem}")
    return value


def _optional_text(value: str, what: str, limit: int) -> str:
    """Like :func:`_text`, but an empty value is allowed (and stays empty)."""
    return _text(value, what, limit) if value.strip() else ""


def _tags(values: Iterable[str]) -> set[str]:
    """Tags as stored: trimmed and lower-cased; a blank one is dropped."""
    return {_text(t, "a tag", MAX_TAG).lower() for t in values if t.strip()}


def _tag_count(ticket_id: int | None, tags: set[str]) -> None:
    if len(tags) > MAX_TAGS:
        where = f"ticket {ticket_id}" if ticket_id is not None else "a ticket"
        raise DomainError(
            f"{where} would have {len(tags)} tags; at most {MAX_TAGS} are allowed, "
            "remove some first"
        )


def _priority(value: str) -> str:
    if value not in PRIORITIES:
        raise DomainError(f"unknown priority {value!r}; use one of {', '.join(PRIORITIES)}")
    return value


def _channel(value: str) -> str:
    if value not in CHANNELS:
        raise DomainError(f"unknown channel {value!r}; use one of {', '.join(CHANNELS)}")
    return value


def _open_ticket(ticket: TicketState) -> None:
    if ticket.status == "closed":
        raise InvalidTransition(
            f"ticket {ticket.id} is closed; open a follow-up ticket (follow_up_of={ticket.id})"
        )


def _member(agent: UserState, team: str) -> None:
    if not agent.active:
        raise OwnershipViolation(f"user {agent.id} is deactivated and cannot own tickets")
    if team not in agent.teams:
        raise OwnershipViolation(
            f"user {agent.id} is not a member of team {team!r}; "
            "transfer to one of its members or add the user to the team first"
        )


def check_ownership(ticket: TicketState, users: Mapping[int, UserState]) -> None:
    """The ownership invariant, checked after every command that touches a ticket.

    From triage on a ticket has exactly one owning team; from acceptance on exactly one
    owning agent, who is an active member of that team while the ticket is not closed. A
    solved or closed ticket always has an owning agent: someone owns the resolution.
    """
    if ticket.triaged_at is not None and ticket.owning_team is None:
        raise OwnershipViolation(f"ticket {ticket.id} would be left without an owning team")
    if ticket.accepted_at is not None and ticket.owning_agent is None:
        raise OwnershipViolation(f"ticket {ticket.id} would be left without an owning agent")
    if ticket.status in ("solved", "closed") and ticket.owning_agent is None:
        raise OwnershipViolation(
            f"ticket {ticket.id} is {ticket.status} and would be left without an owning agent"
        )
    if ticket.owning_agent is not None and ticket.status != "closed":
        # a closed ticket keeps its last owner as history, even after they leave
        agent = users.get(ticket.owning_agent)
        if agent is None or not agent.active or ticket.owning_team not in agent.teams:
            raise OwnershipViolation(
                f"ticket {ticket.id} would be owned by user {ticket.owning_agent}, "
                f"who is not an active member of team {ticket.owning_team!r}"
            )


# --- customers ---------------------------------------------------------------


def create_customer(
    ctx: Context,
    *,
    name: str,
    tier: str = "standard",
    handles: Iterable[tuple[str, str]] = (),
    taken: Mapping[tuple[str, str], int] | None = None,
) -> list[NewEvent]:
    """A new customer identity with its channel handles (which must be free)."""
    ctx.require("customers.write")
    if tier not in CUSTOMER_TIERS:
        raise DomainError(f"unknown tier {tier!r}; use one of {', '.join(CUSTOMER_TIERS)}")
    handles = list(handles)
    if len(handles) > MAX_HANDLES:
        raise DomainError(f"a customer has at most {MAX_HANDLES} handles; {len(handles)} given")
    clean = [normalise_handle(kind, value) for kind, value in handles]
    if len(set(clean)) != len(clean):
        raise DomainError("the same handle is given twice")
    for key in clean:
        if taken and key in taken:
            raise Conflict(
                f"handle {key[0]}:{key[1]} already belongs to customer {taken[key]}; "
                "add to that customer or merge the two"
            )
    customer_id = ctx.ids.next_id("customer")
    payload = ev.CustomerCreated(
        name=_text(name, "customer name", MAX_NAME),
        tier=tier,
        handles=[ev.Handle(kind=k, value=v) for k, v in clean],
    )
    return [new_event("customer.created", payload, customer_id=customer_id)]


def normalise_handle(kind: str, value: str) -> tuple[str, str]:
    """A channel handle as stored: known kind, trimmed, e-mail lower-cased."""
    if kind not in HANDLE_KINDS:
        raise DomainError(f"unknown handle kind {kind!r}; use one of {', '.join(HANDLE_KINDS)}")
    value = _text(value, "a handle value", MAX_HANDLE)
    if value == ev.ERASED:  # replay skips erased handles: a live one would never verify
        raise DomainError(f"{ev.ERASED!r} is reserved for erased handles; give the real one")
    if kind == "email":
        try:
            # syntax only: no DNS; .test addresses (RFC 6761) are what demos and fixtures use
            validate_email(value, check_deliverability=False, test_environment=True)
        except EmailNotValidError as exc:
            raise DomainError(f"{value!r} is not an e-mail address: {exc}") from None
        value = value.lower()
    return (kind, value)


def add_handle(
    ctx: Context, customer: CustomerState, kind: str, value: str, owner: int | None
) -> list[NewEvent]:
    """Attach a channel handle to a customer; refused if another customer holds it."""
    ctx.require("customers.write")
    key = normalise_handle(kind, value)
    if customer.merged_into is not None:
        raise Conflict(
            f"customer {customer.id} was merged into {customer.merged_into}; use that one"
        )
    if owner is not None:
        if owner == customer.id:
            return []
        raise Conflict(f"handle {key[0]}:{key[1]} already belongs to customer {owner}; merge them")
    payload = ev.CustomerHandleAdded(kind=key[0], value=key[1])
    return [new_event("customer.handle_added", payload, customer_id=customer.id)]


def merge_customers(
    ctx: Context,
    source: CustomerState,
    target: CustomerState,
    source_handles: Iterable[tuple[str, str]],
) -> list[NewEvent]:
    """Merge ``source`` into ``target``: handles move, both histories are kept."""
    ctx.require("customers.merge")
    if source.id == target.id:
        raise DomainError("cannot merge a customer into itself")
    for c in (source, target):
        if c.merged_into is not None:
            raise Conflict(f"customer {c.id} was already merged into {c.merged_into}")
    payload = ev.CustomerMerged(
        source_id=source.id,
        target_id=target.id,
        handles_moved=[ev.Handle(kind=k, value=v) for k, v in sorted(source_handles)],
    )
    return [new_event("customer.merged", payload, customer_id=target.id)]


# --- users -------------------------------------------------------------------


def _check_user_refs(
    model: OperatingModel, roles: list[str], teams: list[str], skills: list[str]
) -> None:
    known_roles = {r.id for r in model.roles}
    known_teams = {t.id for t in model.teams}
    for role in roles:
        if role not in known_roles:
            raise DomainError(
                f"unknown role {role!r}; the operating model defines {sorted(known_roles)}"
            )
    for team in teams:
        if team not in known_teams:
            raise DomainError(
                f"unknown team {team!r}; the operating model defines {sorted(known_teams)}"
            )
    if model.skills:
        for skill in skills:
            if skill not in model.skills:
                raise DomainError(
                    f"unknown skill {skill!r}; declare it under `skills:` in the model"
                )


def create_user(
    ctx: Context,
    *,
    name: str,
    email: str,
    roles: list[str],
    teams: list[str],
    skills: list[str] | None = None,
    email_taken: bool = False,
) -> list[NewEvent]:
    """A new agent, lead or admin account."""
    ctx.require("users.manage")
    skills = sorted(set(skills or []))
    roles, teams = sorted(set(roles)), sorted(set(teams))
    _check_user_refs(ctx.model, roles, teams, skills)
    email = email.strip().lower()
    if "@" not in email:
        raise DomainError(f"{email!r} is not an e-mail address")
    if email_taken:
        raise Conflict(f"a user with e-mail {email} already exists")
    user_id = ctx.ids.next_id("user")
    payload = ev.UserCreated(
        user_id=user_id,
        name=_text(name, "user name", MAX_NAME),
        email=email,
        roles=roles,
        teams=teams,
        skills=skills,
    )
    return [new_event("user.created", payload)]


def change_user(
    ctx: Context,
    user: UserState,
    field: str,
    after: list[str],
    owned_ticket_teams: Iterable[str] = (),
) -> list[NewEvent]:
    """Change a user's roles, teams or skills; refused if it would orphan their tickets."""
    ctx.require("users.manage")
    if field not in ("roles", "teams", "skills"):
        raise DomainError(f"cannot change {field!r}; use roles, teams or skills")
    after = sorted(set(after))
    _check_user_refs(
        ctx.model,
        after if field == "roles" else [],
        after if field == "teams" else [],
        after if field == "skills" else [],
    )
    before = list(getattr(user, field))
    if before == after:
        return []
    if field == "teams":
        orphaned = sorted(set(owned_ticket_teams) - set(after))
        if orphaned:
            raise OwnershipViolation(
                f"user {user.id} still owns tickets of {', '.join(orphaned)}; "
                "transfer them before removing the user from the team"
            )
    payload = ev.UserChanged(user_id=user.id, field=field, before=before, after=after)
    return [new_event("user.changed", payload)]


def deactivate_user(
    ctx: Context, user: UserState, owned_tickets: int, reason: str
) -> list[NewEvent]:
    """Deactivate a user; refused while they own tickets."""
    ctx.require("users.manage")
    if not user.active:
        return []
    if owned_tickets:
        raise OwnershipViolation(
            f"user {user.id} owns {owned_tickets} open tickets; transfer them first"
        )
    payload = ev.UserDeactivated(user_id=user.id, reason=_text(reason, "reason", 500))
    return [new_event("user.deactivated", payload)]


def set_presence(ctx: Context, user: UserState, presence: str) -> list[NewEvent]:
    """An agent goes online, away or offline; routing gives work to online agents only.

    Anyone may set their own presence; setting someone else's needs ``users.manage``, or
    ``tickets.assign`` (a lead) for a member of one of the actor's own teams.
    """
    if presence not in PRESENCES:
        raise DomainError(f"unknown presence {presence!r}; use one of {', '.join(PRESENCES)}")
    actor = ctx.actor
    if ctx.actor_kind == "user" and (actor is None or actor.id != user.id):
        try:
            ctx.require("users.manage")
        except PermissionDenied:
            ctx.require("tickets.assign")
            assert actor is not None  # require() refused an unknown actor
            if not set(actor.teams) & set(user.teams):
                raise PermissionDenied(
                    f"user {actor.id} may set the presence of members of their own teams "
                    f"only; user {user.id} is in none of them (users.manage may set anyone's)"
                ) from None
    if presence == user.presence:
        return []
    if not user.active and presence != "offline":
        raise Conflict(f"user {user.id} is deactivated and cannot go {presence}")
    payload = ev.UserPresenceChanged(
        user_id=user.id,
        before=user.presence,
        after=presence,
    )
    return [new_event("user.presence_changed", payload)]


def credentials_changed(
    ctx: Context, user: UserState, what: str, token_id: int | None = None
) -> list[NewEvent]:
    """Record (without the secret) that a password or token changed."""
    payload = ev.UserCredentialsChanged(user_id=user.id, what=what, token_id=token_id)
    return [new_event("user.credentials_changed", payload)]


# --- tickets -----------------------------------------------------------------


def create_ticket(
    ctx: Context,
    *,
    customer: CustomerState,
    subject: str,
    channel: str,
    priority: str | None = None,
    request_type: str | None = None,
    tags: Iterable[str] = (),
    body: str | None = None,
    author_kind: str = "customer",
    follow_up_of: TicketState | None = None,
) -> list[NewEvent]:
    """Open a ticket for a customer; with a request type it is triaged at once."""
    ctx.require("tickets.write")
    if customer.merged_into is not None:
        raise Conflict(
            f"customer {customer.id} was merged into {customer.merged_into}; use that one"
        )
    if follow_up_of is not None and follow_up_of.customer_id != customer.id:
        raise DomainError(
            f"ticket {follow_up_of.id} belongs to another customer; cannot follow it up"
        )
    tag_set = _tags(tags)
    _tag_count(None, tag_set)
    ticket_id = ctx.ids.next_id("ticket")
    created = ev.TicketCreated(
        subject=_text(subject, "subject", MAX_SUBJECT),
        channel=_channel(channel),
        priority=_priority(priority or ctx.model.settings.default_priority),
        tags=sorted(tag_set),
        follow_up_of=follow_up_of.id if follow_up_of else None,
    )
    out = [new_event("ticket.created", created, ticket_id=ticket_id, customer_id=customer.id)]
    if request_type is not None:
        team = _owner_team(ctx.model, request_type)
        out.append(
            new_event(
                "ticket.triaged",
                ev.TicketTriaged(
                    request_type=request_type,
                    owning_team=team,
                    before_request_type=None,
                    before_team=None,
                ),
                ticket_id=ticket_id,
                customer_id=customer.id,
            )
        )
    if body is not None:
        _may_speak_as(ctx, author_kind, opening=True)
        out.append(
            _message(
                ctx, ticket_id, customer.id, "public", author_kind, None, created.channel, body
            )
        )
    return out


def _owner_team(model: OperatingModel, request_type: str) -> str:
    try:
        rt = model.request_type(request_type)
    except KeyError:
        known = ", ".join(r.id for r in model.request_types)
        raise DomainError(f"unknown request type {request_type!r}; known: {known}") from None
    if rt.owner_team is None:
        raise DomainError(f"request type {request_type!r} has no owner team in the model")
    return rt.owner_team


def triage_ticket(
    ctx: Context, ticket: TicketState, request_type: str, rule: str | None = None
) -> list[NewEvent]:
    """Set the request type; the first triage gives the ticket its owning team.

    Re-triaging never moves ownership: a different owner team needs a transfer.
    """
    ctx.require("tickets.write")
    _open_ticket(ticket)
    team = _owner_team(ctx.model, request_type)
    if ticket.owning_team is not None:
        team = ticket.owning_team
    if ticket.request_type == request_type and ticket.owning_team == team:
        return []
    payload = ev.TicketTriaged(
        request_type=request_type,
        owning_team=team,
        before_request_type=ticket.request_type,
        before_team=ticket.owning_team,
        rule=rule,
    )
    return [
        new_event("ticket.triaged", payload, ticket_id=ticket.id, customer_id=ticket.customer_id)
    ]


def accept_ticket(ctx: Context, ticket: TicketState, agent: UserState) -> list[NewEvent]:
    """An agent of the owning team takes ownership; a new ticket becomes open."""
    ctx.require("tickets.write")
    _open_ticket(ticket)
    if ticket.owning_team is None:
        raise OwnershipViolation(
            f"ticket {ticket.id} is not triaged yet; set its request type first"
        )
    if ticket.owning_agent is not None:
        if ticket.owning_agent == agent.id:
            return []
        raise OwnershipViolation(
            f"ticket {ticket.id} is owned by user {ticket.owning_agent}; transfer it instead"
        )
    if ctx.actor_kind == "user" and ctx.actor is not None and ctx.actor.id != agent.id:
        ctx.require("tickets.assign")
    _member(agent, ticket.owning_team)
    out = [
        new_event(
            "ticket.accepted",
            ev.TicketAccepted(agent_id=agent.id, team=ticket.owning_team),
            ticket_id=ticket.id,
            customer_id=ticket.customer_id,
        )
    ]
    if ticket.status == "new":
        out.append(_status(ticket, "open", "accepted"))
    return out


def _status(ticket: TicketState, after: str, reason: str) -> NewEvent:
    payload = ev.TicketStatusChanged(
        before=ticket.status, after=after, reason=reason, reopened=is_reopen(ticket.status, after)
    )
    return new_event(
        "ticket.status_changed", payload, ticket_id=ticket.id, customer_id=ticket.customer_id
    )


def change_status(
    ctx: Context, ticket: TicketState, after: str, reason: str = ""
) -> list[NewEvent]:
    """Move the ticket along its lifecycle; moves outside it are refused."""
    ctx.require("tickets.write")
    if after == ticket.status:
        return []
    if not allowed(ticket.status, after):
        onward = TRANSITIONS.get(ticket.status, frozenset())
        hint = (
            f"from {ticket.status} it can go to {', '.join(sorted(onward))}"
            if onward
            else "closed tickets are final, open a follow-up ticket"
        )
        raise InvalidTransition(
            f"ticket {ticket.id} cannot go from {ticket.status} to {after}; {hint}"
        )
    if ticket.owning_team is None:
        raise OwnershipViolation(
            f"ticket {ticket.id} is not triaged yet; set its request type first"
        )
    if after == "solved" and ticket.owning_agent is None:
        raise OwnershipViolation(
            f"ticket {ticket.id} has no owning agent; an agent must accept it before solving"
        )
    return [_status(ticket, after, _optional_text(reason, "reason", MAX_REASON))]


def change_priority(
    ctx: Context, ticket: TicketState, after: str, reason: str = ""
) -> list[NewEvent]:
    """Change the ticket's priority."""
    ctx.require("tickets.write")
    _open_ticket(ticket)
    after = _priority(after)
    if after == ticket.priority:
        return []
    payload = ev.TicketPriorityChanged(
        before=ticket.priority, after=after, reason=_optional_text(reason, "reason", MAX_REASON)
    )
    return [
        new_event(
            "ticket.priority_changed", payload, ticket_id=ticket.id, customer_id=ticket.customer_id
        )
    ]


def transfer_ticket(
    ctx: Context,
    ticket: TicketState,
    *,
    reason: str,
    to_team: str | None = None,
    to_agent: UserState | None = None,
) -> list[NewEvent]:
    """Move ownership explicitly to a team and/or one of its agents, with a reason.

    A transfer to a team without an agent hands the ticket to that team's queue: the
    team owns it until one of its agents accepts it.
    """
    ctx.require("tickets.transfer")
    _open_ticket(ticket)
    reason = _text(reason, "transfer reason", MAX_REASON)
    team = to_team or ticket.owning_team
    if team is None:
        raise OwnershipViolation(
            f"ticket {ticket.id} has no team yet; name the team to transfer to"
        )
    if team not in {t.id for t in ctx.model.teams}:
        raise DomainError(f"unknown team {team!r}")
    if to_agent is not None:
        _member(to_agent, team)
    agent_id = to_agent.id if to_agent else None
    if team == ticket.owning_team and agent_id == ticket.owning_agent:
        raise DomainError(f"ticket {ticket.id} is already owned by that team and agent")
    if team == ticket.owning_team and agent_id is None:
        raise OwnershipViolation(
            f"a transfer within team {team!r} must name the agent who takes the ticket"
        )
    if ticket.status == "solved" and agent_id is None:
        # a team-only transfer empties the owning agent; a solved ticket must keep one
        raise OwnershipViolation(
            f"ticket {ticket.id} is solved and keeps the agent who owns its resolution; "
            f"name the agent of {team!r} who takes it, or reopen it first"
        )
    payload = ev.TicketTransferred(
        from_team=ticket.owning_team,
        to_team=team,
        from_agent=ticket.owning_agent,
        to_agent=agent_id,
        reason=reason,
    )
    out = [
        new_event(
            "ticket.transferred", payload, ticket_id=ticket.id, customer_id=ticket.customer_id
        )
    ]
    if agent_id is not None and ticket.status == "new":
        # handing a new ticket to an agent is an acceptance on their behalf: it opens
        out.append(_status(ticket, "open", "assigned"))
    return out


def transfer_is_contested(ctx: Context, ticket: TicketState, to_team: str | None) -> bool:
    """Whether the ping-pong guard stops this transfer: it would be the ticket's Nth
    (``settings.ping_pong_transfer_limit``) and move it to another team.

    A lead of the owning team (a member holding its ``lead_role``) is not stopped: the
    guard hands contested tickets to them so that they decide where the ticket goes.
    """
    if ticket.owning_team is None or to_team is None or to_team == ticket.owning_team:
        return False
    if ticket.transfer_count + 1 < ctx.model.settings.ping_pong_transfer_limit:
        return False
    actor = ctx.actor
    if ctx.actor_kind == "user" and actor is not None:
        lead_role = _lead_role(ctx.model, ticket.owning_team)
        if lead_role in actor.roles and ticket.owning_team in actor.teams:
            return False
    return True


def _lead_role(model: OperatingModel, team_id: str) -> str | None:
    try:
        return model.team(team_id).lead_role
    except KeyError:
        return None


def choose_lead(
    model: OperatingModel, team: str, candidates: Iterable[tuple[UserState, int]]
) -> UserState | None:
    """The lead who takes a ticket of ``team`` (contested, or escalated to its lead):
    an active member holding the team's ``lead_role``, online first, then the one with
    the fewest open tickets (``candidates`` pair users with that load), then lowest id.
    None when the team has no lead role or no such member."""
    lead_role = _lead_role(model, team)
    eligible = [
        (user, load)
        for user, load in candidates
        if lead_role is not None and user.active and lead_role in user.roles and team in user.teams
    ]
    if not eligible:
        return None
    return min(eligible, key=lambda pair: (pair[0].presence != "online", pair[1], pair[0].id))[0]


def contest_ownership(
    ctx: Context,
    ticket: TicketState,
    *,
    reason: str,
    to_team: str,
    to_agent: UserState | None,
    leads: Iterable[tuple[UserState, int]],
) -> list[NewEvent]:
    """The ping-pong guard: instead of the requested transfer, record
    ``ownership.contested`` and hand the ticket to a lead of the owning team, who decides.

    ``leads`` are the owning team's users with their open-ticket load; the lead chosen is
    an active member holding the team's ``lead_role``, online first, then least loaded,
    then lowest id. Refused (:class:`Conflict`) when the team has no such lead. When the
    ticket is already with that lead, only the contest is recorded.
    """
    # the requested transfer must be valid on its own (permission, reason, team, agent)
    transfer_ticket(ctx, ticket, reason=reason, to_team=to_team, to_agent=to_agent)
    team = ticket.owning_team
    assert team is not None  # transfer_is_contested() holds
    lead_role = _lead_role(ctx.model, team)
    if lead_role is None:
        raise Conflict(
            f"transfer {ticket.transfer_count + 1} of ticket {ticket.id} reaches the ping-pong "
            f"limit, and team {team!r} has no lead_role to decide it; set one in the model"
        )
    lead = choose_lead(ctx.model, team, leads)
    if lead is None:
        raise Conflict(
            f"transfer {ticket.transfer_count + 1} of ticket {ticket.id} reaches the ping-pong "
            f"limit and goes to a lead of team {team!r}, which has no active member with "
            f"role {lead_role!r}; add a lead to the team"
        )
    number = ticket.transfer_count + 1
    contested = ev.OwnershipContested(
        transfer_number=number,
        requested_team=to_team,
        requested_agent=to_agent.id if to_agent else None,
        owning_team=team,
        lead_id=lead.id,
        reason=_text(reason, "transfer reason", MAX_REASON),
    )
    out = [
        new_event(
            "ownership.contested", contested, ticket_id=ticket.id, customer_id=ticket.customer_id
        )
    ]
    if ticket.owning_agent != lead.id:
        out += transfer_ticket(
            ctx,
            ticket,
            reason=f"ownership contested: transfer {number} would move it to {to_team}; "
            f"the lead of {team} decides",
            to_agent=lead,
        )
    return out


def change_tags(
    ctx: Context, ticket: TicketState, add: Iterable[str] = (), remove: Iterable[str] = ()
) -> list[NewEvent]:
    """Add and remove tags."""
    ctx.require("tickets.write")
    _open_ticket(ticket)
    current = set(ticket.tags)
    added = sorted(_tags(add) - current)
    removed = sorted({t.strip().lower() for t in remove} & current)
    if not added and not removed:
        return []
    _tag_count(ticket.id, (current | set(added)) - set(removed))
    payload = ev.TicketTagsChanged(added=added, removed=removed)
    return [
        new_event(
            "ticket.tags_changed", payload, ticket_id=ticket.id, customer_id=ticket.customer_id
        )
    ]


AUTHOR_KINDS = ("customer", "agent", "bot", "system")


def _may_speak_as(ctx: Context, author_kind: str, *, opening: bool = False) -> None:
    """Who may speak as whom. A person posts as themself (``agent``: a reply or an
    internal note, with ``messages.write``); a customer's or a bot's words come in
    through a channel integration's account (``messages.customer``), except the first
    message of a ticket a person opens for a customer, which they relay (the event still
    names them as the actor). ``system`` is opsdesk's own voice, never a client's."""
    if author_kind not in AUTHOR_KINDS:
        raise DomainError(f"unknown author kind {author_kind!r}; use one of agent, customer, bot")
    if ctx.actor_kind != "user":
        return  # opsdesk itself, its channels and bots, in process
    if author_kind == "system":
        raise DomainError(
            "a client cannot post as `system`: that is opsdesk's own voice; "
            "post as `agent` (a reply or an internal note)"
        )
    if author_kind == "agent":
        ctx.require("messages.write")
    elif not (opening and author_kind == "customer"):
        ctx.require("messages.customer")


def _message(
    ctx: Context,
    ticket_id: int,
    customer_id: int,
    visibility: str,
    author_kind: str,
    author_id: int | None,
    channel: str,
    body: str,
) -> NewEvent:
    if visibility not in ("public", "internal"):
        raise DomainError(f"unknown visibility {visibility!r}; use public or internal")
    if author_kind == "customer" and visibility == "internal":
        raise DomainError("customers cannot write internal notes")
    payload = ev.MessageAdded(
        message_id=ctx.ids.next_id("message"),
        visibility=visibility,
        author_kind=author_kind,
        author_id=author_id,
        channel=_channel(channel),
        body=_text(body, "message body", MAX_BODY),
    )
    return new_event("message.added", payload, ticket_id=ticket_id, customer_id=customer_id)


def add_message(
    ctx: Context,
    ticket: TicketState,
    *,
    body: str,
    visibility: str = "public",
    author_kind: str = "agent",
    author_id: int | None = None,
    channel: str | None = None,
) -> list[NewEvent]:
    """Add a public reply or internal note.

    A customer's reply reopens a solved ticket and takes a pending one back to open.
    Who may post which ``author_kind`` is :func:`_may_speak_as`.
    """
    _may_speak_as(ctx, author_kind)
    _open_ticket(ticket)
    out = [
        _message(
            ctx,
            ticket.id,
            ticket.customer_id,
            visibility,
            author_kind,
            author_id,
            channel or ticket.channel,
            body,
        )
    ]
    if author_kind == "customer":
        if ticket.status == "pending":
            out.append(_status(ticket, "open", "customer replied"))
        elif ticket.status == "solved":
            out.append(_status(ticket, "open", "customer replied after solve"))
    return out


def record_csat(ctx: Context, ticket: TicketState, score: int, comment: str = "") -> list[NewEvent]:
    """The customer's rating (1-5) of a solved or closed ticket."""
    ctx.require("tickets.write")
    if ticket.status not in ("solved", "closed"):
        raise InvalidTransition(f"ticket {ticket.id} is {ticket.status}; CSAT follows a solve")
    # bool is an int in Python; a rating of True is a caller's mistake, not a 1
    if isinstance(score, bool) or not isinstance(score, int) or not CSAT_MIN <= score <= CSAT_MAX:
        raise DomainError(f"a CSAT score is an integer from {CSAT_MIN} to {CSAT_MAX}")
    if ticket.csat_score is not None:
        raise Conflict(
            f"ticket {ticket.id} already has a CSAT score ({ticket.csat_score}); "
            "a customer rates a ticket once"
        )
    payload = ev.TicketCsatReceived(
        score=score, comment=_optional_text(comment, "CSAT comment", MAX_NOTE)
    )
    return [
        new_event(
            "ticket.csat_received", payload, ticket_id=ticket.id, customer_id=ticket.customer_id
        )
    ]


# --- exceptions --------------------------------------------------------------


def request_exception(
    ctx: Context, ticket: TicketState, exception_type: str, reason: str
) -> list[NewEvent]:
    """Ask for an approved deviation from the standard path."""
    ctx.require("exceptions.request")
    _open_ticket(ticket)
    try:
        xtype = ctx.model.exception_type(exception_type)
    except KeyError:
        known = ", ".join(x.id for x in ctx.model.exception_types)
        raise DomainError(f"unknown exception type {exception_type!r}; known: {known}") from None
    if xtype.request_types and ticket.request_type not in xtype.request_types:
        raise DomainError(
            f"exception type {exception_type!r} is not allowed for request type "
            f"{ticket.request_type!r}; allowed: {', '.join(xtype.request_types)}"
        )
    payload = ev.ExceptionRequested(
        exception_id=ctx.ids.next_id("exception"),
        exception_type=exception_type,
        request_type=ticket.request_type,
        reason=_text(reason, "exception reason", MAX_NOTE),
        requested_by=ctx.actor.id if ctx.actor else None,
    )
    return [
        new_event(
            "exception.requested", payload, ticket_id=ticket.id, customer_id=ticket.customer_id
        )
    ]


def decide_exception(
    ctx: Context,
    exception: ExceptionState,
    ticket: TicketState,
    decider: UserState,
    *,
    approve: bool,
    note: str = "",
) -> list[NewEvent]:
    """Approve or deny; only a holder of one of the type's approver roles may."""
    _open_ticket(ticket)
    try:
        xtype = ctx.model.exception_type(exception.exception_type)
    except KeyError:
        raise DomainError(
            f"exception type {exception.exception_type!r} is not in the model in force"
        ) from None
    if not decider.active or not set(decider.roles) & set(xtype.approver_roles):
        raise PermissionDenied(
            f"only a holder of {', '.join(xtype.approver_roles)} may decide a "
            f"{exception.exception_type!r} exception; user {decider.id} holds "
            f"{', '.join(decider.roles) or 'no role'}"
        )
    if exception.status != "requested":
        raise Conflict(f"exception {exception.id} is already {exception.status}")
    if exception.requested_by == decider.id:
        raise PermissionDenied("an exception cannot be decided by the person who requested it")
    expires = ctx.now + timedelta(minutes=xtype.max_duration) if approve else None
    payload = ev.ExceptionDecided(
        exception_id=exception.id,
        decided_by=decider.id,
        note=_optional_text(note, "decision note", MAX_NOTE),
        expires_at=expires,
    )
    kind = "exception.approved" if approve else "exception.denied"
    return [new_event(kind, payload, ticket_id=ticket.id, customer_id=ticket.customer_id)]


def expire_exceptions(
    ctx: Context, candidates: Iterable[tuple[ExceptionState, int]]
) -> list[NewEvent]:
    """Expire approved exceptions past their expiry, and requests left undecided past
    the type's maximum duration. ``candidates`` pairs each exception with its
    ticket's customer id."""
    out: list[NewEvent] = []
    for x, customer_id in candidates:
        if x.status == "approved" and x.expires_at is not None and x.expires_at <= ctx.now:
            due = True
        elif x.status == "requested":
            limit = ctx.model.exception_type(x.exception_type).max_duration
            due = x.requested_at + timedelta(minutes=limit) <= ctx.now
        else:
            due = False
        if due:
            out.append(
                new_event(
                    "exception.expired",
                    ev.ExceptionExpired(exception_id=x.id),
                    ticket_id=x.ticket_id,
                    customer_id=customer_id,
                )
            )
    return out


def apply_model(*, version: str, name: str, author: str, previous: str | None) -> list[NewEvent]:
    """Record that a new operating model version came into force."""
    payload = ev.ModelApplied(version=version, name=name, author=author, previous_version=previous)
    return [new_event("model.applied", payload)]
