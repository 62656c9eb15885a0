"""The model checker's routing and triage rules, each at the position it reports."""

from __future__ import annotations

import pytest

from tests.model.helpers import BASE, at, edit, only, problems_of, where

TRIAGE = """\
triage:
  rules:
    - id: outage
      when: {keywords: [outage], channel: [chat], customer_tier: [vip]}
      set: {request_type: question, priority: urgent, tags: [outage]}
    - id: refund
      when: {pattern: 'refund\\s+#\\d+'}
      set: {request_type: refund}
"""
WITH_TRIAGE = BASE + TRIAGE


def test_triage_section_checks_clean() -> None:
    assert problems_of(WITH_TRIAGE) == []


@pytest.mark.parametrize(
    ("old", "new", "needle", "code"),
    [
        ("request_type: question", "request_type: questoin", "questoin", "unknown-reference"),
        ("priority: urgent", "priority: asap", "asap", "unknown-priority"),
        ("channel: [chat]", "channel: [fax]", "fax", "unknown-channel"),
        ("customer_tier: [vip]", "customer_tier: [platinum]", "platinum", "unknown-tier"),
        ("'refund\\s+#\\d+'", "'refund(#'", "'refund(#'", "invalid-pattern"),
        ("    - id: refund\n", "    - id: outage\n", "id: outage", "duplicate-id"),
        ("keywords: [outage]", "keywords: [outage, ' ']", "' '", "empty-keyword"),
    ],
)
def test_triage_errors_are_reported_where_they_are(
    old: str, new: str, needle: str, code: str
) -> None:
    text = edit(old, new, WITH_TRIAGE)
    problem = only(problems_of(text), code)
    assert problem.severity == "error"
    assert where(problem) == in_triage(text, needle, 2 if code == "duplicate-id" else 1)


def in_triage(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """(line, col) of the n-th ``needle`` in the triage section (rules use the words of
    the sections before it too)."""
    before = text[: text.index("triage:")].count(needle)
    line, col = at(text, needle, before + occurrence)
    if needle.startswith("id: "):
        col += len("id: ")
    return line, col


def test_min_confidence_outside_zero_to_one() -> None:
    text = WITH_TRIAGE + "    - id: cls\n      when: {classifier_label: x, min_confidence: 1.5}\n"
    text += "      set: {priority: high}\n"
    problem = only(problems_of(text), "min-confidence")
    assert problem.severity == "error"
    assert where(problem) == at(text, "1.5")


@pytest.mark.parametrize(
    ("rule", "code", "needle"),
    [
        ("when: {min_confidence: 0.5, channel: [chat]}\n      set: {priority: high}",
         "min-confidence", "0.5"),
        ("when: {channel: [chat]}\n      set: {}", "empty-rule", "{}"),
    ],
)  # fmt: skip
def test_triage_warnings(rule: str, code: str, needle: str) -> None:
    text = WITH_TRIAGE + f"    - id: extra\n      {rule}\n"
    problem = only(problems_of(text), code)
    assert problem.severity == "warning"
    assert where(problem) == at(text, needle)


def test_a_catch_all_rule_before_others_in_first_match_mode_is_flagged() -> None:
    text = edit(
        "  rules:\n",
        "  rules:\n    - id: all\n      when: {}\n      set: {tags: [seen]}\n",
        WITH_TRIAGE,
    )
    problem = only(problems_of(text), "unreachable-rule")
    assert problem.severity == "warning"
    assert where(problem) == at(text, "{}")
    # last, or in all_match mode, it is fine
    assert problems_of(edit("  rules:\n", "  mode: all_match\n  rules:\n", text)) == []


ROUTED = edit(
    "  - id: support\n    name: Support\n",
    "  - id: support\n    name: Support\n    secondary_team: billing\n    routing:\n"
    "      strategy: round_robin\n      max_open_per_agent: 5\n"
    "      max_per_channel: {chat: 3, voice: 1}\n      overflow_after: 20m\n"
    "      calendar: office\n      continuity: false\n",
)


def test_team_routing_checks_clean() -> None:
    assert problems_of(ROUTED) == []


@pytest.mark.parametrize(
    ("old", "new", "needle", "code"),
    [
        ("chat: 3", "fax: 3", "fax", "unknown-channel"),
        ("voice: 1", "voice: 0", "0}", "routing"),
        ("max_open_per_agent: 5", "max_open_per_agent: 0", "0\n", "routing"),
        ("overflow_after: 20m", "overflow_after: -5m", "-5m", "non-positive-duration"),
        ("calendar: office\n      continuity", "calendar: moon\n      continuity", "moon",
         "unknown-reference"),
        ("    secondary_team: billing\n    routing", "    routing", "20m", "routing"),
    ],
)  # fmt: skip
def test_team_routing_errors(old: str, new: str, needle: str, code: str) -> None:
    text = edit(old, new, ROUTED)
    problem = only(problems_of(text), code)
    assert problem.severity == "error"
    assert where(problem) == at(text, needle)
