"""What a log cannot measure is said, not guessed: unmeasurable finding kinds and
findings on logs without categories (docs/diagnostic.md)."""

from __future__ import annotations

from opsdesk.analytics.engine import diagnose
from opsdesk.analytics.results import Diagnosis, Finding
from opsdesk.model import example_model_path, load_model_file

from .builder import Log


def found(d: Diagnosis, kind: str) -> dict[str, Finding]:
    return {f.segment: f for f in d.findings if f.kind == kind}


def silent_pending(customer_replies: bool) -> Log:
    """Five cases set to pending and taken back with no customer reply, five clean;
    with ``customer_replies``, one more case where the customer does answer."""
    log = Log()
    for i in range(5):
        log.clean(f"ok{i}", category="PD")
        c = log.case(f"silent{i}", category="PD").message(1).status(1.5, "pending")
        c.status(5, "open").solve(14)
    if customer_replies:
        c = log.case("replied", category="PD").message(1).status(1.5, "pending")
        c.message(3, actor="customer").status(3.1, "open").solve(10)
    return log


def test_pending_misuse_is_not_measurable_without_customer_messages() -> None:
    d = diagnose(silent_pending(customer_replies=False).table())
    assert found(d, "pending_misuse") == {}
    assert "no customer messages" in d.not_measurable["pending_misuse"]
    assert d.to_json()["not_measurable"]["pending_misuse"] == d.not_measurable["pending_misuse"]
    # the same log where customers do write: the silent periods are findings
    d = diagnose(silent_pending(customer_replies=True).table())
    assert "pending_misuse" not in d.not_measurable
    assert found(d, "pending_misuse")["category=PD"].cases == 5


def test_path_deviation_and_exceptions_need_what_they_compare() -> None:
    log = silent_pending(customer_replies=True)
    d = diagnose(log.table())
    assert "--model" in d.not_measurable["path_deviation"]
    assert "exception.requested" in d.not_measurable["exception_heavy"]
    model = load_model_file(example_model_path()).model
    d = diagnose(log.table(), model=model)
    assert "no event carries a step" in d.not_measurable["path_deviation"]
    log.case("steps", category="refund").step(1, "verify identity").solve(2)
    log.case("exc", category="PD").exception(1).solve(2)
    d = diagnose(log.table(), model=model)
    assert "path_deviation" not in d.not_measurable
    assert "exception_heavy" not in d.not_measurable


def test_an_empty_log_claims_nothing() -> None:
    d = diagnose(Log().table())
    assert d.not_measurable == {} and d.unavailable_kpis == {}


def ping_pong_log(category: str | None, n: int = 5) -> Log:
    log = Log()
    for i in range(n):
        log.clean(f"ok{i}", category=category)
        c = log.case(f"pp{i}", category=category)
        c.transfer(1, "B", "b1").transfer(2, "A", "a1").solve(30)
    return log


def test_a_finding_on_a_log_without_categories_reads_naturally() -> None:
    d = diagnose(ping_pong_log(None).table())
    f = found(d, "ping_pong")["category=(none)"]
    assert f.where == "all cases"
    assert f.explanation.startswith("Cases went back to a team they had already left")
    assert d.fix_first[0].startswith("Stop the ping-pong between A and B: 5 cases (50%)")
    assert "give these cases one owner" in d.fix_first[0]
    assert f.baseline_text.startswith("against the unaffected cases of the log (5 cases")
    for text in (f.explanation, f.baseline_text, *d.fix_first):
        assert "(none)" not in text and " on " not in text.split(":")[0]


def test_cases_without_a_category_beside_categorised_ones_are_named_so() -> None:
    log = ping_pong_log(None)
    log.clean("billing", category="Billing")
    d = diagnose(log.table())
    f = found(d, "ping_pong")["category=(none)"]
    assert f.where == "cases without a category"
    assert f.explanation.startswith("Cases without a category went back")
    assert d.fix_first[0].startswith(
        "Stop the ping-pong between A and B on cases without a category: 5 cases"
    )


def test_a_whole_log_baseline_for_cases_without_a_category_reads_naturally() -> None:
    log = Log()
    for i in range(5):
        log.clean(f"ok{i}", category="Billing")
        c = log.case(f"pp{i}", category=None)
        c.transfer(1, "B", "b1").transfer(2, "A", "a1").solve(30)
    f = found(diagnose(log.table()), "ping_pong")["category=(none)"]
    assert f.baseline == "whole_log"
    assert f.baseline_text.endswith("since every case without a category has the pattern")
