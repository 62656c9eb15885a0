"""Fixtures for the operating-model tests."""

from __future__ import annotations

import pytest

from opsdesk.model import (
    LoadResult,
    OperatingModel,
    example_model_path,
    load_model_file,
    load_model_text,
)

from .helpers import BASE


@pytest.fixture
def base_result() -> LoadResult:
    """The loaded BASE model."""
    return load_model_text(BASE, "m.yaml")


@pytest.fixture(scope="session")
def example_model() -> OperatingModel:
    """The canonical example model shipped in the package."""
    result = load_model_file(example_model_path())
    assert result.model is not None, [p.format() for p in result.problems]
    return result.model
