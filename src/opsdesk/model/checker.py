"""Semantic checks of an operating model: references, ownership, loops, calendars.

Pydantic checks the shape; this module checks the meaning, and reports every problem
at once with the position of the offending field so ``opsdesk model check`` reads like
a compiler.
"""

from __future__ import annotations

import itertools
import re
import zoneinfo
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import holidays

from opsdesk.model.loader import MAX_MODEL_BYTES, LoadResult, PathKey, Problem, load_model_file
from opsdesk.model.schema import (
    Calendar,
    EscalationPath,
    OperatingModel,
    RequestType,
    SlaPolicy,
    Team,
    TriageRule,
    parse_clock,
)
from opsdesk.model.vocabulary import CHANNELS, CUSTOMER_TIERS, PERMISSIONS, PRIORITIES

_DURATION_FIELDS = ("first_reply", "next_reply", "periodic_update", "resolution")


@cache
def _holiday_countries() -> dict[str, tuple[str, ...]]:
    # The catalogue is built by importing every country module: do it once per process.
    return {
        code: tuple(subdivisions)
        for code, subdivisions in holidays.list_supported_countries().items()
    }


@cache
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone_exists(name: str) -> bool:
    if name in _known_timezones():
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


class _Checker:
    """Collects problems for one loaded model."""

    def __init__(self, result: LoadResult, model: OperatingModel) -> None:
        self.result = result
        self.model = model
        self.problems: list[Problem] = []
        self.team_ids = {t.id for t in model.teams}
        self.role_ids = {r.id for r in model.roles}
        self.calendar_ids = {c.id for c in model.calendars}
        self.policy_ids = {p.id for p in model.sla_policies}
        self.path_ids = {p.id for p in model.escalation_paths}
        self.request_type_ids = {r.id for r in model.request_types}

    def error(self, message: str, path: PathKey, code: str, *, key: bool = False) -> None:
        self.problems.append(self.result.problem("error", message, path, code=code, key=key))

    def warning(self, message: str, path: PathKey, code: str, *, key: bool = False) -> None:
        self.problems.append(self.result.problem("warning", message, path, code=code, key=key))

    def unknown(self, kind: str, value: str, path: PathKey, known: Iterable[str]) -> None:
        choices = ", ".join(sorted(known)) or "none declared"
        self.error(f"unknown {kind} '{value}' (known: {choices})", path, "unknown-reference")

    def run(self) -> list[Problem]:
        self.check_duplicates()
        self.check_teams()
        self.check_roles()
        self.check_calendars()
        self.check_sla_policies()
        self.check_escalation_paths()
        self.check_request_types()
        self.check_exception_types()
        self.check_triage()
        self.check_settings()
        return self.problems

    def check_duplicates(self) -> None:
        sections: dict[str, Sequence[str]] = {
            "teams": [t.id for t in self.model.teams],
            "roles": [r.id for r in self.model.roles],
            "calendars": [c.id for c in self.model.calendars],
            "sla_policies": [p.id for p in self.model.sla_policies],
            "escalation_paths": [p.id for p in self.model.escalation_paths],
            "request_types": [r.id for r in self.model.request_types],
            "exception_types": [e.id for e in self.model.exception_types],
        }
        for section, ids in sections.items():
            seen: set[str] = set()
            for index, item_id in enumerate(ids):
                if item_id in seen:
                    self.error(
                        f"duplicate id '{item_id}' in {section}",
                        (section, index, "id"),
                        "duplicate-id",
                    )
                seen.add(item_id)
        seen_skills: set[str] = set()
        for index, skill in enumerate(self.model.skills):
            if skill in seen_skills:
                self.error(f"duplicate skill '{skill}'", ("skills", index), "duplicate-id")
            seen_skills.add(skill)

    def check_teams(self) -> None:
        owners = {rt.owner_team for rt in self.model.request_types}
        for index, team in enumerate(self.model.teams):
            base: PathKey = ("teams", index)
            if team.lead_role is not None and team.lead_role not in self.role_ids:
                if (*base, "lead_role") in self.result.positions:
                    self.unknown("role", team.lead_role, (*base, "lead_role"), self.role_ids)
                else:
                    self.error(
                        f"team '{team.id}' uses the default lead_role '{team.lead_role}', "
                        "which is not a role: add that role or set lead_role",
                        base,
                        "unknown-reference",
                    )
            if team.secondary_team is not None:
                if team.secondary_team not in self.team_ids:
                    self.unknown(
                        "team", team.secondary_team, (*base, "secondary_team"), self.team_ids
                    )
                elif team.secondary_team == team.id:
                    self.error(
                        f"team '{team.id}' is its own secondary team",
                        (*base, "secondary_team"),
                        "self-reference",
                    )
            if team.id not in owners:
                self.warning(
                    f"team '{team.id}' owns no request type; give it one or remove it",
                    (*base, "id"),
                    "unused-team",
                )
            self.check_team_routing(team, base)

    def check_team_routing(self, team: Team, base: PathKey) -> None:
        routing = team.routing
        where: PathKey = (*base, "routing")
        if routing.max_open_per_agent < 1:
            self.error(
                f"max_open_per_agent of team '{team.id}' must be at least 1",
                (*where, "max_open_per_agent"),
                "routing",
            )
        for channel, cap in routing.max_per_channel.items():
            if channel not in CHANNELS:
                self.error(
                    f"unknown channel '{channel}' (use one of {', '.join(CHANNELS)})",
                    (*where, "max_per_channel", channel),
                    "unknown-channel",
                    key=True,
                )
            elif cap < 1:
                self.error(
                    f"the {channel} cap of team '{team.id}' must be at least 1; route that "
                    "channel's requests to another team instead",
                    (*where, "max_per_channel", channel),
                    "routing",
                )
        if routing.overflow_after is not None:
            if routing.overflow_after <= 0:
                self.error(
                    f"zero or negative overflow_after for team '{team.id}'",
                    (*where, "overflow_after"),
                    "non-positive-duration",
                )
            if team.secondary_team is None:
                self.error(
                    f"team '{team.id}' has overflow_after but no secondary_team to overflow to",
                    (*where, "overflow_after"),
                    "routing",
                )
        if routing.calendar is not None and routing.calendar not in self.calendar_ids:
            self.unknown("calendar", routing.calendar, (*where, "calendar"), self.calendar_ids)

    def check_roles(self) -> None:
        for index, role in enumerate(self.model.roles):
            for p_index, permission in enumerate(role.permissions):
                if permission not in PERMISSIONS:
                    self.warning(
                        f"unknown permission '{permission}' in role '{role.id}'",
                        ("roles", index, "permissions", p_index),
                        "unknown-permission",
                    )

    def check_calendars(self) -> None:
        for index, calendar in enumerate(self.model.calendars):
            base: PathKey = ("calendars", index)
            if not _timezone_exists(calendar.timezone):
                self.error(
                    f"unknown time zone '{calendar.timezone}' (use an IANA name such as "
                    "'Europe/London')",
                    (*base, "timezone"),
                    "unknown-timezone",
                )
            self.check_hours(calendar, base)
            if calendar.holidays is not None:
                countries = _holiday_countries()
                country = calendar.holidays.country
                if country not in countries:
                    self.error(
                        f"unknown holiday country '{country}' (use an ISO 3166 code such as 'GB')",
                        (*base, "holidays", "country"),
                        "unknown-holiday-country",
                    )
                elif (
                    calendar.holidays.subdivision is not None
                    and calendar.holidays.subdivision not in countries[country]
                ):
                    known = ", ".join(countries[country]) or "none"
                    self.error(
                        f"unknown subdivision '{calendar.holidays.subdivision}' for {country} "
                        f"(known: {known})",
                        (*base, "holidays", "subdivision"),
                        "unknown-holiday-country",
                    )

    def check_hours(self, calendar: Calendar, base: PathKey) -> None:
        if not any(calendar.hours.values()):
            self.error(
                f"calendar '{calendar.id}' has no working hours",
                (*base, "hours"),
                "no-working-hours",
            )
            return
        for day, pairs in calendar.hours.items():
            spans: list[tuple[int, int, int]] = []
            for p_index, (start_text, end_text) in enumerate(pairs):
                start = self.clock(start_text, (*base, "hours", day, p_index, 0), is_start=True)
                end = self.clock(end_text, (*base, "hours", day, p_index, 1), is_start=False)
                if start is None or end is None:
                    continue
                if start == end:
                    self.error(
                        f"empty working interval {start_text}-{end_text} on {day}",
                        (*base, "hours", day, p_index),
                        "malformed-hours",
                    )
                    continue
                spans.append((start, end if end > start else end + 1440, p_index))
            spans.sort()
            for (_, prev_end, _), (start, _, p_index) in itertools.pairwise(spans):
                if start < prev_end:
                    self.error(
                        f"overlapping working intervals on {day}",
                        (*base, "hours", day, p_index),
                        "malformed-hours",
                    )

    def clock(self, text: str, path: PathKey, *, is_start: bool) -> int | None:
        try:
            minutes = parse_clock(text)
        except ValueError as exc:
            self.error(str(exc), path, "malformed-hours")
            return None
        if is_start and minutes == 1440:
            self.error("a working interval cannot start at 24:00", path, "malformed-hours")
            return None
        return minutes

    def check_sla_policies(self) -> None:
        for index, policy in enumerate(self.model.sla_policies):
            base: PathKey = ("sla_policies", index)
            if policy.calendar is not None and policy.calendar not in self.calendar_ids:
                self.unknown("calendar", policy.calendar, (*base, "calendar"), self.calendar_ids)
            if not 0 < policy.warning_share < 1:
                self.error(
                    f"warning_share must be between 0 and 1 exclusive (got {policy.warning_share})",
                    (*base, "warning_share"),
                    "warning-share",
                )
            self.check_targets(policy, base)

    def check_targets(self, policy: SlaPolicy, base: PathKey) -> None:
        for priority, target in policy.targets.items():
            where: PathKey = (*base, "targets", priority)
            if priority not in PRIORITIES:
                self.error(
                    f"unknown priority '{priority}' (use one of {', '.join(PRIORITIES)})",
                    where,
                    "unknown-priority",
                    key=True,
                )
            for name in _DURATION_FIELDS:
                value = getattr(target, name)
                if value is not None and value <= 0:
                    self.error(
                        f"zero or negative SLA target {name} for {priority} in '{policy.id}'",
                        (*where, name),
                        "non-positive-duration",
                    )
        missing = [p for p in PRIORITIES if p not in policy.targets]
        if missing:
            self.warning(
                f"SLA policy '{policy.id}' has no target for priority {', '.join(missing)}",
                (*base, "targets"),
                "missing-sla-target",
                key=True,
            )

    def check_escalation_paths(self) -> None:
        by_id = {p.id: p for p in self.model.escalation_paths}
        for index, path in enumerate(self.model.escalation_paths):
            base: PathKey = ("escalation_paths", index)
            if path.then is not None:
                if path.then not in by_id:
                    self.unknown("escalation path", path.then, (*base, "then"), by_id)
                elif _then_cycle(path.id, by_id):
                    self.error(
                        f"escalation path '{path.id}' loops: following 'then' "
                        f"({' -> '.join(_then_cycle(path.id, by_id))}) comes back to it",
                        (*base, "then"),
                        "escalation-loop",
                    )
            if not path.levels:
                self.warning(f"escalation path '{path.id}' has no levels", base, "empty-path")
            names: set[str] = set()
            for l_index, level in enumerate(path.levels):
                lbase: PathKey = (*base, "levels", l_index)
                if level.name in names:
                    self.error(
                        f"escalation path '{path.id}' has two levels named '{level.name}'; "
                        "a ticket remembers the levels that fired by name, so name each "
                        "level differently",
                        (*lbase, "name"),
                        "duplicate-level",
                    )
                names.add(level.name)
                if level.when.priority is not None and level.when.priority not in PRIORITIES:
                    self.error(
                        f"unknown priority '{level.when.priority}' "
                        f"(use one of {', '.join(PRIORITIES)})",
                        (*lbase, "when", "priority"),
                        "unknown-priority",
                    )
                tier = level.when.customer_tier
                if tier is not None and tier not in CUSTOMER_TIERS:
                    self.error(
                        f"unknown customer tier '{tier}' (use one of {', '.join(CUSTOMER_TIERS)})",
                        (*lbase, "when", "customer_tier"),
                        "unknown-tier",
                    )
                if not level.actions:
                    self.warning(
                        f"escalation level '{level.name}' has no actions",
                        (*lbase, "actions"),
                        "empty-level",
                    )
                for a_index, action in enumerate(level.actions):
                    abase: PathKey = (*lbase, "actions", a_index)
                    if action.notify_role is not None and action.notify_role not in self.role_ids:
                        self.unknown(
                            "role", action.notify_role, (*abase, "notify_role"), self.role_ids
                        )
                    team = action.transfer_to_team
                    if team is not None and team not in self.team_ids:
                        self.unknown("team", team, (*abase, "transfer_to_team"), self.team_ids)
        self.check_escalation_chains(by_id)
        self.check_levels_can_fire(by_id)

    def check_escalation_chains(self, by_id: dict[str, EscalationPath]) -> None:
        """Transfers that could move a ticket back to a team it left, anywhere along a
        ``then`` chain. Levels fire in any order, so two levels sending tickets to one
        team and a level sending them elsewhere can make A -> B -> A."""
        index_of = {p.id: i for i, p in enumerate(self.model.escalation_paths)}
        reported: set[PathKey] = set()
        for head in self.model.escalation_paths:
            ids = _chain_ids(head.id, by_id)
            transfers: list[tuple[str, str, str, PathKey]] = []  # team, path, level, where
            for path_id in ids:
                for l_index, level in enumerate(by_id[path_id].levels):
                    for a_index, action in enumerate(level.actions):
                        team = action.transfer_to_team
                        if team is not None and team in self.team_ids:
                            where: PathKey = (
                                "escalation_paths",
                                index_of[path_id],
                                "levels",
                                l_index,
                                "actions",
                                a_index,
                                "transfer_to_team",
                            )
                            transfers.append((team, path_id, level.name, where))
            teams = {team for team, *_ in transfers}
            if len(teams) < 2:
                continue
            first: dict[str, tuple[str, str]] = {}
            for team, path_id, level_name, where in transfers:
                if team not in first:
                    first[team] = (path_id, level_name)
                    continue
                if where in reported:
                    continue
                reported.add(where)
                other = sorted(teams - {team})[0]
                earlier_path, earlier_level = first[team]
                self.error(
                    f"escalation path '{path_id}' transfers back to team '{team}' after a "
                    f"ticket may have left it for '{other}' (ping-pong): levels fire in any "
                    f"order, and along {' -> '.join(ids)} level '{earlier_level}' "
                    f"({earlier_path}) and level '{level_name}' ({path_id}) both transfer "
                    f"to '{team}'",
                    where,
                    "escalation-loop",
                )

    def check_levels_can_fire(self, by_id: dict[str, EscalationPath]) -> None:
        """Warn about escalation levels that can never fire for any ticket."""
        users: dict[str, list[RequestType]] = {p: [] for p in by_id}
        for rt in self.model.request_types:
            if rt.escalation_path in by_id:
                for path_id in _chain_ids(rt.escalation_path, by_id):
                    users[path_id].append(rt)
        policies = {p.id: p for p in self.model.sla_policies}
        limit = self.model.settings.ping_pong_transfer_limit
        for index, path in enumerate(self.model.escalation_paths):
            base: PathKey = ("escalation_paths", index)
            rts = users.get(path.id, [])
            if not rts:
                if path.levels:
                    self.warning(
                        f"escalation path '{path.id}' is used by no request type (directly "
                        "or through 'then'), so its levels never fire",
                        (*base, "id"),
                        "never-fires",
                    )
                continue
            rt_ids = {rt.id for rt in rts}
            for l_index, level in enumerate(path.levels):
                lbase: PathKey = (*base, "levels", l_index)
                when = level.when
                timed = when.before_breach is not None or when.after_breach is not None
                if timed and (when.priority is None or when.priority in PRIORITIES):
                    wanted = [when.priority] if when.priority is not None else list(PRIORITIES)
                    if not any(
                        _has_target(policies.get(rt.sla_policy or ""), priority)
                        for rt in rts
                        for priority in wanted
                    ):
                        at_priority = f" at priority {when.priority}" if when.priority else ""
                        self.warning(
                            f"escalation level '{level.name}' can never fire: it waits for an "
                            f"SLA clock, and no request type using path '{path.id}' "
                            f"({', '.join(sorted(rt_ids))}) has an SLA target{at_priority}",
                            (*lbase, "when"),
                            "never-fires",
                        )
                if when.exception_denied is True and not any(
                    not et.request_types or rt_ids & set(et.request_types)
                    for et in self.model.exception_types
                ):
                    self.warning(
                        f"escalation level '{level.name}' can never fire: it waits for a "
                        "denied exception, and no exception type may be raised on the "
                        f"request types using path '{path.id}' ({', '.join(sorted(rt_ids))})",
                        (*lbase, "when", "exception_denied"),
                        "never-fires",
                    )
                if when.transfers_at_least is not None and when.transfers_at_least >= limit:
                    for a_index, action in enumerate(level.actions):
                        if action.transfer_to_team is None:
                            continue
                        self.warning(
                            f"escalation level '{level.name}' transfers tickets moved "
                            f"{when.transfers_at_least} times or more, which the ping-pong "
                            f"guard (ping_pong_transfer_limit {limit}) hands to the owning "
                            "team's lead to decide; the transfer is skipped while that lead "
                            "holds the ticket (the guard wins): use assign_team_lead or "
                            "notify_role",
                            (*lbase, "actions", a_index, "transfer_to_team"),
                            "contested-transfer",
                        )

    def check_request_types(self) -> None:
        by_path = {p.id: p for p in self.model.escalation_paths}
        skills = set(self.model.skills)
        for index, rt in enumerate(self.model.request_types):
            base: PathKey = ("request_types", index)
            refs = (
                ("owner_team", rt.owner_team, "team", self.team_ids),
                ("sla_policy", rt.sla_policy, "SLA policy", self.policy_ids),
                ("escalation_path", rt.escalation_path, "escalation path", self.path_ids),
            )
            for field_name, value, kind, known in refs:
                if value is None:
                    self.error(
                        f"request type '{rt.id}' has no {field_name}",
                        (*base, field_name),
                        "missing-reference",
                    )
                elif value not in known:
                    self.unknown(kind, value, (*base, field_name), known)
            if not rt.steps:
                self.warning(
                    f"request type '{rt.id}' has no standard-path steps",
                    (*base, "steps"),
                    "empty-steps",
                )
            if skills:
                for s_index, skill in enumerate(rt.required_skills):
                    if skill not in skills:
                        self.unknown("skill", skill, (*base, "required_skills", s_index), skills)
            if rt.owner_team is not None and rt.escalation_path in by_path:
                for path, level_name in _effective_transfers(rt.escalation_path, by_path):
                    if path == rt.owner_team:
                        self.error(
                            f"escalation path '{rt.escalation_path}' (level '{level_name}') "
                            f"transfers to '{rt.owner_team}', which already owns '{rt.id}'",
                            (*base, "escalation_path"),
                            "escalation-to-owner",
                        )
                        break

    def check_exception_types(self) -> None:
        for index, et in enumerate(self.model.exception_types):
            base: PathKey = ("exception_types", index)
            if not et.approver_roles:
                self.error(
                    f"exception type '{et.id}' has no approver role",
                    (*base, "approver_roles"),
                    "no-approver",
                )
            for r_index, role in enumerate(et.approver_roles):
                if role not in self.role_ids:
                    self.unknown("role", role, (*base, "approver_roles", r_index), self.role_ids)
            for t_index, type_id in enumerate(et.request_types):
                if type_id not in self.request_type_ids:
                    self.unknown(
                        "request type",
                        type_id,
                        (*base, "request_types", t_index),
                        self.request_type_ids,
                    )
            if et.max_duration <= 0:
                self.error(
                    f"zero or negative max_duration for exception type '{et.id}'",
                    (*base, "max_duration"),
                    "non-positive-duration",
                )

    def check_triage(self) -> None:
        triage = self.model.triage
        seen: set[str] = set()
        for index, rule in enumerate(triage.rules):
            base: PathKey = ("triage", "rules", index)
            if rule.id in seen:
                self.error(
                    f"duplicate id '{rule.id}' in triage rules", (*base, "id"), "duplicate-id"
                )
            seen.add(rule.id)
            self.check_triage_when(rule, base)
            self.check_triage_set(rule, base)
            if (
                triage.mode == "first_match"
                and _matches_everything(rule)
                and index < len(triage.rules) - 1
            ):
                self.warning(
                    f"triage rule '{rule.id}' has no conditions, so in first_match mode the "
                    "rules after it never fire; move it last",
                    (*base, "when"),
                    "unreachable-rule",
                )

    def check_triage_when(self, rule: TriageRule, base: PathKey) -> None:
        when = rule.when
        for c_index, channel in enumerate(when.channel):
            if channel not in CHANNELS:
                self.error(
                    f"unknown channel '{channel}' (use one of {', '.join(CHANNELS)})",
                    (*base, "when", "channel", c_index),
                    "unknown-channel",
                )
        for t_index, tier in enumerate(when.customer_tier):
            if tier not in CUSTOMER_TIERS:
                self.error(
                    f"unknown customer tier '{tier}' (use one of {', '.join(CUSTOMER_TIERS)})",
                    (*base, "when", "customer_tier", t_index),
                    "unknown-tier",
                )
        for k_index, keyword in enumerate(when.keywords):
            if not keyword.strip():
                self.error(
                    "an empty keyword matches nothing; remove it",
                    (*base, "when", "keywords", k_index),
                    "empty-keyword",
                )
        if when.pattern is not None:
            try:
                re.compile(when.pattern)
            except re.error as exc:
                self.error(
                    f"pattern of triage rule '{rule.id}' is not a valid regular expression: {exc}",
                    (*base, "when", "pattern"),
                    "invalid-pattern",
                )
        if not 0 <= when.min_confidence <= 1:
            self.error(
                f"min_confidence must be between 0 and 1 (got {when.min_confidence})",
                (*base, "when", "min_confidence"),
                "min-confidence",
            )
        elif when.min_confidence and when.classifier_label is None:
            self.warning(
                f"triage rule '{rule.id}' sets min_confidence without a classifier_label; "
                "it has no effect",
                (*base, "when", "min_confidence"),
                "min-confidence",
            )

    def check_triage_set(self, rule: TriageRule, base: PathKey) -> None:
        what = rule.set
        if what.request_type is not None and what.request_type not in self.request_type_ids:
            self.unknown(
                "request type",
                what.request_type,
                (*base, "set", "request_type"),
                self.request_type_ids,
            )
        if what.priority is not None and what.priority not in PRIORITIES:
            self.error(
                f"unknown priority '{what.priority}' (use one of {', '.join(PRIORITIES)})",
                (*base, "set", "priority"),
                "unknown-priority",
            )
        if what.request_type is None and what.priority is None and not what.tags:
            self.warning(
                f"triage rule '{rule.id}' sets nothing; give it a request_type, priority or tags",
                (*base, "set"),
                "empty-rule",
            )

    def check_settings(self) -> None:
        settings = self.model.settings
        if settings.default_priority not in PRIORITIES:
            self.error(
                f"unknown default_priority '{settings.default_priority}' "
                f"(use one of {', '.join(PRIORITIES)})",
                ("settings", "default_priority"),
                "unknown-priority",
            )
        if settings.ping_pong_transfer_limit < 1:
            self.error(
                "ping_pong_transfer_limit must be at least 1",
                ("settings", "ping_pong_transfer_limit"),
                "settings",
            )
        if settings.repeat_contact_window_days < 1:
            self.error(
                "repeat_contact_window_days must be at least 1",
                ("settings", "repeat_contact_window_days"),
                "settings",
            )


def _matches_everything(rule: TriageRule) -> bool:
    when = rule.when
    return not (
        when.channel
        or when.customer_tier
        or when.keywords
        or when.pattern is not None
        or when.classifier_label is not None
    )


def _then_cycle(start: str, by_id: dict[str, EscalationPath]) -> list[str]:
    """The chain of path ids from ``start`` back to itself, or [] if it does not loop."""
    chain = [start]
    current = by_id[start].then
    while current is not None and current in by_id:
        chain.append(current)
        if current == start:
            return chain
        if current in chain[:-1]:
            return []  # loops, but elsewhere: reported on the paths inside that loop
        current = by_id[current].then
    return []


def _chain_ids(start: str, by_id: dict[str, EscalationPath]) -> list[str]:
    """``start`` and the paths its ``then`` chain adds, in order, each once."""
    ids: list[str] = []
    current: str | None = start
    while current is not None and current in by_id and current not in ids:
        ids.append(current)
        current = by_id[current].then
    return ids


def _has_target(policy: SlaPolicy | None, priority: str) -> bool:
    """Whether the policy measures some clock at that priority."""
    if policy is None:
        return False
    target = policy.targets.get(priority)
    return target is not None and any((getattr(target, name) or 0) > 0 for name in _DURATION_FIELDS)


def _effective_transfers(start: str, by_id: dict[str, EscalationPath]) -> list[tuple[str, str]]:
    """(team, level name) of every transfer along a path and the paths it chains into."""
    transfers: list[tuple[str, str]] = []
    visited: set[str] = set()
    current: str | None = start
    while current is not None and current in by_id and current not in visited:
        visited.add(current)
        path = by_id[current]
        for level in path.levels:
            transfers.extend(
                (action.transfer_to_team, level.name)
                for action in level.actions
                if action.transfer_to_team is not None
            )
        current = path.then
    return transfers


def check_model(result: LoadResult) -> list[Problem]:
    """Semantic problems of a loaded model (empty when it did not load).

    Load problems stay in ``result.problems``; use :func:`check_file` for both.
    """
    if result.model is None:
        return []
    return _Checker(result, result.model).run()


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Order problems by position, errors before warnings on the same spot."""
    return sorted(problems, key=lambda p: (p.file, p.line, p.col, p.severity != "error"))


def check_file(path: str | Path, *, max_bytes: int = MAX_MODEL_BYTES) -> list[Problem]:
    """Load and check a model file; all problems sorted by line.

    ``[p.format() for p in check_file("operating-model.yaml")]`` is what
    ``opsdesk model check`` prints.
    """
    result = load_model_file(path, max_bytes=max_bytes)
    return sort_problems([*result.problems, *check_model(result)])
