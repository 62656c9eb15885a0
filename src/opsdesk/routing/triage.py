"""Triage rules: the operating model sets a new ticket's request type, priority and tags.

A ticket opened without a request type is matched against ``model.triage.rules`` in
order, on its channel, the customer's tier, its subject and first message (keywords and
a regular expression) and, when a classifier has labelled it, on that label. In
``first_match`` mode the first matching rule applies; in ``all_match`` mode every
matching rule applies in order (a later rule's request type and priority override an
earlier one's, tags accumulate). Each rule that fired is recorded as
``triage.rule_fired``; the changes follow as the ordinary ticket events
(``ticket.triaged`` with the rule's id, ``ticket.priority_changed``,
``ticket.tags_changed``).

:func:`evaluate` is the pure matcher; :func:`react` is the reactor the desk runs after
every command. There is no classifier yet: the live path passes no classification, so
rules with ``classifier_label`` never fire until one exists.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from opsdesk.domain import commands as cmd
from opsdesk.domain.events import Event, TriageRuleFired, new_event
from opsdesk.model.schema import Triage, TriageRule
from opsdesk.store.uow import UnitOfWork

#: keywords and patterns look at the subject and this much of the first message, so an
#: expensive pattern cannot stall ticket creation on a huge pasted log
MAX_SCANNED_CHARS = 10_000


@dataclass(frozen=True, slots=True)
class TriageFacts:
    """What triage rules look at. ``classification`` is a classifier's
    ``(label, confidence)``, when there is one."""

    channel: str
    customer_tier: str
    subject: str
    body: str = ""
    classification: tuple[str, float] | None = None


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: TriageRule
    channels: frozenset[str]
    tiers: frozenset[str]
    keywords: re.Pattern[str] | None
    pattern: re.Pattern[str] | None
    #: the pattern did not compile (the checker refuses such a model): never matches
    broken: bool = False

    def matches(self, facts: TriageFacts, text: str) -> bool:
        """Whether every condition the rule gives holds for ``facts``."""
        when = self.rule.when
        if self.broken:
            return False
        if self.channels and facts.channel not in self.channels:
            return False
        if self.tiers and facts.customer_tier not in self.tiers:
            return False
        if self.keywords is not None and self.keywords.search(text) is None:
            return False
        if self.pattern is not None and self.pattern.search(text) is None:
            return False
        if when.classifier_label is not None:
            if facts.classification is None:
                return False
            label, confidence = facts.classification
            if label != when.classifier_label or confidence < when.min_confidence:
                return False
        return True


@dataclass(frozen=True, slots=True)
class TriageOutcome:
    """The rules that fired, in order, and the combined effect."""

    fired: tuple[TriageRule, ...] = ()
    request_type: str | None = None
    #: the rule whose request type applies (recorded on ``ticket.triaged``)
    request_type_rule: str | None = None
    priority: str | None = None
    priority_rule: str | None = None
    tags: tuple[str, ...] = ()


def keyword_regex(keywords: Sequence[str]) -> re.Pattern[str] | None:
    """One case-insensitive regex matching any keyword as a whole word or phrase.

    ``keyword_regex(["no power"]).search("We have NO  power!")`` matches;
    ``keyword_regex(["power"]).search("powerwall")`` does not.
    """
    parts = [r"\s+".join(re.escape(word) for word in k.split()) for k in keywords if k.strip()]
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


def compile_rule(rule: TriageRule) -> CompiledRule:
    when = rule.when
    pattern = None
    broken = False
    if when.pattern is not None:
        try:
            pattern = re.compile(when.pattern, re.IGNORECASE)
        except re.error:
            broken = True
    return CompiledRule(
        rule=rule,
        channels=frozenset(when.channel),
        tiers=frozenset(when.customer_tier),
        keywords=keyword_regex(when.keywords),
        pattern=pattern,
        broken=broken,
    )


# Compiled rules per model version: a loaded model is immutable and cached by the
# database per version, so its identity keys the cache (the entry keeps it alive).
_compiled: dict[int, tuple[Triage, tuple[CompiledRule, ...]]] = {}


def compiled_rules(triage: Triage) -> tuple[CompiledRule, ...]:
    """The rules of ``triage`` with their regexes compiled, once per model version."""
    entry = _compiled.get(id(triage))
    if entry is not None and entry[0] is triage:
        return entry[1]
    rules = tuple(compile_rule(rule) for rule in triage.rules)
    if len(_compiled) >= 32:
        _compiled.clear()
    _compiled[id(triage)] = (triage, rules)
    return rules


def evaluate(triage: Triage, facts: TriageFacts) -> TriageOutcome:
    """Match ``facts`` against the rules and combine what the matching ones set.

    >>> from opsdesk.model.schema import TriageMatch, TriageSet
    >>> rule = TriageRule(id="outage", when=TriageMatch(keywords=["no power"]),
    ...                   set=TriageSet(priority="urgent", tags=["outage"]))
    >>> evaluate(Triage(rules=[rule]), TriageFacts("email", "standard", "No power!")).priority
    'urgent'
    """
    text = f"{facts.subject}\n{facts.body[:MAX_SCANNED_CHARS]}"
    fired: list[TriageRule] = []
    request_type: str | None = None
    request_type_rule: str | None = None
    priority: str | None = None
    priority_rule: str | None = None
    tags: list[str] = []
    for compiled in compiled_rules(triage):
        if not compiled.matches(facts, text):
            continue
        rule = compiled.rule
        fired.append(rule)
        if rule.set.request_type is not None:
            request_type, request_type_rule = rule.set.request_type, rule.id
        if rule.set.priority is not None:
            priority, priority_rule = rule.set.priority, rule.id
        for tag in rule.set.tags:
            tag = tag.strip().lower()
            if tag and tag not in tags:
                tags.append(tag)
        if triage.mode == "first_match":
            break
    return TriageOutcome(
        fired=tuple(fired),
        request_type=request_type,
        request_type_rule=request_type_rule,
        priority=priority,
        priority_rule=priority_rule,
        tags=tuple(tags),
    )


def react(uow: UnitOfWork, events: Sequence[Event]) -> list[Event]:
    """Triage every ticket created by these events without a request type."""
    created = [e for e in events if e.type == "ticket.created" and e.ticket_id is not None]
    if not created:
        return []
    triage = uow.model.triage
    if not triage.rules:
        return []
    out: list[Event] = []
    for event in created:
        assert event.ticket_id is not None
        ticket = uow.ticket(event.ticket_id)
        if ticket.request_type is not None or ticket.status == "closed":
            continue
        facts = TriageFacts(
            channel=ticket.channel,
            customer_tier=uow.customer(ticket.customer_id).tier,
            subject=ticket.subject,
            body=_first_message(events, ticket.id),
        )
        outcome = evaluate(triage, facts)
        if outcome.fired:
            out += _apply(uow, ticket.id, outcome)
    return out


def _first_message(events: Sequence[Event], ticket_id: int) -> str:
    for e in events:
        if e.type == "message.added" and e.ticket_id == ticket_id:
            return str(e.payload["body"])
    return ""


def _apply(uow: UnitOfWork, ticket_id: int, outcome: TriageOutcome) -> list[Event]:
    ticket = uow.ticket(ticket_id)
    # rules act as the system: the customer or bot who opened the ticket holds no
    # permission, and what the model decides is not theirs to be refused
    ctx = cmd.Context(model=uow.model, now=uow.now, ids=uow)
    fired = [
        new_event(
            "triage.rule_fired",
            TriageRuleFired(
                rule=rule.id,
                request_type=rule.set.request_type,
                priority=rule.set.priority,
                tags=[t.strip().lower() for t in rule.set.tags if t.strip()],
            ),
            ticket_id=ticket.id,
            customer_id=ticket.customer_id,
        )
        for rule in outcome.fired
    ]
    out = uow.append(fired)
    if outcome.request_type is not None:
        out += uow.append(
            cmd.triage_ticket(ctx, ticket, outcome.request_type, rule=outcome.request_type_rule)
        )
    if outcome.priority is not None:
        out += uow.append(
            cmd.change_priority(
                ctx, ticket, outcome.priority, reason=f"triage rule {outcome.priority_rule}"
            )
        )
    if outcome.tags:
        out += uow.append(cmd.change_tags(ctx, ticket, add=outcome.tags))
    return out
