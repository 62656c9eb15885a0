"""Routing decision latency with 1,000 agents in 50 teams (issue #5, point 7).

Two figures, each as p50 and p99 over many decisions:

- **pure**: :func:`opsdesk.routing.assign.choose_agent` on candidates already in memory
  (the team's members with their load, ~20-30 per team here): eligibility, continuity
  and the strategy.
- **live assignment**: what assigning a queued ticket costs after a command, in its own
  unit of work: :func:`opsdesk.routing.assign.route_ticket` from loading the ticket, the
  shift-calendar check, the team's online members with their load (one query), the
  customer's previous owner (one query), the decision, the acceptance appended, to the
  rows written (the commit is not timed). Between decisions, untimed, an agent's ticket
  in hand is solved half of the time, so loads change as they do live. The database
  holds 1,000 agents, 5,000 customers and 50,000 tickets (30,000 closed, 9,000 solved,
  6,000 in hand, 5,000 waiting in queues), written in bulk.

Target: p99 under 2 ms per decision.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy import bindparam, insert, select, update

from opsdesk.desk.models import apply_model_text
from opsdesk.model.schema import TeamRouting
from opsdesk.routing.assign import Candidate, TicketNeed, choose_agent, route_ticket
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

#: a Wednesday, 14:00 UTC: inside the business-hours shifts of half the teams
AT = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
SKILLS = [f"skill_{i}" for i in range(8)]
CHANNELS = ["email", "chat", "phone", "web", "voice"]
TARGET_MS = 2.0
WARM = 200  # decisions run before the timed ones


@dataclass(frozen=True)
class Org:
    """1,000 agents in 50 teams, with their skills, presence and load."""

    teams: list[str]
    routing: dict[str, TeamRouting]
    required: dict[str, frozenset[str]]  # the skills of each team's request type
    agents: list[Candidate]
    by_team: dict[str, list[Candidate]]


def build_org(agents: int = 1000, teams: int = 50, seed: int = 7) -> Org:
    rng = random.Random(seed)
    team_ids = [f"team_{i:02d}" for i in range(teams)]
    routing = {
        team: TeamRouting(
            strategy="least_loaded" if i % 2 == 0 else "round_robin",
            max_open_per_agent=12,
            max_per_channel={"chat": 3, "voice": 1, "phone": 1},
            calendar="office" if i % 2 == 0 else "always",
        )
        for i, team in enumerate(team_ids)
    }
    required = {team: frozenset(rng.sample(SKILLS, rng.choice([0, 1, 1, 2]))) for team in team_ids}
    people: list[Candidate] = []
    for agent_id in range(1, agents + 1):
        member_of = {team_ids[agent_id % teams]}
        if rng.random() < 0.3:
            member_of.add(team_ids[(agent_id * 7 + 3) % teams])
        by_channel = {c: rng.randint(0, 2) for c in rng.sample(CHANNELS, 2)}
        people.append(
            Candidate(
                id=agent_id,
                teams=frozenset(member_of),
                skills=frozenset(rng.sample(SKILLS, rng.randint(2, 5))),
                presence=rng.choices(["online", "away", "offline"], [75, 10, 15])[0],
                open_total=sum(by_channel.values()) + rng.randint(0, 8),
                open_by_channel=by_channel,
                last_assigned_at=AT - timedelta(minutes=rng.randint(1, 600)),
            )
        )
    by_team: dict[str, list[Candidate]] = {team: [] for team in team_ids}
    for person in people:
        for team in person.teams:
            by_team[team].append(person)
    return Org(team_ids, routing, required, people, by_team)


@dataclass(frozen=True)
class Figures:
    """Latency of one leg, in milliseconds: wall clock, and the thread's CPU time (which
    leaves out the time the process waited for a CPU on a busy machine)."""

    what: str
    database: str
    decisions: int
    wall_p50: float
    wall_p99: float
    cpu_p50: float
    cpu_p99: float
    nobody: int


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    cuts = statistics.quantiles(samples_ns, n=100, method="inclusive")
    return cuts[49] / 1e6, cuts[98] / 1e6


def timed(what: str, database: str, calls: list[Callable[[], bool]]) -> Figures:
    """Run each call (it returns whether it found an agent) under both clocks."""
    wall, cpu, nobody = [], [], 0
    wall_clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for call in calls:
        start_wall, start_cpu = wall_clock(), cpu_clock()
        found = call()
        cpu.append(cpu_clock() - start_cpu)
        wall.append(wall_clock() - start_wall)
        nobody += not found
    return Figures(what, database, len(calls), *percentiles(wall), *percentiles(cpu), nobody)


def measure_pure(org: Org, decisions: int, seed: int = 11) -> Figures:
    """Time ``choose_agent`` alone, on candidates in memory."""
    rng = random.Random(seed)
    calls: list[Callable[[], bool]] = []
    for i in range(decisions):
        team = rng.choice(org.teams)
        previous = rng.choice(org.by_team[team]).id if rng.random() < 0.3 else None
        need = TicketNeed(i, team, rng.choice(CHANNELS), org.required[team], previous)
        pool, routing = org.by_team[team], org.routing[team]
        calls.append(
            lambda need=need, pool=pool, routing=routing: (
                choose_agent(need, pool, routing).agent is not None
            )
        )
    return timed("pure decision (candidates in memory)", "-", calls)


# --- the database leg -----------------------------------------------------------------


def model_text(org: Org) -> str:
    """An operating model with the org's 50 teams, one request type each."""
    week = {day: [["08:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    always = {
        day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
    data: dict[str, Any] = {
        "name": "Routing bench",
        "teams": [
            {
                "id": team,
                "name": team,
                "routing": org.routing[team].model_dump(exclude_none=True),
            }
            for team in org.teams
        ],
        "roles": [{"id": "agent", "name": "Agent", "permissions": ["tickets.read"]},
                  {"id": "team_lead", "name": "Lead", "permissions": ["tickets.assign"]}],
        "skills": SKILLS,
        "calendars": [
            {"id": "office", "timezone": "Europe/London", "hours": week,
             "holidays": {"country": "GB", "subdivision": "ENG"}},
            {"id": "always", "timezone": "UTC", "hours": always},
        ],
        "sla_policies": [
            {"id": "std", "name": "Standard",
             "targets": {p: {"first_reply": "8h"} for p in ("low", "normal", "high", "urgent")}}
        ],
        "escalation_paths": [
            {"id": "esc", "name": "Escalate", "levels": [
                {"name": "Warn", "when": {"before_breach": "1h"},
                 "actions": [{"notify_role": "team_lead"}]}]}
        ],
        "request_types": [
            {"id": f"rt_{team}", "name": team, "owner_team": team, "sla_policy": "std",
             "escalation_path": "esc", "required_skills": sorted(org.required[team]),
             "steps": ["answer", "confirm"]}
            for team in org.teams
        ],
        "exception_types": [],
    }  # fmt: skip
    return yaml.safe_dump(data, sort_keys=False)


def populate(db: Database, org: Org, seed: int = 13, scale: float = 1.0) -> list[int]:
    """Write the org and its history in bulk (50,000 tickets times ``scale``); returns the
    ids of the queued tickets."""
    rng = random.Random(seed)
    with UnitOfWork(db, now=AT) as uow:
        apply_model_text(uow, model_text(org), filename="bench.yaml", author="bench")
    users = [
        {
            "id": a.id,
            "name": f"Agent {a.id}",
            "email": f"agent{a.id}@bench.test",
            "roles": ["agent"],
            "teams": sorted(a.teams),
            "skills": sorted(a.skills),
            "active": True,
            "created_at": AT - timedelta(days=400),
            "presence": a.presence,
        }
        for a in org.agents
    ]
    customers = [
        {"id": c, "name": f"Customer {c}", "tier": "standard",
         "created_at": AT - timedelta(days=400)}
        for c in range(1, max(2, round(5000 * scale)) + 1)
    ]  # fmt: skip
    tickets, queued = [], []
    plan = [
        kind
        for kind, count in (
            ("closed", 30_000),
            ("solved", 9_000),
            ("held", 6_000),
            ("queued", 5_000),
        )
        for _ in range(round(count * scale))
    ]
    rng.shuffle(plan)
    for ticket_id, kind in enumerate(plan, start=1):
        agent = rng.choice(org.agents)
        team = rng.choice(sorted(agent.teams))
        created = AT - timedelta(minutes=rng.randint(5, 60 * 24 * 60))
        accepted = created + timedelta(minutes=rng.randint(1, 240))
        status = {"closed": "closed", "solved": "solved", "queued": "new"}.get(
            kind, rng.choice(["open", "open", "pending", "on_hold"])
        )
        if kind == "queued":
            team = rng.choice(org.teams)
            created = AT - timedelta(minutes=rng.randint(1, 120))
        tickets.append(
            {
                "id": ticket_id,
                "customer_id": rng.randint(1, len(customers)),
                "subject": "Bench ticket",
                "channel": rng.choice(CHANNELS),
                "priority": "normal",
                "status": status,
                "request_type": f"rt_{team}",
                "owning_team": team,
                "owning_agent": None if kind == "queued" else agent.id,
                "tags": [],
                "created_at": created,
                "updated_at": created,
                "triaged_at": created,
                "accepted_at": None if kind == "queued" else accepted,
                "queued_at": created if kind == "queued" else None,
                "reopen_count": 0,
                "transfer_count": 0,
                "message_count": 1,
            }
        )
        if kind == "queued":
            queued.append(ticket_id)
    with db.engine.begin() as conn:
        conn.execute(insert(t.users), users)
        conn.execute(insert(t.customers), customers)
        for start in range(0, len(tickets), 5000):
            conn.execute(insert(t.tickets), tickets[start : start + 5000])
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")  # planner statistics, as a live database has
        conn.commit()
    return queued


def measure_db(
    db: Database, queued: list[int], decisions: int, what: str, warm: int = WARM
) -> Figures:
    """Time live assignments: per decision, one unit of work (as after a command) in
    which the clock runs from loading the queued ticket through ``route_ticket`` (the
    team's candidates and loads, the customer's previous owner, the decision, the
    acceptance appended) to the rows written; the commit is outside the clock. Between
    decisions, untimed, an agent's ticket in hand is solved half of the time, so loads
    rise and fall as they do live and every decision reads the loads the one before left."""
    rng = random.Random(17)
    picks = rng.sample(queued, min(decisions + warm, len(queued)))
    with db.read() as conn:
        held = [
            r[0]
            for r in conn.execute(
                select(t.tickets.c.id).where(t.tickets.c.status.in_(["open", "pending"]))
            )
        ]
    rng.shuffle(held)
    solve = (
        update(t.tickets)
        .where(t.tickets.c.id == bindparam("ticket"))
        .values(status="solved", solved_at=AT)
    )
    wall, cpu, nobody = [], [], 0
    wall_clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for n, ticket_id in enumerate(picks):
        with UnitOfWork(db, now=AT) as uow:
            if held and rng.random() < 0.5:
                uow.conn.execute(solve, {"ticket": held.pop()})
            start_wall, start_cpu = wall_clock(), cpu_clock()
            assigned = route_ticket(uow, ticket_id)
            uow.flush()
            spent_cpu, spent_wall = cpu_clock() - start_cpu, wall_clock() - start_wall
        if n < warm:  # the statement caches and the calendars
            continue
        wall.append(spent_wall)
        cpu.append(spent_cpu)
        nobody += not assigned
    return Figures(what, db.dialect, len(wall), *percentiles(wall), *percentiles(cpu), nobody)


def check_counts(db: Database) -> dict[str, int]:
    with db.read() as conn:
        users = len(conn.execute(select(t.users.c.id)).all())
        tickets = len(conn.execute(select(t.tickets.c.id)).all())
    return {"users": users, "tickets": tickets}


class PgFactory(Protocol):
    def new(self) -> Database: ...

    def close(self) -> None: ...


def run(
    args: argparse.Namespace,
    console: Console,
    sqlite_db: Callable[[Path, str], Database],
    pg: PgFactory | None,
) -> None:
    """``make bench`` / ``python -m bench --only routing``: both legs, one table."""
    workdir = Path(tempfile.mkdtemp(prefix="opsdesk-routing-"))
    try:
        report(
            console,
            lambda: sqlite_db(workdir, "routing"),
            pg.new if pg is not None else None,
            decisions=args.routing_decisions,
            db_decisions=max(args.routing_decisions // 4, 1000),
        )
    finally:
        if pg is not None:
            pg.close()
        shutil.rmtree(workdir, ignore_errors=True)


def report(
    console: Console,
    sqlite_db: Callable[[], Database],
    pg_db: Callable[[], Database] | None,
    *,
    decisions: int = 20_000,
    db_decisions: int = 5_000,
) -> None:
    """Run both legs and print the table."""
    org = build_org()
    rows = [measure_pure(org, decisions)]
    legs = [sqlite_db] + ([pg_db] if pg_db is not None else [])
    for make in legs:
        db = make()
        try:
            queued = populate(db, org)
            counts = check_counts(db)
            console.log(f"{db.dialect}: {counts['users']:,} agents, {counts['tickets']:,} tickets")
            rows.append(measure_db(db, queued, db_decisions, "live assignment"))
        finally:
            db.dispose()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    table = Table(
        title=f"routing decisions: {len(org.agents):,} agents in {len(org.teams)} teams "
        f"(~{len(org.agents) * 1.3 / len(org.teams):.0f} members per team); "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
    for col in ("what", "database", "decisions", "wall p50 ms", "wall p99 ms", "CPU p50 ms",
                "CPU p99 ms", "found nobody"):  # fmt: skip
        table.add_column(col, justify="right")
    for f in rows:
        table.add_row(
            f.what, f.database, f"{f.decisions:,}", f"{f.wall_p50:.3f}", f"{f.wall_p99:.3f}",
            f"{f.cpu_p50:.3f}", f"{f.cpu_p99:.3f}", f"{f.nobody:,}",
        )  # fmt: skip
    console.print(table)
    console.print(f"target: p99 < {TARGET_MS:g} ms per decision")
