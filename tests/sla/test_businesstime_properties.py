"""Property tests: the business-time arithmetic agrees with the minute-by-minute oracle."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsdesk.sla import BusinessCalendar

from .oracle import MINUTE, Spec, Walk

ZONES = (
    "Europe/London",
    "Europe/Amsterdam",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST
    "Asia/Kolkata",
    "UTC",
)
HOLIDAY_SOURCES: tuple[tuple[str | None, str | None], ...] = (
    (None, None),
    ("GB", "ENG"),
    ("NL", None),
    ("US", "NY"),
    ("AU", "NSW"),
)
FIRST = datetime(2025, 1, 1, tzinfo=UTC)
LAST = datetime(2027, 12, 31, tzinfo=UTC)

# Times where DST gaps and folds sit in the zones above, plus midnight and 24:00.
NASTY_MINUTES = (0, 60, 90, 120, 135, 150, 165, 180, 1380, 1440)


@cache
def transitions(zone_name: str) -> tuple[tuple[datetime, int, int], ...]:
    """UTC-offset changes of the zone in 2025-2027: (instant, wall minute before, after).

    The wall minutes are the local minute-of-day just before and at the change, so a
    spring-forward gap is [before, after) and a fall-back fold [after, before).
    """
    zone = ZoneInfo(zone_name)
    found: list[tuple[datetime, int, int]] = []
    instant, previous = FIRST, FIRST.astimezone(zone).utcoffset()
    while instant < LAST:
        offset = instant.astimezone(zone).utcoffset()
        if offset != previous:
            change = instant - timedelta(hours=1)
            while change.astimezone(zone).utcoffset() == previous:
                change += MINUTE
            before = (change - MINUTE).astimezone(zone) + MINUTE
            after = change.astimezone(zone)
            found.append((change, before.hour * 60 + before.minute, after.hour * 60 + after.minute))
            previous = offset
        instant += timedelta(hours=1)
    return tuple(found)


def boundaries(special: tuple[int, ...]) -> st.SearchStrategy[int]:
    """Shift boundaries on a quarter-hour grid, often at times where DST bites."""
    return st.one_of(
        st.sampled_from(NASTY_MINUTES + special),
        st.integers(0, 96).map(lambda quarter: quarter * 15),
    )


@st.composite
def day_shifts(draw: st.DrawFn, special: tuple[int, ...] = ()) -> tuple[tuple[int, int], ...]:
    """0-3 non-overlapping shifts of one weekday; the last may run past midnight."""
    count = draw(st.sampled_from((0, 0, 1, 1, 1, 2, 2, 3)))
    points = sorted(
        draw(st.lists(boundaries(special), min_size=2 * count, max_size=2 * count, unique=True))
    )
    shifts = [(points[i], points[i + 1]) for i in range(0, 2 * count, 2)]
    if shifts and 0 < shifts[-1][0] < 1440 and draw(st.integers(0, 2)) == 0:
        start = shifts[-1][0]
        end = draw(st.integers(1441, start + 1440))  # up to a full 24 h shift
        shifts[-1] = (start, end)
    return tuple(shifts)


@st.composite
def specs_and_starts(draw: st.DrawFn) -> tuple[Spec, datetime]:
    """A random calendar and a start instant, half the time in a DST-change week.

    Near a change, shift boundaries favour the wall-clock minutes of its gap or fold.
    """
    zone = draw(st.sampled_from(ZONES))
    near = transitions(zone)
    special: tuple[int, ...] = ()
    if near and draw(st.booleans()):
        change, before, after = draw(st.sampled_from(near))
        start = change + draw(st.integers(-4 * 1440, 1440)) * MINUTE
        low, high = sorted((before, after))
        special = tuple(sorted({low, high, (low + high) // 2, low + 15, high - 15}))
    else:
        span = int((LAST - FIRST) / MINUTE)
        start = FIRST + draw(st.integers(0, span)) * MINUTE
    hours = [draw(day_shifts(special)) for _ in range(7)]
    if not any(hours):
        hours[draw(st.integers(0, 6))] = ((540, 1020),)
    country, subdivision = draw(st.sampled_from(HOLIDAY_SOURCES))
    local_day = start.astimezone(ZoneInfo(zone)).date()
    closed = draw(
        st.lists(st.integers(-2, 20).map(lambda n: local_day + timedelta(days=n)), max_size=4)
    )
    spec = Spec(
        zone=zone,
        hours=tuple(hours),
        closed=frozenset(closed),
        country=country,
        subdivision=subdivision,
    )
    return spec, start


def weekly_minutes(spec: Spec) -> int:
    return sum(end - start for shifts in spec.hours for start, end in shifts)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    case=specs_and_starts(),
    first=st.floats(0, 1),
    second=st.floats(0, 1),
    end_share=st.floats(0, 1.2),
    split_share=st.floats(0, 1),
)
def test_agrees_with_the_oracle(
    case: tuple[Spec, datetime],
    first: float,
    second: float,
    end_share: float,
    split_share: float,
) -> None:
    spec, start = case
    calendar = BusinessCalendar.from_model(spec.to_model())
    walk = Walk(spec, start)
    cap = min(3 * 8 * 60, weekly_minutes(spec))
    small, large = sorted((round(first * cap), round(second * cap)))

    # add, next_open and is_open, to the minute
    due_small, due_large = calendar.add(start, small), calendar.add(start, large)
    assert due_small == walk.add(small)
    assert due_large == walk.add(large)
    assert calendar.next_open(start) == walk.add(0)
    assert calendar.is_open(start) is walk.flag(0)

    # between, from the start and from a split point, and working_intervals
    horizon = int((due_large - start) / MINUTE) + 1
    end_index = round(end_share * horizon)
    split_index = round(split_share * end_index)
    end, split = start + end_index * MINUTE, start + split_index * MINUTE
    assert calendar.between(start, end) == walk.open_minutes(0, end_index) * MINUTE
    assert calendar.between(split, end) == walk.open_minutes(split_index, end_index) * MINUTE
    assert list(calendar.working_intervals(split, end)) == walk.runs(split_index, end_index)
    assert calendar.is_open(split) is walk.flag(split_index)

    # invariants
    assert calendar.between(start, due_small) == small * MINUTE
    assert calendar.between(start, due_large) == large * MINUTE
    assert due_small <= due_large
    assert calendar.between(start, end) == calendar.between(start, split) + calendar.between(
        split, end
    )
    assert calendar.between(end, start) == timedelta(0) or end == start


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=specs_and_starts(),
    jitter=st.integers(0, 60 * 10**6 - 1),
    durations=st.lists(st.floats(0, 5000, allow_nan=False), min_size=2, max_size=2),
    cuts=st.lists(st.floats(0, 1), min_size=2, max_size=2),
)
def test_invariants_off_the_minute_grid(
    case: tuple[Spec, datetime], jitter: int, durations: list[float], cuts: list[float]
) -> None:
    """Instants with seconds and microseconds and fractional durations, no oracle."""
    spec, start = case
    start += timedelta(microseconds=jitter)
    calendar = BusinessCalendar.from_model(spec.to_model())
    low, high = sorted(durations)
    due_low, due_high = calendar.add(start, low), calendar.add(start, timedelta(minutes=high))
    assert due_low <= due_high
    assert calendar.between(start, due_low) == timedelta(minutes=low)
    assert calendar.between(start, due_high) == timedelta(minutes=high)
    if timedelta(minutes=low) > timedelta(0):  # a tiny float rounds to 0 microseconds
        assert calendar.is_open(due_low - timedelta(microseconds=1))

    span = due_high - start
    a, b = sorted(cuts)
    mid, end = start + span * a, start + span * b
    assert calendar.between(start, end) == calendar.between(start, mid) + calendar.between(mid, end)
    intervals = list(calendar.working_intervals(start, end))
    assert all(start <= opens < closes <= end for opens, closes in intervals)
    assert all(first[1] < second[0] for first, second in pairwise(intervals))
    assert sum((c - o for o, c in intervals), timedelta(0)) == calendar.between(start, end)
    for opens, closes in intervals:
        assert calendar.is_open(opens)
        assert calendar.is_open(closes - timedelta(microseconds=1))
        assert calendar.next_open(opens) == opens
    # after each working interval, the next opening is the next interval's start
    for (_, closes), (next_opens, _) in pairwise(intervals):
        assert not calendar.is_open(closes)
        assert calendar.next_open(closes) == next_opens


def test_transition_table_is_found() -> None:
    """The DST-week strategy really targets transitions (two a year, none in Kolkata)."""
    london = transitions("Europe/London")
    assert len(london) == 6
    assert london[0] == (datetime(2025, 3, 30, 1, tzinfo=UTC), 60, 120)  # gap 01:00-02:00
    assert london[1] == (datetime(2025, 10, 26, 1, tzinfo=UTC), 120, 60)  # fold 01:00-02:00
    lord_howe = transitions("Australia/Lord_Howe")
    assert lord_howe[0][1:] == (120, 90)  # fold 01:30-02:00 on 6 April 2025
    assert transitions("Asia/Kolkata") == ()
    assert {t.date() for t, _, _ in transitions("America/New_York")} >= {date(2025, 3, 9)}
