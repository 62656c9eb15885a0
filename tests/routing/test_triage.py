"""Triage rules: each condition kind, both modes, and what a firing leaves in the log."""

from __future__ import annotations

from typing import Any

import pytest

from opsdesk.model.schema import Triage, TriageMatch, TriageRule, TriageSet
from opsdesk.routing.triage import TriageFacts, compiled_rules, evaluate, keyword_regex
from opsdesk.store.verify import verify

from .conftest import Desk


def rule(rule_id: str, when: dict[str, Any], **set_: Any) -> TriageRule:
    return TriageRule(id=rule_id, when=TriageMatch(**when), set=TriageSet(**set_))


def facts(subject: str = "Hello", body: str = "", **kw: Any) -> TriageFacts:
    return TriageFacts(
        channel=kw.get("channel", "email"),
        customer_tier=kw.get("tier", "standard"),
        subject=subject,
        body=body,
        classification=kw.get("classification"),
    )


@pytest.mark.parametrize(
    ("keywords", "text", "hit"),
    [
        (["outage"], "There is an OUTAGE on my street", True),
        (["no power"], "We have no   power since noon", True),
        (["no power"], "No\npower at all", True),
        (["power"], "my powerwall is broken", False),
        (["heat pump"], "heat pumps are noisy", False),
        (["can't afford"], "I can't afford this bill", True),
        (["outage", "no heating"], "no heating today", True),
        (["outage"], "", False),
    ],
)
def test_keywords_match_whole_words_and_phrases_in_any_case(
    keywords: list[str], text: str, hit: bool
) -> None:
    regex = keyword_regex(keywords)
    assert regex is not None
    assert (regex.search(text) is not None) is hit


def test_keywords_look_at_subject_and_first_message() -> None:
    triage = Triage(rules=[rule("k", {"keywords": ["outage"]}, priority="urgent")])
    assert evaluate(triage, facts("Outage!")).priority == "urgent"
    assert evaluate(triage, facts("Hi", "there is an outage")).priority == "urgent"
    assert evaluate(triage, facts("Hi", "all fine")).fired == ()


def test_pattern_is_a_case_insensitive_search() -> None:
    triage = Triage(rules=[rule("p", {"pattern": r"order\s*#?\d{4,}"}, request_type="refund")])
    assert evaluate(triage, facts("Refund", "ORDER #12345 was charged twice")).request_type == (
        "refund"
    )
    assert evaluate(triage, facts("Refund", "order 12")).fired == ()


def test_channel_and_tier_match_any_listed_value() -> None:
    triage = Triage(
        rules=[
            rule("chat", {"channel": ["chat", "bot"]}, tags=["live"]),
            rule("vip", {"customer_tier": ["vip", "gold"]}, request_type="vip_request"),
        ],
        mode="all_match",
    )
    assert evaluate(triage, facts(channel="bot")).tags == ("live",)
    assert evaluate(triage, facts(channel="email")).tags == ()
    assert evaluate(triage, facts(tier="gold")).request_type == "vip_request"
    assert evaluate(triage, facts(tier="standard")).request_type is None


def test_classifier_label_needs_a_classification_at_the_confidence() -> None:
    triage = Triage(
        rules=[
            rule(
                "c",
                {"classifier_label": "billing", "min_confidence": 0.8},
                request_type="bill_explanation",
            )
        ]
    )
    assert evaluate(triage, facts()).fired == ()  # the live path has no classifier yet
    assert evaluate(triage, facts(classification=("billing", 0.79))).fired == ()
    assert evaluate(triage, facts(classification=("refund", 0.99))).fired == ()
    hit = evaluate(triage, facts(classification=("billing", 0.8)))
    assert hit.request_type == "bill_explanation"


def test_every_given_condition_must_hold() -> None:
    triage = Triage(
        rules=[
            rule(
                "both",
                {"channel": ["chat"], "keywords": ["refund"], "customer_tier": ["vip"]},
                priority="high",
            )
        ]
    )
    assert evaluate(triage, facts("refund", channel="chat", tier="vip")).priority == "high"
    assert evaluate(triage, facts("refund", channel="email", tier="vip")).fired == ()
    assert evaluate(triage, facts("hello", channel="chat", tier="vip")).fired == ()
    assert evaluate(triage, facts("refund", channel="chat", tier="gold")).fired == ()


RULES = [
    rule("a", {"keywords": ["refund"]}, request_type="refund", priority="low", tags=["money"]),
    rule("b", {"keywords": ["urgent"]}, priority="urgent", tags=["Hot", "money"]),
    rule("c", {"channel": ["chat"]}, request_type="account_access", tags=["chat"]),
]


def test_first_match_applies_only_the_first_matching_rule() -> None:
    outcome = evaluate(
        Triage(mode="first_match", rules=RULES), facts("urgent refund", channel="chat")
    )
    assert [r.id for r in outcome.fired] == ["a"]
    assert (outcome.request_type, outcome.priority, outcome.tags) == ("refund", "low", ("money",))


def test_all_match_overrides_in_order_and_accumulates_tags() -> None:
    outcome = evaluate(
        Triage(mode="all_match", rules=RULES), facts("urgent refund", channel="chat")
    )
    assert [r.id for r in outcome.fired] == ["a", "b", "c"]
    assert (outcome.request_type, outcome.request_type_rule) == ("account_access", "c")
    assert (outcome.priority, outcome.priority_rule) == ("urgent", "b")
    assert outcome.tags == ("money", "hot", "chat")


def test_a_broken_pattern_never_matches_and_rules_compile_once() -> None:
    triage = Triage(rules=[rule("bad", {"pattern": "(unclosed"}, priority="high")])
    assert evaluate(triage, facts("(unclosed")).fired == ()
    assert compiled_rules(triage) is compiled_rules(triage)


# --- through the desk ----------------------------------------------------------------


def test_rules_triage_a_new_ticket_and_each_firing_is_an_event(desk: Desk) -> None:
    vip = desk.customer(tier="vip")
    ticket = desk.ticket(
        None,
        channel="chat",
        customer_id=vip.id,
        subject="No heating since this morning",
        body="The heat pump shows E4.",
    )
    assert ticket.request_type == "vip_request"  # vip_customer comes after heating_outage
    assert ticket.owning_team == "vip_care"
    assert ticket.priority == "urgent"
    assert set(ticket.tags) == {"outage", "vip", "live_chat"}
    events = desk.events(ticket.id)
    kinds = [e.type for e in events]
    fired = [e.payload for e in events if e.type == "triage.rule_fired"]
    assert fired == [
        {"rule": "heating_outage", "request_type": "device_fault", "priority": "urgent",
         "tags": ["outage"]},
        {"rule": "vip_customer", "request_type": "vip_request", "priority": None, "tags": ["vip"]},
        {"rule": "live_chat", "request_type": None, "priority": None, "tags": ["live_chat"]},
    ]  # fmt: skip
    triaged = next(e for e in events if e.type == "ticket.triaged")
    assert (triaged.payload["request_type"], triaged.payload["rule"]) == (
        "vip_request",
        "vip_customer",
    )
    priority = next(e for e in events if e.type == "ticket.priority_changed")
    assert priority.payload["reason"] == "triage rule heating_outage"
    assert kinds.index("triage.rule_fired") < kinds.index("ticket.triaged")
    assert verify(desk.db).ok


def test_pattern_rule_reads_the_first_message(desk: Desk) -> None:
    ticket = desk.ticket(None, subject="Money back", body="Refund for order no. 88231 please")
    assert (ticket.request_type, ticket.owning_team) == ("refund", "billing")


def test_a_ticket_opened_with_a_request_type_is_not_triaged_by_rules(desk: Desk) -> None:
    ticket = desk.ticket("refund", channel="chat", subject="Outage and no power")
    assert (ticket.request_type, ticket.priority, ticket.tags) == ("refund", "normal", ())
    assert not [e for e in desk.events(ticket.id) if e.type == "triage.rule_fired"]


def test_no_matching_rule_leaves_the_ticket_untriaged(desk: Desk) -> None:
    ticket = desk.ticket(None, subject="A question", body="When do you open?")
    assert (ticket.request_type, ticket.owning_team, ticket.tags) == (None, None, ())
    assert [e.type for e in desk.events(ticket.id)] == ["ticket.created", "message.added"]


def test_first_match_mode_from_the_model(desk: Desk) -> None:
    desk.apply(lambda data: data["triage"].update(mode="first_match"))
    vip = desk.customer(tier="vip")
    ticket = desk.ticket(None, channel="chat", customer_id=vip.id, subject="Outage")
    assert (ticket.request_type, ticket.tags) == ("device_fault", ("outage",))
    fired = [e.payload["rule"] for e in desk.events(ticket.id) if e.type == "triage.rule_fired"]
    assert fired == ["heating_outage"]


def test_a_rule_setting_only_tags_leaves_the_ticket_untriaged(desk: Desk) -> None:
    ticket = desk.ticket(None, channel="chat", subject="Hi", body="Quick question")
    assert (ticket.request_type, ticket.tags) == (None, ("live_chat",))
