"""Every checker rule, each asserting the exact line:col of the problem it reports."""

from __future__ import annotations

import pytest

from opsdesk.model import Problem, check_model, load_model_text

from .helpers import BASE, at, edit, only, problems_of, where


def test_base_model_is_clean() -> None:
    assert problems_of(BASE) == []


def test_check_model_of_unloadable_result_is_empty() -> None:
    assert check_model(load_model_text("- not a mapping\n")) == []


@pytest.mark.parametrize(
    ("old", "new", "needle", "kind"),
    [
        ("owner_team: support", "owner_team: nobody", "nobody", "team"),
        (
            "sla_policy: std\n    escalation_path: esc\n    required_skills",
            "sla_policy: gold\n    escalation_path: esc\n    required_skills",
            "gold",
            "SLA policy",
        ),
        (
            "escalation_path: esc\n    required_skills",
            "escalation_path: nowhere\n    required_skills",
            "nowhere",
            "escalation path",
        ),
        ("calendar: office", "calendar: moon", "moon", "calendar"),
        ("required_skills: [english]", "required_skills: [klingon]", "klingon", "skill"),
        ("request_types: [refund]", "request_types: [refnud]", "refnud", "request type"),
        ("notify_role: team_lead", "notify_role: boss", "boss", "role"),
        ("approver_roles: [team_lead]", "approver_roles: [boss]", "boss", "role"),
        (
            "  - id: billing\n    name: Billing\n",
            "  - id: billing\n    name: Billing\n    lead_role: chief\n",
            "chief",
            "role",
        ),
        (
            "  - id: billing\n    name: Billing\n",
            "  - id: billing\n    name: Billing\n    secondary_team: ghosts\n",
            "ghosts",
            "team",
        ),
        ("notify_role: team_lead", "transfer_to_team: ghosts", "ghosts", "team"),
    ],
)
def test_unknown_reference(old: str, new: str, needle: str, kind: str) -> None:
    text = edit(old, new)
    problem = only(problems_of(text), "unknown-reference")
    assert problem.severity == "error"
    assert f"unknown {kind} '{needle}'" in problem.message
    assert where(problem) == at(text, needle)


def test_unknown_then_path() -> None:
    text = edit("    name: Escalate\n", "    name: Escalate\n    then: further\n")
    problem = only(problems_of(text))
    assert problem.code == "unknown-reference"
    assert where(problem) == at(text, "further")


def test_skills_unchecked_when_none_declared() -> None:
    text = edit("\nskills: [english]\n", "\n")
    text = edit("required_skills: [english]", "required_skills: [anything]", text)
    assert problems_of(text) == []


@pytest.mark.parametrize("field", ["owner_team", "sla_policy", "escalation_path"])
def test_request_type_missing_reference(field: str) -> None:
    line = {
        "owner_team": "    owner_team: billing\n",
        "sla_policy": "    sla_policy: std\n    escalation_path: esc\n    steps: [check",
        "escalation_path": "    escalation_path: esc\n    steps: [check",
    }[field]
    replacement = {
        "owner_team": "",
        "sla_policy": "    escalation_path: esc\n    steps: [check",
        "escalation_path": "    steps: [check",
    }[field]
    text = edit(line, replacement)
    problem = only(problems_of(text), "missing-reference")
    assert (problem.severity, problem.code) == ("error", "missing-reference")
    assert f"has no {field}" in problem.message
    # The field is absent, so the problem points at the request type itself.
    assert where(problem) == at(text, "id: refund")


def test_request_type_null_owner_points_at_the_field() -> None:
    text = edit("owner_team: billing", "owner_team: null")
    problem = only(problems_of(text), "missing-reference")
    assert problem.code == "missing-reference"
    assert where(problem) == at(text, "null")


def test_then_chain_loop_reported_on_each_path() -> None:
    text = edit(
        "request_types:\n",
        "  - id: esc2\n    name: Second\n    then: esc\n    levels: []\nrequest_types:\n",
    )
    text = edit("    name: Escalate\n", "    name: Escalate\n    then: esc2\n", text)
    problems = [p for p in problems_of(text) if p.code == "escalation-loop"]
    assert [where(p) for p in problems] == [at(text, "esc2", 1), at(text, "esc\n    levels: []")]
    assert "esc -> esc2 -> esc" in problems[0].message


def test_then_pointing_at_itself_loops() -> None:
    text = edit("    name: Escalate\n", "    name: Escalate\n    then: esc\n")
    problem = only(problems_of(text))
    assert problem.code == "escalation-loop"
    assert where(problem) == at(text, "esc\n    levels")


LEVELS = """\
      - name: Warn
        when: {before_breach: 1h}
        actions:
          - notify_role: team_lead
"""


def test_transfer_ping_pong_in_path() -> None:
    text = edit(
        LEVELS,
        LEVELS
        + "      - name: To billing\n        actions:\n          - transfer_to_team: billing\n"
        + "      - name: To support\n        actions:\n          - transfer_to_team: support\n"
        + "      - name: Back\n        actions:\n          - transfer_to_team: billing\n",
    )
    # The path is also used by request types owned by both teams.
    problems = problems_of(text)
    loops = [p for p in problems if p.code == "escalation-loop"]
    assert len(loops) == 1
    assert where(loops[0]) == at(text, "billing", 4)
    assert "transfers back to team 'billing'" in loops[0].message


def test_escalation_to_owning_team() -> None:
    text = edit("notify_role: team_lead", "transfer_to_team: billing")
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("error", "escalation-to-owner")
    assert "already owns 'refund'" in problem.message
    # Reported on the request type that uses the path: its escalation_path value.
    assert where(problem) == at(text, "esc\n    steps: [check")


def test_escalation_to_owning_team_through_then_chain() -> None:
    text = edit(
        "request_types:\n",
        "  - id: esc2\n    name: Second\n    levels:\n      - name: Move\n        actions:\n"
        "          - transfer_to_team: billing\n"
        "request_types:\n",
    )
    text = edit("    name: Escalate\n", "    name: Escalate\n    then: esc2\n", text)
    problem = only(problems_of(text))
    assert problem.code == "escalation-to-owner"
    assert where(problem) == at(text, "esc\n    steps: [check")


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("approver_roles: [team_lead]", "approver_roles: []", "[]"),
        ("    approver_roles: [team_lead]\n", "", "id: goodwill"),
    ],
)
def test_exception_type_without_approver(old: str, new: str, needle: str) -> None:
    text = edit(old, new)
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("error", "no-approver")
    assert where(problem) == at(text, needle)


@pytest.mark.parametrize("value", ["0m", "-1h", "0"])
def test_non_positive_sla_target(value: str) -> None:
    text = edit("high: {first_reply: 4h}", f"high: {{first_reply: {value}}}")
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("error", "non-positive-duration")
    assert "zero or negative SLA target first_reply for high" in problem.message
    assert where(problem) == at(text, value + "}")


def test_non_positive_exception_max_duration() -> None:
    text = edit("max_duration: 7d", "max_duration: -7d")
    problem = only(problems_of(text))
    assert problem.code == "non-positive-duration"
    assert where(problem) == at(text, "-7d")


def test_missing_priority_target_is_a_warning() -> None:
    text = edit("      low: {first_reply: 1d}\n", "")
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("warning", "missing-sla-target")
    assert "no target for priority low" in problem.message
    assert where(problem) == at(text, "targets:")


def test_unknown_priority_target_key() -> None:
    text = edit("urgent: {first_reply: 1h}", "urgent: {first_reply: 1h}\n      critical: {}")
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("error", "unknown-priority")
    assert where(problem) == at(text, "critical")


def test_unknown_priority_in_escalation_condition() -> None:
    text = edit("{before_breach: 1h}", "{before_breach: 1h, priority: p1}")
    problem = only(problems_of(text))
    assert problem.code == "unknown-priority"
    assert where(problem) == at(text, "p1")


@pytest.mark.parametrize("hours", ["hours: {}", "hours: {mon: [], sun: []}"])
def test_calendar_without_working_hours(hours: str) -> None:
    text = edit('hours:\n      mon: [["09:00", "17:00"]]\n      tue: [["09:00", "17:00"]]', hours)
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("error", "no-working-hours")
    assert where(problem) == at(text, hours.split(": ", 1)[1])


@pytest.mark.parametrize(
    ("pair", "needle"),
    [
        ('["25:00", "26:00"]', '"25:00"'),
        ('["09:00", "9pm"]', '"9pm"'),
        ('["09:60", "17:00"]', '"09:60"'),
        ('["24:00", "02:00"]', '"24:00"'),
        ('["09:00", "09:00"]', '["09:00", "09:00"]'),
    ],
)
def test_malformed_hours(pair: str, needle: str) -> None:
    text = edit('mon: [["09:00", "17:00"]]', f"mon: [{pair}]")
    problems = problems_of(text)
    assert problems, "expected a malformed-hours error"
    assert {p.code for p in problems} == {"malformed-hours"}
    assert where(problems[0]) == at(text, needle)


def test_overlapping_hours() -> None:
    text = edit('mon: [["09:00", "17:00"]]', 'mon: [["09:00", "17:00"], ["12:00", "18:00"]]')
    problem = only(problems_of(text))
    assert problem.code == "malformed-hours"
    assert where(problem) == at(text, '["12:00"')


def test_overnight_shift_is_valid() -> None:
    text = edit('mon: [["09:00", "17:00"]]', 'mon: [["09:00", "17:00"], ["22:00", "02:00"]]')
    assert problems_of(text) == []


def test_unknown_timezone() -> None:
    text = edit("timezone: Europe/London", "timezone: Europe/Manchester")
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("error", "unknown-timezone")
    assert where(problem) == at(text, "Europe/Manchester")


def test_unknown_holiday_country() -> None:
    text = edit("country: GB", "country: ZZ")
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("error", "unknown-holiday-country")
    assert where(problem) == at(text, "ZZ")


def test_unknown_holiday_subdivision() -> None:
    text = edit("country: GB", "country: GB\n      subdivision: XYZ")
    problem = only(problems_of(text))
    assert problem.code == "unknown-holiday-country"
    assert where(problem) == at(text, "XYZ")


def test_norway_is_a_country_not_false() -> None:
    text = edit("country: GB", "country: NO")
    assert problems_of(text) == []


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        (
            "  - id: billing\n    name: Billing\n",
            "  - id: billing\n    name: Billing\n  - id: support\n    name: Again\n",
            "id: support",
        ),
        ("  - id: team_lead\n", "  - id: agent\n", "id: agent"),
        (
            "  - id: goodwill\n",
            "  - id: goodwill\n    name: Goodwill\n    approver_roles: "
            "[team_lead]\n    max_duration: 1d\n  - id: goodwill\n",
            "id: goodwill",
        ),
    ],
)
def test_duplicate_ids_point_at_the_second(old: str, new: str, needle: str) -> None:
    text = edit(old, new)
    dupes = [p for p in problems_of(text) if p.code == "duplicate-id"]
    assert len(dupes) == 1
    line, col = at(text, needle, 2)
    assert where(dupes[0]) == (line, col + len("id: "))


def test_duplicate_skill() -> None:
    text = edit("\nskills: [english]", "\nskills: [english, english]")
    problem = only(problems_of(text))
    assert problem.code == "duplicate-id"
    assert where(problem) == at(text, "english", 2)


def test_unknown_permission_is_a_warning() -> None:
    text = edit("[tickets.read, tickets.write]", "[tickets.read, tickets.wrte]")
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("warning", "unknown-permission")
    assert where(problem) == at(text, "tickets.wrte")


@pytest.mark.parametrize("share", ["0", "1", "1.5", "-0.2"])
def test_warning_share_out_of_range(share: str) -> None:
    text = edit("calendar: office\n", f"calendar: office\n    warning_share: {share}\n")
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("error", "warning-share")
    assert where(problem) == at(text, share + "\n")


def test_default_priority_unknown() -> None:
    text = edit("default_priority: normal", "default_priority: medium")
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("error", "unknown-priority")
    assert where(problem) == at(text, "medium")


@pytest.mark.parametrize("field", ["ping_pong_transfer_limit", "repeat_contact_window_days"])
def test_settings_must_be_positive(field: str) -> None:
    text = edit("  default_priority: normal\n", f"  default_priority: normal\n  {field}: 0\n")
    problem = only(problems_of(text))
    assert problem.code == "settings"
    assert where(problem) == at(text, "0\n")


def test_team_owning_nothing_is_a_warning() -> None:
    text = edit("  - id: billing\n", "  - id: idle\n    name: Idle\n  - id: billing\n")
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("warning", "unused-team")
    assert where(problem) == at(text, "idle")


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [("steps: [check, pay]", "steps: []", "[]"), ("\n    steps: [check, pay]", "", "id: refund")],
)
def test_request_type_without_steps_is_a_warning(old: str, new: str, needle: str) -> None:
    text = edit(old, new)
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("warning", "empty-steps")
    assert where(problem) == at(text, needle)


def test_team_that_is_its_own_secondary() -> None:
    text = edit("    name: Billing\n", "    name: Billing\n    secondary_team: billing\n")
    problem = only(problems_of(text))
    assert problem.code == "self-reference"
    assert where(problem) == at(text, "billing", 2)


def test_problems_sorted_by_line() -> None:
    text = edit("default_priority: normal", "default_priority: medium")
    text = edit("owner_team: support", "owner_team: nobody", text)
    text = edit("timezone: Europe/London", "timezone: Mars/Base", text)
    lines = [p.line for p in problems_of(text)]
    # Three errors plus the warning that team 'support' now owns nothing.
    assert lines == sorted(lines) and len(lines) == 4


TEAMS_PLUS = (
    "  - id: billing\n    name: Billing\n"
    "  - id: tier2\n    name: Tier 2\n  - id: cx\n    name: Complaints\n"
)


def _chained(text: str) -> list[Problem]:
    """Problems of a model from :func:`_chain_model`, less its teams that own nothing."""
    return [p for p in problems_of(text) if p.code != "unused-team"]


def _chain_model(p3_team: str) -> str:
    """A request type whose path chains tech (-> tier2) then p2 (-> cx) then p3."""
    text = edit("  - id: billing\n    name: Billing\n", TEAMS_PLUS)
    paths = (
        "  - id: tech\n    name: Tech\n    then: p2\n    levels:\n"
        "      - name: Needs tier 2\n        actions:\n          - transfer_to_team: tier2\n"
        "  - id: p2\n    name: P2\n    then: p3\n    levels:\n"
        "      - name: Complain\n        when: {priority: high}\n"
        "        actions:\n          - transfer_to_team: cx\n"
        "  - id: p3\n    name: P3\n    levels:\n"
        "      - name: Back\n        when: {priority: urgent}\n"
        f"        actions:\n          - transfer_to_team: {p3_team}\n"
        "request_types:\n"
    )
    text = edit("request_types:\n", paths, text)
    return edit(
        "exception_types:\n",
        "  - id: meter\n    name: Meter\n    owner_team: support\n    sla_policy: std\n"
        "    escalation_path: tech\n    steps: [look]\nexception_types:\n",
        text,
    )


def test_ping_pong_across_a_then_chain() -> None:
    text = _chain_model("tier2")
    loops = [p for p in problems_of(text) if p.code == "escalation-loop"]
    # reported once, on p3's transfer, though the chains of tech and p2 both reach it
    assert [where(p) for p in loops] == [at(text, "tier2", 3)]
    assert "tech -> p2 -> p3" in loops[0].message
    assert "transfers back to team 'tier2'" in loops[0].message


def test_a_then_chain_through_distinct_teams_is_no_loop() -> None:
    text = _chain_model("support")  # p3 ends with the owner: reported as such, not a loop
    assert [p.code for p in problems_of(text) if p.severity == "error"] == ["escalation-to-owner"]
    text = edit("transfer_to_team: support", "notify_role: team_lead", text)
    assert _chained(text) == []


def test_two_transfers_to_one_team_and_one_elsewhere_loop_in_any_order() -> None:
    # listed tier2, cx, cx: levels fire in any order, so cx -> tier2 -> cx can happen
    text = _chain_model("cx")
    loops = [p for p in problems_of(text) if p.code == "escalation-loop"]
    assert [where(p) for p in loops] == [at(text, "cx", 3)]


def test_level_names_are_unique_within_a_path() -> None:
    text = edit(LEVELS, LEVELS + LEVELS)
    problem = only(problems_of(text), "duplicate-level")
    assert problem.severity == "error"
    assert where(problem) == at(text, "Warn", 2)
    assert "remembers the levels that fired by name" in problem.message


def test_unknown_customer_tier_in_escalation_condition() -> None:
    text = edit("{before_breach: 1h}", "{before_breach: 1h, customer_tier: platinum}")
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("error", "unknown-tier")
    assert where(problem) == at(text, "platinum")


def test_a_path_no_request_type_uses_never_fires() -> None:
    text = edit(
        "request_types:\n",
        "  - id: spare\n    name: Spare\n    levels:\n      - name: Ping\n"
        "        actions:\n          - notify_role: team_lead\nrequest_types:\n",
    )
    problem = only(problems_of(text))
    assert (problem.severity, problem.code) == ("warning", "never-fires")
    assert where(problem) == at(text, "spare")
    assert "used by no request type" in problem.message
    # used through another path's `then` chain, it can fire
    text = edit("    name: Escalate\n", "    name: Escalate\n    then: spare\n", text)
    assert problems_of(text) == []


def test_a_denial_level_where_no_exception_may_be_raised_never_fires() -> None:
    text = edit(
        "    levels:\n      - name: Warn",
        "    levels:\n      - name: Denied\n        when: {exception_denied: true}\n"
        "        actions:\n          - notify_role: team_lead\n      - name: Warn",
    )
    assert problems_of(text) == []  # goodwill may be raised on refunds
    text = edit("request_types: [refund]", "request_types: [question]", text)
    assert problems_of(text) == []
    text = edit(
        "    escalation_path: esc\n    steps: [check",
        "    escalation_path: esc\n    steps: [check",
        text,
    )
    no_exceptions = edit(
        "exception_types:\n  - id: goodwill\n    name: Goodwill\n    approver_roles: [team_lead]\n"
        "    max_duration: 7d\n    request_types: [question]\n",
        "exception_types: []\n",
        text,
    )
    problem = only(problems_of(no_exceptions))
    assert (problem.severity, problem.code) == ("warning", "never-fires")
    assert where(problem) == at(no_exceptions, "true")
    assert "no exception type may be raised" in problem.message


def test_a_clock_level_without_any_target_at_its_priority_never_fires() -> None:
    text = edit("{before_breach: 1h}", "{before_breach: 1h, priority: low}")
    assert problems_of(text) == []
    text = edit("      low: {first_reply: 1d}\n", "", text)
    problems = problems_of(text)
    assert sorted(p.code for p in problems) == ["missing-sla-target", "never-fires"]
    problem = only(problems, "never-fires")
    assert where(problem) == at(text, "{before_breach")
    assert (
        "no request type using path 'esc' (question, refund) has an SLA target at priority low"
        in problem.message
    )


def test_a_transfer_only_at_the_ping_pong_limit_is_a_contested_transfer() -> None:
    text = _chain_model("support")
    text = edit("transfer_to_team: support", "notify_role: team_lead", text)
    text = edit(
        "      - name: Complain\n        when: {priority: high}",
        "      - name: Complain\n        when: {transfers_at_least: 3}",
        text,
    )
    problem = only(_chained(text))
    assert (problem.severity, problem.code) == ("warning", "contested-transfer")
    assert where(problem) == at(text, "cx", 2)
    assert "the transfer is skipped while that lead holds the ticket" in problem.message
    relaxed = edit("transfers_at_least: 3", "transfers_at_least: 2", text)
    assert _chained(relaxed) == []
