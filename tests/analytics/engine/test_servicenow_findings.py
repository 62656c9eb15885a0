"""The findings on the real ServiceNow log (``../shared/data``): what it cannot measure
is said, every finding names its baseline and unit, and the ranking is by real cost.

Skipped when the file is absent, unless OPSDESK_REQUIRE_DATA=1 (then it fails).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opsdesk.analytics.engine import diagnose
from opsdesk.analytics.importers import import_log
from opsdesk.analytics.kpis import lookup
from opsdesk.analytics.results import Diagnosis

DATA = (
    Path(__file__).resolve().parents[4] / "shared" / "data" / "servicenow_incident_event_log.csv.gz"
)


@pytest.fixture(scope="module")
def servicenow(tmp_path_factory: pytest.TempPathFactory) -> Diagnosis:
    if not DATA.exists():
        message = f"the real ServiceNow log is not here: {DATA}"
        if os.environ.get("OPSDESK_REQUIRE_DATA") == "1":
            pytest.fail(f"{message} (OPSDESK_REQUIRE_DATA=1)")
        pytest.skip(message)
    log = tmp_path_factory.mktemp("servicenow") / "incidents.parquet"
    import_log(DATA, log, preset="servicenow")
    return diagnose(log)


def test_what_the_servicenow_log_cannot_support_is_said(servicenow: Diagnosis) -> None:
    # no messages at all: pending misuse cannot be told apart, first response not seen
    assert "no customer messages" in servicenow.not_measurable["pending_misuse"]
    assert not [f for f in servicenow.findings if f.kind == "pending_misuse"]
    assert {"first_response_median_h", "csat_mean", "aht_seconds"} <= set(
        servicenow.unavailable_kpis
    )
    overall = lookup(servicenow.kpis, "overall", "all")
    assert overall is not None and "first_response_median_h" not in overall
    # what it does record stays measured
    assert overall["sla_cases"] == servicenow.summary.cases
    for kind in ("ping_pong", "handoff_chain", "ownership_gap", "rework", "repeat_contact"):
        assert kind not in servicenow.not_measurable


def test_every_servicenow_finding_names_its_baseline(servicenow: Diagnosis) -> None:
    assert servicenow.findings
    for f in servicenow.findings:
        assert f.baseline and f.baseline_text and f.where and f.hours_unit, f
        assert "(none)" not in f.explanation + f.baseline_text + f.where
        if f.baseline != "none":
            assert f.cost > 0, f
    costs = [f.cost for f in servicenow.findings]
    assert costs == sorted(costs, reverse=True)
