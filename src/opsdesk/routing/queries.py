"""What the router reads from the projections: a team's online agents with their load,
a customer's previous owner, a team's queue. A few indexed queries per decision.

Call ``uow.flush()`` before these inside a unit of work, so they see its own writes
(``uow.flush_for_owned_work()`` before the load and previous-owner queries).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text
from sqlalchemy.sql import Select

from opsdesk.domain.lifecycle import ACTIVE_STATUSES
from opsdesk.store import tables as t
from opsdesk.store.fastpath import datetime_reader, datetime_writer, json_reader

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


def _in(values: Sequence[str]) -> str:
    # constant status lists of this module, never user input
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


@cache
def _candidates_sql(dialect: str) -> str:
    """The team's online active members with their load, for the driver's cursor.

    Rendered once per dialect and run on the DB-API cursor: through SQLAlchemy Core the
    result processing (three JSON columns per member, ~25 members) cost more than the
    query. Per member, both planners walk ``ix_tickets_agent_load`` for that member's
    few tickets: PostgreSQL in one LATERAL pass (it cannot estimate the JSON team test
    and would otherwise scan every open ticket), SQLite in one grouped outer join."""
    load, held = _in(LOAD_STATUSES), _in(HELD_STATUSES)
    if dialect == "postgresql":
        return f"""
            SELECT u.id, u.teams, u.skills, u.roles, u.presence, u.active,
                   load.open_total, load.open_on_channel, load.last_assigned_at
            FROM users u LEFT JOIN LATERAL (
                SELECT count(*) FILTER (WHERE tk.status IN {load}) AS open_total,
                       count(*) FILTER (WHERE tk.status IN {load}
                                        AND tk.channel = %(channel)s) AS open_on_channel,
                       max(tk.accepted_at) AS last_assigned_at
                FROM tickets tk WHERE tk.owning_agent = u.id AND tk.status IN {held}
            ) load ON true
            WHERE u.active AND u.presence = 'online'
              AND CASE WHEN strpos(CAST(u.teams AS TEXT), %(team_quoted)s) > 0
                  THEN jsonb_exists(CAST(u.teams AS JSONB), %(team)s) ELSE false END
            ORDER BY u.id"""  # noqa: S608 (constants only)
    return f"""
        SELECT u.id, u.teams, u.skills, u.roles, u.presence, u.active,
               count(tk.id) FILTER (WHERE tk.status IN {load}),
               count(tk.id) FILTER (WHERE tk.status IN {load} AND tk.channel = :channel),
               max(tk.accepted_at)
        FROM users u LEFT JOIN tickets tk ON tk.owning_agent = u.id AND tk.status IN {held}
        WHERE u.active = 1 AND u.presence = 'online'
          AND instr(u.teams, :team_quoted) > 0
          AND EXISTS (SELECT 1 FROM json_each(u.teams) WHERE json_each.value = :team)
        GROUP BY u.id ORDER BY u.id"""  # noqa: S608 (constants only)


def _cursor(conn: Connection) -> Any:
    """The DB-API cursor of ``conn``, inside its transaction."""
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def online_members_with_load(
    conn: Connection, dialect: str, team: str, channel: str | None
) -> list[tuple[Member, Load]]:
    """The online active members of ``team``, each with their load: open tickets in
    total and, when ``channel`` is given, on that channel (``Load.by_channel`` holds
    that channel only), and when they last accepted one. One query."""
    cur = _cursor(conn)
    cur.execute(_candidates_sql(dialect), {**_team_params(team), "channel": channel})
    aware = datetime_reader(dialect)

    def listed(value: Any) -> tuple[str, ...]:
        return tuple(json_reader(value))

    return [
        (
            Member(r[0], listed(r[1]), listed(r[2]), listed(r[3]), r[4], bool(r[5])),
            Load(
                int(r[6] or 0),
                {} if channel is None else {channel: int(r[7] or 0)},
                aware(r[8]),
            ),
        )
        for r in cur.fetchall()
    ]


@cache
def _previous_owner_sql(dialect: str) -> tuple[str, str]:
    def ph(name: str) -> str:
        return f":{name}" if dialect == "sqlite" else f"%({name})s"

    owner_of = f"SELECT owning_agent FROM tickets WHERE id = {ph('ticket')}"  # noqa: S608
    latest = (
        "SELECT owning_agent FROM tickets "  # noqa: S608 (placeholders only)
        f"WHERE customer_id = {ph('customer')} AND id <> {ph('ticket')} "
        f"AND owning_agent IS NOT NULL AND created_at >= {ph('since')} "
        "ORDER BY id DESC LIMIT 1"
    )
    return owner_of, latest


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
    dialect = conn.dialect.name
    owner_of, latest = _previous_owner_sql(dialect)
    cur = _cursor(conn)
    if follow_up_of is not None:
        cur.execute(owner_of, {"ticket": follow_up_of})
        row = cur.fetchone()
        if row is not None and row[0] is not None:
            return int(row[0])
    cur.execute(
        latest,
        {"customer": customer_id, "ticket": ticket_id, "since": datetime_writer(dialect)(since)},
    )
    row = cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


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
