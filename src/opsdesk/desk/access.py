"""Who may see and do what: the permissions a user's roles grant under the operating
model in force, and the team scope that limits which tickets and customers they reach.

The rule lives here and only here. Reads apply it in SQL (:meth:`Scope.tickets_clause`,
:meth:`Scope.customers_clause`) so pages and counts stay right; writes apply it to the
ticket the command already loaded (:meth:`Scope.covers`). Something out of scope is
answered exactly like something missing (:func:`hidden`), so a caller cannot learn that
it exists.

>>> access = Access.of(model, user)  # doctest: +SKIP
>>> access.require("tickets.read")  # doctest: +SKIP
>>> select(t.tickets).where(access.scope.tickets_clause())  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, exists, or_, true

from opsdesk.domain.errors import NotFound, PermissionDenied
from opsdesk.domain.state import UserState
from opsdesk.model import ALL_PERMISSIONS, PERMISSIONS, OperatingModel
from opsdesk.store import tables as t

#: the permission that lifts team scoping (ops leads, auditors, QA, admins through "*")
ALL_TEAMS = "tickets.all_teams"


def hidden(what: str, ident: int) -> NotFound:
    """The refusal for something out of scope: word for word the one for a missing row."""
    return NotFound(f"{what} {ident} does not exist")


@dataclass(frozen=True, slots=True)
class Scope:
    """The tickets a caller reaches: every one (``teams is None``), or those owned by
    one of ``teams`` or by ``user_id``. Untriaged tickets (no owning team yet) are the
    shared triage queue and reached by everyone; customers are reached through a
    reached ticket, or while they have no ticket at all (just created)."""

    teams: frozenset[str] | None
    user_id: int | None = None

    @property
    def everything(self) -> bool:
        return self.teams is None

    def covers(self, owning_team: str | None, owning_agent: int | None) -> bool:
        """Whether a ticket with this ownership is in scope (for writes, on the ticket
        the command has loaded anyway: no extra query)."""
        if self.teams is None or owning_team is None:
            return True
        if owning_team in self.teams:
            return True
        return owning_agent is not None and owning_agent == self.user_id

    def tickets_clause(self, tickets: Any = None) -> ColumnElement[bool]:
        """A WHERE clause on ``tickets`` (default ``t.tickets``) keeping tickets in scope."""
        if self.teams is None:
            return true()
        c = (tickets if tickets is not None else t.tickets).c
        reach: list[ColumnElement[bool]] = [c.owning_team.is_(None)]
        if self.teams:
            reach.append(c.owning_team.in_(sorted(self.teams)))
        if self.user_id is not None:
            reach.append(c.owning_agent == self.user_id)
        return or_(*reach)

    def reaches_ticket(self, ticket_id: Any) -> ColumnElement[bool]:
        """A WHERE clause keeping rows whose ``ticket_id`` column names a ticket in scope
        (a primary-key lookup per row: for rows of one customer, ticket or page)."""
        if self.teams is None:
            return true()
        return exists().where(t.tickets.c.id == ticket_id, self.tickets_clause())

    def customers_clause(self, customer_id: Any) -> ColumnElement[bool]:
        """A WHERE clause keeping the customers (by the ``customer_id`` column) that
        have a ticket in scope, or no ticket yet (``ix_tickets_customer_team`` finds a
        customer's tickets by team)."""
        if self.teams is None:
            return true()
        of_customer = t.tickets.alias("of_customer")
        mine = of_customer.c.customer_id == customer_id
        reached = exists().where(mine, self.tickets_clause(of_customer))
        return or_(reached, ~exists().where(mine))

    def events_clause(self) -> ColumnElement[bool]:
        """A WHERE clause on ``t.events``: events of tickets in scope, and events of
        customers in scope that belong to no ticket (a handle added, a merge). Events of
        neither (users, the model) are for unscoped readers only."""
        if self.teams is None:
            return true()
        e = t.events.c
        of_customer = e.ticket_id.is_(None) & e.customer_id.is_not(None)
        return or_(
            self.reaches_ticket(e.ticket_id), of_customer & self.customers_clause(e.customer_id)
        )


@lru_cache(maxsize=64)
def _customer_reached_sql(dialect: str, teams: int) -> str:
    """:meth:`Scope.customers_clause` for one customer, rendered once per dialect and
    number of teams (the write path asks it on every command naming a customer: building
    the SQLAlchemy construct cost more than the indexed look-up)."""

    def ph(name: str) -> str:
        return f":{name}" if dialect == "sqlite" else f"%({name})s"

    reach = ["owning_team IS NULL", f"owning_agent = {ph('me')}"]
    if teams:
        reach.insert(0, f"owning_team IN ({', '.join(ph(f'team{i}') for i in range(teams))})")
    of_customer = f"SELECT 1 FROM tickets WHERE customer_id = {ph('customer')}"  # noqa: S608
    return (
        f"SELECT CASE WHEN EXISTS ({of_customer} AND ({' OR '.join(reach)})) THEN 1 "
        f"WHEN EXISTS ({of_customer}) THEN 0 ELSE 1 END"
    )


def customer_reached(conn: Connection, scope: Scope, customer_id: int) -> bool:
    """Whether ``scope`` reaches the customer as stored (a ticket in scope, or none):
    one indexed query on the driver's cursor."""
    if scope.teams is None:
        return True
    teams = sorted(scope.teams)
    params: dict[str, Any] = {"customer": customer_id, "me": scope.user_id}
    params.update({f"team{i}": team for i, team in enumerate(teams)})
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_customer_reached_sql(conn.dialect.name, len(teams)), params)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return bool(row[0])


EVERYTHING = Scope(None)
NOTHING = Scope(frozenset())


@dataclass(frozen=True, slots=True)
class Access:
    """Who is asking (``user_id``; None for the system), what the model in force grants
    them, and the scope of tickets and customers they reach. Built once per request
    from the already-loaded user and the cached model: no query."""

    user_id: int | None
    granted: frozenset[str]
    scope: Scope

    @classmethod
    def of(cls, model: OperatingModel, user: UserState | None) -> Access:
        """The access of ``user`` under ``model``; ``None`` is the system (everything)."""
        if user is None:
            return cls(None, frozenset({ALL_PERMISSIONS}), EVERYTHING)
        if not user.active:
            return cls(user.id, frozenset(), NOTHING)
        granted = model.granted(user.roles)
        return cls(user.id, granted, scope_of(user, granted))

    def has(self, permission: str) -> bool:
        return permission in self.granted or ALL_PERMISSIONS in self.granted

    def require(self, permission: str) -> None:
        """Refuse (403) unless the caller's roles grant ``permission``."""
        if not self.has(permission):
            raise PermissionDenied(
                f"user {self.user_id} lacks the permission {permission!r}; "
                "ask an admin to grant a role that has it",
                permission,
            )

    def ticket_in_scope(self, ticket_id: int, owning_team: str | None, owner: int | None) -> None:
        """404 (as for a missing ticket) unless the ticket is in scope."""
        if not self.scope.covers(owning_team, owner):
            raise hidden("ticket", ticket_id)


def scope_of(user: UserState, granted: frozenset[str]) -> Scope:
    """The one scoping rule: ``tickets.all_teams`` (which ``*`` includes) reaches
    everything; anyone else reaches their teams' tickets and the tickets they own."""
    if ALL_TEAMS in granted:
        return EVERYTHING
    return Scope(frozenset(user.teams), user.id)


def roles_table_markdown(model: OperatingModel) -> str:
    """The roles x permissions table of ``model`` in Markdown (for docs/security.md):
    one column per role, a row for its reach and one per known permission."""
    roles = model.roles
    granted = {role.id: model.permissions_for([role.id]) for role in roles}
    head = "| permission | " + " | ".join(f"`{role.id}`" for role in roles) + " |"
    lines = [head, "|---|" + "---|" * len(roles)]
    reach = [
        "all teams"
        if ALL_TEAMS in granted[r.id] or ALL_PERMISSIONS in granted[r.id]
        else "own teams"
        for r in roles
    ]
    lines.append("| *reaches* | " + " | ".join(reach) + " |")
    for permission in PERMISSIONS:
        if permission == ALL_PERMISSIONS:
            continue
        marks = ["✓" if permission in granted[r.id] else "" for r in roles]
        lines.append(f"| `{permission}` | " + " | ".join(marks) + " |")
    return "\n".join(lines) + "\n"
