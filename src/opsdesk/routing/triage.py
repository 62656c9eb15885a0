"""(being written)"""

from __future__ import annotations

from collections.abc import Sequence

from opsdesk.domain.events import Event
from opsdesk.store.uow import UnitOfWork


def react(uow: UnitOfWork, events: Sequence[Event]) -> list[Event]:
    return []
