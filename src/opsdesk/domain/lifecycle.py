"""The ticket lifecycle: which status moves are allowed.

new -> open -> pending (waiting on the customer) / on_hold (waiting on an internal
party) -> solved -> closed, with reopen from solved back to open.
"""

from __future__ import annotations

from typing import Final, Literal

Status = Literal["new", "open", "pending", "on_hold", "solved", "closed"]
STATUSES: Final[tuple[str, ...]] = ("new", "open", "pending", "on_hold", "solved", "closed")

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "new": frozenset({"open"}),
    "open": frozenset({"pending", "on_hold", "solved"}),
    "pending": frozenset({"open", "on_hold", "solved"}),
    "on_hold": frozenset({"open", "pending", "solved"}),
    "solved": frozenset({"open", "closed"}),
    "closed": frozenset(),
}

#: Statuses in which a ticket is still being worked (counts as backlog).
ACTIVE_STATUSES: Final[frozenset[str]] = frozenset({"new", "open", "pending", "on_hold"})


def allowed(before: str, after: str) -> bool:
    """Whether the lifecycle allows moving from ``before`` to ``after``.

    >>> allowed("solved", "open"), allowed("closed", "open")
    (True, False)
    """
    return after in TRANSITIONS.get(before, frozenset())


def is_reopen(before: str, after: str) -> bool:
    """A move back from solved to open is a reopen."""
    return before == "solved" and after == "open"
