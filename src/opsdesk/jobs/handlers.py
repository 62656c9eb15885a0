"""Which function runs a job of each kind.

A handler is ``handler(uow, job) -> None``: it re-checks the state the job is about
(a stale job is a no-op), appends events with ``uow.append`` (the runner runs the
reactions to them) and may re-schedule itself with ``uow.schedule`` when its moment
moved later. The capability handlers are imported when their kind first runs, so a
missing one fails that kind loudly (a recorded job failure) instead of the whole worker.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opsdesk.store.jobs import Job
    from opsdesk.store.uow import UnitOfWork

Handler = Callable[["UnitOfWork", "Job"], None]


class UnknownJobKind(LookupError):
    """A job row names a kind no handler is registered for."""


class StrandedJob(LookupError):
    """A job is about something the model in force no longer has (a database where such
    a model was applied before ``model apply`` refused it). The sweep records it as a
    failed job, with what to do, and goes on with the others."""


def expire_exception(uow: UnitOfWork, job: Job) -> None:
    """``exception.expire`` (ref: the exception id): expire the exception if it is still
    requested past its type's maximum duration, or approved past its expiry."""
    from opsdesk.desk import service

    x = uow.exception(int(job.ref))
    if x.status == "requested":
        try:
            uow.model.exception_type(x.exception_type)
        except KeyError:
            raise StrandedJob(
                f"exception {x.id} (type {x.exception_type!r}) is still requested, but the "
                "model in force has no such type, so it can neither be decided nor expire; "
                "apply a model with that type, or run `opsdesk model apply FILE "
                "--expire-exceptions` to expire it (a dead job then needs `opsdesk worker "
                "--retry-dead`)"
            ) from None
    service.expire_exception(uow, x.id)


#: kinds whose handler lives in a capability: (module, function)
CAPABILITY_HANDLERS: dict[str, tuple[str, str]] = {
    "sla.timer": ("opsdesk.sla.clocks", "fire_sla_timer"),
    "escalation.check": ("opsdesk.sla.escalation", "fire_escalation_check"),
    "routing.overflow": ("opsdesk.routing.assign", "fire_overflow"),
    "routing.shift_open": ("opsdesk.routing.assign", "fire_shift_open"),
}

_registry: dict[str, Handler] = {"exception.expire": expire_exception}


def kinds() -> list[str]:
    """Every job kind this build can run."""
    return sorted(set(_registry) | set(CAPABILITY_HANDLERS))


def register(kind: str, handler: Handler) -> None:
    """Run ``handler`` for jobs of ``kind`` (replacing any handler it had)."""
    _registry[kind] = handler


def unregister(kind: str) -> None:
    _registry.pop(kind, None)


def handler_for(kind: str) -> Handler:
    """The handler of ``kind``; :class:`UnknownJobKind` when there is none."""
    handler = _registry.get(kind)
    if handler is not None:
        return handler
    if kind not in CAPABILITY_HANDLERS:
        raise UnknownJobKind(f"no handler for job kind {kind!r}; known kinds: {', '.join(kinds())}")
    module_name, attribute = CAPABILITY_HANDLERS[kind]
    found = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(found):
        raise UnknownJobKind(
            f"job kind {kind!r} needs {module_name}.{attribute}, which this build lacks"
        )
    _registry[kind] = found
    return found  # type: ignore[no-any-return]
