"""Friction findings on small logs with known answers (see docs/diagnostic.md)."""

from __future__ import annotations

import pytest

from opsdesk.analytics.engine import diagnose
from opsdesk.analytics.results import Diagnosis, Finding
from opsdesk.model import OperatingModel, example_model_path, load_model_file

from .builder import Log


def found(d: Diagnosis, kind: str) -> dict[str, Finding]:
    return {f.segment: f for f in d.findings if f.kind == kind}


def baseline(log: Log, category: str, n: int = 3, **kw: object) -> None:
    for i in range(n):
        log.clean(f"{category}-clean{i}", category=category, **kw)


@pytest.fixture(scope="module")
def model() -> OperatingModel:
    loaded = load_model_file(example_model_path()).model
    assert loaded is not None
    return loaded


def test_ping_pong() -> None:
    log = Log()
    baseline(log, "PP")
    log.case("pp", category="PP").transfer(1, "B", "b1").transfer(2, "A", "a1").solve(30)
    # A -> B -> C -> A is not X -> Y -> X
    log.case("loop", category="PP").transfer(1, "B").transfer(2, "C").transfer(3, "A").solve(10)
    d = diagnose(log.table(), min_cases=1)
    f = found(d, "ping_pong")["category=PP"]
    assert (f.cases, f.share, f.extra_hours, f.extra_touches) == (1, 0.2, 20.0, 1.0)
    assert f.examples == ["pp"]
    assert f.details["top_value"] == "A <-> B"
    assert {"from_team": "A", "to_team": "B", "count": 2} in d.handoffs


def test_handoff_chain() -> None:
    log = Log()
    baseline(log, "CH")
    log.case("chain", category="CH").transfer(1, "B").transfer(2, "C").solve(16)
    log.case("two", category="CH").transfer(1, "B").transfer(2, "A").solve(10)
    f = found(diagnose(log.table(), min_cases=1), "handoff_chain")["category=CH"]
    assert (f.cases, f.extra_hours, f.extra_touches, f.examples) == (1, 6.0, 1.0, ["chain"])
    assert f.share == pytest.approx(1 / 5)


def test_rework_reopen_counts_until_the_final_solve() -> None:
    log = Log()
    baseline(log, "RW")
    log.case("re", category="RW").message(1).solve(10).status(12, "open").solve(20)
    f = found(diagnose(log.table(), min_cases=1), "rework")["category=RW"]
    assert (f.cases, f.extra_hours, f.extra_touches) == (1, 10.0, 2.0)
    assert f.details["top_value"] == "reopened"


def test_repeat_contact_is_priced_whole() -> None:
    log = Log()
    log.clean("r1", category="RC", customer="c1")
    log.clean("r2", category="RC", customer="c1", start=10 + 72)  # 3 days after r1
    log.clean("r3", category="RC", customer="c1", start=92 + 240)  # 10 days after r2
    log.clean("r4", category="RC", customer="c2")
    log.clean("other", category="Other", customer="c1", start=15)  # other category
    f = found(diagnose(log.table(), min_cases=1), "repeat_contact")["category=RC"]
    assert (f.cases, f.share, f.extra_hours, f.extra_touches) == (1, 0.25, 10.0, 3.0)
    assert f.examples == ["r2"]


def test_repeat_contact_window_is_a_parameter() -> None:
    log = Log()
    log.clean("r1", category="RC", customer="c1")
    log.clean("r2", category="RC", customer="c1", start=10 + 72)
    d = diagnose(log.table(), min_cases=1, repeat_window_days=2)
    assert found(d, "repeat_contact") == {}


def test_ownership_gaps_per_team() -> None:
    log = Log()
    baseline(log, "GP", n=2, team="G")
    log.case("hold", category="GP", team="G").status(1, "on_hold").status(6, "open").solve(10)
    c = log.case("orphan", category="GP", team="G").transfer(2, "H", None)
    c.ev(5, "ticket.accepted", agent="h1").solve(10)
    log.case("untriaged", category="GP", team=None, agent=None).ev(
        2, "ticket.triaged", team="G"
    ).ev(3, "ticket.accepted", agent="g9").solve(10)
    # pending is waiting on the customer, not an ownership gap
    log.case("pend", category="GP", team="G").status(1, "pending").status(4, "open").solve(10)
    gaps = found(diagnose(log.table(), min_cases=1), "ownership_gap")
    assert set(gaps) == {"team=G", "team=H", "team=(no team)"}
    g, h, none = gaps["team=G"], gaps["team=H"], gaps["team=(no team)"]
    assert (g.cases, g.extra_hours, g.extra_touches, g.examples) == (1, 5.0, 0.0, ["hold"])
    assert g.share == pytest.approx(1 / 6)  # six cases were owned by G at some point
    assert g.details["top"] == [{"value": "on hold", "cases": 1}]
    assert (h.cases, h.share, h.extra_hours) == (1, 1.0, 3.0)
    assert h.details["top_value"] == "no owning agent"
    # before triage nobody owns the case; waiting for the first agent is queue time
    assert (none.cases, none.extra_hours, none.examples) == (1, 2.0, ["untriaged"])
    assert none.details["top_value"] == "no owning team"


def test_pending_without_customer_reply() -> None:
    log = Log()
    baseline(log, "PD")
    log.case("silent", category="PD").message(1).status(1.5, "pending").status(5, "open").solve(14)
    c = log.case("replied", category="PD").message(1).status(1.5, "pending")
    c.message(3, actor="customer").status(3.1, "open").solve(10)
    c = log.case("reply-reopens", category="PD").message(1).status(1.5, "pending")
    c.ev(4, "message.added", actor_kind="customer", status="open").solve(10)
    log.case("auto-solved", category="PD").message(1).status(2, "pending").solve(8)
    f = found(diagnose(log.table(), min_cases=1), "pending_misuse")["category=PD"]
    assert (f.cases, f.examples) == (1, ["silent"])
    assert f.extra_hours == 4.0  # baseline median 10 h
    assert f.extra_touches == 1.5  # 5 touches against a median of 3.5
    assert f.details["rule"] == "silent_pending"


def test_pending_share_outlier_agent() -> None:
    log = Log()
    for i in range(2):
        log.clean(f"x{i}", category="AG", agent="x")
    log.clean("y0", category="AG", agent="y")
    c = log.case("y1", category="AG", agent="y").status(1, "pending")
    c.message(1.5, actor="customer").status(2, "open").solve(10)
    for i in range(2):
        c = log.case(f"z{i}", category="AG", agent="z").status(1, "pending")
        c.message(3, actor="customer").status(4, "open").solve(10)
    d = diagnose(log.table(), min_cases=2)
    agents = {s: f for s, f in found(d, "pending_misuse").items() if s.startswith("agent=")}
    assert list(agents) == ["agent=z"]
    f = agents["agent=z"]
    # median share 1 h / 20 h = 0.05; per case 3 h - 0.05 x 10 h = 2.5 h
    assert (f.cases, f.share, f.extra_hours, f.extra_touches) == (2, 1.0, 5.0, 0.0)
    assert f.details["rule"] == "agent_outlier"
    assert f.explanation.startswith("z keeps cases in pending")


def test_key_person() -> None:
    log = Log()
    for i in range(6):
        log.clean(f"k{i}", hours=12, category="KP", agent="kim")
    for i in range(4):
        log.clean(f"o{i}", category="KP")
    for i in range(5):  # half is not more than half
        log.clean(f"h{i}", category="Half", agent="hal")
        log.clean(f"j{i}", category="Half")
    d = diagnose(log.table())
    people = found(d, "key_person")
    assert list(people) == ["category=KP"]
    f = people["category=KP"]
    assert (f.cases, f.share, f.extra_hours) == (6, 0.6, 12.0)
    assert f.details["top_value"] == "kim"
    assert f.examples == ["k0", "k1", "k2", "k3", "k4"]  # equal cost: by case id


def test_exception_heavy() -> None:
    log = Log()
    for i in range(5):
        log.case(f"ex{i}", category="EX").message(1).exception(2).solve(14)
        log.clean(f"ok{i}", category="EX")
    log.case("ot-ex", category="OT").message(1).exception(2).solve(10)
    for i in range(19):
        log.clean(f"ot{i}", category="OT")
    heavy = found(diagnose(log.table()), "exception_heavy")
    assert list(heavy) == ["category=EX"]
    f = heavy["category=EX"]
    assert (f.cases, f.share, f.extra_hours, f.extra_touches) == (5, 0.5, 20.0, 5.0)
    assert f.details["exception_rate"] == 0.5
    assert f.details["rest_exception_rate"] == pytest.approx(0.05)


def test_path_deviation_and_repeated_steps(model: OperatingModel) -> None:
    steps = model.request_type("refund").steps
    log = Log()
    for i in range(3):
        c = log.case(f"ok{i}", category="refund", team="billing")
        for n, step in enumerate(steps, start=1):
            c.step(n, step)
        c.solve(10)
    c = log.case("swapped", category="refund", team="billing")
    for n, step in enumerate([steps[1], steps[0], *steps[2:]], start=1):
        c.step(n, step)
    c.solve(12)
    c = log.case("extra", category="refund", team="billing")
    for n, step in enumerate([*steps[:2], "call the bank", *steps[2:]], start=1):
        c.step(n, step)
    c.solve(20)
    c = log.case("twice", category="refund", team="billing")
    for n, step in enumerate([steps[0], *steps], start=1):
        c.step(n, step.upper())  # names compare case-insensitively
    c.solve(10)
    with_model = diagnose(log.table(), model=model, min_cases=1)
    f = found(with_model, "path_deviation")["category=refund"]
    assert (f.cases, f.extra_hours, f.examples) == (2, 12.0, ["extra", "swapped"])
    assert f.share == pytest.approx(2 / 6)
    assert {d["value"] for d in f.details["top"]} == {"step not on the path", "steps out of order"}
    rework = found(with_model, "rework")["category=refund"]
    assert (rework.cases, rework.examples) == (1, ["twice"])
    assert found(diagnose(log.table(), min_cases=1), "path_deviation") == {}


def test_min_cases_hides_small_findings() -> None:
    log = Log()
    baseline(log, "PP")
    for i in range(4):
        log.case(f"pp{i}", category="PP").transfer(1, "B").transfer(2, "A").solve(20)
    assert found(diagnose(log.table()), "ping_pong") == {}
    log.case("pp4", category="PP").transfer(1, "B").transfer(2, "A").solve(20)
    assert found(diagnose(log.table()), "ping_pong")["category=PP"].cases == 5


def test_examples_are_the_costliest_and_ranking_follows_cost() -> None:
    log = Log()
    baseline(log, "PP")
    for i, hours in enumerate([20, 50, 30]):
        log.case(f"pp{i}", category="PP").transfer(1, "B", "b1").transfer(2, "A", "a1").solve(hours)
    baseline(log, "CH")
    log.case("chain", category="CH").transfer(1, "B", "b1").transfer(2, "C", "c1").solve(16)
    baseline(log, "RW")
    log.case("re", category="RW").message(1).solve(10).status(12, "open").solve(30)
    d = diagnose(log.table(), min_cases=1, examples=2)
    pp = found(d, "ping_pong")["category=PP"]
    assert pp.examples == ["pp1", "pp2"]
    assert pp.extra_hours == 10 + 40 + 20
    costs = [f.cost for f in d.findings]
    assert costs == sorted(costs, reverse=True)
    assert [(f.kind, f.segment) for f in d.findings[:3]] == [
        ("ping_pong", "category=PP"),
        ("rework", "category=RW"),
        ("handoff_chain", "category=CH"),
    ]
    assert len(d.fix_first) == 3
    assert d.fix_first[0] == (
        "Stop the ping-pong between A and B on PP: 3 cases (50%) bounced back, costing "
        "70 extra elapsed hours; give that category one owner and a transfer checklist."
    )
    assert d.fix_first[1].startswith("Cut the rework on RW: 1 case (25%)")
    assert d.fix_first[2].startswith("Shorten the hand-off chain on CH: 1 case (25%)")
