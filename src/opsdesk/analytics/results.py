"""What a diagnosis returns: summary, KPI tables and ranked friction findings.

The engine (``opsdesk.analytics.engine``) fills these; the report renderers
(``opsdesk.analytics.report``) and the CLI/API only read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final

#: Agent effort an extra touch is priced at when findings are ranked (docs/diagnostic.md).
HOURS_PER_TOUCH: Final = 0.25


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
    # what the extra hours and touches are measured against (docs/diagnostic.md,
    # "Baselines"): same_category, whole_log, none, repeat_case, gap_time, median_agent
    baseline: str = ""
    baseline_text: str = ""  # the baseline in words, e.g. "against the unaffected ..."
    where: str = ""  # the segment in words: "category Billing", "all cases", ...
    hours_unit: str = "extra elapsed hours"  # what extra_hours counts, in words
    touches_unit: str = "extra touches"  # what extra_touches counts, in words

    @property
    def cost(self) -> float:
        """Ranking cost: extra elapsed hours (customer time) plus extra touches valued at
        a quarter of an hour of agent effort each (see docs/diagnostic.md)."""
        return self.extra_hours + HOURS_PER_TOUCH * self.extra_touches


#: What the cost figures of a finding are measured in (the JSON report carries it).
COST_UNITS: Final = {
    "extra_hours": "extra elapsed hours against the finding's baseline (see baseline_text)",
    "extra_touches": "extra touches (events on a case) against the finding's baseline",
    "cost": f"hours: extra_hours + {HOURS_PER_TOUCH} hours of agent effort per extra touch",
}


@dataclass(frozen=True)
class Diagnosis:
    summary: Summary
    kpis: list[KpiTable]
    findings: list[Finding]  # ranked by cost, highest first
    handoffs: list[dict[str, Any]]  # {"from_team", "to_team", "count"} for the handoff map
    fix_first: list[str]  # three plain-language recommendations, highest cost first
    # KPIs this log cannot support -> why (left out of the KPI rows, never 0 or null)
    unavailable_kpis: dict[str, str] = field(default_factory=dict)
    # finding kinds that cannot be measured on this log -> why (no findings of them)
    not_measurable: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON report: summary.cases/events/teams, kpis, findings[] (kind, segment,
        where, cases, share, extra_hours, extra_touches, cost, baseline, baseline_text,
        examples...), units (what the cost figures mean), handoffs, fix_first,
        unavailable_kpis and not_measurable ({name: reason})."""
        data = asdict(self)
        for finding, raw in zip(self.findings, data["findings"], strict=True):
            raw["cost"] = finding.cost
        data["units"] = dict(COST_UNITS)
        return data
