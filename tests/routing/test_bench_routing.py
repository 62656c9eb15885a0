"""The routing benchmark's live assignments are real ones: each assigned ticket goes to
an online, active member of its team, under the caps, and loads change between decisions."""

from __future__ import annotations

from bench import routing
from sqlalchemy import func, select

from opsdesk.store import tables as t
from opsdesk.store.db import Database


def test_live_assignments_respect_membership_presence_and_caps(sqlite_db: Database) -> None:
    org = routing.build_org(agents=60, teams=4)
    queued = routing.populate(sqlite_db, org, scale=0.02)
    figures = routing.measure_db(sqlite_db, queued, 40, "live assignment", warm=5)
    assert figures.decisions == min(40, len(queued) - 5)
    people = {a.id: a for a in org.agents}
    with sqlite_db.read() as conn:
        assigned = conn.execute(
            select(t.tickets.c.id, t.tickets.c.owning_team, t.tickets.c.owning_agent).where(
                t.tickets.c.id.in_(queued), t.tickets.c.owning_agent.is_not(None)
            )
        ).all()
        held = dict(
            conn.execute(
                select(t.tickets.c.owning_agent, func.count())
                .where(t.tickets.c.status.in_(["new", "open", "pending", "on_hold"]))
                .group_by(t.tickets.c.owning_agent)
            ).all()
        )
    assert assigned, "no queued ticket was assigned"
    assert len(assigned) + figures.nobody >= figures.decisions
    for _ticket, team, agent in assigned:
        member = people[agent]
        assert team in member.teams and member.presence == "online"
        assert held[agent] <= org.routing[team].max_open_per_agent
