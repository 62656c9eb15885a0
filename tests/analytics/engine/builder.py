"""A tiny builder of synthetic CASE_EVENTS tables with hand-computable answers.

Times are hours after ``T0``. Each case keeps its state (team, agent, status, customer,
channel, category, priority) and every event row carries the state after the event,
as the real converters do. Unless given, a case's agent is its own ("ag-<case id>"),
so no category has a key person by accident.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from opsdesk.analytics.schema import CASE_EVENTS, COLUMNS

T0 = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday

_STATE = ("team", "agent", "status", "customer", "channel", "category", "priority")


class Case:
    def __init__(self, log: Log, case_id: str, start: float, state: dict[str, Any]) -> None:
        self.log = log
        self.case_id = case_id
        self.start = start
        self.state = state

    def ev(self, hours: float, type_: str, **fields: Any) -> Case:
        """An event ``hours`` after the case's start; state fields update the case."""
        for name in _STATE:
            if name in fields:
                self.state[name] = fields.pop(name)
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        row.update(self.state)
        row.update(
            case_id=self.case_id,
            seq=self.log.next_seq(),
            at=T0 + timedelta(hours=self.start + hours),
            type=type_,
        )
        row.update(fields)
        self.log.rows.append(row)
        return self

    def message(self, hours: float, actor: str = "agent", visibility: str = "public") -> Case:
        return self.ev(hours, "message.added", actor_kind=actor, visibility=visibility)

    def status(self, hours: float, status: str, **fields: Any) -> Case:
        return self.ev(hours, "ticket.status_changed", status=status, **fields)

    def solve(self, hours: float, **fields: Any) -> Case:
        return self.status(hours, "solved", **fields)

    def transfer(self, hours: float, team: str, agent: str | None = None) -> Case:
        return self.ev(hours, "ticket.transferred", team=team, agent=agent)

    def step(self, hours: float, activity: str) -> Case:
        return self.ev(hours, "ticket.updated", activity=activity)

    def exception(self, hours: float, exception_type: str = "goodwill_credit") -> Case:
        return self.ev(hours, "exception.requested", exception_type=exception_type)


class Log:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def case(
        self,
        case_id: str,
        *,
        start: float = 0.0,
        team: str | None = "A",
        agent: str | None = "",
        category: str | None = "Billing",
        priority: str | None = "normal",
        channel: str | None = "email",
        customer: str | None = None,
        status: str = "open",
    ) -> Case:
        """A case created at ``start`` hours (its ticket.created event at offset 0)."""
        state = {
            "team": team,
            "agent": f"ag-{case_id}" if agent == "" else agent,
            "status": status,
            "customer": customer or f"cust-{case_id}",
            "channel": channel,
            "category": category,
            "priority": priority,
        }
        case = Case(self, case_id, start, state)
        case.ev(0, "ticket.created", actor_kind="customer")
        return case

    def clean(self, case_id: str, hours: float = 10.0, **kw: Any) -> Case:
        """Created, answered after an hour, solved after ``hours``: three touches."""
        return self.case(case_id, **kw).message(1).solve(hours)

    def table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rows, schema=CASE_EVENTS)
