"""The demo company: staff with teams, roles, skills and shifts, and a customer base.

Everything is generated from a seeded :class:`random.Random` and the operating model,
so the same seed gives the same people. Staff accounts are written through the same
service commands as the API (one unit of work each); customers are only *generated*
here and are created in the database when they first contact the desk (see
:mod:`opsdesk.demo.simulation`).
"""

from __future__ import annotations

import random
import secrets
import string
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from opsdesk.desk import service
from opsdesk.desk.security import SCOPES, create_token, set_password
from opsdesk.model import WEEKDAYS, Calendar, OperatingModel
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

ADMIN_EMAIL = "admin@demo.opsdesk.test"
STAFF_DOMAIN = "demo.opsdesk.test"

UK_FIRST = (
    "Oliver",
    "Amelia",
    "George",
    "Isla",
    "Harry",
    "Ava",
    "Jack",
    "Mia",
    "Noah",
    "Emily",
    "Leo",
    "Grace",
    "Arthur",
    "Sophie",
    "Oscar",
    "Lily",
    "Charlie",
    "Freya",
    "Thomas",
    "Chloe",
    "James",
    "Ella",
    "William",
    "Evie",
    "Henry",
    "Ruby",
    "Alfie",
    "Poppy",
    "Samir",
    "Priya",
    "Aisha",
    "Omar",
    "Chen",
    "Zara",
    "Callum",
    "Niamh",
    "Rhys",
    "Megan",
)
UK_LAST = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Jackson",
    "Clarke",
    "Khan",
    "Lewis",
    "Hughes",
    "Edwards",
    "Turner",
    "Hill",
    "Moore",
    "Cooper",
    "Ward",
    "Morris",
    "Begum",
    "Ahmed",
    "Kaur",
)
NL_FIRST = (
    "Daan",
    "Emma",
    "Sem",
    "Julia",
    "Lucas",
    "Tess",
    "Levi",
    "Sophie",
    "Finn",
    "Anna",
    "Milan",
    "Fleur",
    "Bram",
    "Sanne",
    "Ruben",
    "Lotte",
    "Thijs",
    "Noor",
    "Jesse",
    "Eva",
)
NL_LAST = (
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Janssen",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
)


# --- staffing plan -------------------------------------------------------------------


@dataclass(frozen=True)
class TeamPlan:
    """How one team is staffed: head count, site calendar, skills and shift patterns."""

    team: str
    agents: int
    calendar: str
    skills: tuple[str, ...]
    extra_skills: tuple[tuple[str, float], ...] = ()
    patterns: tuple[str, ...] = ("early", "late")
    dutch: bool = False


#: Head count and sites per team of the example model (Manchester unless noted).
TEAM_PLANS: tuple[TeamPlan, ...] = (
    TeamPlan("frontline", 7, "uk_site", ("english",), (("billing_systems", 0.2),)),
    TeamPlan("frontline", 3, "nl_site", ("english", "dutch"), dutch=True),
    TeamPlan(
        "billing", 12, "uk_site", ("english", "billing_systems"), (("vulnerable_customers", 0.4),)
    ),
    TeamPlan("tech_support", 6, "uk_site", ("english", "heat_pumps"), (("smart_meters", 0.3),)),
    TeamPlan("metering", 6, "nl_site", ("english", "dutch", "smart_meters"), dutch=True),
    TeamPlan("logistics", 5, "uk_site", ("english",)),
    TeamPlan(
        "complaints",
        3,
        "uk_site",
        ("english", "complaint_handling"),
        (("vulnerable_customers", 0.5),),
    ),
    TeamPlan(
        "vip_care",
        4,
        "always_on",
        ("english", "vulnerable_customers"),
        (("billing_systems", 0.4),),
        patterns=("day", "evening", "night", "day"),
    ),
)

REQUIRED_TEAMS = (
    "frontline",
    "billing",
    "tech_support",
    "metering",
    "logistics",
    "complaints",
    "vip_care",
)
REQUIRED_ROLES = (
    "agent",
    "team_lead",
    "ops_lead",
    "finance_approver",
    "qa_analyst",
    "auditor",
    "admin",
)
REQUIRED_CALENDARS = ("uk_site", "nl_site", "always_on")


@dataclass(eq=False)
class StaffMember:
    """One person of the demo company, with their working intervals in simulation time."""

    name: str
    email: str
    roles: list[str]
    teams: list[str]
    skills: list[str]
    calendar: str
    pattern: str
    off_days: tuple[str, ...] = ()
    user_id: int = 0
    #: working intervals as (start, end) minutes since the simulation start, sorted
    shifts: list[tuple[float, float]] = field(default_factory=list)
    _starts: list[float] = field(default_factory=list)

    @property
    def first_name(self) -> str:
        return self.name.split(" ", 1)[0]

    @property
    def team(self) -> str | None:
        return self.teams[0] if self.teams else None

    def set_shifts(self, shifts: list[tuple[float, float]]) -> None:
        self.shifts = shifts
        self._starts = [s for s, _ in shifts]

    def _index(self, t: float) -> int:
        return bisect_right(self._starts, t) - 1

    def on_shift(self, t: float) -> bool:
        i = self._index(t)
        return i >= 0 and t < self.shifts[i][1]

    def shift_end(self, t: float) -> float:
        """End of the shift running at ``t`` (``t`` itself when off shift)."""
        i = self._index(t)
        if i >= 0 and t < self.shifts[i][1]:
            return self.shifts[i][1]
        return t

    def next_start(self, t: float) -> float | None:
        """``t`` when on shift, else the start of the next shift (None past the horizon)."""
        if self.on_shift(t):
            return t
        i = self._index(t) + 1
        return self.shifts[i][0] if i < len(self.shifts) else None


@dataclass(frozen=True)
class CustomerProfile:
    """A customer of the fictional company (created in the desk on first contact)."""

    index: int
    name: str
    tier: str
    email: str
    phone: str
    country: str

    @property
    def first_name(self) -> str:
        return self.name.split(" ", 1)[0]


@dataclass
class Company:
    staff: list[StaffMember]
    customers: list[CustomerProfile]
    #: cumulative contact weights over ``customers`` (some customers write often)
    customer_weights: list[float]
    admin: StaffMember
    admin_password: str

    def members(self, team: str) -> list[StaffMember]:
        """Ticket-working members of a team (agents and team leads)."""
        return [s for s in self.staff if team in s.teams and "agent" in s.roles]

    def with_role(self, role: str) -> list[StaffMember]:
        return [s for s in self.staff if role in s.roles]

    def lead_of(self, team: str) -> StaffMember | None:
        for s in self.staff:
            if team in s.teams and "team_lead" in s.roles:
                return s
        return None


# --- generation ------------------------------------------------------------------------


def _ascii(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch in string.ascii_lowercase)


def _person_name(rng: random.Random, dutch: bool) -> str:
    if dutch:
        return f"{rng.choice(NL_FIRST)} {rng.choice(NL_LAST)}"
    return f"{rng.choice(UK_FIRST)} {rng.choice(UK_LAST)}"


def _unique_email(name: str, taken: set[str], domain: str, suffix: str = "") -> str:
    first, _, last = name.partition(" ")
    base = f"{_ascii(first)}.{_ascii(last)}{suffix}"
    email, n = f"{base}@{domain}", 1
    while email in taken:
        n += 1
        email = f"{base}{n}@{domain}"
    taken.add(email)
    return email


def _off_days(rng: random.Random, calendar: Calendar) -> tuple[str, ...]:
    """Working days beyond five a week are given off, mostly at the weekend."""
    open_days = [d for d in WEEKDAYS if calendar.hours.get(d)]  # type: ignore[call-overload]
    extra = max(0, len(open_days) - 5)
    if not extra:
        return ()
    weights = [4.0 if d in ("sat", "sun") else 1.0 for d in open_days]
    chosen: list[str] = []
    while len(chosen) < extra:
        day = rng.choices(open_days, weights)[0]
        if day not in chosen:
            chosen.append(day)
    return tuple(chosen)


def generate_company(rng: random.Random, *, customers: int = 3000) -> Company:
    """People and customers of the demo company (no database writes)."""
    staff: list[StaffMember] = []
    emails: set[str] = {ADMIN_EMAIL}

    def person(
        roles: list[str],
        teams: list[str],
        skills: list[str],
        calendar: str,
        pattern: str,
        dutch: bool = False,
    ) -> StaffMember:
        name = _person_name(rng, dutch)
        return StaffMember(
            name=name,
            email=_unique_email(name, emails, STAFF_DOMAIN),
            roles=roles,
            teams=teams,
            skills=skills,
            calendar=calendar,
            pattern=pattern,
        )

    led: set[str] = set()
    for plan in TEAM_PLANS:
        for i in range(plan.agents):
            skills = list(plan.skills)
            for skill, share in plan.extra_skills:
                if rng.random() < share:
                    skills.append(skill)
            pattern = plan.patterns[i % len(plan.patterns)]
            is_lead = plan.team not in led and i == 0
            roles = ["agent", "team_lead"] if is_lead else ["agent"]
            if is_lead:
                led.add(plan.team)
                pattern = "office"
            staff.append(person(roles, [plan.team], skills, plan.calendar, pattern, plan.dutch))
    staff.append(person(["ops_lead"], [], [], "uk_site", "office"))
    staff.append(person(["finance_approver"], [], ["billing_systems"], "uk_site", "office"))
    staff.append(person(["finance_approver"], [], ["billing_systems"], "uk_site", "early"))
    staff.append(person(["qa_analyst"], [], [], "uk_site", "office"))
    staff.append(person(["auditor"], [], [], "uk_site", "office"))
    admin = StaffMember(
        name="Demo Admin",
        email=ADMIN_EMAIL,
        roles=["admin"],
        teams=[],
        skills=[],
        calendar="uk_site",
        pattern="office",
    )
    # random, not seeded: the password is not in the event log, so reproducibility of
    # the log does not need it, and a demo served on a network should not share one
    password = secrets.token_urlsafe(12)

    profiles: list[CustomerProfile] = []
    cust_emails: set[str] = set()
    domains = ("example.com", "example.net", "example.org")
    for i in range(customers):
        dutch = rng.random() < 0.22
        name = _person_name(rng, dutch)
        r = rng.random()
        tier = "vip" if r < 0.03 else "gold" if r < 0.13 else "standard"
        email = _unique_email(name, cust_emails, rng.choice(domains))
        phone = (
            f"+316{rng.randrange(10_000_000, 99_999_999)}" if dutch else f"+447700{900_000 + i:06d}"
        )
        profiles.append(CustomerProfile(i, name, tier, email, phone, "NL" if dutch else "GB"))
    # a few customers write often, most rarely (Pareto-like activity)
    cumulative: list[float] = []
    total = 0.0
    for _ in profiles:
        total += rng.paretovariate(3.0)
        cumulative.append(total)
    return Company(
        staff=[admin, *staff],
        customers=profiles,
        customer_weights=cumulative,
        admin=admin,
        admin_password=password,
    )


# --- shifts ----------------------------------------------------------------------------


def _closed_dates(calendar: Calendar, years: list[int]) -> set[date]:
    closed = set(calendar.dates)
    if calendar.holidays is not None:
        try:
            found = holidays_lib.country_holidays(
                calendar.holidays.country, subdiv=calendar.holidays.subdivision, years=years
            )
            closed.update(found.keys())
        except NotImplementedError:  # an unknown country: no public holidays
            pass
    return closed


def _window(pattern: str, spans: list[tuple[int, int]]) -> tuple[int, int]:
    """The part of a working day (minutes from local midnight) a shift pattern covers."""
    open_, close = spans[0][0], max(e for _, e in spans)
    if close - open_ >= 23 * 60:  # round the clock
        return {"night": (0, 480), "day": (480, 960), "evening": (960, 1440)}.get(
            pattern, (480, 960)
        )
    if close - open_ <= 9 * 60 or pattern == "office":
        return (open_, min(close, open_ + 9 * 60)) if pattern == "office" else (open_, close)
    if pattern == "late":
        return (close - 510, close)
    return (open_, open_ + 510)


def compute_shifts(
    member: StaffMember, calendar: Calendar, start: datetime, days: int
) -> list[tuple[float, float]]:
    """Working intervals in minutes since ``start`` for ``days`` days (plus a margin)."""
    zone = ZoneInfo(calendar.timezone)
    first = start.date() - timedelta(days=1)
    dates = [first + timedelta(days=i) for i in range(days + 10)]
    closed = _closed_dates(calendar, sorted({d.year for d in dates}))
    out: list[tuple[float, float]] = []
    for day in dates:
        weekday = WEEKDAYS[day.weekday()]
        if day in closed or weekday in member.off_days:
            continue
        spans = calendar.intervals(weekday)  # type: ignore[arg-type]
        if not spans:
            continue
        w0, w1 = _window(member.pattern, spans)
        midnight = datetime.combine(day, time(0), tzinfo=zone)
        for s, e in spans:
            a, b = max(s, w0), min(e, w1)
            if b - a < 30:
                continue
            ua = (midnight + timedelta(minutes=a)).astimezone(UTC)
            ub = (midnight + timedelta(minutes=b)).astimezone(UTC)
            out.append(((ua - start).total_seconds() / 60, (ub - start).total_seconds() / 60))
    out.sort()
    merged: list[tuple[float, float]] = []
    for begin, end in out:
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


def plan_shifts(
    company: Company, model: OperatingModel, rng: random.Random, start: datetime, days: int
) -> None:
    """Give every staff member days off and working intervals from their site calendar."""
    for member in company.staff:
        calendar = model.calendar(member.calendar)
        member.off_days = (
            _off_days(rng, calendar)
            if member.pattern != "office"
            else (("sat", "sun") if calendar.id != "nl_site" else ())
        )
        member.set_shifts(compute_shifts(member, calendar, start, days))


# --- writing the company -----------------------------------------------------------------


def create_staff(db: Database, company: Company, at: datetime, tick: Callable[[], datetime]) -> str:
    """Create the admin (as the system), then every other account as the admin.

    Returns a freshly created API token for the admin.
    """
    admin = company.admin
    with UnitOfWork(db, now=at) as uow:
        user = service.create_user(
            uow,
            name=admin.name,
            email=admin.email,
            roles=admin.roles,
            teams=admin.teams,
            skills=admin.skills,
        )
        admin.user_id = user.id
    with UnitOfWork(db, actor_kind="user", actor_id=admin.user_id, now=tick()) as uow:
        set_password(uow, admin.user_id, company.admin_password)
    with UnitOfWork(db, actor_kind="user", actor_id=admin.user_id, now=tick()) as uow:
        token = create_token(uow, admin.user_id, "demo", scopes=SCOPES).token
    for member in company.staff:
        if member is admin:
            continue
        with UnitOfWork(db, actor_kind="user", actor_id=admin.user_id, now=tick()) as uow:
            user = service.create_user(
                uow,
                name=member.name,
                email=member.email,
                roles=member.roles,
                teams=member.teams,
                skills=member.skills,
            )
            member.user_id = user.id
    return token
