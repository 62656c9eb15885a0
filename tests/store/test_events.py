"""The event vocabulary is declared once; undeclared types cannot be emitted."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from opsdesk.docsgen import GENERATED
from opsdesk.domain import events as ev
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from tests import factories

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_undeclared_type_is_refused() -> None:
    with pytest.raises(ev.UndeclaredEvent, match="not declared"):
        ev.new_event("ticket.teleported", ev.TicketTagsChanged(added=[], removed=[]), ticket_id=1)


def test_payload_must_match_its_schema() -> None:
    with pytest.raises(ev.UndeclaredEvent, match="TicketCreated"):
        ev.new_event("ticket.created", ev.TicketTagsChanged(added=[], removed=[]), ticket_id=1)


def test_every_emitted_type_is_declared(model_db: Database) -> None:
    factories.ticket(model_db)
    with model_db.read() as conn:
        types = set(conn.execute(select(t.events.c.type)).scalars())
    assert types and types <= set(ev.VOCABULARY)


def test_generated_docs_are_current() -> None:
    for name, render in GENERATED.items():
        assert (DOCS / name).read_text(encoding="utf-8") == render(), (
            f"docs/{name} is stale: run `make docs`"
        )
