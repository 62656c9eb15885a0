"""Diffing models and content-addressed versions."""

from __future__ import annotations

import yaml

from opsdesk.model import (
    OperatingModel,
    canonical_json,
    diff_models,
    load_model_text,
    model_hash,
    render_diff,
    short_version,
)

from .helpers import BASE, edit


def load(text: str) -> OperatingModel:
    result = load_model_text(text)
    assert result.model is not None, [p.format() for p in result.problems]
    return result.model


def test_identical_models_have_an_empty_diff() -> None:
    diff = diff_models(load(BASE), load(BASE))
    assert diff.is_empty
    assert diff.to_dict() == {}
    assert render_diff(diff) == "No changes.\n"


def test_added_removed_and_changed() -> None:
    new_text = edit(
        "  - id: refund\n    name: Refund\n    owner_team: billing\n",
        "  - id: refund\n    name: Refund\n    owner_team: payments\n",
    )
    new_text = edit(
        "  - id: billing\n    name: Billing\n", "  - id: payments\n    name: Payments\n", new_text
    )
    new_text = edit("high: {first_reply: 4h}", "high: {first_reply: 2h}", new_text)
    new_text = edit("default_priority: normal", "default_priority: high", new_text)
    new_text = edit("\nskills: [english]", "\nskills: [english, dutch]", new_text)
    diff = diff_models(load(BASE), load(new_text))

    assert not diff.is_empty
    assert diff.kinds["teams"].added == ["payments"]
    assert diff.kinds["teams"].removed == ["billing"]
    assert diff.to_dict()["request_types"] == {
        "added": [],
        "removed": [],
        "changed": {"refund": {"owner_team": {"before": "billing", "after": "payments"}}},
    }
    assert render_diff(diff) == (
        "Added:\n"
        "  teams: payments\n"
        "  skills: dutch\n"
        "Removed:\n"
        "  teams: billing\n"
        "Changed:\n"
        "  sla_policies.std.targets.high.first_reply: 4h -> 2h\n"
        "  request_types.refund.owner_team: billing -> payments\n"
        "  settings.default_priority: normal -> high\n"
    )


def test_diff_of_nested_lists_is_field_level() -> None:
    new_text = edit("{before_breach: 1h}", "{before_breach: 30m}")
    new_text = edit("steps: [check, pay]", "steps: [check, approve, pay]", new_text)
    lines = render_diff(diff_models(load(BASE), load(new_text))).splitlines()
    assert lines == [
        "Changed:",
        "  escalation_paths.esc.levels[0].when.before_breach: 1h -> 30m",
        '  request_types.refund.steps: ["check", "pay"] -> ["check", "approve", "pay"]',
    ]


def test_hash_is_stable_across_reformatting_and_comments() -> None:
    reformatted = yaml.safe_dump(
        yaml.safe_load(BASE), default_flow_style=True, sort_keys=True, width=60
    )
    commented = "# a comment\n" + edit("max_duration: 7d", "max_duration: 168h  # a week")
    digests = {model_hash(load(text)) for text in (BASE, reformatted, commented)}
    assert len(digests) == 1


def test_hash_ignores_order_of_id_collections_but_not_steps() -> None:
    swapped = edit(
        "  - id: support\n    name: Support\n  - id: billing\n    name: Billing\n",
        "  - id: billing\n    name: Billing\n  - id: support\n    name: Support\n",
    )
    assert model_hash(load(swapped)) == model_hash(load(BASE))
    reordered_steps = edit("steps: [check, pay]", "steps: [pay, check]")
    assert model_hash(load(reordered_steps)) != model_hash(load(BASE))


def test_canonical_json_and_short_version() -> None:
    model = load(BASE)
    text = canonical_json(model)
    assert text.startswith('{"calendars":')
    assert " " not in text.split('"name"')[0]
    digest = model_hash(model)
    assert len(digest) == 64
    assert short_version(digest) == digest[:12]
