"""Hand-built diagnoses for the report tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from opsdesk.analytics.results import Diagnosis, Finding, KpiTable, Summary

EVIL = "<script>alert(1)</script>"


def kpi_row(dimension: str, value: Any, cases: int, i: int = 0) -> dict[str, Any]:
    """A KPI row shaped like ``opsdesk.analytics.kpis.kpi_tables`` makes them."""
    return {
        dimension: value,
        "cases": cases,
        "first_response_median_h": 1.5,
        "first_response_p90_h": 6.25,
        "resolution_median_h": 4.0 + i,
        "resolution_p90_h": 20.5 + 2 * i,
        "sla_attainment": 0.9 - i / 100,
        "sla_cases": cases,
        "reopen_rate": 0.05,
        "transfers_per_case": 0.31,
        "fcr_rate": None,
        "csat_mean": 4.21,
        "aht_seconds": 612.0,
    }


def week_label(i: int) -> str:
    day = date(2026, 1, 5) + timedelta(weeks=i)
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def make_diagnosis(
    *, teams: int = 6, findings: int = 4, categories: int = 5, weeks: int = 4
) -> Diagnosis:
    team_names = [f"team {i:02d}" for i in range(teams)]
    handoffs = [
        {"from_team": team_names[i], "to_team": team_names[(i + j) % teams], "count": 10 * j + i}
        for i in range(teams)
        for j in range(1, min(teams, 4))
    ]
    kinds = ["ping_pong", "handoff_chain", "ownership_gap", "rework", "repeat_contact"]
    found = [
        Finding(
            kind=kinds[i % len(kinds)],
            segment=f"category=Category {i}",
            cases=100 - i % 90,
            share=0.25,
            extra_hours=1000.0 / (i + 1),
            extra_touches=300.0 / (i + 1),
            examples=[f"CASE-{i}-{k}" for k in range(5)],
            explanation=f"Cases in Category {i} bounce between teams before anyone owns them.",
            details={
                "median_transfers": 3,
                "top": [{"value": "team 00 <-> team 01", "cases": 16}],
                "exception_rate": 0.5,
            },
            baseline="same_category",
            baseline_text=f"against the unaffected cases of Category {i} (40 cases)",
            where=f"category Category {i}",
        )
        for i in range(findings)
    ]
    kpis = [
        KpiTable("overall", [kpi_row("overall", "all", 1234)]),
        KpiTable(
            "category",
            [kpi_row("category", f"Category {i}", 500 - i, i) for i in range(categories)],
        ),
        KpiTable("team", [kpi_row("team", n, 200 - i, i) for i, n in enumerate(team_names)]),
        KpiTable("channel", [kpi_row("channel", c, 300) for c in ("email", "chat")]),
        KpiTable("priority", [kpi_row("priority", p, 300) for p in ("normal", "high")]),
        KpiTable("week", [kpi_row("week", week_label(i), 150 + i, i % 10) for i in range(weeks)]),
        KpiTable(
            "backlog_week",
            [{"backlog_week": week_label(i), "open_cases": 40 - i % 7} for i in range(weeks)],
        ),
        KpiTable(
            "backlog_day",
            [
                {"backlog_day": (date(2026, 1, 5) + timedelta(days=i)).isoformat(), "open_cases": i}
                for i in range(7 * weeks)
            ],
        ),
    ]
    return Diagnosis(
        summary=Summary(
            source="incidents.csv",
            cases=1234,
            events=56789,
            teams=teams,
            agents=42,
            first_event=datetime(2026, 1, 5, 8, 0, tzinfo=UTC),
            last_event=datetime(2026, 2, 1, 17, 30, tzinfo=UTC),
        ),
        kpis=kpis,
        findings=found,
        handoffs=handoffs,
        fix_first=[
            "Give Category 0 one owner team: it bounces between team 00 and team 01.",
            "Stop the handoff chain in Category 1.",
            "Close the ownership gap in Category 2.",
        ],
    )
