"""Loading YAML with positions: syntax errors, duplicate keys, schema errors, fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsdesk.model import LoadResult, check_file, load_model_file, load_model_text

from .helpers import BASE, FIXTURES, at, edit, only, problems_of, where


def test_broken_fixture_reports_every_problem_with_position() -> None:
    path = FIXTURES / "broken_references.yaml"
    got = [p.format().removeprefix(f"{path}:") for p in check_file(path)]
    assert got == [
        "4:5: error: team 'support' uses the default lead_role 'team_lead', which is not a role:"
        " add that role or set lead_role",
        "6:5: error: team 'billing' uses the default lead_role 'team_lead', which is not a role:"
        " add that role or set lead_role",
        "6:9: warning: team 'billing' owns no request type; give it one or remove it",
        "11:33: warning: unknown permission 'tickets.fly' in role 'agent'",
        "14:15: error: unknown time zone 'Europe/Londen' (use an IANA name such as"
        " 'Europe/London')",
        "16:23: error: invalid time '25:00': hours run 00:00 to 24:00",
        "21:5: warning: SLA policy 'std' has no target for priority low, high, urgent",
        "22:29: error: zero or negative SLA target first_reply for normal in 'std'",
        "26:11: error: escalation path 'esc' loops: following 'then' (esc -> esc) comes back to it",
        "36:22: error: escalation path 'esc' (level 'Move') transfers to 'support', which"
        " already owns 'question'",
        "38:5: error: request type 'refund' has no escalation_path",
        "40:17: error: unknown team 'finance' (known: billing, support)",
        "46:21: error: exception type 'goodwill' has no approver role",
    ]


def test_duplicate_keys_fixture() -> None:
    path = FIXTURES / "duplicate_keys.yaml"
    problems = check_file(path)
    assert [(p.line, p.col, p.code) for p in problems] == [
        (6, 5, "duplicate-key"),
        (14, 5, "schema"),
    ]
    assert "duplicate key 'name' in teams[0]" in problems[0].message
    assert "unknown field 'owner_teem' (did you mean 'owner_team'?)" in problems[1].message
    assert load_model_file(path).model is None


def test_syntax_error_fixture() -> None:
    path = FIXTURES / "syntax_error.yaml"
    problem = only(check_file(path))
    assert (problem.line, problem.col, problem.code) == (5, 6, "yaml")
    assert problem.message.startswith("YAML syntax error: expected ',' or ']'")
    assert "line 4, column 11" in problem.message


def test_duplicate_top_level_key_is_an_error_even_if_otherwise_valid() -> None:
    text = BASE + "settings:\n  default_priority: high\n"
    result = load_model_text(text, "m.yaml")
    problem = only(result.problems)
    assert problem.code == "duplicate-key"
    assert where(problem) == at(text, "settings:", 2)
    assert result.model is None


def test_problem_format() -> None:
    text = edit("owner_team: support", "owner_team: nobody")
    problem = only(problems_of(text), "unknown-reference")
    line, col = problem.line, problem.col
    assert problem.format() == (
        f"m.yaml:{line}:{col}: error: unknown team 'nobody' (known: billing, support)"
    )


def test_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = load_model_file(missing)
    problem = only(result.problems)
    assert result.model is None
    assert problem.format() == f"{missing}:1:1: error: file not found; check the path"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# only a comment\n")
    problem = only(check_file(path))
    assert problem.code == "yaml" and "empty" in problem.message


@pytest.mark.parametrize(("text", "pos"), [("- a\n- b\n", (1, 1)), ("\n\njust text\n", (3, 1))])
def test_top_level_must_be_a_mapping(text: str, pos: tuple[int, int]) -> None:
    problem = only(load_model_text(text, "m.yaml").problems)
    assert "top level must be a mapping" in problem.message
    assert where(problem) == pos


def test_tab_indentation_is_a_syntax_error_with_position() -> None:
    text = "name: x\nteams:\n\t- id: a\n"
    problem = only(load_model_text(text).problems)
    assert problem.code == "yaml"
    assert where(problem) == (3, 1)


def test_missing_required_field_points_at_parent() -> None:
    text = edit("    name: Billing\n", "")
    problem = only(load_model_text(text, "m.yaml").problems)
    assert problem.message == "teams[1]: missing required field 'name'"
    assert where(problem) == at(text, "id: billing")


def test_missing_top_level_section() -> None:
    text = edit("exception_types:\n", "exception_typs:\n")
    problems = load_model_text(text, "m.yaml").problems
    assert [p.message for p in problems] == [
        "the top level: missing required field 'exception_types'",
        "exception_typs: unknown field 'exception_typs' (did you mean 'exception_types'?)",
    ]
    assert where(problems[0]) == (1, 1)
    assert where(problems[1]) == at(text, "exception_typs")


def test_invalid_duration_points_at_value() -> None:
    text = edit("max_duration: 7d", "max_duration: 7 days")
    problem = only(load_model_text(text, "m.yaml").problems)
    assert "invalid duration '7 days'" in problem.message
    assert where(problem) == at(text, "7 days")


def test_unknown_weekday_points_at_key() -> None:
    text = edit("      tue:", "      tues:")
    problem = only(load_model_text(text, "m.yaml").problems)
    assert problem.message.startswith("calendars[0].hours.tues: invalid key")
    assert where(problem) == at(text, "tues")


def test_action_with_two_keys() -> None:
    text = edit("- notify_role: team_lead", "- {notify_role: team_lead, raise_priority: true}")
    problem = only(load_model_text(text, "m.yaml").problems)
    assert "an action is one key" in problem.message
    assert where(problem) == at(text, "{notify_role")


def test_unquoted_times_are_strings_not_base_60_numbers() -> None:
    text = edit('mon: [["09:00", "17:00"]]', "mon: [[09:00, 17:30]]")
    result = load_model_text(text, "m.yaml")
    assert result.model is not None
    assert result.model.calendar("office").hours["mon"] == [("09:00", "17:30")]


def test_positions_map_uses_path_tuples(base_result: LoadResult) -> None:
    result = base_result
    assert result.positions[("request_types", 1, "owner_team")] == at(BASE, "billing\n    sla")
    assert result.key_positions[("request_types", 1, "owner_team")] == at(
        BASE, "owner_team: billing"
    )
    # Unknown deeper paths fall back to the nearest known ancestor.
    assert result.position(("request_types", 1, "nothing", 3)) == at(BASE, "id: refund")


def test_lookup_helpers(base_result: LoadResult) -> None:
    model = base_result.model
    assert model is not None
    assert model.team("billing").name == "Billing"
    assert model.request_type("refund").owner_team == "billing"
    assert model.calendar("office").intervals("mon") == [(540, 1020)]
    assert model.exception_types_for("question") == []
    with pytest.raises(KeyError, match="unknown team 'nope'"):
        model.team("nope")
    assert model.permissions_for(["agent", "team_lead"]) == frozenset(
        {"tickets.read", "tickets.write", "exceptions.approve"}
    )
