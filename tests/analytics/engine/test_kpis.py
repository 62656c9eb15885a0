"""KPIs on hand-computable examples."""

from __future__ import annotations

import pytest

from opsdesk.analytics.engine import diagnose
from opsdesk.analytics.kpis import lookup
from opsdesk.analytics.results import Diagnosis
from opsdesk.model import example_model_path, load_model_file

from .builder import Log


def kpi_log() -> Log:
    log = Log()
    c = log.case("k1")
    c.ev(0.5, "message.added", actor_kind="agent", visibility="public", handle_seconds=100.0)
    c.solve(1, made_sla=True, handle_seconds=200.0)
    c.ev(2, "ticket.csat_received", actor_kind="customer", csat=4.0)
    c = log.case("k2", channel="chat")
    c.ev(1, "message.added", actor_kind="bot", visibility="public", handle_seconds=600.0)
    c.solve(2, made_sla=True).ev(3, "ticket.csat_received", csat=5.0)
    log.case("k3", priority="high").message(1.5).exception(2).solve(3, made_sla=False)
    log.case("k4").message(2).transfer(2.5, "B", "b1").transfer(3, "C", "c1").solve(4)
    c = log.case("k5").message(0.2, visibility="internal").solve(10)
    c.status(11, "open").solve(12)
    return log


@pytest.fixture(scope="module")
def kpis() -> Diagnosis:
    return diagnose(kpi_log().table())


def test_overall_kpis(kpis: Diagnosis) -> None:
    row = lookup(kpis.kpis, "overall", "all")
    assert row is not None
    assert row["cases"] == 5
    # resolution (first solve): 1, 2, 3, 4, 10 hours
    assert row["resolution_median_h"] == pytest.approx(3.0)
    assert row["resolution_p90_h"] == pytest.approx(4 + 0.6 * 6)  # 7.6, interpolated
    # first public agent/bot message: 0.5, 1, 1.5, 2; k5 has only an internal note
    assert row["first_response_median_h"] == pytest.approx(1.25)
    assert row["first_response_p90_h"] == pytest.approx(1.85)
    assert row["sla_attainment"] == pytest.approx(2 / 3)
    assert row["sla_cases"] == 3
    assert row["csat_mean"] == pytest.approx(4.5)
    assert row["csat_responses"] == 2
    assert row["aht_seconds"] == pytest.approx(450.0)  # (300 + 600) / 2 cases with time
    assert row["exception_rate"] == pytest.approx(0.2)
    assert row["reopen_rate"] == pytest.approx(0.2)
    assert row["transfers_per_case"] == pytest.approx(0.4)
    assert row["escalation_rate"] == pytest.approx(0.2)  # no model: >= 2 transfers
    assert row["fcr_rate"] == pytest.approx(0.6)  # k4 transferred, k5 reopened
    assert row["repeat_contact_rate"] == 0.0


def test_breakdowns(kpis: Diagnosis) -> None:
    dimensions = [table.dimension for table in kpis.kpis]
    assert dimensions == [
        "overall", "category", "team", "channel", "priority", "week",
        "backlog_day", "backlog_week",
    ]  # fmt: skip
    # team: the team owning the case when first solved
    assert lookup(kpis.kpis, "team", "A")["cases"] == 4
    assert lookup(kpis.kpis, "team", "C")["cases"] == 1
    assert lookup(kpis.kpis, "team", "B") is None
    assert lookup(kpis.kpis, "channel", "chat")["first_response_median_h"] == 1.0
    assert lookup(kpis.kpis, "priority", "high")["exception_rate"] == 1.0
    assert lookup(kpis.kpis, "week", "2024-W01")["cases"] == 5


def test_kpis_the_log_cannot_support_are_unavailable_not_null() -> None:
    log = Log()
    log.case("n1").solve(5)
    log.case("n2").status(1, "pending").solve(7)
    d = diagnose(log.table())
    row = lookup(d.kpis, "overall", "all")
    assert row is not None
    unavailable = {
        "first_response_median_h",
        "first_response_p90_h",
        "sla_attainment",
        "sla_cases",
        "csat_mean",
        "csat_responses",
        "aht_seconds",
        "exception_rate",
    }
    assert set(d.unavailable_kpis) == unavailable
    assert "public replies" in d.unavailable_kpis["first_response_median_h"]
    assert "CSAT" in d.unavailable_kpis["csat_mean"]
    assert "SLA" in d.unavailable_kpis["sla_cases"]
    for table in d.kpis:
        for kpi_row in table.rows:
            assert unavailable.isdisjoint(kpi_row)
    assert row["resolution_median_h"] == 6.0
    assert row["repeat_contact_rate"] == 0.0  # customers are known: measurable, and none
    data = d.to_json()
    assert data["unavailable_kpis"]["aht_seconds"] == d.unavailable_kpis["aht_seconds"]


def test_a_kpi_the_log_supports_stays_null_where_a_group_has_no_data() -> None:
    log = Log()
    log.case("r1", category="Replied").message(2).solve(5)
    log.case("s1", category="Silent").solve(5)
    d = diagnose(log.table())
    assert "first_response_median_h" not in d.unavailable_kpis
    assert lookup(d.kpis, "category", "Replied")["first_response_median_h"] == 2.0
    assert lookup(d.kpis, "category", "Silent")["first_response_median_h"] is None


def test_without_customer_ids_or_statuses_their_kpis_are_unavailable() -> None:
    log = Log()
    log.case("x1", customer=None).message(1).ev(2, "ticket.updated")
    log.rows = [dict(r, customer=None, status=None) for r in log.rows]
    d = diagnose(log.table())
    assert {"repeat_contact_rate", "resolution_median_h", "reopen_rate", "fcr_rate"} <= set(
        d.unavailable_kpis
    )
    assert "no customer ids" in d.unavailable_kpis["repeat_contact_rate"]
    assert "no statuses" in d.unavailable_kpis["reopen_rate"]


def test_backlog_counts_open_cases_at_the_end_of_each_day() -> None:
    log = Log()
    log.case("b1").message(1)  # never solved
    log.case("b2", start=30).solve(20)  # open on Jan 2, solved on Jan 3 at 02:00
    c = log.case("b3").solve(2)  # solved Jan 1, reopened on Jan 2, solved Jan 4
    c.status(25, "open").solve(73)
    d = diagnose(log.table())
    day = {r["backlog_day"]: r["open_cases"] for r in d.kpis[-2].rows}
    assert day == {"2024-01-01": 1, "2024-01-02": 3, "2024-01-03": 2, "2024-01-04": 1}
    week = d.kpis[-1].rows
    assert week == [{"backlog_week": "2024-W01", "open_cases": 1}]


def test_escalation_with_a_model_uses_escalation_teams() -> None:
    model = load_model_file(example_model_path()).model
    assert model is not None
    log = Log()
    log.case("e1", team="frontline").transfer(1, "vip_care").solve(5)
    log.case("e2", team="frontline").transfer(1, "billing").transfer(2, "frontline").solve(5)
    log.case("e3", team="frontline").solve(5)
    with_model = lookup(diagnose(log.table(), model=model).kpis, "overall", "all")
    without = lookup(diagnose(log.table()).kpis, "overall", "all")
    assert with_model["escalation_rate"] == pytest.approx(1 / 3)  # e1 reached the VIP desk
    assert without["escalation_rate"] == pytest.approx(1 / 3)  # e2 had two transfers


def test_repeat_contact_and_fcr() -> None:
    log = Log()
    log.clean("r1", customer="c1")  # solved at 10 h
    log.clean("r2", customer="c1", start=10 + 72)  # 3 days later: a repeat
    log.clean("r3", customer="c1", start=92 + 240)  # 10 days after r2: not a repeat
    log.clean("r4", customer="c2")
    row = lookup(diagnose(log.table()).kpis, "overall", "all")
    assert row["repeat_contact_rate"] == pytest.approx(0.25)
    assert row["fcr_rate"] == pytest.approx(0.75)  # r1 was followed by a repeat


def test_last_and_first_values_break_ties_at_one_instant_by_seq() -> None:
    # the case attributes are read by (at, seq) outside the ordered events; the rows of
    # case t2 are reversed in the table so that neither input order nor a tie on `at`
    # alone can give the right answer for both cases
    log = Log()
    for case_id in ("t1", "t2"):
        c = log.case(case_id, category="Old", channel=None)
        c.ev(1, "ticket.updated", category="Middle", channel="chat")
        c.ev(1, "ticket.updated", category="New", channel="phone")
    table = log.table()
    order = [0, 1, 2, 5, 4, 3]
    assert table.column("case_id").take(order).to_pylist() == ["t1"] * 3 + ["t2"] * 3
    result = diagnose(table.take(order))
    assert (lookup(result.kpis, "category", "New") or {}).get("cases") == 2
    assert lookup(result.kpis, "category", "Middle") is None
    assert (lookup(result.kpis, "channel", "chat") or {}).get("cases") == 2
