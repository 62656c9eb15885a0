"""Erasure and retention by crypto-shredding: the log keeps its events, the personal
fields become unreadable, verify holds, nothing else changes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, String, Text, cast, delete, func, select, update
from sqlalchemy.exc import DBAPIError

from opsdesk.desk import privacy, queries, service
from opsdesk.desk.access import EVERYTHING, Access
from opsdesk.domain.errors import Conflict, DomainError, NotFound
from opsdesk.domain.events import ERASED
from opsdesk.store import tables as t
from opsdesk.store.crypto import ENVELOPE, PersonalDataError, new_master_key_text
from opsdesk.store.db import Database
from opsdesk.store.export import event_batches
from opsdesk.store.uow import UnitOfWork
from opsdesk.store.verify import replay, verify
from tests.conftest import fresh_database

_phones = itertools.count(1)

#: the system reads every customer (no user, no scope)
SYSTEM = Access(None, frozenset({"*"}), EVERYTHING)


@dataclass
class Person:
    id: int
    ticket_id: int
    secrets: list[str]  # every personal text of theirs that went into the database


def person(db: Database, tag: str, *, at: datetime | None = None) -> Person:
    """A customer with two handles, a ticket, a customer message and an agent reply."""
    name = f"Zelda {tag} Quixote"
    email = f"zelda.{tag.lower()}@example.test"
    phone = f"+44 20 7946 {next(_phones):04d}"
    subject = f"Blender {tag} exploded in my kitchen"
    body = f"My flat is at {tag} Quux Lane"
    reply = f"Sorry to hear, Zelda {tag}; a courier comes tomorrow"
    with UnitOfWork(db, now=at) as uow:
        customer = service.create_customer(uow, name=name, handles=[("email", email)])
    with UnitOfWork(db, now=at) as uow:
        service.add_handle(uow, customer.id, "phone", phone)
    with UnitOfWork(db, now=at) as uow:
        ticket = service.create_ticket(
            uow,
            customer_id=customer.id,
            subject=subject,
            channel="email",
            request_type="refund",
            body=body,
        )
    with UnitOfWork(db, now=at) as uow:
        service.add_message(uow, ticket.id, body=reply, author_kind="agent")
    return Person(customer.id, ticket.id, [name, email, phone, subject, body, reply])


def database_texts(db: Database) -> str:
    """Every text and JSON value of every table (PostgreSQL), or the bytes of the
    database files (SQLite), as one string to search."""
    if db.dialect == "sqlite":
        path = Path(db.engine.url.database or "")
        privacy.shrink_wal(db)
        data = b""
        for file in (path, Path(f"{path}-wal")):
            if file.exists():
                data += file.read_bytes()
        return data.decode("latin-1")
    chunks: list[str] = []
    with db.read() as conn:
        for table in t.metadata.sorted_tables:
            columns = [
                cast(c, Text) for c in table.columns if isinstance(c.type, String | Text | JSON)
            ]
            if columns:
                for row in conn.execute(select(*columns)):
                    chunks.extend(str(v) for v in row if v is not None)
    return "\n".join(chunks)


def event_shape(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        rows = conn.execute(
            select(
                t.events.c.seq,
                t.events.c.at,
                t.events.c.type,
                t.events.c.ticket_id,
                t.events.c.customer_id,
                t.events.c.actor_kind,
                t.events.c.actor_id,
                cast(t.events.c.payload, Text),
            ).order_by(t.events.c.seq)
        ).all()
    return [tuple(r) for r in rows]


def test_personal_fields_are_sealed_in_the_log_and_clear_in_projections(model_db: Database) -> None:
    zelda = person(model_db, "A1")
    with model_db.read() as conn:
        payloads = [
            orjson.dumps(p).decode() for p in conn.execute(select(t.events.c.payload)).scalars()
        ]
        name = conn.execute(select(t.customers.c.name)).scalar()
    log = "\n".join(payloads)
    for secret in zelda.secrets:
        assert secret not in log
    assert ENVELOPE in log
    assert name == zelda.secrets[0]
    # the timeline and the export read them back
    with model_db.read() as conn:
        page = queries.customer_timeline(conn, SYSTEM, zelda.id)
        exported = orjson.dumps([row for batch in event_batches(conn) for row in batch]).decode()
    bodies = [e.payload["body"] for e in page.items if e.type == "message.added"]
    assert bodies == zelda.secrets[4:]
    for secret in zelda.secrets:
        assert secret in exported
    assert ENVELOPE not in exported
    assert verify(model_db).ok


def test_erase_leaves_no_plaintext_and_keeps_the_log(model_db: Database) -> None:
    zelda = person(model_db, "B2")
    bruno = person(model_db, "C3")
    before = event_shape(model_db)
    plan = privacy.erase(model_db, zelda.id, reason="request #881")
    assert plan.customer_ids == [zelda.id]
    assert (plan.handles_removed, plan.tickets_blanked, plan.messages_blanked) == (2, 1, 2)
    assert plan.keys_destroyed == 2  # identity + this month's messages

    after = event_shape(model_db)
    # the old events are untouched, byte for byte (the append-only triggers held); one
    # customer.erased event follows
    assert after[: len(before)] == before
    assert [e[2] for e in after[len(before) :]] == ["customer.erased"]
    assert_log_still_refuses_edits(model_db)

    report = verify(model_db)
    assert report.ok, report.differences
    texts = database_texts(model_db)
    for secret in zelda.secrets:
        assert secret not in texts, secret
    for secret in bruno.secrets:  # the search can find what is there
        assert secret in texts, secret

    with model_db.read() as conn:
        page = queries.customer_timeline(conn, SYSTEM, zelda.id)
        profile = queries.get_customer(conn, SYSTEM, zelda.id)
        exported = [row for batch in event_batches(conn) for row in batch]
        audit = conn.execute(
            select(
                t.audit_log.c.action, t.audit_log.c.subject, t.audit_log.c.details["reason"]
            ).where(t.audit_log.c.action == "customer.erased")
        ).all()
    assert profile.name == ERASED and profile.handles == []
    bodies = [e.payload["body"] for e in page.items if e.type == "message.added"]
    assert bodies == [ERASED, ERASED]
    assert all(ENVELOPE not in str(row) for row in exported)
    assert [(a, subject) for a, subject, _ in audit] == [
        ("customer.erased", f"customer:{zelda.id}")
    ]
    assert "request #881" in str(audit[0][2])


def assert_log_still_refuses_edits(db: Database) -> None:
    """The append-only triggers are in place and enabled."""
    for statement in (update(t.events).values(type="x"), delete(t.events)):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(statement)


def test_erase_is_idempotent_and_dry_run_changes_nothing(model_db: Database) -> None:
    zelda = person(model_db, "D4")
    shape = event_shape(model_db)
    plan = privacy.erase(model_db, zelda.id, dry_run=True)
    assert plan.dry_run and not plan.nothing_to_do and plan.messages_blanked == 2
    assert event_shape(model_db) == shape
    with model_db.read() as conn:
        assert conn.execute(select(t.customers.c.name)).scalar() == zelda.secrets[0]
        assert conn.execute(select(func.count()).select_from(t.personal_keys)).scalar() == 2

    privacy.erase(model_db, zelda.id)
    shape = event_shape(model_db)
    again = privacy.erase(model_db, zelda.id)
    assert again.nothing_to_do
    assert event_shape(model_db) == shape  # no second event, nothing changed
    assert verify(model_db).ok


def test_erase_refuses_unknown_ids(model_db: Database) -> None:
    with pytest.raises(NotFound, match="customer 999 does not exist"):
        privacy.erase(model_db, 999)
    with pytest.raises(NotFound):
        privacy.erase(model_db, 2**70)


def test_erase_covers_the_merge_group_and_new_data_gets_a_new_key(model_db: Database) -> None:
    first = person(model_db, "E5")
    second = person(model_db, "F6")
    with UnitOfWork(model_db) as uow:
        service.merge_customers(uow, second.id, first.id)
    plan = privacy.erase(model_db, second.id)
    assert plan.customer_ids == sorted([first.id, second.id])
    assert verify(model_db).ok
    texts = database_texts(model_db)
    for secret in first.secrets + second.secrets:
        assert secret not in texts
    # the erased customer writes again: the new data is sealed under a new key, readable
    with UnitOfWork(model_db) as uow:
        service.add_message(uow, first.ticket_id, body="Back again, new flat")
    with model_db.read() as conn:
        page = queries.customer_timeline(conn, SYSTEM, first.id)
    assert page.items[-1].payload["body"] == "Back again, new flat"
    assert verify(model_db).ok
    assert not privacy.erase(model_db, first.id).nothing_to_do
    assert verify(model_db).ok


def test_erase_refuses_events_written_before_encryption(model_db: Database) -> None:
    zelda = person(model_db, "G7")
    # an event as a database from before migration 0007 holds it: body in clear
    with UnitOfWork(model_db) as uow:
        uow.flush()
        seq = uow.last_seq = uow.last_seq + 1
        uow.conn.execute(
            t.events.insert().values(
                seq=seq,
                at=uow.now,
                type="ticket.csat_received",
                ticket_id=zelda.ticket_id,
                customer_id=zelda.id,
                actor_kind="customer",
                payload={"score": 5, "comment": "Thanks, from Zelda at home"},
            )
        )
    with pytest.raises(Conflict, match="written before personal data was encrypted"):
        privacy.erase(model_db, zelda.id)


def test_other_customers_are_untouched(model_db: Database) -> None:
    zelda = person(model_db, "H8")
    bruno = person(model_db, "I9")
    with model_db.read() as conn:
        before = queries.customer_timeline(conn, SYSTEM, bruno.id).items
        profile = queries.get_customer(conn, SYSTEM, bruno.id)
    privacy.erase(model_db, zelda.id)
    with model_db.read() as conn:
        assert queries.customer_timeline(conn, SYSTEM, bruno.id).items == before
        assert queries.get_customer(conn, SYSTEM, bruno.id) == profile


def test_retention_purges_only_old_months(model_db: Database) -> None:
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    old = person(model_db, "J10", at=now - timedelta(days=120))
    edge = person(model_db, "K11", at=datetime(2026, 11, 2, tzinfo=UTC))
    recent = person(model_db, "L12", at=now - timedelta(days=1))
    with UnitOfWork(model_db, now=now) as uow:
        dry = privacy.apply_retention(uow, 30, dry_run=True)
    assert dry.before == datetime(2026, 11, 1, tzinfo=UTC)
    assert dry.messages_blanked == 2 and dry.keys_destroyed == 1
    shape = event_shape(model_db)
    with UnitOfWork(model_db, now=now) as uow:
        privacy.apply_retention(uow, 30)
    assert event_shape(model_db)[: len(shape)] == shape
    assert verify(model_db).ok
    with model_db.read() as conn:
        bodies = dict(conn.execute(select(t.messages.c.id, t.messages.c.body)).all())
        names = set(conn.execute(select(t.customers.c.name)).scalars())
    assert sorted(bodies.values()).count(ERASED) == 2
    for secret in old.secrets[4:]:
        assert secret not in bodies.values()
    for kept in edge.secrets[4:] + recent.secrets[4:]:
        assert kept in bodies.values()
    assert old.secrets[0] in names  # retention purges bodies only
    # applying it again finds nothing more
    with UnitOfWork(model_db, now=now) as uow:
        assert privacy.apply_retention(uow, 30).nothing_to_do
    texts = database_texts(model_db)
    for secret in old.secrets[4:]:
        assert secret not in texts


def test_replay_from_an_empty_projection_gives_the_blanked_tables(model_db: Database) -> None:
    """What a database rebuilt from the log alone would hold: the erased customer's
    placeholders, the other customer's plaintext, and exactly the live tables."""
    zelda = person(model_db, "M13")
    bruno = person(model_db, "N14")
    privacy.erase(model_db, zelda.id)
    with model_db.read() as conn:
        rebuilt = replay(conn).projection
    assert rebuilt.customers[zelda.id].name == ERASED
    assert rebuilt.customers[bruno.id].name == bruno.secrets[0]
    assert {h.customer_id for h in rebuilt.handles.values()} == {bruno.id}
    assert rebuilt.tickets[zelda.ticket_id].subject == ERASED
    bodies = sorted(m.body for m in rebuilt.messages.values())
    assert bodies == sorted([ERASED, ERASED, *bruno.secrets[4:]])
    report = verify(model_db)
    assert report.ok, report.differences
    assert report.counts["customers"] == 2 and report.counts["messages"] == 4


def test_the_row_cache_keeps_data_keys_until_an_erasure(sqlite_db: Database) -> None:
    from opsdesk.desk.models import apply_model_file
    from opsdesk.model import example_model_path

    with UnitOfWork(sqlite_db) as uow:
        apply_model_file(uow, example_model_path(), author="tests")
    zelda = person(sqlite_db, "Q17")
    cache = sqlite_db.row_cache
    # the writes counted the key rows they inserted: the cache survived and holds the keys
    assert len(cache.keys) == 2 and cache.rows
    with UnitOfWork(sqlite_db) as uow:
        service.add_message(uow, zelda.ticket_id, body="again", author_kind="agent")
        assert uow.rows_written["personal_keys", "insert"] == 0
    privacy.erase(sqlite_db, zelda.id)
    assert cache.keys == {} and sqlite_db.row_cache.keys == {}
    with UnitOfWork(sqlite_db) as uow:
        service.add_message(uow, zelda.ticket_id, body="after", author_kind="agent")
        uow.flush()
        assert uow.rows_written["personal_keys", "insert"] == 1  # a fresh key, not the old
    assert verify(sqlite_db).ok


def test_erasure_puts_the_connections_secure_delete_back(sqlite_db: Database) -> None:
    from opsdesk.desk.models import apply_model_file
    from opsdesk.model import example_model_path

    with UnitOfWork(sqlite_db) as uow:
        apply_model_file(uow, example_model_path(), author="tests")
    zelda = person(sqlite_db, "S18")
    for setting in (0, 1):
        with sqlite_db.write_lock:  # type: ignore[union-attr]
            driver = sqlite_db.writer().connection.driver_connection
            driver.execute(f"PRAGMA secure_delete = {setting}")
        privacy.erase(sqlite_db, zelda.id)
        with sqlite_db.write_lock:  # type: ignore[union-attr]
            driver = sqlite_db.writer().connection.driver_connection
            assert driver.execute("PRAGMA secure_delete").fetchone()[0] == setting
        with UnitOfWork(sqlite_db) as uow:
            service.add_message(uow, zelda.ticket_id, body=f"more {setting}", author_kind="agent")


def test_a_missing_or_wrong_master_key_is_reported_not_replaced(
    model_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    person(model_db, "P16")
    elsewhere = tmp_path / "nowhere" / "master.key"
    monkeypatch.setenv("OPSDESK_MASTER_KEY_FILE", str(elsewhere))
    other = Database(model_db.url)  # a new engine reads the master key afresh
    try:
        with pytest.raises(PersonalDataError, match="is missing but 2 data keys"):
            verify(other)
        assert not elsewhere.exists()
    finally:
        other.dispose()
    monkeypatch.setenv("OPSDESK_MASTER_KEY", new_master_key_text())
    other = Database(model_db.url)
    try:
        with pytest.raises(PersonalDataError, match="does not unwrap under this master key"):
            verify(other)
    finally:
        other.dispose()
    monkeypatch.setenv("OPSDESK_MASTER_KEY", "too-short")
    other = Database(model_db.url)
    try:
        with pytest.raises(PersonalDataError, match="is not 32 bytes"):
            verify(other)
    finally:
        other.dispose()


# --- invariants over random histories ---------------------------------------------------

actions = st.lists(
    st.one_of(
        st.tuples(st.just("customer"), st.integers(0, 5)),
        st.tuples(st.just("message"), st.integers(0, 5)),
        st.tuples(st.just("erase"), st.integers(0, 5)),
        st.tuples(st.just("merge"), st.integers(0, 5)),
    ),
    min_size=1,
    max_size=12,
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_random_histories_verify_and_never_leak(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    make = fresh_database(request, backend, tmp_path_factory)

    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(actions)
    def run(steps: list[tuple[str, int]]) -> None:
        db = make()
        try:
            people: list[Person] = []
            gone: set[str] = set()  # erased texts: they must never reappear
            n = 0
            for action, pick in steps:
                n += 1
                if action == "customer" or not people:
                    people.append(person(db, f"R{n}x"))
                    continue
                who = people[pick % len(people)]
                if action == "message":
                    body = f"secret note {n} for {who.id}"
                    with UnitOfWork(db) as uow:
                        service.add_message(uow, who.ticket_id, body=body, author_kind="agent")
                    who.secrets.append(body)
                elif action == "erase":
                    plan = privacy.erase(db, who.id)
                    gone.update(s for p in people if p.id in plan.customer_ids for s in p.secrets)
                elif action == "merge":
                    other = people[(pick + 1) % len(people)]
                    if other.id != who.id:
                        try:
                            with UnitOfWork(db) as uow:
                                service.merge_customers(uow, who.id, other.id)
                        except DomainError:
                            pass  # already merged somewhere: refused, nothing changed
            report = verify(db)
            assert report.ok, report.differences
            texts = database_texts(db)
            for secret in gone:
                assert secret not in texts, secret
        finally:
            db.dispose()

    run()
