"""The input bounds hold in the domain, for every caller (CLI, importers' commands, demo)."""

from __future__ import annotations

import pytest

from opsdesk.desk import service
from opsdesk.domain import limits
from opsdesk.domain.errors import Conflict, DomainError, NotFound
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from tests import factories


def test_text_problem() -> None:
    assert limits.text_problem("Ada") is None
    assert limits.text_problem("Zoë 🙂") is None
    assert limits.text_problem("\x01\u200b \t") == "must contain a visible character"
    assert limits.text_problem("Ada\x00") == "must not contain a NUL character"
    assert limits.text_problem("\ud800") == "must not contain a lone surrogate"


def test_tags_are_bounded_per_ticket(model_db: Database) -> None:
    customer_id = factories.customer(model_db).id
    with pytest.raises(DomainError, match="at most 50"), UnitOfWork(model_db) as uow:
        service.create_ticket(
            uow,
            customer_id=customer_id,
            subject="x",
            channel="email",
            tags=[f"t{i}" for i in range(20_000)],
        )
    ticket = factories.ticket(model_db, tags=[f"t{i}" for i in range(limits.MAX_TAGS)])
    with pytest.raises(DomainError, match="remove some first"), UnitOfWork(model_db) as uow:
        service.change_tags(uow, ticket.id, ["more"], [])
    with pytest.raises(DomainError, match="longer than 64"), UnitOfWork(model_db) as uow:
        service.change_tags(uow, ticket.id, ["x" * 65], ["t0"])
    with pytest.raises(DomainError, match="visible"), UnitOfWork(model_db) as uow:
        service.change_tags(uow, ticket.id, ["\x01"], ["t0"])


def test_names_and_handles(model_db: Database) -> None:
    for name in ("\x01\x02", "\u200b", "A\x00"):
        with pytest.raises(DomainError, match="customer name"), UnitOfWork(model_db) as uow:
            service.create_customer(uow, name=name)
    with pytest.raises(DomainError, match="not an e-mail address"), UnitOfWork(model_db) as uow:
        service.create_customer(uow, name="Ada", handles=[("email", "ada@")])
    many = [("chat", f"c{i}") for i in range(limits.MAX_HANDLES + 1)]
    with pytest.raises(DomainError, match="at most 20 handles"), UnitOfWork(model_db) as uow:
        service.create_customer(uow, name="Ada", handles=many)


def test_csat_once_and_only_an_int(model_db: Database) -> None:
    agent = factories.user(model_db, teams=["billing"])
    ticket = factories.ticket(model_db)
    with UnitOfWork(model_db, actor_kind="user", actor_id=agent.id) as uow:
        service.accept_ticket(uow, ticket.id)
        service.change_status(uow, ticket.id, "solved")
    for score in (True, 0, 6, 4.5):
        with pytest.raises(DomainError, match="integer from 1 to 5"), UnitOfWork(model_db) as uow:
            service.record_csat(uow, ticket.id, score)  # type: ignore[arg-type]
    with UnitOfWork(model_db) as uow:
        service.record_csat(uow, ticket.id, 3)
    with pytest.raises(Conflict, match="once"), UnitOfWork(model_db) as uow:
        service.record_csat(uow, ticket.id, 5)


def test_an_id_beyond_the_database_integer_is_not_found(model_db: Database) -> None:
    for bad in (2**63, 10**30, 0, -1):
        with pytest.raises(NotFound), UnitOfWork(model_db) as uow:
            service.change_tags(uow, bad, ["x"], [])
