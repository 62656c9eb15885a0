"""Service-level clocks and the business-time arithmetic they run on.

``businesstime`` answers "when is N business hours after this instant?" and "how much
business time lies between these instants?" for a calendar of the operating model::

    from opsdesk.sla import BusinessCalendar

    cal = BusinessCalendar.from_model(model.calendar("uk_site"))
    due = cal.add(received_at, 4 * 60)
"""

from __future__ import annotations

from opsdesk.sla.businesstime import (
    ALWAYS_OPEN,
    AlwaysOpen,
    BusinessCalendar,
    BusinessClock,
    BusinessTimeError,
    NoWorkingTimeError,
    clock_for_policy,
)

__all__ = [
    "ALWAYS_OPEN",
    "AlwaysOpen",
    "BusinessCalendar",
    "BusinessClock",
    "BusinessTimeError",
    "NoWorkingTimeError",
    "clock_for_policy",
]
