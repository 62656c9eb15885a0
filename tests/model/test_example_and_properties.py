"""The shipped example, the docs and property-based tests."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from opsdesk.model import (
    PERMISSION_MEANINGS,
    PERMISSIONS,
    PRIORITIES,
    OperatingModel,
    check_file,
    example_model_path,
    format_duration,
    load_model_text,
    model_hash,
    parse_duration,
    schema,
)

from .helpers import REPO_ROOT

EXAMPLE_TEXT = example_model_path().read_text(encoding="utf-8")


def test_example_is_clean() -> None:
    assert [p.format() for p in check_file(example_model_path())] == []


def test_example_covers_the_brief(example_model: OperatingModel) -> None:
    assert 6 <= len(example_model.teams) <= 8
    assert 10 <= len(example_model.request_types) <= 12
    assert all(4 <= len(rt.steps) <= 7 for rt in example_model.request_types)
    assert all(set(p.targets) == set(PRIORITIES) for p in example_model.sla_policies)
    assert "tickets.read" in example_model.permissions_for(["admin"])
    assert example_model.permissions_for(["auditor"]) >= {"audit.read"}
    assert "tickets.write" not in example_model.permissions_for(["auditor"])


def test_repo_symlink_points_at_packaged_example() -> None:
    link = REPO_ROOT / "examples" / "operating-model.yaml"
    assert link.is_symlink()
    assert Path(link.readlink()) == Path("../src/opsdesk/examples/operating-model.yaml")
    assert link.resolve() == example_model_path().resolve()


def test_every_permission_has_a_meaning() -> None:
    assert set(PERMISSIONS) == set(PERMISSION_MEANINGS)
    assert all(PERMISSION_MEANINGS[p] for p in PERMISSIONS)


def test_docs_mention_every_field_and_permission() -> None:
    doc = (REPO_ROOT / "docs" / "operating-model.md").read_text(encoding="utf-8")
    models = [
        obj
        for obj in vars(schema).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseModel)
        and obj.__module__ == schema.__name__
        and not obj.__name__.startswith("_")
    ]
    missing = sorted(
        f"{model.__name__}.{name}"
        for model in models
        for name in model.model_fields
        if f"`{name}`" not in doc
    )
    assert missing == []
    assert [p for p in PERMISSIONS if f"`{p}`" not in doc] == []


durations = st.integers(min_value=-100_000, max_value=100_000)


@given(durations)
def test_duration_round_trips_through_text(minutes: int) -> None:
    assert parse_duration(format_duration(minutes)) == minutes


@given(st.integers(0, 30), st.integers(0, 23), st.integers(0, 59))
def test_duration_components_add_up(days: int, hours: int, minutes: int) -> None:
    text = "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    expected = days * 1440 + hours * 60 + minutes
    assert parse_duration(text or "0m") == expected
    assert parse_duration(expected) == expected


def _shuffle_keys(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffle_keys(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffle_keys(v, rng) for v in value]
    return value


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False), st.booleans())
def test_hash_invariant_under_key_reordering(rng: random.Random, flow: bool) -> None:
    data = yaml.safe_load(EXAMPLE_TEXT)
    original = load_model_text(EXAMPLE_TEXT).model
    assert original is not None
    text = yaml.safe_dump(
        _shuffle_keys(data, rng), sort_keys=False, default_flow_style=flow, allow_unicode=True
    )
    reloaded = load_model_text(text).model
    assert reloaded is not None
    assert model_hash(reloaded) == model_hash(original)
