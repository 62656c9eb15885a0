"""The operating model acting on what just happened, inside the same transaction.

After a command appends its events, each reactor looks at them and may append more
(triage rules set a request type, SLA clocks start or pause, an escalation level fires,
the router offers a queued ticket to an agent, timers are put in the jobs outbox). What
reactors append is fed back to every reactor until nothing new happens, so a priority
raised by an escalation re-targets the clocks in the same transaction.

This module is where the service desk composes the capabilities (routing, SLA, jobs
scheduling); the capabilities themselves never import each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import cache

from opsdesk.domain.events import Event, NewEvent
from opsdesk.store.uow import UnitOfWork

Reactor = Callable[[UnitOfWork, Sequence[Event]], list[Event]]

#: rounds of reactions one command may cause; more means rules feeding each other
MAX_ROUNDS = 12


class ReactionLoop(RuntimeError):
    """Reactors kept producing events: two rules of the model are undoing each other."""


@cache
def reactors() -> tuple[Reactor, ...]:
    from opsdesk.routing import assign, triage
    from opsdesk.sla import clocks, escalation

    return (triage.react, clocks.react, escalation.react, assign.react, schedule_expiry)


def react(uow: UnitOfWork, events: Sequence[Event]) -> None:
    """Run every reactor on ``events`` and on what they append, to a fixed point.

    What the reactors append is the operating model acting, so the log records it as
    the system's doing, not as the doing of the user whose command set it off (who
    stays visible as the actor of the events that caused it)."""
    pending = list(events)
    actor = (uow.actor_kind, uow.actor_id)
    uow.actor_kind, uow.actor_id = "system", None
    try:
        for _ in range(MAX_ROUNDS):
            if not pending:
                return
            produced: list[Event] = []
            for reactor in reactors():
                produced.extend(reactor(uow, pending))
            pending = produced
    finally:
        uow.actor_kind, uow.actor_id = actor
    if pending:
        kinds = sorted({e.type for e in pending})
        raise ReactionLoop(
            f"reactions did not settle after {MAX_ROUNDS} rounds (still producing "
            f"{', '.join(kinds)}); check triage rules and escalation levels for a cycle"
        )


def append(uow: UnitOfWork, new_events: Sequence[NewEvent]) -> list[Event]:
    """``uow.append`` followed by the reactions; what every service command uses."""
    stored = uow.append(new_events)
    if stored:
        react(uow, stored)
    return stored


def schedule_expiry(uow: UnitOfWork, events: Sequence[Event]) -> list[Event]:
    """Put exception expiry in the jobs outbox: undecided requests at the type's
    maximum duration, approvals at their expiry."""
    for e in events:
        if e.type == "exception.requested":
            xtype = uow.model.exception_type(e.payload["exception_type"])
            uow.schedule(
                "exception.expire",
                e.at + timedelta(minutes=xtype.max_duration),
                ticket_id=e.ticket_id,
                ref=str(e.payload["exception_id"]),
            )
        elif e.type == "exception.approved" and e.payload.get("expires_at"):
            x = uow.exception(e.payload["exception_id"])
            if x.expires_at is not None:
                uow.schedule("exception.expire", x.expires_at, ticket_id=e.ticket_id, ref=str(x.id))
    return []
