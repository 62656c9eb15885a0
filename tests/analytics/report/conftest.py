"""Fixtures for the report tests."""

from __future__ import annotations

import pytest

from opsdesk.analytics.results import Diagnosis
from tests.analytics.report.builders import make_diagnosis


@pytest.fixture
def diagnosis() -> Diagnosis:
    return make_diagnosis()
