"""The self-contained HTML report: one file, inline CSS and SVG, nothing fetched.

Jinja2 renders it with autoescaping on; every value from the diagnosis is escaped.
The SVG charts (matplotlib output, see :mod:`.charts`) are the only trusted markup.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, FunctionLoader, StrictUndefined
from markupsafe import Markup

from opsdesk.analytics.findings import BASELINE_LABELS
from opsdesk.analytics.report import charts
from opsdesk.analytics.report.format import (
    DASH,
    TableView,
    as_float,
    dimension_key,
    find_key,
    fmt_datetime,
    fmt_float,
    fmt_hours,
    fmt_int,
    fmt_percent,
    fmt_value,
    humanize,
    kpi_view,
    row_keys,
    volume_key,
)
from opsdesk.analytics.results import HOURS_PER_TOUCH, Diagnosis, Finding, KpiTable

#: findings drawn in the cost chart (the table lists them all)
CHART_FINDINGS = 25
#: teams drawn in the handoff heatmap, the busiest by handoffs in and out
HEATMAP_TEAMS = 20
#: flows listed under the heatmap
TOP_FLOWS = 10
#: categories drawn in the resolution-time chart
CHART_CATEGORIES = 15
#: example case ids listed per finding
EXAMPLES_SHOWN = 20
#: KPI dimensions in report order; any other dimension follows them
DIMENSION_ORDER = ("overall", "category", "team", "channel", "priority", "week", "backlog_week")
#: KPI tables left out of the page (the JSON report has them)
HIDDEN_DIMENSIONS = frozenset({"backlog_day"})

_PACKAGE = "opsdesk.analytics.report"


def _load_template(name: str) -> str:
    return (resources.files(_PACKAGE) / "templates" / name).read_text(encoding="utf-8")


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FunctionLoader(_load_template),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["value"] = fmt_value
    env.filters["thousands"] = fmt_int
    env.filters["num"] = fmt_float
    env.filters["hours"] = fmt_hours
    env.filters["percent"] = fmt_percent
    env.filters["humanize"] = humanize
    return env


@cache
def _css() -> Markup:
    # our own packaged stylesheet, inlined so the page needs no other file
    return Markup(_load_template("report.css"))  # noqa: S704


@dataclass(frozen=True)
class Flow:
    from_team: str
    to_team: str
    count: int
    share: float


@dataclass
class HandoffView:
    total: int = 0
    teams: int = 0  # teams taking part in any handoff
    shown: int = 0  # teams drawn in the heatmap
    hidden_handoffs: int = 0  # handoffs between or with teams left out of the map
    chart: Markup | None = None
    flows: list[Flow] = field(default_factory=list)


@dataclass(frozen=True)
class FindingView:
    rank: int
    anchor: str
    finding: Finding
    where: str
    baseline: str  # short name of what it is priced against
    cost: float
    details: list[tuple[str, str]]
    examples: list[str]
    more_examples: int


def _team(value: Any) -> str:
    return "(no team)" if value is None or value == "" else str(value)


def handoff_view(handoffs: list[dict[str, Any]], limit: int = HEATMAP_TEAMS) -> HandoffView:
    """The from x to matrix of the busiest teams, and the top flows."""
    pairs: Counter[tuple[str, str]] = Counter()
    for h in handoffs:
        count = as_float(h.get("count"))
        if count:
            pairs[(_team(h.get("from_team")), _team(h.get("to_team")))] += int(count)
    view = HandoffView()
    if not pairs:
        return view
    volume: Counter[str] = Counter()
    for (src, dst), count in pairs.items():
        volume[src] += count
        volume[dst] += count
    total = sum(pairs.values())
    teams = [team for team, _ in sorted(volume.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]
    index = {team: i for i, team in enumerate(teams)}
    matrix = [[0] * len(teams) for _ in teams]
    drawn = 0
    for (src, dst), count in pairs.items():
        if src in index and dst in index:
            matrix[index[src]][index[dst]] += count
            drawn += count
    view.total = total
    view.teams = len(volume)
    view.shown = len(teams)
    view.hidden_handoffs = total - drawn
    view.chart = charts.heatmap(
        teams,
        matrix,
        "chart-handoffs",
        f"Handoffs between the {len(teams)} teams with the most handoffs: "
        "rows are the team handing off, columns the team receiving.",
    )
    top = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FLOWS]
    view.flows = [Flow(src, dst, count, count / total) for (src, dst), count in top]
    return view


def _finding_views(findings: list[Finding]) -> list[FindingView]:
    views = []
    for rank, f in enumerate(findings, start=1):
        details = [(humanize(str(k)), fmt_value(v, str(k))) for k, v in f.details.items()]
        views.append(
            FindingView(
                rank=rank,
                anchor=f"finding-{rank}",
                finding=f,
                where=f.where or f.segment,
                baseline=BASELINE_LABELS.get(f.baseline, f.baseline or DASH),
                cost=f.cost,
                details=details,
                examples=[str(x) for x in f.examples[:EXAMPLES_SHOWN]],
                more_examples=max(0, len(f.examples) - EXAMPLES_SHOWN),
            )
        )
    return views


def _cost_chart(findings: list[Finding]) -> Markup | None:
    shown = findings[:CHART_FINDINGS]
    if not shown:
        return None
    labels = [f"{i}. {humanize(f.kind)}: {f.where or f.segment}" for i, f in enumerate(shown, 1)]
    return charts.cost_bars(
        labels,
        [f.cost for f in shown],
        "chart-cost",
        f"Cost of the top {len(shown)} findings, in hours (extra hours plus a quarter "
        "hour per extra touch).",
    )


def _table(kpis: list[KpiTable], dimension: str) -> KpiTable | None:
    return next((t for t in kpis if t.dimension == dimension), None)


def _period_series(table: KpiTable | None, *fragments: str) -> dict[str, float | None]:
    """Period label -> value of the first key holding every fragment (or the volume)."""
    if table is None or not table.rows:
        return {}
    keys = row_keys(table.rows)
    dim = dimension_key(table, keys)
    key = find_key(keys, *fragments) if fragments else volume_key(keys)
    if dim is None or key is None:
        return {}
    return {fmt_value(r.get(dim)): as_float(r.get(key)) for r in table.rows}


def _weekly_chart(kpis: list[KpiTable]) -> Markup | None:
    """Cases created per week and the backlog (open cases) at each week's end."""
    week = _table(kpis, "week")
    created = _period_series(week)
    # the backlog comes as its own table (open cases at each week's end) or as a column
    backlog = _period_series(_table(kpis, "backlog_week"), "open") or _period_series(
        week, "backlog"
    )
    weeks = sorted(set(created) | set(backlog))
    if not weeks:
        return None
    series: list[tuple[str, list[float | None]]] = []
    if created:
        series.append(("cases created", [created.get(w) for w in weeks]))
    if backlog:
        series.append(("open at week end", [backlog.get(w) for w in weeks]))
    return charts.weekly_lines(
        weeks,
        series,
        "chart-weekly",
        "Weekly volume and backlog: " + " and ".join(name for name, _ in series) + " per week.",
    )


def _resolution_chart(kpis: list[KpiTable]) -> Markup | None:
    table = _table(kpis, "category")
    if table is None or not table.rows:
        return None
    keys = row_keys(table.rows)
    p50 = find_key(keys, "p50", prefer="resol") or find_key(keys, "median", prefer="resol")
    p90 = find_key(keys, "p90", prefer="resol")
    dim = dimension_key(table, keys)
    if (p50 is None and p90 is None) or dim is None:
        return None
    rows = list(table.rows)
    vkey = volume_key(keys)
    if vkey is not None:
        rows.sort(key=lambda r: as_float(r.get(vkey)) or 0.0, reverse=True)
    rows = rows[:CHART_CATEGORIES]
    series = [
        (humanize(key), [as_float(r.get(key)) for r in rows])
        for key in (p50, p90)
        if key is not None
    ]
    some = p50 or p90 or ""
    unit = "hours" if some.endswith("_h") or "hour" in some else humanize(some)
    more = f" (the {len(rows)} busiest)" if len(table.rows) > len(rows) else ""
    return charts.grouped_bars(
        [fmt_value(r.get(dim)) for r in rows],
        series,
        unit,
        "chart-resolution",
        f"Resolution time p50 and p90 by request type{more}, in {unit}.",
    )


def _kpi_views(kpis: list[KpiTable]) -> list[TableView]:
    def order(table: KpiTable) -> int:
        d = table.dimension
        return DIMENSION_ORDER.index(d) if d in DIMENSION_ORDER else len(DIMENSION_ORDER)

    shown = [t for t in kpis if t.rows and t.dimension not in HIDDEN_DIMENSIONS]
    return [kpi_view(t) for t in sorted(shown, key=order)]


@dataclass(frozen=True)
class Unsupported:
    """Names that share one reason: KPIs a log cannot support, or kinds it cannot measure."""

    names: list[str]
    reason: str


def _grouped(reasons: dict[str, str]) -> list[Unsupported]:
    """``{name: reason}`` as one line per reason, names humanised, first-seen order."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in reasons.items():
        by_reason.setdefault(reason, []).append(humanize(name))
    return [Unsupported(names, reason) for reason, names in by_reason.items()]


def _period(first: datetime | None, last: datetime | None) -> str:
    if first is None or last is None:
        return DASH
    days = (last - first).total_seconds() / 86_400
    span = f"{days:,.0f} days" if days >= 2 else f"{days * 24:,.0f} hours"
    return f"{fmt_datetime(first)} to {fmt_datetime(last)} ({span})"


def render_html(diagnosis: Diagnosis) -> str:
    """The diagnosis as one self-contained HTML page (no external resources).

    >>> Path("report.html").write_text(render_html(diagnosis))  # doctest: +SKIP
    """
    s = diagnosis.summary
    template = _environment().get_template("report.html")
    return template.render(
        summary=s,
        period=_period(s.first_event, s.last_event),
        fix_first=diagnosis.fix_first,
        findings=_finding_views(diagnosis.findings),
        hours_per_touch=HOURS_PER_TOUCH,
        chart_findings=min(CHART_FINDINGS, len(diagnosis.findings)),
        cost_chart=_cost_chart(diagnosis.findings),
        handoffs=handoff_view(diagnosis.handoffs),
        kpis=_kpi_views(diagnosis.kpis),
        unavailable_kpis=_grouped(diagnosis.unavailable_kpis),
        not_measurable=_grouped(diagnosis.not_measurable),
        weekly_chart=_weekly_chart(diagnosis.kpis),
        resolution_chart=_resolution_chart(diagnosis.kpis),
        css=_css(),
    )
