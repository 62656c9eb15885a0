"""`model apply` never strands live work: a change that would leave tickets, exception
requests, SLA clocks or jobs pointing at removed things is refused (listing them and how
to proceed, changing nothing), unless an option says what happens to them. On SQLite
and PostgreSQL, through the real desk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from opsdesk.desk import service
from opsdesk.desk.models import ModelStrandsWork, StrandedWork, apply_model_text
from opsdesk.jobs.outbox import run_due
from opsdesk.sla import escalation
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from opsdesk.store.verify import verify
from tests.sla.conftest import MON, Desk, example_model_data

H = timedelta(hours=1)


@pytest.fixture
def desk(model_db: Database) -> Desk:
    return Desk(model_db)


def variant(change: Callable[[dict[str, Any]], None]) -> str:
    data = example_model_data()
    change(data)
    return yaml.safe_dump(data, sort_keys=False)


def apply(db: Database, text: str, **options: bool) -> Any:
    with UnitOfWork(db, now=MON + 2 * H) as uow:
        return apply_model_text(
            uow, text, filename="new.yaml", author="tests", stranded=StrandedWork(**options)
        )


def state(db: Database) -> tuple[int, str | None, int]:
    """Events, model in force, jobs: what a refused apply must leave as it was."""
    with db.read() as conn:
        head = conn.execute(select(t.log_head.c.last_seq, t.log_head.c.model_version)).one()
        jobs = conn.execute(select(func.count()).select_from(t.jobs)).scalar_one()
    return head.last_seq, head.model_version, jobs


def refused(db: Database, text: str, **options: bool) -> ModelStrandsWork:
    before = state(db)
    with pytest.raises(ModelStrandsWork) as info:
        apply(db, text, **options)
    assert state(db) == before
    return info.value


def without(section: str, item: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data[section] = [x for x in data[section] if x["id"] != item]

    return change


def test_request_types_and_teams_in_use_are_refused(desk: Desk) -> None:
    moving = desk.ticket(request_type="move_home")
    closed = desk.ticket(request_type="move_home")
    agent = desk.user(["frontline"])
    desk.do(MON, service.accept_ticket, closed, actor=agent)
    for status in ("solved", "closed"):
        desk.status(MON + H, closed, status, actor=agent)
    error = refused(desk.db, variant(without("request_types", "move_home")))
    assert [s.kind for s in error.stranded] == ["tickets"]
    assert error.stranded[0].what == (
        f"1 live ticket(s) of removed request type 'move_home' ({moving})"
    )
    assert "re-triage them to another request type first" in error.message
    # no option lets a model strand tickets: people decide where they go
    refused(
        desk.db,
        variant(without("request_types", "move_home")),
        expire_exceptions=True,
        restart_clocks=True,
        requeue_jobs=True,
    )
    desk.do(MON + H, service.triage_ticket, moving, "account_access")
    assert apply(desk.db, variant(without("request_types", "move_home"))).changed


def test_exception_types_with_open_requests_are_refused_or_expired(desk: Desk) -> None:
    agent = desk.user(["billing"])
    ticket = desk.ticket(request_type="bill_explanation")
    x = desk.do(MON + H, service.request_exception, ticket, "goodwill_credit", "sorry", actor=agent)
    text = variant(without("exception_types", "goodwill_credit"))
    error = refused(desk.db, text)
    assert [s.kind for s in error.stranded] == ["exceptions"]
    assert f"1 open request(s) of removed exception type 'goodwill_credit' ({x.id})" in (
        error.message
    )
    assert "--expire-exceptions" in error.message

    applied = apply(desk.db, text, expire_exceptions=True)
    assert applied.changed
    assert applied.resolved == ["expired 1 open exception request(s) of removed types"]
    expired = desk.events(ticket, "exception.expired")
    assert [e.payload["exception_id"] for e in expired] == [x.id]
    assert expired[0].payload["reason"].startswith("exception type goodwill_credit was removed")
    # its expiry job, due in 14 days, is now a no-op instead of a KeyError until dead
    result = run_due(desk.db, MON + 30 * 24 * H)
    assert not result.failed, result.summary()
    assert result.noop["exception.expire"] == 1
    assert verify(desk.db).ok


def _no_field_service(data: dict[str, Any]) -> None:
    without("sla_policies", "field_service")(data)
    for rt in data["request_types"]:
        if rt["sla_policy"] == "field_service":
            rt["sla_policy"] = "standard"


def test_policies_with_running_clocks_are_refused_or_restarted(desk: Desk) -> None:
    ticket = desk.ticket(request_type="smart_meter_fault")
    old = [c for c in desk.clocks(ticket) if c.status == "running"]
    assert {c.policy for c in old} == {"field_service"}
    text = variant(_no_field_service)
    error = refused(desk.db, text)
    assert [s.kind for s in error.stranded] == ["clocks"]
    assert "2 running SLA clock(s) of removed SLA policy 'field_service'" in error.message
    assert "--restart-clocks" in error.message

    applied = apply(desk.db, text, restart_clocks=True)
    assert applied.resolved == ["restarted 2 SLA clock(s) under their ticket's current policy"]
    clocks = desk.clocks(ticket)
    assert {c.id: c.status for c in clocks if c.policy == "field_service"} == {
        c.id: "ended" for c in old
    }
    new = [c for c in clocks if c.status == "running"]
    assert sorted((c.metric, c.policy, c.started_at) for c in new) == sorted(
        (c.metric, "standard", c.started_at) for c in old
    )
    stops = desk.events(ticket, "sla.stopped")
    assert all("removed by model version" in e.payload["reason"] for e in stops)
    assert verify(desk.db).ok


def _no_technical(data: dict[str, Any]) -> None:
    without("escalation_paths", "technical")(data)
    for rt in data["request_types"]:
        if rt["escalation_path"] == "technical":
            rt["escalation_path"] = "standard"


def test_jobs_naming_removed_things_are_refused_or_requeued(desk: Desk) -> None:
    ticket = desk.ticket(request_type="smart_meter_fault")
    with UnitOfWork(desk.db, now=MON) as uow:  # a check waiting for the technical level
        uow.schedule(escalation.CHECK_KIND, MON + 50 * H, ticket_id=ticket, ref="technical#0")
    text = variant(_no_technical)
    error = refused(desk.db, text)
    assert [s.kind for s in error.stranded] == ["jobs"]
    assert "1 pending job(s) escalation.check for removed escalation path 'technical'" in (
        error.message
    )
    assert "--requeue-jobs" in error.message

    applied = apply(desk.db, text, requeue_jobs=True)
    assert applied.resolved[0].startswith("dropped 1 job(s)")
    refs = [j.ref for j in desk.jobs(escalation.CHECK_KIND) if j.ticket_id == ticket]
    assert refs and not any(r.startswith("technical#") for r in refs)
    assert verify(desk.db).ok


def test_every_kind_is_listed_at_once(desk: Desk) -> None:
    agent = desk.user(["billing"])
    desk.ticket(request_type="move_home")
    ticket = desk.ticket(request_type="bill_explanation")
    desk.do(MON + H, service.request_exception, ticket, "goodwill_credit", "sorry", actor=agent)
    meter = desk.ticket(request_type="smart_meter_fault")
    with UnitOfWork(desk.db, now=MON) as uow:
        uow.schedule(escalation.CHECK_KIND, MON + 50 * H, ticket_id=meter, ref="technical#0")

    def everything(data: dict[str, Any]) -> None:
        without("request_types", "move_home")(data)
        without("exception_types", "goodwill_credit")(data)
        _no_field_service(data)
        _no_technical(data)

    error = refused(desk.db, variant(everything), expire_exceptions=True)
    # what the option covers is not listed; the rest is, each with how to proceed
    assert [s.kind for s in error.stranded] == ["tickets", "clocks", "jobs"]
    assert all(s.fix for s in error.stranded)
