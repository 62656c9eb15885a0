"""Random command sequences through the real store never break the ownership invariant,
and a refused command changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select

from opsdesk.desk import service
from opsdesk.domain.errors import DomainError
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from opsdesk.store.verify import verify

TEAMS = ["billing", "frontline", "tech_support"]
REQUEST_TYPES = ["refund", "account_access", "device_fault", "bill_explanation"]
STATUSES = ["new", "open", "pending", "on_hold", "solved", "closed"]


def snapshot(db: Database) -> tuple[Any, ...]:
    with db.read() as conn:
        return (
            conn.execute(select(func.count()).select_from(t.events)).scalar(),
            conn.execute(select(t.tickets).order_by(t.tickets.c.id)).all(),
            conn.execute(select(t.users).order_by(t.users.c.id)).all(),
            conn.execute(select(t.exceptions).order_by(t.exceptions.c.id)).all(),
        )


def check_invariant(db: Database) -> None:
    with db.read() as conn:
        users = {u.id: u for u in conn.execute(select(t.users))}
        for tk in conn.execute(select(t.tickets)):
            if tk.triaged_at is not None:
                assert tk.owning_team is not None, f"ticket {tk.id} triaged but has no team"
            if tk.accepted_at is not None:
                assert tk.owning_agent is not None, f"ticket {tk.id} accepted but has no agent"
            if tk.owning_agent is not None and tk.status != "closed":
                # closed tickets keep their last owner as history, who may have left
                agent = users[tk.owning_agent]
                assert agent.active, f"ticket {tk.id} owned by deactivated user {agent.id}"
                assert tk.owning_team in agent.teams, f"ticket {tk.id}: owner not in team"
            if tk.status == "solved":
                assert tk.owning_agent is not None


def make_machine(database_factory: Any) -> type[RuleBasedStateMachine]:
    class OwnershipMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.db: Database = database_factory()
            self.tickets: list[int] = []
            self.users: list[int] = []
            self.exceptions: list[int] = []

        @initialize()
        def people(self) -> None:
            with UnitOfWork(self.db) as uow:
                for i, teams in enumerate(
                    [["billing"], ["billing", "frontline"], ["frontline"], ["tech_support"]]
                ):
                    u = service.create_user(
                        uow, name=f"A{i}", email=f"a{i}@t.test", roles=["agent"], teams=teams
                    )
                    self.users.append(u.id)
                lead = service.create_user(
                    uow,
                    name="Lead",
                    email="lead@t.test",
                    roles=["team_lead", "finance_approver"],
                    teams=["billing"],
                )
                self.users.append(lead.id)
                self.customer = service.create_customer(uow, name="C").id

        def attempt(self, actor: int | None, fn: Any, *args: Any, **kw: Any) -> None:
            before = snapshot(self.db)
            try:
                kind = "user" if actor is not None else "system"
                with UnitOfWork(self.db, actor_kind=kind, actor_id=actor) as uow:
                    result = fn(uow, *args, **kw)
            except DomainError:
                assert snapshot(self.db) == before, "a refused command changed something"
                return
            if fn is service.create_ticket:
                self.tickets.append(result.id)
            if fn is service.request_exception:
                self.exceptions.append(result.id)

        @rule(rt=st.sampled_from([None, *REQUEST_TYPES]))
        def create(self, rt: str | None) -> None:
            self.attempt(
                None,
                service.create_ticket,
                customer_id=self.customer,
                subject="s",
                channel="email",
                request_type=rt,
                body="hello",
            )

        @precondition(lambda self: bool(self.tickets))
        @rule(data=st.data())
        def triage(self, data: st.DataObject) -> None:
            self.attempt(
                None,
                service.triage_ticket,
                data.draw(st.sampled_from(self.tickets)),
                data.draw(st.sampled_from(REQUEST_TYPES)),
            )

        @precondition(lambda self: bool(self.tickets))
        @rule(data=st.data())
        def accept(self, data: st.DataObject) -> None:
            agent = data.draw(st.sampled_from(self.users))
            self.attempt(agent, service.accept_ticket, data.draw(st.sampled_from(self.tickets)))

        @precondition(lambda self: bool(self.tickets))
        @rule(data=st.data())
        def transfer(self, data: st.DataObject) -> None:
            self.attempt(
                None,
                service.transfer_ticket,
                data.draw(st.sampled_from(self.tickets)),
                reason=data.draw(st.sampled_from(["", "wrong team", "needs expert"])),
                to_team=data.draw(st.sampled_from([None, *TEAMS])),
                to_agent=data.draw(st.sampled_from([None, *self.users])),
            )

        @precondition(lambda self: bool(self.tickets))
        @rule(data=st.data())
        def status(self, data: st.DataObject) -> None:
            self.attempt(
                None,
                service.change_status,
                data.draw(st.sampled_from(self.tickets)),
                data.draw(st.sampled_from(STATUSES)),
            )

        @precondition(lambda self: bool(self.tickets))
        @rule(data=st.data())
        def message(self, data: st.DataObject) -> None:
            self.attempt(
                None,
                service.add_message,
                data.draw(st.sampled_from(self.tickets)),
                body="hi",
                author_kind=data.draw(st.sampled_from(["customer", "system"])),
            )

        @rule(data=st.data())
        def change_teams(self, data: st.DataObject) -> None:
            user = data.draw(st.sampled_from(self.users))
            teams = data.draw(st.lists(st.sampled_from(TEAMS), max_size=2))
            self.attempt(None, service.change_user, user, "teams", teams)

        @rule(data=st.data())
        def deactivate(self, data: st.DataObject) -> None:
            # the first agents stay, so there is always someone to own tickets
            self.attempt(
                None, service.deactivate_user, data.draw(st.sampled_from(self.users[2:])), "left"
            )

        @precondition(lambda self: bool(self.tickets))
        @rule(data=st.data())
        def exception(self, data: st.DataObject) -> None:
            self.attempt(
                data.draw(st.sampled_from(self.users)),
                service.request_exception,
                data.draw(st.sampled_from(self.tickets)),
                data.draw(st.sampled_from(["refund_outside_policy", "priority_jump"])),
                "customer asked",
            )

        @precondition(lambda self: bool(self.exceptions))
        @rule(data=st.data())
        def decide(self, data: st.DataObject) -> None:
            self.attempt(
                data.draw(st.sampled_from(self.users)),
                service.decide_exception,
                data.draw(st.sampled_from(self.exceptions)),
                approve=data.draw(st.booleans()),
            )

        @invariant()
        def owned(self) -> None:
            check_invariant(self.db)

        def teardown(self) -> None:
            import os

            if os.environ.get("DEBUG_MACHINE"):
                with self.db.read() as conn:
                    print(
                        conn.execute(
                            select(t.events.c.type, func.count()).group_by(t.events.c.type)
                        ).all()
                    )
            report = verify(self.db)
            self.db.dispose()
            assert report.ok, report.differences

    return OwnershipMachine


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_random_command_sequences_keep_ownership(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.conftest import examples, fresh_database

    factory = fresh_database(request, backend, tmp_path_factory)
    machine = make_machine(factory)
    machine.TestCase.settings = settings(
        max_examples=examples(40 if backend == "sqlite" else 15),
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    machine.TestCase().runTest()
