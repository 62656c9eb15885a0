"""`verify` replays the log and catches any projection that drifted from it."""

from __future__ import annotations

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from opsdesk.desk import service
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from opsdesk.store.verify import verify
from tests import factories


def build(db: Database) -> int:
    agent = factories.user(db, teams=["billing"])
    ticket = factories.ticket(db, tags=["vip"])
    with UnitOfWork(db, actor_kind="user", actor_id=agent.id) as uow:
        service.accept_ticket(uow, ticket.id)
        service.add_message(uow, ticket.id, body="On it")
        service.change_tags(uow, ticket.id, add=["refund"], remove=["vip"])
        service.change_status(uow, ticket.id, "solved")
    return ticket.id


def test_clean_database_verifies(model_db: Database) -> None:
    build(model_db)
    report = verify(model_db)
    assert report.ok, report.differences
    assert report.counts["tickets"] == 1 and report.events > 5


def test_corrupted_row_is_reported(model_db: Database) -> None:
    ticket_id = build(model_db)
    with model_db.engine.begin() as conn:
        conn.execute(update(t.tickets).where(t.tickets.c.id == ticket_id).values(status="open"))
    report = verify(model_db)
    assert not report.ok
    assert any(f"ticket {ticket_id}: status is 'open'" in d for d in report.differences)


def test_row_without_event_and_tag_drift_are_reported(model_db: Database) -> None:
    ticket_id = build(model_db)
    with model_db.engine.begin() as conn:
        conn.execute(t.ticket_tags.insert().values(ticket_id=ticket_id, tag="ghost"))
        conn.execute(text("DELETE FROM messages"))
    report = verify(model_db)
    assert any("ghost" in d for d in report.differences)
    assert any("in the log but missing from the table" in d for d in report.differences)


def tamper(db: Database, sql: str) -> None:
    """Change the log behind the application's back, as a rogue DBA could."""
    with db.engine.begin() as conn:
        if db.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER events_no_delete"))
            conn.execute(text("DROP TRIGGER events_no_update"))
        else:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(sql))


def test_events_cannot_be_updated_or_deleted(model_db: Database) -> None:
    build(model_db)
    for sql in ("UPDATE events SET type = 'x' WHERE seq = 2", "DELETE FROM events WHERE seq = 2"):
        with pytest.raises(DBAPIError, match="append-only"), model_db.engine.begin() as conn:
            conn.execute(text(sql))


def test_gap_in_seq_is_reported(model_db: Database) -> None:
    build(model_db)
    tamper(model_db, "DELETE FROM events WHERE seq = 3")
    report = verify(model_db)
    assert any("seq jumps to 4" in d for d in report.differences)


def test_edited_event_is_reported(model_db: Database) -> None:
    ticket_id = build(model_db)
    tamper(
        model_db,
        "UPDATE events SET type = 'ticket.teleported' WHERE seq = "
        "(SELECT max(seq) FROM events WHERE type = 'ticket.status_changed')",
    )
    report = verify(model_db)
    assert any("ticket.teleported" in d and "not declared" in d for d in report.differences)
    assert any(f"ticket {ticket_id}: status" in d for d in report.differences)


def test_seq_is_gapless_and_increasing(model_db: Database) -> None:
    build(model_db)
    with model_db.read() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM events ORDER BY seq"))]
        head = conn.execute(text("SELECT last_seq FROM log_head")).scalar()
    assert seqs == list(range(1, len(seqs) + 1)) and head == seqs[-1]
