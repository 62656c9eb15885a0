"""Number, date and label formatting for the report, and KPI tables ready to render."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from opsdesk.analytics.results import KpiTable

#: KPI tables longer than this show only their busiest rows (weeks: the latest)
KPI_ROW_CAP = 25
#: row keys that hold a KPI table's volume, in order of preference
VOLUME_KEYS = ("cases", "tickets", "volume", "created", "count", "events")
#: row keys that may name the dimension value when it is not the dimension's own name
VALUE_KEYS = ("value", "key", "name", "segment")
#: key fragments of KPIs that are fractions (0..1), shown as percentages
_FRACTION_HINTS = ("rate", "share", "ratio", "attainment", "fcr")
#: names of dimensions as section titles
DIMENSION_TITLES = {
    "overall": "Overall",
    "category": "By request type (category)",
    "team": "By team",
    "channel": "By channel",
    "priority": "By priority",
    "week": "By week (of creation)",
    "backlog_week": "Backlog at the end of each week",
    "backlog_day": "Backlog at the end of each day",
}
#: dimensions whose rows are periods: shown in time order, long tables keep the latest
TIME_DIMENSIONS = frozenset({"week", "backlog_week", "backlog_day"})
DASH = "\u2014"


_ACRONYMS = {"sla": "SLA", "fcr": "FCR", "csat": "CSAT", "aht": "AHT", "id": "id"}
_UNITS = {"h": "(h)", "hours": "(h)", "seconds": "(s)", "s": "(s)"}


def humanize(key: str) -> str:
    """``resolution_p90_h`` -> ``Resolution p90 (h)``, ``fcr_rate`` -> ``FCR rate``."""
    words = [w for w in key.strip().split("_") if w]
    if not words:
        return key
    if len(words) > 1 and words[-1] in _UNITS:
        words[-1] = _UNITS[words[-1]]
    words = [_ACRONYMS.get(w.lower(), w) for w in words]
    first = words[0]
    words[0] = first if first.isupper() else first[:1].upper() + first[1:]
    return " ".join(words)


def is_fraction_key(key: str) -> bool:
    lowered = key.lower()
    return any(hint in lowered for hint in _FRACTION_HINTS)


def fmt_int(value: float | int) -> str:
    return f"{round(value):,}"


def fmt_float(value: float) -> str:
    """Few significant digits, thousands separated: 1,234 / 123 / 12.3 / 1.23."""
    if math.isnan(value) or math.isinf(value):
        return DASH
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_percent(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return DASH
    return f"{value * 100:.1f}%"


def fmt_hours(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return DASH
    return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"


def fmt_datetime(value: datetime | None) -> str:
    if value is None:
        return DASH
    offset = value.utcoffset()
    if offset is None:
        return value.strftime("%Y-%m-%d %H:%M")
    return value.strftime("%Y-%m-%d %H:%M") + (" UTC" if not offset else value.strftime(" %z"))


def fmt_value(value: Any, key: str = "") -> str:
    """Any KPI or detail value as display text (never markup: the template escapes it)."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if key and is_fraction_key(key) and 0.0 <= value <= 1.0:
            return fmt_percent(value)
        return fmt_float(value)
    if isinstance(value, datetime):
        return fmt_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return _fmt_mapping(value)
    if isinstance(value, list | tuple | set | frozenset):
        if not value:
            return DASH
        items = [fmt_value(v, key) for v in value]
        return ("; " if any(isinstance(v, dict) for v in value) else ", ").join(items)
    if hasattr(value, "__float__") and not isinstance(value, str):
        try:  # numpy scalars, Decimal
            return fmt_value(float(value), key)
        except (TypeError, ValueError):
            pass
    return str(value)


def _fmt_mapping(mapping: dict[Any, Any]) -> str:
    """``{"value": "on hold", "cases": 65}`` -> ``on hold (65 cases)``; else ``k: v; ...``."""
    labels = [k for k, v in mapping.items() if isinstance(v, str)]
    numbers = [k for k, v in mapping.items() if is_number(v)]
    if len(mapping) == 2 and len(labels) == 1 and len(numbers) == 1:
        label, number = labels[0], numbers[0]
        count = fmt_value(mapping[number], str(number))
        return f"{mapping[label]} ({count} {humanize(str(number)).lower()})"
    return "; ".join(
        f"{humanize(str(k)).lower()}: {fmt_value(v, str(k))}" for k, v in mapping.items()
    )


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def volume_key(keys: Iterable[str]) -> str | None:
    present = set(keys)
    return next((k for k in VOLUME_KEYS if k in present), None)


def find_key(keys: Sequence[str], *fragments: str, prefer: str = "") -> str | None:
    """The first key containing every fragment, preferring one that also holds ``prefer``."""
    matching = [k for k in keys if all(f in k.lower() for f in fragments)]
    if prefer:
        preferred = [k for k in matching if prefer in k.lower()]
        if preferred:
            return preferred[0]
    return matching[0] if matching else None


def dimension_key(table: KpiTable, keys: Sequence[str]) -> str | None:
    if table.dimension in keys:
        return table.dimension
    return next((k for k in VALUE_KEYS if k in keys), None)


def row_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every key of the rows, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(str(key), None)
    return list(seen)


@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool


@dataclass(frozen=True)
class TableView:
    """A KPI table as the template renders it."""

    anchor: str
    title: str
    dimension: str
    headers: list[str]
    numeric: list[bool]  # per column: right-align
    rows: list[list[Cell]]
    note: str


def kpi_view(table: KpiTable, cap: int = KPI_ROW_CAP) -> TableView:
    """Columns in first-seen order with the dimension first; long tables capped."""
    keys = row_keys(table.rows)
    dim = dimension_key(table, keys)
    if dim is not None:
        keys = [dim] + [k for k in keys if k != dim]
    if table.dimension == "overall" and dim is not None and len(table.rows) == 1:
        keys.remove(dim)  # its one value ("all") says nothing
    rows = list(table.rows)
    note = ""
    if len(rows) > cap:
        if table.dimension in TIME_DIMENSIONS:
            # periods read best in order: keep the latest ones
            rows = _chronological(rows, dim)[-cap:]
            unit = "days" if table.dimension.endswith("day") else "weeks"
            note = f"The latest {cap} of {len(table.rows):,} {unit}; the JSON report has all."
        else:
            vkey = volume_key(keys)
            if vkey is not None:
                rows = sorted(rows, key=lambda r: as_float(r.get(vkey)) or 0.0, reverse=True)
                note = f"The {cap} busiest of {len(table.rows):,} rows by {humanize(vkey)}."
            else:
                note = f"The first {cap} of {len(table.rows):,} rows."
            rows = rows[:cap]
    # a column of numbers (or of nothing but gaps) is right-aligned
    numeric = [
        any(is_number(r.get(k)) for r in rows) or all(r.get(k) is None for r in rows) for k in keys
    ]
    cells = [
        [Cell(fmt_value(r.get(k), k), num) for k, num in zip(keys, numeric, strict=True)]
        for r in rows
    ]
    title = DIMENSION_TITLES.get(table.dimension, humanize(table.dimension))
    return TableView(
        anchor=f"kpi-{slug(table.dimension)}",
        title=title,
        dimension=table.dimension,
        headers=[humanize(k) for k in keys],
        numeric=numeric,
        rows=cells,
        note=note,
    )


def _chronological(rows: list[dict[str, Any]], key: str | None) -> list[dict[str, Any]]:
    if key is None:
        return rows
    return sorted(rows, key=lambda r: str(r.get(key)))


def slug(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return cleaned or "x"
