"""Pydantic schema of the operating model.

Every model is frozen (a loaded model is a value, never mutated) and forbids extra
fields so a typo such as ``owner_teem`` is reported instead of silently ignored.
Referential rules (unknown team, missing owner, loops) live in ``checker.py`` so they
can be reported with file positions, all at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from opsdesk.model.vocabulary import ALL_PERMISSIONS, PERMISSIONS

_DURATION_RE = re.compile(
    r"^\s*(?P<sign>-)?\s*(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*(?:(?P<m>\d+)\s*m)?\s*$"
)


def parse_duration(value: str | int) -> int:
    """Return a duration in whole minutes.

    Accepts an int (minutes) or text made of days, hours and minutes in that order:
    ``parse_duration("1h30m") == 90``, ``parse_duration("2d") == 2880``,
    ``parse_duration("-15m") == -15``. Zero and negative values are allowed here so the
    checker can report them with a position.
    """
    # bool is an int subclass; `true` as a duration is always a mistake.
    if isinstance(value, bool):
        raise ValueError("a duration must be minutes or text like '30m', '4h', '2d', '1h30m'")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ValueError("a duration must be minutes or text like '30m', '4h', '2d', '1h30m'")
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    match = _DURATION_RE.match(text)
    if not match or not any(match.group(part) for part in ("d", "h", "m")):
        raise ValueError(
            f"invalid duration {value!r}: use minutes or text like '30m', '4h', '2d', '1h30m'"
        )
    minutes = (
        int(match.group("d") or 0) * 1440
        + int(match.group("h") or 0) * 60
        + int(match.group("m") or 0)
    )
    return -minutes if match.group("sign") else minutes


def format_duration(minutes: int) -> str:
    """Render minutes in the shortest text form: ``format_duration(90) == "1h30m"``."""
    if minutes == 0:
        return "0m"
    sign = "-" if minutes < 0 else ""
    rest = abs(minutes)
    days, rest = divmod(rest, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "m")) if n]
    return sign + "".join(parts)


def _duration_before(value: object) -> object:
    if isinstance(value, str | int):
        return parse_duration(value)
    return value


# Stored and serialised as int minutes, so the canonical JSON (and hash) does not depend
# on whether the author wrote "1h" or "60m".
Duration = Annotated[int, BeforeValidator(_duration_before), PlainSerializer(int)]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Severity = Literal["error", "warning"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TeamRouting(_Frozen):
    """How a team's queue hands tickets to its agents."""

    strategy: Literal["least_loaded", "round_robin"] = "least_loaded"
    #: most tickets an agent of this team owns at once (open, pending, on hold)
    max_open_per_agent: int = 10
    #: per-channel caps, e.g. ``{chat: 3, voice: 1}``; a channel not listed has no own cap
    max_per_channel: dict[str, int] = Field(default_factory=dict)
    #: a ticket waiting this long with no agent overflows to ``secondary_team``
    overflow_after: Duration | None = None
    #: the team's shift hours: its agents are given work only while the calendar is open
    calendar: str | None = None
    #: a repeat contact goes back to the agent who last owned the customer's case
    continuity: bool = True


class Team(_Frozen):
    """A team that can own tickets."""

    id: str
    name: str
    description: str = ""
    lead_role: str | None = "team_lead"
    secondary_team: str | None = None
    routing: TeamRouting = Field(default_factory=TeamRouting)


class Role(_Frozen):
    """A named set of permissions."""

    id: str
    name: str
    permissions: list[str]
    description: str = ""


class HolidaySource(_Frozen):
    """Public holidays from the ``holidays`` package."""

    country: str
    subdivision: str | None = None


class Calendar(_Frozen):
    """Working hours in one time zone.

    ``hours`` maps a weekday to ``[start, end]`` pairs in ``HH:MM``; ``end`` may be
    ``24:00``, or earlier than ``start`` to mean the shift runs past midnight.
    """

    id: str
    name: str = ""
    timezone: str
    hours: dict[Weekday, list[tuple[str, str]]]
    holidays: HolidaySource | None = None
    dates: list[date] = Field(default_factory=list)

    def intervals(self, weekday: Weekday) -> list[tuple[int, int]]:
        """Return the day's working intervals as minutes from midnight, sorted.

        An overnight shift ``["22:00", "02:00"]`` becomes ``(1320, 1560)``.
        """
        spans: list[tuple[int, int]] = []
        for start_text, end_text in self.hours.get(weekday, []):
            start, end = parse_clock(start_text), parse_clock(end_text)
            spans.append((start, end if end > start else end + 1440))
        return sorted(spans)


def parse_clock(text: str) -> int:
    """Return minutes from midnight for ``HH:MM`` (``24:00`` allowed): ``"08:30"`` -> 510."""
    match = re.fullmatch(r"(\d{2}):(\d{2})", text)
    if not match:
        raise ValueError(f"invalid time {text!r}: use HH:MM, e.g. '08:30'")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"invalid time {text!r}: hours run 00:00 to 24:00")
    return hours * 60 + minutes


class SlaTarget(_Frozen):
    """Targets for one priority; a missing target means the clock is not run."""

    first_reply: Duration | None = None
    next_reply: Duration | None = None
    periodic_update: Duration | None = None
    resolution: Duration | None = None


class SlaPolicy(_Frozen):
    """SLA targets per priority, measured on a calendar (None = 24x7 wall clock)."""

    id: str
    name: str
    calendar: str | None = None
    business_hours: bool = True
    pause_on_pending: bool = True
    warning_share: float = 0.75
    targets: dict[str, SlaTarget]


class EscalationWhen(_Frozen):
    """Conditions of an escalation level; all given conditions must hold."""

    before_breach: Duration | None = None
    after_breach: Duration | None = None
    priority: str | None = None
    customer_tier: str | None = None
    transfers_at_least: int | None = None
    exception_denied: bool | None = None


class EscalationAction(_Frozen):
    """One action, written as a one-key mapping such as ``notify_role: team_lead``."""

    notify_role: str | None = None
    transfer_to_team: str | None = None
    raise_priority: bool | None = None
    assign_team_lead: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> EscalationAction:
        given = [name for name, value in self if value is not None]
        if len(given) != 1:
            raise ValueError(
                "an action is one key: notify_role, transfer_to_team, raise_priority "
                f"or assign_team_lead (got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        """The action's key, e.g. ``"notify_role"``."""
        return next(name for name, value in self if value is not None)


class EscalationLevel(_Frozen):
    """A step of an escalation path."""

    name: str
    when: EscalationWhen = Field(default_factory=EscalationWhen)
    actions: list[EscalationAction]


class EscalationPath(_Frozen):
    """Ordered escalation levels, optionally chaining into another path with ``then``."""

    id: str
    name: str
    levels: list[EscalationLevel]
    then: str | None = None


class RequestType(_Frozen):
    """A kind of customer need with its owner and standard path."""

    id: str
    name: str
    description: str = ""
    # Optional here so the checker reports a missing owner with a position.
    owner_team: str | None = None
    steps: list[str] = Field(default_factory=list)
    sla_policy: str | None = None
    escalation_path: str | None = None
    required_skills: list[str] = Field(default_factory=list)


class ExceptionType(_Frozen):
    """An approved deviation from a standard path."""

    id: str
    name: str
    description: str = ""
    approver_roles: list[str] = Field(default_factory=list)
    max_duration: Duration
    # Empty means the exception applies to every request type.
    request_types: list[str] = Field(default_factory=list)


class TriageMatch(_Frozen):
    """Conditions of a triage rule; all given conditions must hold."""

    channel: list[str] = Field(default_factory=list)
    customer_tier: list[str] = Field(default_factory=list)
    #: any of these words or phrases in the subject or first message (case-insensitive)
    keywords: list[str] = Field(default_factory=list)
    #: a regular expression searched in the subject and first message (case-insensitive)
    pattern: str | None = None
    #: a classifier's label for the ticket, at or above ``min_confidence``
    classifier_label: str | None = None
    min_confidence: float = 0.0


class TriageSet(_Frozen):
    """What a matching rule sets."""

    request_type: str | None = None
    priority: str | None = None
    tags: list[str] = Field(default_factory=list)


class TriageRule(_Frozen):
    id: str
    name: str = ""
    when: TriageMatch
    set: TriageSet


class Triage(_Frozen):
    """Rules applied to new tickets, in order: the first match wins, or every match
    applies (later rules override request type and priority, tags accumulate)."""

    mode: Literal["first_match", "all_match"] = "first_match"
    rules: list[TriageRule] = Field(default_factory=list)


class ModelSettings(_Frozen):
    """Organisation-wide knobs used by routing and the friction diagnostic."""

    ping_pong_transfer_limit: int = 3
    repeat_contact_window_days: int = 7
    default_priority: str = "normal"


_T = TypeVar("_T", Team, Role, Calendar, SlaPolicy, EscalationPath, RequestType, ExceptionType)


def _find(items: Iterable[_T], item_id: str, kind: str) -> _T:
    for item in items:
        if item.id == item_id:
            return item
    raise KeyError(f"unknown {kind} {item_id!r} in the operating model")


#: :meth:`OperatingModel.granted`'s answers, per model by identity (a loaded model is
#: frozen; a pydantic private attribute would take part in its equality)
_GRANTED: dict[int, tuple[OperatingModel, dict[tuple[str, ...], frozenset[str]]]] = {}


class OperatingModel(_Frozen):
    """The whole operating model of one support organisation."""

    name: str
    version_note: str = ""
    teams: list[Team]
    roles: list[Role]
    skills: list[str] = Field(default_factory=list)
    calendars: list[Calendar]
    sla_policies: list[SlaPolicy]
    escalation_paths: list[EscalationPath]
    request_types: list[RequestType]
    exception_types: list[ExceptionType]
    triage: Triage = Field(default_factory=Triage)
    settings: ModelSettings = Field(default_factory=ModelSettings)

    def team(self, team_id: str) -> Team:
        """Return the team with this id or raise KeyError."""
        return _find(self.teams, team_id, "team")

    def role(self, role_id: str) -> Role:
        """Return the role with this id or raise KeyError."""
        return _find(self.roles, role_id, "role")

    def calendar(self, calendar_id: str) -> Calendar:
        """Return the calendar with this id or raise KeyError."""
        return _find(self.calendars, calendar_id, "calendar")

    def sla_policy(self, policy_id: str) -> SlaPolicy:
        """Return the SLA policy with this id or raise KeyError."""
        return _find(self.sla_policies, policy_id, "SLA policy")

    def escalation_path(self, path_id: str) -> EscalationPath:
        """Return the escalation path with this id or raise KeyError."""
        return _find(self.escalation_paths, path_id, "escalation path")

    def request_type(self, type_id: str) -> RequestType:
        """Return the request type with this id or raise KeyError."""
        return _find(self.request_types, type_id, "request type")

    def exception_type(self, type_id: str) -> ExceptionType:
        """Return the exception type with this id or raise KeyError."""
        return _find(self.exception_types, type_id, "exception type")

    def permissions_for(self, role_ids: Sequence[str]) -> frozenset[str]:
        """Union of the roles' permissions; ``"*"`` expands to every known permission.

        ``model.permissions_for(["admin"])`` contains ``"tickets.read"`` and ``"*"``.
        """
        granted: set[str] = set()
        for role_id in role_ids:
            granted.update(self.role(role_id).permissions)
        if ALL_PERMISSIONS in granted:
            granted.update(PERMISSIONS)
        return frozenset(granted)

    def granted(self, role_ids: Iterable[str]) -> frozenset[str]:
        """What a user holding ``role_ids`` may do under this model: :meth:`permissions_for`
        of the roles it defines (a role it no longer defines grants nothing: a model
        apply may drop a role users still hold). Remembered per model, since every
        command and request asks."""
        key = tuple(role_ids)
        cache = _GRANTED.get(id(self))
        if cache is None or cache[0] is not self:
            if len(_GRANTED) >= 16:
                _GRANTED.clear()
            cache = _GRANTED[id(self)] = (self, {})
        granted = cache[1].get(key)
        if granted is None:
            known = {role.id for role in self.roles}
            granted = self.permissions_for([r for r in key if r in known])
            if len(cache[1]) < 1024:
                cache[1][key] = granted
        return granted

    def request_types_owned_by(self, team_id: str) -> list[RequestType]:
        """Request types whose owner is this team."""
        return [rt for rt in self.request_types if rt.owner_team == team_id]

    def exception_types_for(self, request_type_id: str) -> list[ExceptionType]:
        """Exception types that may be raised on this request type."""
        return [
            et
            for et in self.exception_types
            if not et.request_types or request_type_id in et.request_types
        ]
