"""KPI tables from the rows of ``sql/kpis.sql`` and ``sql/backlog.sql``.

The SQL does the arithmetic over the per-case summary; this module only shapes the
aggregated rows (a few per category, team, channel, priority, week and day) into
:class:`~opsdesk.analytics.results.KpiTable` objects. Definitions: docs/diagnostic.md.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date
from typing import Any, Final

from opsdesk.analytics.results import KpiTable

#: KPI tables in report order; ``overall`` has one row whose dimension value is "all".
DIMENSIONS: Final = ("overall", "category", "team", "channel", "priority", "week")

#: The KPI columns of every row, in order (see docs/diagnostic.md for definitions).
KPI_COLUMNS: Final = (
    "cases",
    "first_response_median_h",
    "first_response_p90_h",
    "resolution_median_h",
    "resolution_p90_h",
    "sla_attainment",
    "sla_cases",
    "reopen_rate",
    "transfers_per_case",
    "escalation_rate",
    "fcr_rate",
    "repeat_contact_rate",
    "csat_mean",
    "csat_responses",
    "aht_seconds",
    "exception_rate",
)

_INTEGERS: Final = frozenset({"cases", "sla_cases", "csat_responses"})


def _clean(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _INTEGERS:
        return int(value)
    # aggregates of floats carry summation noise (22.000000000000004): round it away
    return round(float(value), 6)


def unavailable_kpis(contents: Mapping[str, Any], *, sla_cases: int) -> dict[str, str]:
    """KPIs a log cannot support, each with the reason, in :data:`KPI_COLUMNS` order.

    ``contents`` is the row of ``sql/summary.sql`` (what the log records at all);
    ``sla_cases`` the overall count of cases whose SLA outcome is known. An empty log
    has nothing to support or deny: ``{}``.
    """
    if not int(contents.get("events") or 0):
        return {}

    def none(name: str) -> bool:
        return not int(contents.get(name) or 0)

    out: dict[str, str] = {}
    if none("public_replies"):
        out["first_response_median_h"] = out["first_response_p90_h"] = (
            "the log has no public replies to the customer (message.added by an agent, user or bot)"
        )
    if none("statuses"):
        out["resolution_median_h"] = out["resolution_p90_h"] = out["reopen_rate"] = (
            "the log has no statuses, so no case is seen solved or reopened"
        )
        out["fcr_rate"] = out["resolution_median_h"]
    elif none("done_events"):
        out["resolution_median_h"] = out["resolution_p90_h"] = out["fcr_rate"] = (
            "no case in the log reaches solved or closed"
        )
    if sla_cases <= 0:
        out["sla_attainment"] = out["sla_cases"] = (
            "the log has no SLA outcome (no made_sla flag, no SLA clock events)"
        )
    if none("teams"):
        out["transfers_per_case"] = out["escalation_rate"] = (
            "the log names no owning team on any event"
        )
    if none("customer_ids"):
        out["repeat_contact_rate"] = (
            "the log has no customer ids, so a customer coming back cannot be recognised"
        )
    if none("csat_values"):
        out["csat_mean"] = out["csat_responses"] = "the log has no CSAT responses (csat)"
    if none("handle_times"):
        out["aht_seconds"] = "the log records no handling time (handle_seconds)"
    if none("exception_requests"):
        out["exception_rate"] = (
            "the log has no exception events (exception.requested): exceptions are not "
            "recorded in it, or none was ever requested"
        )
    return {name: out[name] for name in KPI_COLUMNS if name in out}


def kpi_tables(
    rows: Iterable[Mapping[str, Any]], unavailable: Collection[str] = ()
) -> list[KpiTable]:
    """Group ``kpis.sql`` rows (dimension, value, KPIs...) into one table per dimension.

    Each table row is ``{<dimension>: value, "cases": ..., ...}``; week rows are in
    calendar order, the others by volume (most cases first). KPIs in ``unavailable``
    (see :func:`unavailable_kpis`) are left out of every row: the log cannot support
    them, and a 0 or a null would read as a measurement.
    """
    columns = [name for name in KPI_COLUMNS if name not in unavailable]
    grouped: dict[str, list[dict[str, Any]]] = {name: [] for name in DIMENSIONS}
    for row in rows:
        dimension = str(row["dimension"])
        out: dict[str, Any] = {dimension: row["value"]}
        out.update({name: _clean(name, row[name]) for name in columns})
        grouped.setdefault(dimension, []).append(out)
    grouped["week"].sort(key=lambda r: str(r["week"]))
    return [KpiTable(dimension=name, rows=table) for name, table in grouped.items()]


def backlog_tables(rows: Iterable[Mapping[str, Any]]) -> list[KpiTable]:
    """Backlog over time: ``backlog_day`` (open cases at the end of each UTC day) and
    ``backlog_week`` (open cases at the end of the last day of each ISO week seen)."""
    daily: list[dict[str, Any]] = []
    weekly: dict[str, dict[str, Any]] = {}
    for row in rows:
        day: date = row["day"]
        open_cases = int(row["open_cases"])
        daily.append({"backlog_day": day.isoformat(), "open_cases": open_cases})
        year, week, _ = day.isocalendar()
        label = f"{year}-W{week:02d}"
        # rows arrive in day order, so the last one written is the week's last day
        weekly[label] = {"backlog_week": label, "open_cases": open_cases}
    return [
        KpiTable(dimension="backlog_day", rows=daily),
        KpiTable(dimension="backlog_week", rows=list(weekly.values())),
    ]


def lookup(tables: Iterable[KpiTable], dimension: str, value: str) -> dict[str, Any] | None:
    """The KPI row of ``value`` in the ``dimension`` table, or None."""
    for table in tables:
        if table.dimension == dimension:
            for row in table.rows:
                if row.get(dimension) == value:
                    return row
    return None
