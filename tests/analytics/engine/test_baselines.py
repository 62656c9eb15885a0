"""Which cases a finding is priced against (docs/diagnostic.md, "Baselines")."""

from __future__ import annotations

from opsdesk.analytics.engine import diagnose
from opsdesk.analytics.results import Diagnosis, Finding

from .builder import Log


def found(d: Diagnosis, kind: str) -> dict[str, Finding]:
    return {f.segment: f for f in d.findings if f.kind == kind}


def billing_and_shipping() -> Log:
    """Billing: 6 of 6 cases ping-pong, each open 20 days. Shipping: 10 clean cases of
    10 h and 5 that ping-pong and take 13 h, 15 extra hours in all."""
    log = Log()
    for i in range(6):
        bill = log.case(f"bill{i}", category="Billing")
        bill.transfer(1, "B", "b1").transfer(2, "A", "a1").solve(20 * 24)
    for i in range(10):
        log.clean(f"ship-ok{i}", category="Shipping")
    for i in range(5):
        log.case(f"ship-pp{i}", category="Shipping").transfer(1, "B", "b1").transfer(
            2, "A", "a1"
        ).solve(13)
    return log


def test_a_segment_where_every_case_is_affected_is_priced_against_the_whole_log() -> None:
    d = diagnose(billing_and_shipping().table())
    pp = found(d, "ping_pong")
    billing, shipping = pp["category=Billing"], pp["category=Shipping"]
    assert (billing.cases, billing.share) == (6, 1.0)
    # no unaffected Billing case: the 10 unaffected Shipping cases (10 h, 3 touches)
    assert billing.baseline == "whole_log"
    assert billing.details["baseline_cases"] == 10
    assert billing.extra_hours == 6 * (20 * 24 - 10)
    assert billing.extra_touches == 6 * 1.0  # 4 touches against 3
    assert shipping.baseline == "same_category"
    assert shipping.details["baseline_cases"] == 10
    assert (shipping.extra_hours, shipping.extra_touches) == (15.0, 5.0)
    ranked = [(f.kind, f.segment) for f in d.findings]
    assert ranked.index(("ping_pong", "category=Billing")) < ranked.index(
        ("ping_pong", "category=Shipping")
    )
    assert d.findings[0] is billing
    assert "whole log" in billing.baseline_text and "Billing" in billing.baseline_text
    assert d.fix_first[0].startswith("Stop the ping-pong between A and B on Billing: 6 cases")
    assert "(against similar cases elsewhere in the log)" in d.fix_first[0]


def test_enough_unaffected_cases_of_the_segment_keep_the_segment_baseline() -> None:
    log = billing_and_shipping()
    for i in range(5):  # Billing now has 5 unaffected cases of 30 h: its own baseline
        log.clean(f"bill-ok{i}", hours=30, category="Billing")
    billing = found(diagnose(log.table()), "ping_pong")["category=Billing"]
    assert billing.baseline == "same_category"
    assert billing.details["baseline_cases"] == 5
    assert billing.extra_hours == 6 * (20 * 24 - 30)
    assert "of Billing" in billing.baseline_text


def test_one_unaffected_case_is_not_enough_of_a_baseline() -> None:
    log = billing_and_shipping()
    log.clean("bill-ok", hours=470, category="Billing")  # one slow case would hide it all
    billing = found(diagnose(log.table()), "ping_pong")["category=Billing"]
    assert billing.baseline == "whole_log"
    assert billing.details["baseline_cases"] == 11  # 10 Shipping + 1 Billing, median 10 h
    assert billing.extra_hours == 6 * (20 * 24 - 10)
    assert "only 1 case in Billing is without it (fewer than 5)" in billing.baseline_text


def test_the_same_priority_is_compared_when_it_has_enough_cases() -> None:
    log = Log()
    for i in range(5):
        log.clean(f"urgent-ok{i}", hours=2, category="Billing", priority="urgent")
        log.clean(f"normal-ok{i}", hours=40, category="Billing")
    for i in range(5):
        c = log.case(f"urgent-pp{i}", category="Billing", priority="urgent")
        c.transfer(1, "B").transfer(1.5, "A").solve(6)
    c = log.case("low-pp", category="Billing", priority="low")  # no low baseline: all 10
    c.transfer(1, "B").transfer(2, "A").solve(30)
    f = found(diagnose(log.table()), "ping_pong")["category=Billing"]
    assert f.baseline == "same_category" and f.details["baseline_cases"] == 10
    # urgent against the urgent median (2 h); low against the category's (median of
    # five 2 h and five 40 h cases: 21 h)
    assert f.extra_hours == 5 * (6 - 2) + (30 - 21)


def test_when_every_case_of_the_log_has_the_pattern_nothing_is_priced() -> None:
    log = Log()
    for i in range(6):
        c = log.case(f"pp{i}", category="Billing")
        c.transfer(1, "B", "b1").transfer(2, "A", "a1").solve(100)
    d = diagnose(log.table())
    assert [f.kind for f in d.findings] == ["ping_pong"]
    f = found(d, "ping_pong")["category=Billing"]
    assert (f.cases, f.baseline, f.extra_hours, f.extra_touches) == (6, "none", 0.0, 0.0)
    assert f.details["baseline_cases"] == 0
    assert f.baseline_text.startswith("not priced: fewer than 5 cases in the whole log")
    assert d.fix_first[0] == (
        "Stop the ping-pong between A and B on Billing: 6 cases (100%) bounced back, not "
        "priced, as almost no case in the log is without it; give that category one owner "
        "and a transfer checklist."
    )


def test_baselines_of_other_kinds_are_named() -> None:
    log = Log()
    for i in range(6):
        log.clean(f"a{i}", category="RC", customer="c1", start=20 * i)
    for i in range(5):
        log.case(f"gap{i}", category="GP", team="G").status(1, "on_hold").status(6, "open").solve(9)
    d = diagnose(log.table())
    repeat = found(d, "repeat_contact")["category=RC"]
    assert (repeat.cases, repeat.baseline) == (5, "repeat_case")
    assert repeat.hours_unit == "elapsed hours of the repeat cases"
    assert "baseline_cases" not in repeat.details
    gap = found(d, "ownership_gap")["team=G"]
    assert (gap.baseline, gap.hours_unit) == ("gap_time", "hours with no owner or on hold")
    assert gap.baseline_text.startswith("as the time itself")
    data = d.to_json()
    assert {f["baseline"] for f in data["findings"]} == {"repeat_case", "gap_time"}
    assert set(data["units"]) == {"extra_hours", "extra_touches", "cost"}


def test_the_whole_log_baseline_also_compares_the_same_priority() -> None:
    log = Log()
    for i in range(5):
        log.clean(f"urgent-ok{i}", hours=2, category="Shipping", priority="urgent")
        log.clean(f"normal-ok{i}", hours=40, category="Shipping")
    for i in range(5):
        c = log.case(f"bill{i}", category="Billing", priority="urgent")
        c.transfer(1, "B").transfer(1.5, "A").solve(6)
    c = log.case("bill-low", category="Billing", priority="low")  # no low case elsewhere
    c.transfer(1, "B").transfer(2, "A").solve(30)
    f = found(diagnose(log.table()), "ping_pong")["category=Billing"]
    assert (f.baseline, f.details["baseline_cases"]) == ("whole_log", 10)
    assert f.extra_hours == 5 * (6 - 2) + (30 - 21)
