"""Explicit business-time cases: the example model's calendars, DST days, edge cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from opsdesk.model import OperatingModel, example_model_path, load_model_file
from opsdesk.sla import (
    ALWAYS_OPEN,
    AlwaysOpen,
    BusinessCalendar,
    BusinessTimeError,
    NoWorkingTimeError,
    clock_for_policy,
)

LONDON = ZoneInfo("Europe/London")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
H = timedelta(hours=1)
EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A wall-clock time in ``zone`` (fold=0: the first occurrence of an ambiguous time)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)


@pytest.fixture(scope="module")
def model() -> OperatingModel:
    result = load_model_file(example_model_path())
    assert result.model is not None
    return result.model


@pytest.fixture(scope="module")
def uk(model: OperatingModel) -> BusinessCalendar:
    return BusinessCalendar.from_model(model.calendar("uk_site"))


@pytest.fixture(scope="module")
def nl(model: OperatingModel) -> BusinessCalendar:
    return BusinessCalendar.from_model(model.calendar("nl_site"))


# --- the example model's calendars ------------------------------------------------


def test_uk_bank_holiday_is_skipped(uk: BusinessCalendar) -> None:
    # Sat 3 May 2025 16:00: one hour left on Saturday, Sunday closed, Monday 5 May is the
    # Early May bank holiday, so the second hour is Tuesday 08:00-09:00 BST.
    start = local(LONDON, 2025, 5, 3, 16)
    assert uk.is_closed_date(date(2025, 5, 5))
    assert uk.add(start, 120) == local(LONDON, 2025, 5, 6, 9)
    assert uk.between(start, local(LONDON, 2025, 5, 6, 9)) == 2 * H
    assert not uk.is_open(local(LONDON, 2025, 5, 5, 12))


def test_uk_explicit_closed_date(uk: BusinessCalendar) -> None:
    # Christmas Eve is in `dates`; 25 and 26 December are bank holidays.
    assert uk.next_open(local(LONDON, 2025, 12, 23, 20, 30)) == local(LONDON, 2025, 12, 27, 9)


def test_dutch_kings_day(nl: BusinessCalendar) -> None:
    # King's Day 2026 is Monday 27 April: Friday 16:00 + 2 h lands on Tuesday 09:30.
    start = local(AMSTERDAM, 2026, 4, 24, 16)
    assert nl.is_closed_date(date(2026, 4, 27))
    assert nl.add(start, 120) == local(AMSTERDAM, 2026, 4, 28, 9, 30)
    assert nl.add(start, 120) == utc(2026, 4, 28, 7, 30)


def test_friday_afternoon_plus_four_hours_lands_on_monday(nl: BusinessCalendar) -> None:
    start = local(AMSTERDAM, 2025, 6, 13, 15)  # Friday, closes 17:00
    due = nl.add(start, 4 * 60)
    assert due == local(AMSTERDAM, 2025, 6, 16, 10, 30)
    assert due.tzinfo is UTC
    assert nl.between(start, due) == 4 * H


def test_evening_shift_past_midnight(uk: BusinessCalendar) -> None:
    # Friday 21:00-01:00: 23:30 + 2 h is 1.5 h on Friday night and 0.5 h Saturday morning.
    start = local(LONDON, 2025, 6, 6, 23, 30)
    assert uk.add(start, 120) == local(LONDON, 2025, 6, 7, 9, 30)
    assert uk.is_open(local(LONDON, 2025, 6, 7, 0, 59))
    assert not uk.is_open(local(LONDON, 2025, 6, 7, 1))
    assert uk.between(local(LONDON, 2025, 6, 6, 19), local(LONDON, 2025, 6, 7, 10)) == 6 * H
    assert list(
        uk.working_intervals(local(LONDON, 2025, 6, 6, 19), local(LONDON, 2025, 6, 7, 2))
    ) == [
        (local(LONDON, 2025, 6, 6, 19), local(LONDON, 2025, 6, 6, 20)),
        (local(LONDON, 2025, 6, 6, 21), local(LONDON, 2025, 6, 7, 1)),
    ]


def test_shift_past_midnight_belongs_to_the_day_it_starts(uk: BusinessCalendar) -> None:
    # Good Friday 2026 (3 April): the 21:00-01:00 shift does not run either.
    assert uk.next_open(local(LONDON, 2026, 4, 3, 12)) == local(LONDON, 2026, 4, 4, 9)
    # ...while a Friday-night shift runs into a closed Saturday.
    cal = BusinessCalendar(
        "Europe/London", {"fri": [("21:00", "01:00")]}, closed_dates=[date(2025, 6, 7)]
    )
    assert cal.between(local(LONDON, 2025, 6, 6), local(LONDON, 2025, 6, 8)) == 4 * H


def test_always_on_calendar_of_the_example_merges_days(model: OperatingModel) -> None:
    cal = BusinessCalendar.from_model(model.calendar("always_on"))
    start, end = utc(2025, 3, 28, 12), utc(2025, 4, 2, 12)
    assert list(cal.working_intervals(start, end)) == [(start, end)]
    assert cal.add(start, 3 * 24 * 60) == utc(2025, 3, 31, 12)


def test_clock_for_policy(model: OperatingModel) -> None:
    standard = clock_for_policy(model, model.sla_policy("standard"))
    assert isinstance(standard, BusinessCalendar)
    assert standard.name == "uk_site"
    assert clock_for_policy(model, model.sla_policy("priority_care")) is ALWAYS_OPEN


# --- daylight saving ---------------------------------------------------------------


@pytest.fixture(scope="module")
def london_shifts() -> BusinessCalendar:
    return BusinessCalendar(
        "Europe/London", {day: [("09:00", "17:00"), ("22:00", "06:00")] for day in EVERY_DAY}
    )


def test_spring_forward_day_and_night_shift(london_shifts: BusinessCalendar) -> None:
    # Clocks go 01:00 GMT -> 02:00 BST on Sunday 30 March 2025.
    day = list(london_shifts.working_intervals(utc(2025, 3, 30, 7), utc(2025, 3, 30, 20)))
    assert day == [(local(LONDON, 2025, 3, 30, 9), local(LONDON, 2025, 3, 30, 17))]
    assert day[0][1] - day[0][0] == 8 * H
    night_start, night_end = local(LONDON, 2025, 3, 29, 22), local(LONDON, 2025, 3, 30, 6)
    assert london_shifts.between(night_start, night_end) == 7 * H
    assert london_shifts.add(night_start, 7 * 60) == night_end == utc(2025, 3, 30, 5)


def test_fall_back_day_and_night_shift(london_shifts: BusinessCalendar) -> None:
    # Clocks go 02:00 BST -> 01:00 GMT on Sunday 26 October 2025.
    assert (
        london_shifts.between(local(LONDON, 2025, 10, 26, 8), local(LONDON, 2025, 10, 26, 18))
        == 8 * H
    )
    night_start, night_end = local(LONDON, 2025, 10, 25, 22), local(LONDON, 2025, 10, 26, 6)
    assert night_start == utc(2025, 10, 25, 21) and night_end == utc(2025, 10, 26, 6)
    assert london_shifts.between(night_start, night_end) == 9 * H
    assert london_shifts.add(night_start, 9 * 60) == night_end


def test_new_york_night_shift_across_both_changes() -> None:
    cal = BusinessCalendar("America/New_York", {"sat": [("22:00", "06:00")]})
    # 2025-03-09 02:00 EST -> 03:00 EDT; 2025-11-02 02:00 EDT -> 01:00 EST.
    spring = list(cal.working_intervals(utc(2025, 3, 8), utc(2025, 3, 10)))
    assert spring == [(local(NEW_YORK, 2025, 3, 8, 22), local(NEW_YORK, 2025, 3, 9, 6))]
    assert spring[0][1] - spring[0][0] == 7 * H
    autumn = list(cal.working_intervals(utc(2025, 11, 1), utc(2025, 11, 3)))
    assert autumn[0][1] - autumn[0][0] == 9 * H


def test_time_in_the_gap_resolves_forward() -> None:
    # 01:30 does not exist on 30 March 2025 in London: the shift opens at 02:00 BST.
    cal = BusinessCalendar("Europe/London", {"sun": [("01:30", "03:00")]})
    assert list(cal.working_intervals(utc(2025, 3, 29), utc(2025, 3, 31))) == [
        (utc(2025, 3, 30, 1), utc(2025, 3, 30, 2))
    ]
    # A shift wholly inside the gap never runs that day.
    gap_only = BusinessCalendar("Europe/London", {"sun": [("01:00", "02:00")]})
    assert gap_only.between(utc(2025, 3, 29), utc(2025, 3, 31)) == timedelta(0)
    assert gap_only.next_open(utc(2025, 3, 29)) == local(LONDON, 2025, 4, 6, 1)


def test_ambiguous_time_takes_the_first_occurrence() -> None:
    # 01:30 happens twice on 26 October 2025 in London: first at 00:30 UTC (BST).
    ends = BusinessCalendar("Europe/London", {"sun": [("00:00", "01:30")]})
    assert list(ends.working_intervals(utc(2025, 10, 25), utc(2025, 10, 27))) == [
        (utc(2025, 10, 25, 23), utc(2025, 10, 26, 0, 30))
    ]
    starts = BusinessCalendar("Europe/London", {"sun": [("01:30", "03:00")]})
    assert starts.between(utc(2025, 10, 25), utc(2025, 10, 27)) == 2.5 * H


def test_lord_howe_half_hour_change() -> None:
    # 5 October 2025: 02:00 +10:30 -> 02:30 +11.
    cal = BusinessCalendar("Australia/Lord_Howe", {"sun": [("02:00", "03:00")]})
    assert list(cal.working_intervals(utc(2025, 10, 3), utc(2025, 10, 6))) == [
        (local(LORD_HOWE, 2025, 10, 5, 2, 30), local(LORD_HOWE, 2025, 10, 5, 3))
    ]
    assert cal.add(utc(2025, 10, 3), 30) == utc(2025, 10, 4, 16)


# --- edge cases and errors ---------------------------------------------------------


def test_adding_zero(nl: BusinessCalendar) -> None:
    inside = local(AMSTERDAM, 2025, 6, 12, 10, 15, 7)
    assert nl.add(inside, 0) == inside
    # outside hours, zero business minutes is the next working instant
    saturday = local(AMSTERDAM, 2025, 6, 14, 12)
    assert nl.add(saturday, 0) == nl.next_open(saturday) == local(AMSTERDAM, 2025, 6, 16, 8, 30)


def test_closing_time_is_returned_not_next_opening(nl: BusinessCalendar) -> None:
    start = local(AMSTERDAM, 2025, 6, 13, 16)
    assert nl.add(start, 60) == local(AMSTERDAM, 2025, 6, 13, 17)
    assert not nl.is_open(local(AMSTERDAM, 2025, 6, 13, 17))
    assert nl.is_open(local(AMSTERDAM, 2025, 6, 13, 8, 30))


def test_duration_types_and_other_zones(nl: BusinessCalendar) -> None:
    start = local(NEW_YORK, 2025, 6, 12, 4)  # 10:00 in Amsterdam
    expected = local(AMSTERDAM, 2025, 6, 12, 11, 30, 30)
    assert nl.add(start, 90.5) == expected
    assert nl.add(start, timedelta(minutes=90, seconds=30)) == expected


def test_between_is_zero_when_reversed(nl: BusinessCalendar) -> None:
    a, b = local(AMSTERDAM, 2025, 6, 12, 9), local(AMSTERDAM, 2025, 6, 12, 12)
    assert nl.between(a, b) == 3 * H
    assert nl.between(b, a) == timedelta(0)
    assert list(nl.working_intervals(b, a)) == []


def test_forty_business_hours_steps_days_not_minutes(model: OperatingModel) -> None:
    calls: list[date] = []

    class Counting(BusinessCalendar):
        def day_shifts(self, day: date) -> list[tuple[datetime, datetime]]:
            calls.append(day)
            return super().day_shifts(day)

    uk = Counting.from_model(model.calendar("uk_site"))
    due = uk.add(local(LONDON, 2025, 6, 9, 8), 40 * 60)
    # Mon-Wed 36 h, then Thursday 08:00 + 4 h.
    assert due == local(LONDON, 2025, 6, 12, 12)
    assert len(calls) == len(set(calls)) <= 6


def test_long_durations_and_the_horizon() -> None:
    mondays = BusinessCalendar("UTC", {0: [(540, 1020)]})
    start = utc(2025, 1, 6, 9)
    assert mondays.add(start, 52 * 8 * 60) == utc(2025, 12, 29, 17)
    with pytest.raises(NoWorkingTimeError, match="10 days"):
        BusinessCalendar("UTC", {0: [(540, 1020)]}, horizon_days=10).add(start, 20 * 60)
    closed_forever = BusinessCalendar(
        "UTC",
        {"mon": [("09:00", "17:00")]},
        closed_dates=[date(2025, 1, 6) + timedelta(weeks=n) for n in range(600)],
        name="shut",
    )
    with pytest.raises(NoWorkingTimeError, match="'shut'"):
        closed_forever.next_open(start)


def test_invalid_input_is_refused(nl: BusinessCalendar) -> None:
    with pytest.raises(BusinessTimeError, match="no working hours"):
        BusinessCalendar("UTC", {"mon": []}, name="empty")
    with pytest.raises(BusinessTimeError, match="unknown time zone"):
        BusinessCalendar("Mars/Olympus", {"mon": [("09:00", "17:00")]})
    with pytest.raises(BusinessTimeError, match="holiday country"):
        BusinessCalendar("UTC", {"mon": [("09:00", "17:00")]}, holiday_country="XX")
    with pytest.raises(BusinessTimeError, match="unknown weekday"):
        BusinessCalendar("UTC", {"funday": [("09:00", "17:00")]})
    with pytest.raises(BusinessTimeError, match="no time zone"):
        nl.add(datetime(2025, 6, 12, 9), 60)
    with pytest.raises(BusinessTimeError, match="negative"):
        nl.add(utc(2025, 6, 12, 9), -1)
    with pytest.raises(ValueError, match="invalid time"):
        BusinessCalendar("UTC", {"mon": [("9am", "17:00")]})


def test_holiday_years_are_computed_lazily(model: OperatingModel) -> None:
    cal = BusinessCalendar.from_model(model.calendar("uk_site"))
    assert cal._holiday_years == {}
    assert cal.add(utc(2031, 12, 31, 19, 30), 60) == utc(2032, 1, 2, 8, 30)
    assert set(cal._holiday_years) == {2031, 2032}


def test_always_open() -> None:
    clock = AlwaysOpen()
    start = local(LONDON, 2025, 3, 29, 22)
    assert clock.add(start, 8 * 60) == utc(2025, 3, 30, 6)
    assert clock.between(start, utc(2025, 3, 30, 6)) == 8 * H
    assert clock.between(utc(2025, 3, 30, 6), start) == timedelta(0)
    assert clock.is_open(start) and clock.next_open(start) == start
    assert list(clock.working_intervals(start, start + H)) == [(start, start + H)]
    with pytest.raises(BusinessTimeError):
        clock.add(datetime(2025, 1, 1), 1)
