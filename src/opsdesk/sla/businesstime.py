"""Business-time arithmetic on a calendar's working hours, holidays and time zone.

Written by hand on ``holidays`` + ``zoneinfo`` because the libraries that do this
(workalendar, businesstimedelta) are unmaintained and neither handles shifts past
midnight together with daylight-saving changes the way an SLA clock needs. The
semantics (docs/business-time.md) are checked against a brute-force minute-by-minute
oracle in tests/sla.

Semantics in short:

- Working hours are wall-clock times in the calendar's zone. A wall-clock time ``t`` of
  a given date means *the first instant at which the local clock shows ``t`` or later*:
  a time in a spring-forward gap resolves forward to the end of the gap, a time that
  occurs twice at a fall-back resolves to its first occurrence. A shift is the real
  elapsed time between its resolved start and end, so a 22:00-06:00 night shift across
  a change lasts 7 h or 9 h; a 09:00-17:00 shift with the change outside it is 8 h.
- A shift belongs to the date it starts on: it does not run when that date is a public
  holiday or a closed date, and a shift past midnight runs into a holiday that follows.
- Instants in and out are timezone-aware; results are UTC. Intervals are half-open
  ``[open, close)``.

Typical use::

    cal = BusinessCalendar.from_model(model.calendar("uk_site"))
    due = cal.add(received_at, 8 * 60)          # 8 business hours later (UTC)
    spent = cal.between(received_at, replied_at)  # business time as a timedelta
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Final, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

from opsdesk.model.schema import parse_clock

if TYPE_CHECKING:
    from opsdesk.model.schema import Calendar, OperatingModel, SlaPolicy

__all__ = [
    "ALWAYS_OPEN",
    "AlwaysOpen",
    "BusinessCalendar",
    "BusinessClock",
    "BusinessTimeError",
    "NoWorkingTimeError",
    "clock_for_policy",
]

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES: Final = 1440
#: How far ``add``/``next_open`` search for working time before giving up.
DEFAULT_HORIZON_DAYS: Final = 3653  # ten years
_ZERO: Final = timedelta(0)
_ONE_DAY: Final = timedelta(days=1)
# Stop well before date.max so the day walk can never overflow.
_LAST_DAY: Final = date(9999, 12, 1)

Duration = int | float | timedelta
Interval = tuple[datetime, datetime]


class BusinessTimeError(ValueError):
    """A calendar that cannot be built or a question it cannot answer."""


class NoWorkingTimeError(BusinessTimeError):
    """No working time was found within the search horizon."""


class BusinessClock(Protocol):
    """What SLA clocks need from a calendar: ``BusinessCalendar`` or ``AlwaysOpen``."""

    def add(self, start: datetime, minutes: Duration) -> datetime: ...

    def between(self, start: datetime, end: datetime) -> timedelta: ...

    def is_open(self, instant: datetime) -> bool: ...

    def next_open(self, instant: datetime) -> datetime: ...

    def working_intervals(self, start: datetime, end: datetime) -> Iterator[Interval]: ...


def _to_utc(instant: datetime, name: str = "instant") -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise BusinessTimeError(
            f"{name} {instant.isoformat()} has no time zone: pass an aware datetime (UTC)"
        )
    return instant.astimezone(UTC)


def _to_timedelta(minutes: Duration) -> timedelta:
    if isinstance(minutes, bool):
        raise BusinessTimeError("a business duration is minutes or a timedelta, not a bool")
    duration = minutes if isinstance(minutes, timedelta) else timedelta(minutes=minutes)
    if duration < _ZERO:
        raise BusinessTimeError(f"a business duration cannot be negative (got {duration})")
    return duration


def _normalise_shift(start: int | str, end: int | str) -> tuple[int, int]:
    """Minutes from midnight; an end at or before the start runs past midnight.

    Mirrors ``Calendar.intervals``: ``("22:00", "02:00")`` -> ``(1320, 1560)``.
    """
    start_min = parse_clock(start) if isinstance(start, str) else start
    end_min = parse_clock(end) if isinstance(end, str) else end
    if end_min <= start_min:
        end_min += DAY_MINUTES
    if not 0 <= start_min < DAY_MINUTES or not start_min < end_min <= start_min + DAY_MINUTES:
        raise BusinessTimeError(
            f"invalid working interval {start!r}-{end!r}: the start must be before 24:00 "
            "and a shift can last at most 24 hours"
        )
    return start_min, end_min


def _weekday_index(key: int | str) -> int:
    if isinstance(key, int) and 0 <= key <= 6:
        return key
    if isinstance(key, str) and key.lower()[:3] in WEEKDAYS:
        return WEEKDAYS.index(key.lower()[:3])
    raise BusinessTimeError(f"unknown weekday {key!r}: use mon..sun or 0 (Monday)..6 (Sunday)")


@dataclass(frozen=True)
class AlwaysOpen:
    """A 24x7 wall clock with the ``BusinessCalendar`` interface.

    For SLA policies measured in calendar time (``business_hours: false`` or no
    calendar): ``add`` is plain addition and ``between`` plain subtraction.
    """

    name: str = "always_open"
    zone: tzinfo = UTC

    def add(self, start: datetime, minutes: Duration) -> datetime:
        """``start + minutes`` in UTC."""
        return _to_utc(start, "start") + _to_timedelta(minutes)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """``end - start``, or zero when ``end <= start``."""
        return max(_to_utc(end, "end") - _to_utc(start, "start"), _ZERO)

    def is_open(self, instant: datetime) -> bool:
        """Always true."""
        _to_utc(instant)
        return True

    def next_open(self, instant: datetime) -> datetime:
        """The instant itself, in UTC."""
        return _to_utc(instant)

    def working_intervals(self, start: datetime, end: datetime) -> Iterator[Interval]:
        """The single interval ``[start, end)`` when it is not empty."""
        start_utc, end_utc = _to_utc(start, "start"), _to_utc(end, "end")
        if end_utc > start_utc:
            yield start_utc, end_utc


ALWAYS_OPEN: Final = AlwaysOpen()


class BusinessCalendar:
    """Weekly working hours in one zone, minus public holidays and closed dates.

    ``hours`` maps a weekday (``"mon"``..``"sun"`` or 0..6, Monday = 0) to shifts given
    as ``("HH:MM", "HH:MM")`` or as minutes from midnight; an end at or before the start
    (or an end above 1440) runs past midnight into the next day. Example::

        BusinessCalendar("Europe/London", {"mon": [("09:00", "17:00")]},
                         holiday_country="GB", holiday_subdivision="ENG")
    """

    zone: tzinfo
    weekly: tuple[tuple[tuple[int, int], ...], ...]
    holiday_country: str | None
    holiday_subdivision: str | None
    closed_dates: frozenset[date]
    name: str
    horizon_days: int
    _holiday_years: dict[int, frozenset[date]]
    _days: dict[date, list[Interval]]

    def __init__(
        self,
        zone: str | tzinfo,
        hours: Mapping[int, Iterable[tuple[int | str, int | str]]]
        | Mapping[str, Iterable[tuple[int | str, int | str]]],
        *,
        holiday_country: str | None = None,
        holiday_subdivision: str | None = None,
        closed_dates: Iterable[date] = (),
        name: str = "",
        horizon_days: int = DEFAULT_HORIZON_DAYS,
    ) -> None:
        if isinstance(zone, str):
            try:
                zone = ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise BusinessTimeError(
                    f"unknown time zone {zone!r} (use an IANA name such as 'Europe/London')"
                ) from exc
        days: list[list[tuple[int, int]]] = [[] for _ in WEEKDAYS]
        for key, shifts in hours.items():
            days[_weekday_index(key)].extend(_normalise_shift(s, e) for s, e in shifts)
        label = f"calendar {name!r}" if name else "the calendar"
        if not any(days):
            raise BusinessTimeError(f"{label} has no working hours: give at least one shift")
        if horizon_days < 1:
            raise BusinessTimeError("horizon_days must be at least 1")
        if holiday_subdivision is not None and holiday_country is None:
            raise BusinessTimeError("a holiday subdivision needs a holiday country")
        self.zone = zone
        self.weekly = tuple(tuple(sorted(day)) for day in days)
        self.holiday_country = holiday_country
        self.holiday_subdivision = holiday_subdivision
        self.closed_dates = frozenset(closed_dates)
        self.name = name
        self.horizon_days = horizon_days
        # Filled lazily per year: a calendar only ever pays for the years it is asked about.
        self._holiday_years = {}
        self._days = {}
        if holiday_country is not None:
            try:  # validate the country and subdivision now, compute years lazily
                holidays_lib.country_holidays(holiday_country, subdiv=holiday_subdivision)
            except NotImplementedError as exc:
                raise BusinessTimeError(
                    f"{label}: unknown holiday country/subdivision "
                    f"{holiday_country!r}/{holiday_subdivision!r}: {exc}"
                ) from exc

    def __repr__(self) -> str:
        return (
            f"BusinessCalendar(name={self.name!r}, zone={self.zone!s}, "
            f"holidays={self.holiday_country!r}/{self.holiday_subdivision!r})"
        )

    @classmethod
    def from_model(
        cls, calendar: Calendar, *, horizon_days: int = DEFAULT_HORIZON_DAYS
    ) -> BusinessCalendar:
        """Build from an operating-model ``Calendar`` (``model.calendar("uk_site")``)."""
        source = calendar.holidays
        hours: dict[str, list[tuple[int, int]]] = {
            day: calendar.intervals(day) for day in calendar.hours
        }
        return cls(
            calendar.timezone,
            hours,
            holiday_country=source.country if source else None,
            holiday_subdivision=source.subdivision if source else None,
            closed_dates=calendar.dates,
            name=calendar.id,
            horizon_days=horizon_days,
        )

    # --- days ----------------------------------------------------------------------

    def is_closed_date(self, day: date) -> bool:
        """True when ``day`` is a public holiday or an explicit closed date."""
        if day in self.closed_dates:
            return True
        if self.holiday_country is None:
            return False
        year = self._holiday_years.get(day.year)
        if year is None:
            found = holidays_lib.country_holidays(
                self.holiday_country, subdiv=self.holiday_subdivision, years=day.year
            )
            year = self._holiday_years[day.year] = frozenset(found.keys())
        return day in year

    def _resolve(self, local: datetime) -> datetime:
        """The first instant (UTC) at which the local clock shows ``local`` or later.

        An ambiguous time (a fall-back fold) gives its first occurrence; a time in a
        spring-forward gap gives the transition instant, the end of the gap.
        """
        # fold=0: first occurrence of an ambiguous time (PEP 495).
        instant = local.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        if instant.astimezone(self.zone).replace(tzinfo=None) == local:
            return instant
        # In a gap fold=0 applies the offset from before the change, landing after the
        # transition; fold=1 lands before it. Bisect (in seconds) for the transition:
        # the first instant whose local reading is at or after ``local``.
        low = local.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        high = instant
        while high - low > timedelta(seconds=1):
            mid = low + timedelta(seconds=((high - low) // timedelta(seconds=1)) // 2)
            if mid.astimezone(self.zone).replace(tzinfo=None) >= local:
                high = mid
            else:
                low = mid
        return high

    def day_shifts(self, day: date) -> list[Interval]:
        """The UTC intervals of the shifts that start on local date ``day``, in order.

        Empty on a holiday or closed date; a shift wholly inside a DST gap is dropped.
        """
        # remembered per day: every clock and routing check walks the same few days, and
        # resolving wall-clock shift times in the zone is the bulk of that walk
        spans = self._days.get(day)
        if spans is not None:
            return spans
        spans = []
        shifts = self.weekly[day.weekday()]
        if shifts and not self.is_closed_date(day):
            midnight = datetime.combine(day, time())
            for start_min, end_min in shifts:
                opens = self._resolve(midnight + timedelta(minutes=start_min))
                closes = self._resolve(midnight + timedelta(minutes=end_min))
                if closes > opens:
                    spans.append((opens, closes))
        if len(self._days) >= 8192:  # about twenty years of days
            self._days.clear()
        self._days[day] = spans
        return spans

    def _spans(self, start: datetime, last_day: date | None) -> Iterator[Interval]:
        """Disjoint, sorted working intervals after ``start`` (UTC), clipped to it.

        Consecutive intervals may touch (a 24x7 calendar gives one per day). Walks local
        dates from the day before ``start`` (its shifts may run past midnight) up to
        ``last_day``; with no ``last_day`` it raises ``NoWorkingTimeError`` after
        ``horizon_days``. Intervals come out in order because a day's shifts all open
        after the previous day's and resolving wall-clock times is monotonic.
        """
        day = start.astimezone(self.zone).date() - _ONE_DAY
        limit = last_day
        if limit is None:
            limit = day + timedelta(days=min(self.horizon_days, (_LAST_DAY - day).days))
        floor = start
        while day <= limit:
            for opens, closes in self.day_shifts(day):
                opens = max(opens, floor)
                if closes > opens:
                    yield opens, closes
                    floor = closes
            day += _ONE_DAY
        if last_day is None:
            label = f"calendar {self.name!r}" if self.name else "the calendar"
            raise NoWorkingTimeError(
                f"{label} has no more working time within {self.horizon_days} days after "
                f"{start.isoformat()} (all days closed, or the duration is too long)"
            )

    # --- public arithmetic ---------------------------------------------------------

    def working_intervals(self, start: datetime, end: datetime) -> Iterator[Interval]:
        """Working intervals within ``[start, end)`` as merged UTC ``(open, close)`` pairs.

        Touching intervals (a shift past midnight meeting the next day's first shift)
        come out as one.
        """
        start_utc, end_utc = _to_utc(start, "start"), _to_utc(end, "end")
        if end_utc <= start_utc:
            return
        # A fall-back fold can make the local date of `end` lag the shifts that open
        # before it by at most a day; one more day is harmless (clipped below).
        last_day = min(end_utc.astimezone(self.zone).date() + _ONE_DAY, _LAST_DAY)
        pending: Interval | None = None
        for opens, closes in self._spans(start_utc, last_day):
            if opens >= end_utc:
                break
            closes = min(closes, end_utc)
            if pending is not None and opens <= pending[1]:
                pending = (pending[0], closes)
                continue
            if pending is not None:
                yield pending
            pending = (opens, closes)
        if pending is not None:
            yield pending

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time in ``[start, end)``; zero when ``end <= start``."""
        return sum((closes - opens for opens, closes in self.working_intervals(start, end)), _ZERO)

    def add(self, start: datetime, minutes: Duration) -> datetime:
        """The instant (UTC) at which ``minutes`` of business time after ``start`` elapse.

        The clock starts at the next working instant, so ``add(s, 0) == next_open(s)``.
        For a positive duration the result is the earliest instant ``t`` with
        ``between(s, t) == duration``, so it can be a closing time (Friday 17:00), never
        the following opening. Whole days are stepped over, never single minutes.
        """
        remaining = _to_timedelta(minutes)
        for opens, closes in self._spans(_to_utc(start, "start"), None):
            length = closes - opens
            if remaining <= length:
                return opens + remaining
            remaining -= length
        raise AssertionError("unreachable: _spans raises when the horizon is reached")

    def next_open(self, instant: datetime) -> datetime:
        """``instant`` (UTC) when open, else the start of the next working interval."""
        opens, _closes = next(self._spans(_to_utc(instant), None))
        return opens

    def is_open(self, instant: datetime) -> bool:
        """True when ``instant`` is inside a working interval (open is in, close is out)."""
        instant_utc = _to_utc(instant)
        return any(True for _ in self.working_intervals(instant_utc, instant_utc + _EPSILON))


_EPSILON: Final = timedelta(microseconds=1)


def clock_for_policy(model: OperatingModel, policy: SlaPolicy) -> BusinessClock:
    """The clock an SLA policy is measured on.

    ``ALWAYS_OPEN`` when the policy has no calendar or ``business_hours: false``,
    otherwise its calendar's business hours.
    """
    if policy.calendar is None or not policy.business_hours:
        return ALWAYS_OPEN
    return BusinessCalendar.from_model(model.calendar(policy.calendar))
