"""What the router reads from the projections: a team's online agents with their load,
a customer's previous owner, a team's queue. A few indexed queries per decision.

Call ``uow.flush()`` before these inside a unit of work, so they see its own writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, String, and_, bindparam, func, select, text, true
from sqlalchemy.sql import Select

from opsdesk.domain.lifecycle import ACTIVE_STATUSES
from opsdesk.store import tables as t

#: statuses that count towards an agent's load (what they still have to work)
LOAD_STATUSES: tuple[str, ...] = tuple(sorted(ACTIVE_STATUSES))
#: statuses whose acceptance time still tells when an agent last got work; closed
#: tickets are left out so the query stays within the agent's current tickets
HELD_STATUSES: tuple[str, ...] = (*LOAD_STATUSES, "solved")


@dataclass(frozen=True, slots=True)
class Load:
    """An agent's tickets in hand."""

    total: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    last_assigned_at: datetime | None = None

    def plus(self, channel: str, at: datetime) -> Load:
        """The load after taking one more ticket on ``channel`` at ``at``."""
        by_channel = dict(self.by_channel)
        by_channel[channel] = by_channel.get(channel, 0) + 1
        return Load(self.total + 1, by_channel, at)


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    teams: tuple[str, ...]
    skills: tuple[str, ...]
    roles: tuple[str, ...]
    presence: str
    active: bool


def _in_team(dialect: str) -> Any:
    # users.teams is a JSON list; ask the database, so only the team's rows come back
    # (a plain substring test first spares most rows the exact JSON test)
    if dialect == "sqlite":
        return text(
            "instr(users.teams, :team_quoted) > 0 AND "
            "EXISTS (SELECT 1 FROM json_each(users.teams) WHERE json_each.value = :team)"
        )
    # (CASE fixes the order: PostgreSQL may otherwise run the costlier test first)
    return text(
        "CASE WHEN strpos(CAST(users.teams AS TEXT), :team_quoted) > 0 "
        "THEN jsonb_exists(CAST(users.teams AS JSONB), :team) ELSE false END"
    )


def _team_params(team: str) -> dict[str, str]:
    return {"team": team, "team_quoted": f'"{team}"'}


@cache
def _members_sql(dialect: str, online_only: bool) -> Select[Any]:
    u = t.users.c
    query = select(u.id, u.teams, u.skills, u.roles, u.presence, u.active).where(
        u.active.is_(True), _in_team(dialect)
    )
    if online_only:
        query = query.where(u.presence == "online")
    return query.order_by(u.id)


def team_members(
    conn: Connection, dialect: str, team: str, *, online_only: bool = True
) -> list[Member]:
    """Active members of ``team`` (only the online ones by default), by id."""
    rows = conn.execute(_members_sql(dialect, online_only), _team_params(team))
    return [
        Member(r.id, tuple(r.teams), tuple(r.skills), tuple(r.roles), r.presence, r.active)
        for r in rows
    ]


_tk = t.tickets.c
_LOADS = (
    select(
        _tk.owning_agent,
        _tk.channel,
        _tk.status,
        func.count(),
        func.max(_tk.accepted_at),
    )
    .where(
        _tk.owning_agent.in_(bindparam("agents", expanding=True)),
        _tk.status.in_(HELD_STATUSES),
    )
    .group_by(_tk.owning_agent, _tk.channel, _tk.status)
)


def loads(conn: Connection, agent_ids: Sequence[int]) -> dict[int, Load]:
    """Open tickets per agent (total and per channel) and their last acceptance time;
    agents with no ticket in hand are missing from the result."""
    if not agent_ids:
        return {}
    totals: dict[int, int] = {}
    channels: dict[int, dict[str, int]] = {}
    last: dict[int, datetime] = {}
    for agent, channel, status, count, accepted in conn.execute(
        _LOADS, {"agents": list(agent_ids)}
    ):
        if status in ACTIVE_STATUSES:
            totals[agent] = totals.get(agent, 0) + count
            by_channel = channels.setdefault(agent, {})
            by_channel[channel] = by_channel.get(channel, 0) + count
        if accepted is not None and (agent not in last or accepted > last[agent]):
            last[agent] = accepted
    return {
        agent: Load(totals.get(agent, 0), channels.get(agent, {}), last.get(agent))
        for agent in set(totals) | set(last)
    }


@cache
def _candidates_sql(dialect: str) -> Select[Any]:
    # Per member, so both planners walk ix_tickets_agent_load for each of the team's
    # few members (a plain join lets PostgreSQL, which cannot estimate the JSON team
    # test, scan every open ticket instead). PostgreSQL does it in one LATERAL pass per
    # member; SQLite, which has no LATERAL, in three correlated subqueries.
    u = t.users.c
    mine = _tk.owning_agent == u.id
    active = _tk.status.in_(LOAD_STATUSES)
    # with no channel to count (the team has no cap on it) the test fails before the
    # row is read, so the counts stay inside the index
    channel = bindparam("channel", type_=String)
    on_channel = and_(channel.is_not(None), _tk.channel == channel)
    members = select(u.id, u.teams, u.skills, u.roles, u.presence, u.active).where(
        u.active.is_(True), u.presence == "online", _in_team(dialect)
    )
    if dialect == "postgresql":
        load = (
            select(
                func.count().filter(active).label("open_total"),
                func.count().filter(and_(active, on_channel)).label("open_on_channel"),
                func.max(_tk.accepted_at).label("last_assigned_at"),
            )
            .where(mine, _tk.status.in_(HELD_STATUSES))
            .lateral("load")
        )
        return (
            members.add_columns(load.c.open_total, load.c.open_on_channel, load.c.last_assigned_at)
            .select_from(t.users.outerjoin(load, true()))
            .order_by(u.id)
        )

    def scalar(column: Any, *where: Any) -> Any:
        return select(column).where(mine, *where).scalar_subquery()

    return members.add_columns(
        scalar(func.count(), active).label("open_total"),
        scalar(func.count(), active, on_channel).label("open_on_channel"),
        scalar(func.max(_tk.accepted_at), _tk.status.in_(HELD_STATUSES)).label("last_assigned_at"),
    ).order_by(u.id)


def online_members_with_load(
    conn: Connection, dialect: str, team: str, channel: str | None
) -> list[tuple[Member, Load]]:
    """The online active members of ``team``, each with their load: open tickets in
    total and, when ``channel`` is given, on that channel (``Load.by_channel`` holds
    that channel only), and when they last accepted one. One query."""
    rows = conn.execute(_candidates_sql(dialect), {**_team_params(team), "channel": channel})
    return [
        (
            Member(r.id, tuple(r.teams), tuple(r.skills), tuple(r.roles), r.presence, r.active),
            Load(
                int(r.open_total or 0),
                {} if channel is None else {channel: int(r.open_on_channel or 0)},
                r.last_assigned_at,
            ),
        )
        for r in rows
    ]


_PREVIOUS_OWNER = (
    select(_tk.owning_agent)
    .where(
        _tk.customer_id == bindparam("customer"),
        _tk.id != bindparam("ticket"),
        _tk.owning_agent.is_not(None),
        _tk.created_at >= bindparam("since"),
    )
    .order_by(_tk.id.desc())
    .limit(1)
)
_OWNER_OF = select(_tk.owning_agent).where(_tk.id == bindparam("ticket"))


def previous_owner(
    conn: Connection,
    *,
    customer_id: int,
    ticket_id: int,
    since: datetime,
    follow_up_of: int | None = None,
) -> int | None:
    """The agent who owned this customer's case before: the owner of the ticket this one
    follows up, else of the customer's latest other ticket created since ``since``."""
    if follow_up_of is not None:
        owner = conn.execute(_OWNER_OF, {"ticket": follow_up_of}).scalar()
        if owner is not None:
            return int(owner)
    owner = conn.execute(
        _PREVIOUS_OWNER, {"customer": customer_id, "ticket": ticket_id, "since": since}
    ).scalar()
    return None if owner is None else int(owner)


_QUEUED = (
    select(_tk.id)
    .where(
        _tk.owning_team.in_(bindparam("teams", expanding=True)),
        _tk.status.in_(LOAD_STATUSES),
        _tk.owning_agent.is_(None),
        _tk.queued_at.is_not(None),
    )
    .order_by(_tk.queued_at, _tk.id)
    .limit(bindparam("limit"))
)


def queued_tickets(conn: Connection, teams: Iterable[str], limit: int) -> list[int]:
    """Ids of the tickets waiting with no agent in these teams' queues, oldest first."""
    teams = list(teams)
    if not teams:
        return []
    return [int(r[0]) for r in conn.execute(_QUEUED, {"teams": teams, "limit": limit})]
