"""What a diagnosis returns: summary, KPI tables and ranked friction findings.

The engine (``opsdesk.analytics.engine``) fills these; the report renderers
(``opsdesk.analytics.report``) and the CLI/API only read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Summary:
    source: str  # a file name, or "opsdesk database"
    cases: int
    events: int
    teams: int
    agents: int
    first_event: datetime | None
    last_event: datetime | None


@dataclass(frozen=True)
class KpiTable:
    """One KPI breakdown: ``rows`` are dicts with the dimension value and each KPI."""

    dimension: str  # "overall", "category", "team", "channel", "priority", "week"
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Finding:
    """A pattern that forces improvisation, quantified against similar cases without it."""

    kind: str  # ping_pong, handoff_chain, ownership_gap, rework, repeat_contact, ...
    segment: str  # what it concerns, e.g. "category=Category 26" or "team=Group 70"
    cases: int  # cases affected
    share: float  # cases affected / cases in the segment (0..1)
    extra_hours: float  # extra elapsed hours in total versus similar cases without it
    extra_touches: float  # extra events (touches) in total versus similar cases without it
    examples: list[str]  # example case ids
    explanation: str  # one plain sentence: what happens and why it costs
    details: dict[str, Any] = field(default_factory=dict)  # kind-specific figures

    @property
    def cost(self) -> float:
        """Ranking cost: extra elapsed hours (customer time) plus extra touches valued at
        a quarter of an hour of agent effort each (see docs/diagnostic.md)."""
        return self.extra_hours + 0.25 * self.extra_touches


@dataclass(frozen=True)
class Diagnosis:
    summary: Summary
    kpis: list[KpiTable]
    findings: list[Finding]  # ranked by cost, highest first
    handoffs: list[dict[str, Any]]  # {"from_team", "to_team", "count"} for the handoff map
    fix_first: list[str]  # three plain-language recommendations, highest cost first

    def to_json(self) -> dict[str, Any]:
        """The JSON report: summary.cases/events/teams, kpis, findings[] (kind, segment,
        cases, share, extra_hours, extra_touches, examples...), handoffs, fix_first."""
        data = asdict(self)
        for finding, raw in zip(self.findings, data["findings"], strict=True):
            raw["cost"] = finding.cost
        return data
