"""The shape of one row of the jobs outbox (``tables.jobs``), as handlers see it.

Capabilities write jobs with ``UnitOfWork.schedule`` and receive them back in their
handlers; the runner that claims and drains them lives in ``opsdesk.jobs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed row of the outbox."""

    id: int
    kind: str
    ticket_id: int | None
    ref: str
    run_at: datetime
    attempts: int
