"""The SQLite row cache between units of work never hands out a row the database no
longer holds: another connection's commit, a statement outside the hot path and a
rollback each leave the next command reading what is really stored."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from opsdesk.desk import service
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from tests import factories


@pytest.fixture
def cached(model_db: Database) -> Database:
    if model_db.dialect != "sqlite":
        pytest.skip("the row cache is SQLite's (one write connection per process)")
    return model_db


def _subject(db: Database, ticket_id: int) -> str:
    with UnitOfWork(db) as uow:
        return uow.ticket(ticket_id).subject


def test_rows_a_command_read_and_wrote_are_kept(cached: Database) -> None:
    tk = factories.ticket(cached)
    assert ("tickets", tk.id) in cached.row_cache.rows
    assert cached.row_cache.clocks_of.get(tk.id)  # its clocks, started at triage
    with UnitOfWork(cached) as uow:
        service.change_priority(uow, tk.id, "high")
    with UnitOfWork(cached) as uow:
        assert uow.ticket(tk.id).priority == "high"
        clocks = uow.sla_clocks(tk.id)
    with cached.read() as conn:
        stored = conn.execute(t.sla_clocks.select().where(t.sla_clocks.c.ticket_id == tk.id))
        assert sorted(c.id for c in clocks) == sorted(r.id for r in stored)


def test_another_connections_commit_empties_it(cached: Database) -> None:
    tk = factories.ticket(cached)
    _subject(cached, tk.id)
    with cached.engine.begin() as conn:  # another connection, as another process would
        conn.execute(update(t.tickets).where(t.tickets.c.id == tk.id).values(subject="edited"))
    assert _subject(cached, tk.id) == "edited"


def test_a_write_outside_the_hot_path_empties_it(cached: Database) -> None:
    tk = factories.ticket(cached)
    with UnitOfWork(cached) as uow:
        uow.ticket(tk.id)
        uow.conn.execute(update(t.tickets).where(t.tickets.c.id == tk.id).values(subject="core"))
    assert not cached.row_cache.rows
    assert _subject(cached, tk.id) == "core"


def test_a_rolled_back_change_is_not_kept(cached: Database) -> None:
    tk = factories.ticket(cached)
    with pytest.raises(RuntimeError), UnitOfWork(cached) as uow:
        service.change_priority(uow, tk.id, "urgent")
        uow.flush()
        raise RuntimeError("boom")
    with UnitOfWork(cached) as uow:
        assert uow.ticket(tk.id).priority != "urgent"


def test_a_replaced_connection_starts_empty(cached: Database) -> None:
    tk = factories.ticket(cached)
    assert cached.row_cache.rows
    cached.drop_writer()
    assert not cached.row_cache.rows
    assert _subject(cached, tk.id) == tk.subject


def test_two_processes_writing_in_turn_keep_the_log_gapless(cached: Database) -> None:
    other = Database(cached.url)  # its own write connection, as a second process has
    try:
        for _ in range(3):
            tk = factories.ticket(cached)
            factories.ticket(other)
            with UnitOfWork(other) as uow:
                service.change_priority(uow, tk.id, "high")
            with UnitOfWork(cached) as uow:
                assert uow.ticket(tk.id).priority == "high"
                service.change_priority(uow, tk.id, "low")
        with cached.read() as conn:
            seqs = [r.seq for r in conn.execute(t.events.select().order_by(t.events.c.seq))]
        assert seqs == list(range(1, len(seqs) + 1))
    finally:
        other.dispose()
