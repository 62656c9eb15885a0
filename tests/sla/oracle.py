"""A brute-force, minute-by-minute business-time oracle, independent of the implementation.

It shares nothing with ``opsdesk.sla.businesstime`` but the definition: walk each UTC
minute, read the local wall clock, and ask whether a shift of an open day covers it.

The one subtlety is a fall-back fold, where the wall clock runs backwards. The
documented rule is that a wall-clock time ``t`` means the first instant at which the
local clock shows ``t`` or later, so an instant ``u`` is past ``t`` exactly when the
highest reading the clock has shown up to ``u`` (its "high-water mark") is ``t`` or
later. The oracle therefore checks the high-water mark, not the current reading; outside
a fold the two are equal. A spring-forward gap needs no special case: the clock jumps,
and the first reading after the jump is the first one at or after any time in the gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

from opsdesk.model import Calendar
from opsdesk.model.schema import HolidaySource

MINUTE = timedelta(minutes=1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Longer than any fold of the zones under test (at most an hour), so the high-water
# mark is right from the first minute the walk reports.
WARM_UP = timedelta(hours=6)
MAX_WALK_MINUTES = 120 * 1440


@cache
def country_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))


@dataclass(frozen=True)
class Spec:
    """A calendar as plain data: shifts are (start, end) minutes, end may exceed 1440."""

    zone: str
    hours: tuple[tuple[tuple[int, int], ...], ...]  # indexed by weekday, Monday = 0
    closed: frozenset[date] = frozenset()
    country: str | None = None
    subdivision: str | None = None

    def closed_on(self, day: date) -> bool:
        if day in self.closed:
            return True
        return self.country is not None and day in country_holidays(
            self.country, self.subdivision, day.year
        )

    def to_model(self) -> Calendar:
        """The same calendar as an operating-model ``Calendar`` (HH:MM text)."""

        def clock(minutes: int) -> str:
            if minutes > 1440:
                minutes -= 1440
            return f"{minutes // 60:02d}:{minutes % 60:02d}"

        return Calendar(
            id="random",
            timezone=self.zone,
            hours={
                WEEKDAYS[wd]: [(clock(s), clock(e)) for s, e in shifts]  # type: ignore[misc]
                for wd, shifts in enumerate(self.hours)
            },
            holidays=HolidaySource(country=self.country, subdivision=self.subdivision)
            if self.country
            else None,
            dates=sorted(self.closed),
        )


def _covered(spec: Spec, reading: datetime, closed: dict[date, bool]) -> bool:
    """Whether a wall-clock reading lies in a shift of an open day (today or yesterday's)."""
    today = reading.date()
    for day in (today, today - timedelta(days=1)):
        shifts = spec.hours[day.weekday()]
        if not shifts:
            continue
        if day not in closed:
            closed[day] = spec.closed_on(day)
        if closed[day]:
            continue
        minute = (reading - datetime.combine(day, time())) // MINUTE
        if any(start <= minute < end for start, end in shifts):
            return True
    return False


@dataclass
class Walk:
    """Open/closed flag of each UTC minute from ``start`` on, computed on demand."""

    spec: Spec
    start: datetime
    flags: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._zone = ZoneInfo(self.spec.zone)
        self._closed: dict[date, bool] = {}
        self._cursor = self.start - WARM_UP
        self._mark: datetime | None = None

    def flag(self, index: int) -> bool:
        """Is the minute ``[start + index, start + index + 1)`` open?"""
        if index >= MAX_WALK_MINUTES:
            raise AssertionError("oracle walked too far: no working time?")
        while len(self.flags) <= index:
            reading = self._cursor.astimezone(self._zone).replace(tzinfo=None)
            if self._mark is None or reading > self._mark:
                self._mark = reading
            if self._cursor >= self.start:
                self.flags.append(_covered(self.spec, self._mark, self._closed))
            self._cursor += MINUTE
        return self.flags[index]

    def add(self, minutes: int) -> datetime:
        """The instant after ``minutes`` open minutes (the first open minute for 0)."""
        index = 0
        if minutes == 0:
            while not self.flag(index):
                index += 1
            return self.start + index * MINUTE
        counted = 0
        while True:
            if self.flag(index):
                counted += 1
                if counted == minutes:
                    return self.start + (index + 1) * MINUTE
            index += 1

    def open_minutes(self, first: int, last: int) -> int:
        """Open minutes among indexes ``[first, last)``."""
        if last > first:
            self.flag(last - 1)
        return sum(self.flags[first:last])

    def runs(self, first: int, last: int) -> list[tuple[datetime, datetime]]:
        """Maximal runs of open minutes within ``[first, last)`` as UTC intervals."""
        if last > first:
            self.flag(last - 1)
        runs: list[tuple[datetime, datetime]] = []
        run_start: int | None = None
        for index in range(first, last + 1):
            is_open = index < last and self.flags[index]
            if is_open and run_start is None:
                run_start = index
            elif not is_open and run_start is not None:
                runs.append((self.start + run_start * MINUTE, self.start + index * MINUTE))
                run_start = None
        return runs
