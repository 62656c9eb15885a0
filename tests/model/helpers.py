"""Helpers for the operating-model tests: a small valid model and position finders."""

from __future__ import annotations

from pathlib import Path

from opsdesk.model import Problem, check_model, load_model_text, sort_problems

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parents[2]

# A minimal model that checks clean; tests break it with one targeted replacement.
BASE = """\
name: Test Co
teams:
  - id: support
    name: Support
  - id: billing
    name: Billing
roles:
  - id: agent
    name: Agent
    permissions: [tickets.read, tickets.write]
  - id: team_lead
    name: Team lead
    permissions: [tickets.read, exceptions.approve]
skills: [english]
calendars:
  - id: office
    timezone: Europe/London
    hours:
      mon: [["09:00", "17:00"]]
      tue: [["09:00", "17:00"]]
    holidays:
      country: GB
sla_policies:
  - id: std
    name: Standard
    calendar: office
    targets:
      low: {first_reply: 1d}
      normal: {first_reply: 8h}
      high: {first_reply: 4h}
      urgent: {first_reply: 1h}
escalation_paths:
  - id: esc
    name: Escalate
    levels:
      - name: Warn
        when: {before_breach: 1h}
        actions:
          - notify_role: team_lead
request_types:
  - id: question
    name: Question
    owner_team: support
    sla_policy: std
    escalation_path: esc
    required_skills: [english]
    steps: [answer, confirm]
  - id: refund
    name: Refund
    owner_team: billing
    sla_policy: std
    escalation_path: esc
    steps: [check, pay]
exception_types:
  - id: goodwill
    name: Goodwill
    approver_roles: [team_lead]
    max_duration: 7d
    request_types: [refund]
settings:
  default_priority: normal
"""


def edit(old: str, new: str, text: str = BASE) -> str:
    """Replace one unique fragment of ``text``; fails loudly if the fragment is ambiguous."""
    assert text.count(old) == 1, f"fragment {old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def at(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based (line, col) of the n-th occurrence of ``needle`` in ``text``."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def problems_of(text: str) -> list[Problem]:
    """Load problems plus checker problems, sorted by position."""
    result = load_model_text(text, "m.yaml")
    return sort_problems([*result.problems, *check_model(result)])


def only(problems: list[Problem], code: str | None = None) -> Problem:
    """The single problem (with ``code``, if given); fails with the full list otherwise."""
    matching = [p for p in problems if code is None or p.code == code]
    assert len(matching) == 1, [p.format() for p in problems]
    return matching[0]


def where(problem: Problem) -> tuple[int, int]:
    """A problem's (line, col)."""
    return problem.line, problem.col
