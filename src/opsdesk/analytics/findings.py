"""Friction findings from the rows of ``sql/findings.sql`` and its companions.

The SQL finds and prices the affected cases (``finding_cases``); this module turns the
per-finding aggregates into :class:`~opsdesk.analytics.results.Finding` objects with a
plain explanation, ranks them by cost and writes the three "fix first" sentences.
Definitions: docs/diagnostic.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from opsdesk.analytics.kpis import lookup
from opsdesk.analytics.results import Finding, KpiTable

#: Finding kinds in the order docs/diagnostic.md defines them.
KINDS: Final = (
    "ping_pong",
    "handoff_chain",
    "ownership_gap",
    "rework",
    "repeat_contact",
    "exception_heavy",
    "key_person",
    "path_deviation",
    "pending_misuse",
)

#: How many detail values (team pairs, gap reasons...) a finding keeps.
TOP_DETAILS: Final = 5


def segment_name(segment: str) -> str:
    """``"category=Billing"`` -> ``"Billing"``."""
    return segment.partition("=")[2] or segment


def _pct(share: float) -> str:
    return f"{share:.0%}"


def _hours(hours: float) -> str:
    return f"{hours:,.0f}" if hours >= 10 else f"{hours:,.1f}"


def _cases(n: int) -> str:
    return f"{n:,} case" + ("" if n == 1 else "s")


def _explanation(kind: str, name: str, details: Mapping[str, Any], window: int) -> str:
    top = details.get("top_value")
    if kind == "ping_pong":
        pair = f" (mostly {top})" if top else ""
        return (
            f"Cases in {name} went back to a team they had already left{pair}; every "
            "bounce restarts the queue and the reading-in."
        )
    if kind == "handoff_chain":
        return (
            f"Cases in {name} passed through three or more teams before they were "
            "solved; each hand-off adds queue time and a new person reading in."
        )
    if kind == "ownership_gap":
        return (
            f"Cases of {name} spent time with nobody owning them or on hold waiting on "
            "an internal party; nobody works a case in that time."
        )
    if kind == "rework":
        return (
            f"Cases in {name} were reopened after being solved or repeated a step of "
            "their path, so the work was done twice."
        )
    if kind == "repeat_contact":
        return (
            f"Customers came back about {name} within {window} days of the previous "
            "case being solved (or while it was still open), so the first answer did "
            "not hold."
        )
    if kind == "exception_heavy":
        rate = details.get("exception_rate")
        rest = details.get("rest_exception_rate")
        figures = ""
        if rate is not None and rest is not None:
            figures = f" ({_pct(rate)} of cases against {_pct(rest)} elsewhere)"
        return (
            f"{name} needs an exception far more often than other request types"
            f"{figures}; the standard path does not fit what customers ask."
        )
    if kind == "key_person":
        return (
            f"One agent, {top}, handles more than half of {name}; the queue stalls "
            "when they are away and nobody else learns the work."
        )
    if kind == "path_deviation":
        return (
            f"Cases in {name} took steps that are not on the standard path or took "
            "them out of order, so the playbook and the practice disagree."
        )
    if kind == "pending_misuse" and details.get("rule") == "agent_outlier":
        return (
            f"{name} keeps cases in pending (waiting on the customer) more than twice "
            "as long, as a share of open time, as the median agent; the SLA clock "
            "pauses while the customer still waits."
        )
    return (
        f"Cases in {name} were set to pending (waiting on the customer) and taken back "
        "without any customer reply: pending was used to pause the SLA clock."
    )


def _fix_first(finding: Finding) -> str:
    name = segment_name(finding.segment)
    top = finding.details.get("top_value")
    n = _cases(finding.cases)
    pct = _pct(finding.share)
    hours = _hours(finding.extra_hours)
    kind = finding.kind
    if kind == "ping_pong":
        pair = str(top).replace(" <-> ", " and ") if top else "its teams"
        return (
            f"Stop the ping-pong between {pair} on {name}: {n} ({pct}) bounced back, "
            f"costing {hours} extra hours; give that category one owner and a "
            "transfer checklist."
        )
    if kind == "handoff_chain":
        return (
            f"Shorten the hand-off chain on {name}: {n} ({pct}) passed through three or "
            f"more teams, costing {hours} extra hours; route it to the right team at "
            "triage and let that team own it end to end."
        )
    if kind == "ownership_gap":
        return (
            f"Close the ownership gaps in {name}: {n} ({pct}) sat with no owner or on "
            f"hold for {hours} hours in total; make every transfer land on a named "
            "agent and review on-hold cases daily."
        )
    if kind == "rework":
        return (
            f"Cut the rework on {name}: {n} ({pct}) were reopened or repeated a step, "
            f"costing {hours} extra hours; confirm the fix with the customer before "
            "solving."
        )
    if kind == "repeat_contact":
        return (
            f"Resolve {name} the first time: {n} ({pct}) were repeat contacts, costing "
            f"{hours} hours; find out why the first answer did not hold and fix the "
            "answer or the article behind it."
        )
    if kind == "exception_heavy":
        return (
            f"Review the standard path for {name}: {n} ({pct}) needed an exception, "
            f"costing {hours} extra hours; turn the common exception into a rule or "
            "change the policy."
        )
    if kind == "key_person":
        return (
            f"Spread the knowledge on {name}: {top} handles {n} ({pct}), costing "
            f"{hours} extra hours; pair a second agent with them and write the "
            "playbook down."
        )
    if kind == "path_deviation":
        return (
            f"Bring {name} back to its standard path: {n} ({pct}) left it, costing "
            f"{hours} extra hours; retrain on the playbook, or change the path to "
            "match what works."
        )
    if finding.details.get("rule") == "agent_outlier":
        return (
            f"Review how {name} uses pending: {n} ({pct}) of their cases sat in "
            f"pending, {hours} hours more than the median agent would have; go "
            "through those cases with the team lead."
        )
    return (
        f"Stop using pending as a clock pause on {name}: {n} ({pct}) left pending "
        f"without any customer reply, costing {hours} extra hours; set pending only "
        "while a question to the customer is open."
    )


def build_findings(
    rows: Iterable[Mapping[str, Any]],
    examples: Iterable[Mapping[str, Any]],
    details: Iterable[Mapping[str, Any]],
    kpis: Sequence[KpiTable],
    *,
    repeat_window_days: int,
) -> list[Finding]:
    """Findings from ``findings.sql`` rows, with their examples (``finding_examples.sql``,
    already costliest first) and detail counts (``finding_details.sql``), ranked by
    cost, highest first (ties: kind, then segment)."""
    example_ids: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in examples:
        example_ids[(row["kind"], row["segment"])].append(str(row["case_id"]))
    top: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in details:
        top[(row["kind"], row["segment"])].append(
            {"value": row["detail"], "cases": int(row["cases"])}
        )

    overall = lookup(kpis, "overall", "all")
    total_cases = int(overall["cases"]) if overall else 0
    total_exception_rate = float(overall["exception_rate"] or 0.0) if overall else 0.0

    findings: list[Finding] = []
    for row in rows:
        kind, segment = str(row["kind"]), str(row["segment"])
        key = (kind, segment)
        segment_cases = int(row["segment_cases"])
        cases = int(row["cases"])
        extra: dict[str, Any] = {
            "segment_cases": segment_cases,
            "top": top[key][:TOP_DETAILS],
            "top_value": top[key][0]["value"] if top[key] else None,
        }
        if kind == "pending_misuse":
            extra["rule"] = "agent_outlier" if segment.startswith("agent=") else "silent_pending"
        if kind == "repeat_contact":
            extra["window_days"] = repeat_window_days
        if kind == "exception_heavy":
            category = lookup(kpis, "category", segment_name(segment))
            if category is not None and total_cases > int(category["cases"]):
                rate = float(category["exception_rate"] or 0.0)
                n = int(category["cases"])
                rest = (total_exception_rate * total_cases - rate * n) / (total_cases - n)
                extra["exception_rate"] = rate
                extra["rest_exception_rate"] = max(rest, 0.0)
        findings.append(
            Finding(
                kind=kind,
                segment=segment,
                cases=cases,
                share=min(cases / segment_cases, 1.0) if segment_cases else 0.0,
                extra_hours=round(float(row["extra_hours"] or 0.0), 3),
                extra_touches=round(float(row["extra_touches"] or 0.0), 3),
                examples=example_ids[key],
                explanation=_explanation(kind, segment_name(segment), extra, repeat_window_days),
                details=extra,
            )
        )
    findings.sort(key=lambda f: (-f.cost, -f.cases, f.kind, f.segment))
    return findings


def fix_first(findings: Sequence[Finding], count: int = 3) -> list[str]:
    """Plain-language recommendations for the ``count`` costliest findings (what, how
    many cases, what it costs, what to do first). ``findings`` must be ranked."""
    return [_fix_first(finding) for finding in findings[:count]]
