"""Friction findings from the rows of ``sql/findings.sql`` and its companions.

The SQL finds and prices the affected cases (``finding_cases``); this module turns the
per-finding aggregates into :class:`~opsdesk.analytics.results.Finding` objects with a
plain explanation, ranks them by cost and writes the three "fix first" sentences.
Definitions: docs/diagnostic.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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

#: Whether a baseline compares with other cases (and how many there were is worth saying).
COMPARED_BASELINES: Final = frozenset({"same_category", "whole_log", "none"})

_NONE_CATEGORY = "(none)"
_NO_TEAM = "(no team)"


def segment_name(segment: str) -> str:
    """``"category=Billing"`` -> ``"Billing"``."""
    return segment.partition("=")[2] or segment


@dataclass(frozen=True)
class Scope:
    """A segment in words, for sentences that must read well whatever it is.

    ``name`` stands alone ("Billing", "cases without a category", "all cases");
    ``of_cases`` follows "cases" ("in Billing", "without a category", "" for all cases);
    ``on`` follows a verb ("on Billing", "on cases without a category", "" for all);
    ``where`` labels the segment in a table ("category Billing", "all cases").
    """

    name: str
    of_cases: str
    on: str
    where: str
    is_category: bool


def scope(segment: str, *, categorised: bool = True) -> Scope:
    """The words for ``segment``; ``categorised`` says whether the log has categories at
    all (without any, the one category segment is every case of the log).

    >>> scope("category=(none)", categorised=False).where
    'all cases'
    """
    dimension, _, value = segment.partition("=")
    if dimension == "category" and value == _NONE_CATEGORY:
        if not categorised:
            return Scope("all cases", "", "", "all cases", False)
        return Scope(
            "cases without a category",
            "without a category",
            "on cases without a category",
            "cases without a category",
            False,
        )
    if dimension == "team" and value == _NO_TEAM:
        return Scope(
            "cases with no team",
            "with no team",
            "on cases with no team",
            "cases with no team",
            False,
        )
    if dimension == "category":
        return Scope(value, f"in {value}", f"on {value}", f"category {value}", True)
    if dimension == "team":
        return Scope(value, f"of {value}", f"in {value}", f"team {value}", False)
    if dimension == "agent":
        return Scope(value, f"of {value}", f"for {value}", f"agent {value}", False)
    name = value or segment
    return Scope(name, f"in {name}", f"on {name}", segment, False)


def _cases_phrase(where: Scope, capital: bool = True) -> str:
    """ "Cases in Billing", "Cases without a category", "Cases"."""
    word = "Cases" if capital else "cases"
    return f"{word} {where.of_cases}" if where.of_cases else word


def _on(where: Scope) -> str:
    return f" {where.on}" if where.on else ""


def _pct(share: float) -> str:
    return f"{share:.0%}"


def _hours(hours: float) -> str:
    return f"{hours:,.0f}" if hours >= 10 else f"{hours:,.1f}"


def _cases(n: int) -> str:
    return f"{n:,} case" + ("" if n == 1 else "s")


def baseline_text(
    baseline: str,
    where: Scope,
    *,
    baseline_cases: int | None,
    unaffected_in_segment: int,
    min_cases: int,
) -> str:
    """What a finding's extra hours and touches are measured against, in words that
    follow "priced" (docs/diagnostic.md, "Baselines").

    >>> baseline_text("whole_log", scope("category=Billing"), baseline_cases=10,
    ...               unaffected_in_segment=0, min_cases=5)[:56]
    'against the unaffected cases of the whole log (10 cases,'
    """
    n = _cases(baseline_cases or 0)
    if baseline == "same_category":
        own = f"of {where.name}" if where.is_category else (where.of_cases or "of the log")
        return f"against the unaffected cases {own} ({n}, same priority where enough)"
    if baseline == "whole_log":
        within = f" {where.of_cases}" if where.of_cases else ""
        if unaffected_in_segment <= 0:
            why = f"every case{within} has the pattern"
        else:
            verb = "is" if unaffected_in_segment == 1 else "are"
            why = (
                f"only {_cases(unaffected_in_segment)}{within} {verb} without it "
                f"(fewer than {min_cases})"
            )
        return (
            f"against the unaffected cases of the whole log ({n}, same priority where "
            f"enough), since {why}"
        )
    if baseline == "none":
        return (
            f"not priced: fewer than {min_cases} cases in the whole log are without the "
            "pattern, so there is nothing to compare with"
        )
    if baseline == "repeat_case":
        return (
            "whole: each repeat case's elapsed hours and touches, since it would not "
            "exist had the previous case held"
        )
    if baseline == "gap_time":
        return "as the time itself: the hours the cases sat with no owner or on hold"
    if baseline == "median_agent":
        return "against the median agent's share of open time spent in pending"
    return ""


#: Short names of the baselines, for table columns.
BASELINE_LABELS: Final = {
    "same_category": "same category",
    "whole_log": "whole log",
    "none": "not priced",
    "repeat_case": "repeat case, whole",
    "gap_time": "the gap itself",
    "median_agent": "median agent",
}


def cost_units(baseline: str) -> tuple[str, str]:
    """What a finding's extra hours and extra touches count, in words, by baseline."""
    if baseline == "repeat_case":
        return "elapsed hours of the repeat cases", "touches of the repeat cases"
    if baseline == "gap_time":
        return "hours with no owner or on hold", "extra touches (none counted)"
    if baseline == "median_agent":
        return "pending hours beyond the median agent's share", "extra touches (none counted)"
    return "extra elapsed hours", "extra touches"


def unmeasurable_kinds(contents: Mapping[str, Any], *, has_model: bool) -> dict[str, str]:
    """Finding kinds this log cannot measure, each with the reason (an empty log can
    measure nothing, and says nothing either: it has no findings).

    ``contents`` is the row of ``sql/summary.sql`` (what the log records at all).
    """
    if not int(contents.get("events") or 0):
        return {}
    out: dict[str, str] = {}
    no_teams = "the log names no owning team on any event"
    if not int(contents.get("teams") or 0):
        out["ping_pong"] = out["handoff_chain"] = out["ownership_gap"] = no_teams
    steps = has_model and int(contents.get("step_activities") or 0) > 0
    if not int(contents.get("statuses") or 0) and not steps:
        out["rework"] = "the log has no statuses, so a reopened case cannot be seen"
    if not int(contents.get("customer_ids") or 0):
        out["repeat_contact"] = (
            "the log has no customer ids, so a customer coming back cannot be recognised"
        )
    if not int(contents.get("exception_requests") or 0):
        out["exception_heavy"] = (
            "the log has no exception events (exception.requested): exceptions are not "
            "recorded in it, or none was ever requested"
        )
    if not int(contents.get("agents") or 0):
        out["key_person"] = "the log names no agent on any event"
    if not has_model:
        out["path_deviation"] = (
            "no operating model was given (--model) to say what the standard paths are"
        )
    elif not int(contents.get("step_activities") or 0):
        out["path_deviation"] = (
            "no event carries a step (an activity other than its event type) to compare "
            "with the standard paths"
        )
    if not int(contents.get("customer_messages") or 0):
        out["pending_misuse"] = (
            "the log has no customer messages (message.added by the customer), so a "
            "pending period that ended without a reply cannot be told from one the "
            "customer answered"
        )
    return {kind: out[kind] for kind in KINDS if kind in out}


def _explanation(kind: str, where: Scope, details: Mapping[str, Any], window: int) -> str:
    top = details.get("top_value")
    cases = _cases_phrase(where)
    if kind == "ping_pong":
        pair = f" (mostly {top})" if top else ""
        return (
            f"{cases} went back to a team they had already left{pair}; every bounce "
            "restarts the queue and the reading-in."
        )
    if kind == "handoff_chain":
        return (
            f"{cases} passed through three or more teams before they were solved; each "
            "hand-off adds queue time and a new person reading in."
        )
    if kind == "ownership_gap":
        return (
            f"{cases} spent time with nobody owning them or on hold waiting on an "
            "internal party; nobody works a case in that time."
        )
    if kind == "rework":
        return (
            f"{cases} were reopened after being solved or repeated a step of their path, "
            "so the work was done twice."
        )
    if kind == "repeat_contact":
        about = f" about {where.name}" if where.is_category else ""
        return (
            f"Customers came back{about} within {window} days of the previous case being "
            "solved (or while it was still open), so the first answer did not hold."
        )
    if kind == "exception_heavy":
        rate = details.get("exception_rate")
        rest = details.get("rest_exception_rate")
        figures = ""
        if rate is not None and rest is not None:
            figures = f" ({_pct(rate)} of cases against {_pct(rest)} elsewhere)"
        return (
            f"{cases} need an exception far more often than other cases{figures}; the "
            "standard path does not fit what customers ask."
        )
    if kind == "key_person":
        return (
            f"One agent, {top}, handles more than half of the {_cases_phrase(where, False)}; "
            "the queue stalls when they are away and nobody else learns the work."
        )
    if kind == "path_deviation":
        return (
            f"{cases} took steps that are not on the standard path or took them out of "
            "order, so the playbook and the practice disagree."
        )
    if kind == "pending_misuse" and details.get("rule") == "agent_outlier":
        return (
            f"{where.name} keeps cases in pending (waiting on the customer) more than twice "
            "as long, as a share of open time, as the median agent; the SLA clock pauses "
            "while the customer still waits."
        )
    return (
        f"{cases} were set to pending (waiting on the customer) and taken back without any "
        "customer reply: pending was used to pause the SLA clock."
    )


def _costing(finding: Finding) -> str:
    """The cost clause of a fix-first sentence for a finding priced against other cases."""
    if finding.baseline == "none":
        return "not priced, as almost no case in the log is without it"
    hours = f"costing {_hours(finding.extra_hours)} extra elapsed hours"
    if finding.baseline == "whole_log":
        return f"{hours} (against similar cases elsewhere in the log)"
    return hours


def _fix_first(finding: Finding, where: Scope) -> str:
    top = finding.details.get("top_value")
    n = _cases(finding.cases)
    pct = _pct(finding.share)
    hours = _hours(finding.extra_hours)
    costing = _costing(finding)
    on = _on(where)
    kind = finding.kind
    if kind == "ping_pong":
        pair = str(top).replace(" <-> ", " and ") if top else "its teams"
        owner = "that category" if where.is_category else "these cases"
        return (
            f"Stop the ping-pong between {pair}{on}: {n} ({pct}) bounced back, "
            f"{costing}; give {owner} one owner and a "
            "transfer checklist."
        )
    if kind == "handoff_chain":
        return (
            f"Shorten the hand-off chain{on}: {n} ({pct}) passed through three or more "
            f"teams, {costing}; route them to the "
            "right team at triage and let that team own them end to end."
        )
    if kind == "ownership_gap":
        return (
            f"Close the ownership gaps{on}: {n} ({pct}) sat with no owner or on hold for "
            f"{hours} hours in total; make every transfer land on a named agent and review "
            "on-hold cases daily."
        )
    if kind == "rework":
        return (
            f"Cut the rework{on}: {n} ({pct}) were reopened or repeated a step, "
            f"{costing}; confirm the fix with the customer "
            "before solving."
        )
    if kind == "repeat_contact":
        subject = where.name if where.of_cases else "cases"
        return (
            f"Resolve {subject} the first time: {n} ({pct}) were repeat contacts, costing "
            f"{hours} elapsed hours; find out why the first answer did not hold and fix "
            "the answer or the article behind it."
        )
    if kind == "exception_heavy":
        return (
            f"Review the standard path for {where.name}: {n} ({pct}) needed an exception, "
            f"{costing}; turn the common exception "
            "into a rule or change the policy."
        )
    if kind == "key_person":
        return (
            f"Spread the knowledge{on}: {top} handles {n} ({pct}), "
            f"{costing}; pair a second agent with them and write the "
            "playbook down."
        )
    if kind == "path_deviation":
        return (
            f"Bring {where.name} back to the standard path: {n} ({pct}) left it, "
            f"{costing}; retrain on the playbook, or change "
            "the path to match what works."
        )
    if finding.details.get("rule") == "agent_outlier":
        return (
            f"Review how {where.name} uses pending: {n} ({pct}) of their cases sat in "
            f"pending, {hours} hours more than the median agent would have; go through "
            "those cases with the team lead."
        )
    return (
        f"Stop using pending as a clock pause{on}: {n} ({pct}) left pending without any "
        f"customer reply, {costing}; set pending "
        "only while a question to the customer is open."
    )


def build_findings(
    rows: Iterable[Mapping[str, Any]],
    examples: Iterable[Mapping[str, Any]],
    details: Iterable[Mapping[str, Any]],
    kpis: Sequence[KpiTable],
    *,
    repeat_window_days: int,
    min_cases: int,
    categorised: bool = True,
) -> list[Finding]:
    """Findings from ``findings.sql`` rows, with their examples (``finding_examples.sql``,
    already costliest first) and detail counts (``finding_details.sql``), ranked by
    cost, highest first (ties: more cases, kind, then segment). ``min_cases`` is the
    engine's (it also decides the baselines); ``categorised`` says whether the log has
    any category (see :func:`scope`)."""
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
    total_exception_rate = float(overall.get("exception_rate") or 0.0) if overall else 0.0

    findings: list[Finding] = []
    for row in rows:
        kind, segment = str(row["kind"]), str(row["segment"])
        key = (kind, segment)
        where = scope(segment, categorised=categorised)
        baseline = str(row.get("baseline") or "")
        segment_cases = int(row["segment_cases"])
        cases = int(row["cases"])
        extra: dict[str, Any] = {
            "segment_cases": segment_cases,
            "top": top[key][:TOP_DETAILS],
            "top_value": top[key][0]["value"] if top[key] else None,
        }
        if baseline in COMPARED_BASELINES:
            extra["baseline_cases"] = int(row.get("baseline_cases") or 0)
        if kind == "pending_misuse":
            extra["rule"] = "agent_outlier" if segment.startswith("agent=") else "silent_pending"
        if kind == "repeat_contact":
            extra["window_days"] = repeat_window_days
        if kind == "exception_heavy":
            category = lookup(kpis, "category", segment_name(segment))
            if category is not None and total_cases > int(category["cases"]):
                rate = float(category.get("exception_rate") or 0.0)
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
                explanation=_explanation(kind, where, extra, repeat_window_days),
                details=extra,
                baseline=baseline,
                baseline_text=baseline_text(
                    baseline,
                    where,
                    baseline_cases=extra.get("baseline_cases"),
                    unaffected_in_segment=segment_cases - cases,
                    min_cases=min_cases,
                ),
                where=where.where,
                hours_unit=cost_units(baseline)[0],
                touches_unit=cost_units(baseline)[1],
            )
        )
    findings.sort(key=lambda f: (-f.cost, -f.cases, f.kind, f.segment))
    return findings


def fix_first(
    findings: Sequence[Finding], count: int = 3, *, categorised: bool = True
) -> list[str]:
    """Plain-language recommendations for the ``count`` costliest findings (what, how
    many cases, what it costs, what to do first). ``findings`` must be ranked."""
    return [
        _fix_first(finding, scope(finding.segment, categorised=categorised))
        for finding in findings[:count]
    ]
