"""The ticket lifecycle and the commands around it, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from opsdesk.desk import service
from opsdesk.domain.errors import (
    DomainError,
    InvalidTransition,
    OwnershipViolation,
    PermissionDenied,
)
from opsdesk.domain.lifecycle import STATUSES, TRANSITIONS, allowed
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from tests import factories


def event_count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.events)).scalar_one())


def test_transition_table_is_the_documented_lifecycle() -> None:
    assert allowed("new", "open") and allowed("open", "pending") and allowed("open", "on_hold")
    assert (
        allowed("pending", "solved") and allowed("solved", "closed") and allowed("solved", "open")
    )
    assert not allowed("new", "solved") and not allowed("closed", "open")
    assert not any(allowed(s, s) for s in STATUSES)
    assert TRANSITIONS["closed"] == frozenset()


def test_full_lifecycle_with_reopen(model_db: Database) -> None:
    agent = factories.user(model_db, teams=["billing"])
    ticket = factories.ticket(model_db)
    assert ticket.status == "new" and ticket.owning_team == "billing"
    with UnitOfWork(model_db, actor_kind="user", actor_id=agent.id) as uow:
        service.accept_ticket(uow, ticket.id)
        service.add_message(uow, ticket.id, body="Checking your invoice now.")
        service.change_status(uow, ticket.id, "pending", "asked for the invoice number")
    with UnitOfWork(model_db, actor_kind="customer", actor_id=ticket.customer_id) as uow:
        tk = service.add_message(uow, ticket.id, body="It is INV-22.", author_kind="customer")
        assert tk.status == "open"  # the customer's reply ends the wait
    with UnitOfWork(model_db, actor_kind="user", actor_id=agent.id) as uow:
        service.change_status(uow, ticket.id, "solved")
    with UnitOfWork(model_db, actor_kind="customer", actor_id=ticket.customer_id) as uow:
        tk = service.add_message(uow, ticket.id, body="Still wrong!", author_kind="customer")
        assert tk.status == "open" and tk.reopen_count == 1 and tk.solved_at is None
    with UnitOfWork(model_db, actor_kind="user", actor_id=agent.id) as uow:
        service.change_status(uow, ticket.id, "solved")
        service.change_status(uow, ticket.id, "closed")
        tk = uow.ticket(ticket.id)
    assert tk.status == "closed" and tk.first_reply_at is not None and tk.message_count == 4


@pytest.mark.parametrize(
    ("path", "target"),
    [([], "solved"), (["open", "solved", "closed"], "open"), ([], "closed"), (["open"], "new")],
)
def test_transition_outside_lifecycle_is_refused_and_changes_nothing(
    model_db: Database, path: list[str], target: str
) -> None:
    agent = factories.user(model_db, teams=["billing"])
    ticket = factories.ticket(model_db)
    with UnitOfWork(model_db, actor_kind="user", actor_id=agent.id) as uow:
        service.accept_ticket(uow, ticket.id) if path else None
        for status in path[1:]:
            service.change_status(uow, ticket.id, status)
    before = event_count(model_db)
    with pytest.raises(InvalidTransition, match="cannot go from"), UnitOfWork(model_db) as uow:
        service.change_status(uow, ticket.id, target)
    assert event_count(model_db) == before


def test_solve_needs_an_owning_agent(model_db: Database) -> None:
    ticket = factories.ticket(model_db)
    with UnitOfWork(model_db) as uow:
        service.change_status(uow, ticket.id, "open")
    with pytest.raises(OwnershipViolation, match="accept"), UnitOfWork(model_db) as uow:
        service.change_status(uow, ticket.id, "solved")


def test_agent_outside_team_cannot_accept_or_receive(model_db: Database) -> None:
    outsider = factories.user(model_db, teams=["logistics"])
    ticket = factories.ticket(model_db)
    with pytest.raises(OwnershipViolation, match="not a member"), UnitOfWork(model_db) as uow:
        service.accept_ticket(uow, ticket.id, outsider.id)
    with pytest.raises(OwnershipViolation), UnitOfWork(model_db) as uow:
        service.transfer_ticket(uow, ticket.id, reason="x", to_team="billing", to_agent=outsider.id)


def test_transfer_needs_a_reason_and_moves_ownership(model_db: Database) -> None:
    a = factories.user(model_db, teams=["frontline"])
    b = factories.user(model_db, teams=["billing"])
    ticket = factories.ticket(model_db, request_type="account_access")
    with UnitOfWork(model_db, actor_kind="user", actor_id=a.id) as uow:
        service.accept_ticket(uow, ticket.id)
    with pytest.raises(DomainError, match="reason"), UnitOfWork(model_db) as uow:
        service.transfer_ticket(uow, ticket.id, reason="  ", to_team="billing")
    with UnitOfWork(model_db, actor_kind="user", actor_id=a.id) as uow:
        tk = service.transfer_ticket(uow, ticket.id, reason="billing question", to_team="billing")
        assert (tk.owning_team, tk.owning_agent, tk.transfer_count) == ("billing", None, 1)
    with UnitOfWork(model_db, actor_kind="user", actor_id=b.id) as uow:
        tk = service.accept_ticket(uow, ticket.id)
        assert tk.owning_agent == b.id
    # leaving the team or deactivating would orphan the ticket: refused
    with pytest.raises(OwnershipViolation), UnitOfWork(model_db) as uow:
        service.change_user(uow, b.id, "teams", ["frontline"])
    with pytest.raises(OwnershipViolation), UnitOfWork(model_db) as uow:
        service.deactivate_user(uow, b.id, "left the company")


def test_agent_without_permission_is_refused(model_db: Database) -> None:
    auditor = factories.user(model_db, teams=[], roles=["auditor"])
    ticket = factories.ticket(model_db)
    with (
        pytest.raises(PermissionDenied),
        UnitOfWork(model_db, actor_kind="user", actor_id=auditor.id) as uow,
    ):
        service.change_priority(uow, ticket.id, "urgent")


def test_customer_merge_keeps_both_histories(model_db: Database) -> None:
    c1, c2 = factories.customer(model_db), factories.customer(model_db)
    t1 = factories.ticket(model_db, customer_id=c1.id)
    with UnitOfWork(model_db) as uow:
        service.add_handle(uow, c1.id, "phone", "+44 20 7946 0000")
        service.merge_customers(uow, c1.id, c2.id)
    with UnitOfWork(model_db) as uow:
        assert uow.handle_owner("phone", "+44 20 7946 0000") == c2.id
        assert uow.customer(c1.id).merged_into == c2.id
        assert uow.ticket(t1.id).customer_id == c1.id  # history stays where it happened
        found = service.customer_for_handle(uow, "phone", "+44 20 7946 0000", name="x")
        assert found.id == c2.id
    with pytest.raises(DomainError), UnitOfWork(model_db) as uow:
        service.create_customer(uow, name="dup", handles=[("phone", "+44 20 7946 0000")])


def test_exceptions_need_an_approver_role_and_expire(model_db: Database) -> None:
    from datetime import timedelta

    agent = factories.user(model_db, teams=["billing"])
    approver = factories.user(model_db, teams=["billing"], roles=["finance_approver"])
    ticket = factories.ticket(model_db, request_type="refund")
    with UnitOfWork(model_db, actor_kind="user", actor_id=agent.id) as uow:
        x = service.request_exception(uow, ticket.id, "refund_outside_policy", "42 days late")
    with (
        pytest.raises(PermissionDenied, match="finance_approver"),
        UnitOfWork(model_db, actor_kind="user", actor_id=agent.id) as uow,
    ):
        service.decide_exception(uow, x.id, approve=True)
    with UnitOfWork(model_db, actor_kind="user", actor_id=approver.id) as uow:
        decided = service.decide_exception(uow, x.id, approve=True, note="loyal customer")
        assert decided.status == "approved" and decided.expires_at is not None
        expires = decided.expires_at
    with UnitOfWork(model_db, now=expires + timedelta(seconds=1)) as uow:
        assert service.expire_exceptions(uow) == 1
        assert uow.exception(x.id).status == "expired"
    # not allowed for this request type
    other = factories.ticket(model_db, request_type="account_access")
    with pytest.raises(DomainError, match="not allowed"), UnitOfWork(model_db) as uow:
        service.request_exception(uow, other.id, "refund_outside_policy", "x")


def test_model_that_drops_a_role_in_use_is_refused(model_db: Database) -> None:
    from opsdesk.desk.models import apply_model_text
    from opsdesk.model import example_model_path

    factories.user(model_db, teams=["billing"], roles=["qa_analyst"])
    text = example_model_path().read_text()
    start = text.index("  - id: qa_analyst")
    end = text.index("  - id: finance_approver")
    with pytest.raises(DomainError, match="qa_analyst"), UnitOfWork(model_db) as uow:
        apply_model_text(uow, text[:start] + text[end:], filename="m.yaml", author="t")


def test_csat_needs_a_write_permission(model_db: Database) -> None:
    auditor = factories.user(model_db, teams=[], roles=["auditor"])
    agent = factories.user(model_db, teams=["billing"])
    ticket = factories.ticket(model_db)
    with UnitOfWork(model_db, actor_kind="user", actor_id=agent.id) as uow:
        service.accept_ticket(uow, ticket.id)
        service.change_status(uow, ticket.id, "solved")
    with (
        pytest.raises(PermissionDenied),
        UnitOfWork(model_db, actor_kind="user", actor_id=auditor.id) as uow,
    ):
        service.record_csat(uow, ticket.id, 5)
    with UnitOfWork(model_db, actor_kind="customer", actor_id=ticket.customer_id) as uow:
        assert service.record_csat(uow, ticket.id, 4).csat_score == 4


def test_closed_tickets_keep_their_owner_who_may_leave(model_db: Database) -> None:
    agent = factories.user(model_db, teams=["billing"])
    ticket = factories.ticket(model_db)
    with UnitOfWork(model_db, actor_kind="user", actor_id=agent.id) as uow:
        service.accept_ticket(uow, ticket.id)
        service.change_status(uow, ticket.id, "solved")
        service.change_status(uow, ticket.id, "closed")
    with UnitOfWork(model_db) as uow:
        service.deactivate_user(uow, agent.id, "left the company")
    # the rating of a closed ticket still lands; its history names the agent who left
    with UnitOfWork(model_db, actor_kind="customer", actor_id=ticket.customer_id) as uow:
        tk = service.record_csat(uow, ticket.id, 5)
    assert tk.csat_score == 5 and tk.owning_agent == agent.id


def test_handing_a_new_ticket_to_an_agent_opens_it(model_db: Database) -> None:
    agent = factories.user(model_db, teams=["billing"])
    ticket = factories.ticket(model_db)
    with UnitOfWork(model_db) as uow:
        tk = service.transfer_ticket(uow, ticket.id, to_agent=agent.id, reason="yours")
    assert tk.status == "open" and tk.owning_agent == agent.id


def test_a_solved_ticket_keeps_an_owning_agent_through_transfers(model_db: Database) -> None:
    # found by the ownership state machine: a team-only transfer of a solved ticket left
    # it solved with nobody owning the resolution
    a = factories.user(model_db, teams=["billing"])
    b = factories.user(model_db, teams=["frontline"])
    ticket = factories.ticket(model_db)
    with UnitOfWork(model_db, actor_kind="user", actor_id=a.id) as uow:
        service.accept_ticket(uow, ticket.id)
        service.change_status(uow, ticket.id, "solved")
    before = event_count(model_db)
    with pytest.raises(OwnershipViolation, match="name the agent"), UnitOfWork(model_db) as uow:
        service.transfer_ticket(uow, ticket.id, reason="wrong team", to_team="frontline")
    assert event_count(model_db) == before
    # naming the agent who takes the resolution is fine: a leaver's solved work moves on
    with UnitOfWork(model_db) as uow:
        tk = service.transfer_ticket(
            uow, ticket.id, reason="a leaves", to_team="frontline", to_agent=b.id
        )
    assert (tk.status, tk.owning_team, tk.owning_agent) == ("solved", "frontline", b.id)
    with UnitOfWork(model_db) as uow:
        service.deactivate_user(uow, a.id, "left the company")


def test_a_team_only_transfer_after_acceptance_requeues_the_ticket(model_db: Database) -> None:
    a = factories.user(model_db, teams=["billing"])
    ticket = factories.ticket(model_db)
    with UnitOfWork(model_db, actor_kind="user", actor_id=a.id) as uow:
        service.accept_ticket(uow, ticket.id)
        service.change_status(uow, ticket.id, "pending")
        tk = service.transfer_ticket(uow, ticket.id, reason="not ours", to_team="frontline")
    # the agent's ownership ends with the team's: the ticket waits in frontline's queue
    assert (tk.owning_team, tk.owning_agent, tk.accepted_at) == ("frontline", None, None)
    assert tk.status == "pending" and tk.queued_at is not None
    with pytest.raises(OwnershipViolation, match="accept"), UnitOfWork(model_db) as uow:
        service.change_status(uow, ticket.id, "solved")
