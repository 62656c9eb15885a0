"""The unit of work's connection: SQLite keeps one write connection open between units
of work; a failure anywhere leaves nothing written and the next unit of work works."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine.base import RootTransaction

from opsdesk.desk import service
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from tests import factories


def _tickets(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.tickets)).scalar_one())


def test_a_failed_unit_of_work_writes_nothing_and_the_next_one_works(model_db: Database) -> None:
    customer = factories.customer(model_db)
    with pytest.raises(RuntimeError), UnitOfWork(model_db) as uow:
        service.create_ticket(
            uow, customer_id=customer.id, subject="s", channel="email", request_type="refund"
        )
        uow.flush()  # the rows are in the transaction ...
        raise RuntimeError("boom")  # ... and go with it
    assert _tickets(model_db) == 0
    factories.ticket(model_db, customer_id=customer.id)
    assert _tickets(model_db) == 1


def test_sqlite_reuses_one_write_connection(model_db: Database) -> None:
    if model_db.dialect != "sqlite":
        pytest.skip("PostgreSQL writers take pooled connections")
    factories.customer(model_db)
    first = model_db.writer()
    factories.customer(model_db)
    assert model_db.writer() is first
    assert model_db.write_lock is not None and not model_db.write_lock.locked()


def test_a_broken_write_connection_is_replaced(model_db: Database) -> None:
    if model_db.dialect != "sqlite":
        pytest.skip("PostgreSQL writers take pooled connections")
    factories.customer(model_db)
    broken = model_db.writer()
    broken.invalidate()  # as after a driver error
    factories.ticket(model_db)
    assert model_db.writer() is not broken
    assert _tickets(model_db) == 1


def test_a_failing_commit_writes_nothing_and_releases_the_write_turn(
    model_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = factories.customer(model_db)
    uow = UnitOfWork(model_db)
    with pytest.raises(Exception, match=r"FOREIGN KEY|disk full"), uow:
        service.create_ticket(
            uow, customer_id=customer.id, subject="s", channel="email", request_type="refund"
        )
        if model_db.dialect == "sqlite":
            # a real failing COMMIT: a foreign key checked only when the transaction ends
            uow.flush()
            uow._cur.execute("PRAGMA defer_foreign_keys = ON")
            uow._cur.execute("INSERT INTO ticket_tags (ticket_id, tag) VALUES (999999, 'x')")
        else:

            def fail(self: object) -> None:
                raise OSError("disk full")

            monkeypatch.setattr(RootTransaction, "commit", fail)
    monkeypatch.undo()
    assert model_db.write_lock is None or not model_db.write_lock.locked()
    assert _tickets(model_db) == 0
    factories.ticket(model_db, customer_id=customer.id)
    assert _tickets(model_db) == 1


def test_core_statements_join_the_unit_of_works_transaction(model_db: Database) -> None:
    customer = factories.customer(model_db)
    with pytest.raises(RuntimeError), UnitOfWork(model_db) as uow:
        tk = service.create_ticket(
            uow, customer_id=customer.id, subject="s", channel="email", request_type="refund"
        )
        uow.flush()
        uow.conn.execute(t.ticket_tags.insert(), {"ticket_id": tk.id, "tag": "core"})
        raise RuntimeError("boom")
    with model_db.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.ticket_tags)).scalar_one() == 0
    assert _tickets(model_db) == 0
    with UnitOfWork(model_db) as uow:
        tk = service.create_ticket(
            uow, customer_id=customer.id, subject="s", channel="email", request_type="refund"
        )
        uow.flush()
        uow.conn.execute(t.ticket_tags.insert(), {"ticket_id": tk.id, "tag": "core"})
    with model_db.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.ticket_tags)).scalar_one() == 1
    factories.ticket(model_db, customer_id=customer.id)  # and the next one still works
    assert _tickets(model_db) == 2
