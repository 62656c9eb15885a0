"""Storing and putting operating model versions in force.

A new model must not strand live work. Before anything is written, the model is checked
against what is in flight: users holding removed roles or in removed teams, tickets
owned by removed teams or of removed request types, exception requests of removed
types, SLA clocks of removed policies (or on removed calendars) and jobs naming removed
teams or escalation paths. Any of those refuses the change (:class:`ModelStrandsWork`,
listing what and how to proceed), unless a :class:`StrandedWork` option says what to do
with that kind, in the same transaction as the change itself.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, insert, select

from opsdesk.desk import reactions
from opsdesk.domain import commands as cmd
from opsdesk.domain import events as ev
from opsdesk.domain.errors import Conflict, DomainError
from opsdesk.domain.events import new_event
from opsdesk.model import (
    MAX_MODEL_BYTES,
    OperatingModel,
    Problem,
    canonical_json,
    check_model,
    load_model_text,
    model_hash,
    short_version,
    sort_problems,
)
from opsdesk.store import tables as t
from opsdesk.store.uow import UnitOfWork

#: job kinds whose ``ref`` names a team, and the kind whose ref starts with a path id
_TEAM_JOBS = ("routing.overflow", "routing.shift_open")
_PATH_JOB = "escalation.check"
_SHOWN = 5  # ids listed per stranded group


class ModelRejected(DomainError):
    """The model file has errors; it was not applied."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(
            f"the operating model has {len(errors)} error(s); fix them and apply again:\n"
            + "\n".join(p.format() for p in errors)
        )


@dataclass(frozen=True)
class StrandedWork:
    """What to do with live work a new model would strand; each kind left False refuses
    the change. Tickets (of removed request types or teams) and users always refuse:
    only people can decide where those go."""

    #: expire open requests of removed exception types (``exception.expired``, reason)
    expire_exceptions: bool = False
    #: stop clocks of removed policies or calendars and start the clocks of the policy
    #: each ticket's request type has now, from the same start (as a re-triage does)
    restart_clocks: bool = False
    #: drop jobs naming removed teams or escalation paths; the tickets of dropped
    #: escalation checks are evaluated under the new model, which queues their next check
    requeue_jobs: bool = False


@dataclass(frozen=True)
class Stranded:
    """One group of live work the new model would strand."""

    kind: str  # users, tickets, exceptions, clocks, jobs
    what: str
    fix: str


class ModelStrandsWork(Conflict):
    """Applying the model would strand live work; nothing was applied."""

    def __init__(self, stranded: list[Stranded]) -> None:
        self.stranded = stranded
        super().__init__(
            "the new model would strand live work, so nothing was applied:\n"
            + "\n".join(f"  {s.kind}: {s.what}; {s.fix}" for s in stranded)
        )


@dataclass(frozen=True)
class AppliedModel:
    version: str
    name: str
    changed: bool
    previous: str | None
    warnings: list[Problem]
    #: what was done with stranded work, one line per group (see :class:`StrandedWork`)
    resolved: list[str] = field(default_factory=list)


def apply_model_text(
    uow: UnitOfWork,
    text: str,
    *,
    filename: str,
    author: str,
    stranded: StrandedWork | None = None,
    max_bytes: int = MAX_MODEL_BYTES,
) -> AppliedModel:
    """Check a model, store it as a new version and put it in force.

    Applying content identical to the version in force changes nothing. A model that
    would strand live work is refused (:class:`ModelStrandsWork`) unless ``stranded``
    says what to do with it.
    """
    result = load_model_text(text, filename, max_bytes=max_bytes)
    problems = sort_problems([*result.problems, *(check_model(result) if result.model else [])])
    if result.model is None or any(p.severity == "error" for p in problems):
        raise ModelRejected(problems)
    model: OperatingModel = result.model
    version = model_hash(model)
    previous = uow.model_version
    warnings = [p for p in problems if p.severity != "error"]
    options = stranded or StrandedWork()
    if version == previous:
        # nothing changes; but work a model applied before this guard stranded can still
        # be dealt with by applying the same model with the option
        resolved = []
        if options != StrandedWork():
            resolved = _resolve(uow, find_stranded(uow, model), options, short_version(version))
        if resolved:  # an admin action on live work, though the version stays
            _audit_apply(uow, version, model.name, author, previous, resolved)
        return AppliedModel(version, model.name, False, previous, warnings, resolved)
    found = find_stranded(uow, model)
    refused = [s for s in found.groups if not _allowed(s.kind, options)]
    if refused:
        raise ModelStrandsWork(refused)
    exists = uow.conn.execute(
        select(t.model_versions.c.version).where(t.model_versions.c.version == version)
    ).first()
    if exists is None:
        uow.conn.execute(
            insert(t.model_versions).values(
                version=version,
                name=model.name,
                author=author,
                applied_at=uow.now,
                source=text,
                canonical=canonical_json(model),
                previous_version=previous,
            )
        )
    uow.set_model_version(version)
    uow.append(cmd.apply_model(version=version, name=model.name, author=author, previous=previous))
    resolved = _resolve(uow, found, options, short_version(version))
    _audit_apply(uow, version, model.name, author, previous, resolved)
    return AppliedModel(version, model.name, True, previous, warnings, resolved)


def _audit_apply(
    uow: UnitOfWork, version: str, name: str, author: str, previous: str | None, resolved: list[str]
) -> None:
    uow.audit(
        "model.applied",
        subject=f"model:{version}",
        details={"name": name, "author": author, "previous": previous, "resolved": resolved},
    )


@dataclass
class StrandedFound:
    """Everything live the new model would strand, and the rows behind each group."""

    groups: list[Stranded] = field(default_factory=list)
    exceptions: list[tuple[int, int, str]] = field(default_factory=list)  # id, ticket, type
    clocks: list[tuple[int, int, str]] = field(default_factory=list)  # ticket, clock, policy
    jobs: list[tuple[int, str, int | None]] = field(default_factory=list)  # id, kind, ticket


def _allowed(kind: str, options: StrandedWork) -> bool:
    return {
        "exceptions": options.expire_exceptions,
        "clocks": options.restart_clocks,
        "jobs": options.requeue_jobs,
    }.get(kind, False)


def _ids(values: list[int]) -> str:
    shown = ", ".join(str(v) for v in sorted(values)[:_SHOWN])
    return shown + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def _report(
    groups: list[Stranded], kind: str, ids_by: dict[str, list[int]], text: str, fix: str
) -> None:
    """One :class:`Stranded` per key of ``ids_by``, in key order; ``text`` is formatted
    with ``n`` (how many), ``what`` (the key) and ``ids`` (some of them)."""
    for what, ids in sorted(ids_by.items()):
        groups.append(Stranded(kind, text.format(n=len(ids), what=what, ids=_ids(ids)), fix))


def find_stranded(uow: UnitOfWork, model: OperatingModel) -> StrandedFound:
    """What live work ``model`` would strand if it were put in force now."""
    uow.flush()
    found = StrandedFound()
    groups = found.groups
    roles = {r.id for r in model.roles}
    teams = {team.id for team in model.teams}
    for user in uow.conn.execute(select(t.users).where(t.users.c.active.is_(True))):
        for role in sorted(set(user.roles) - roles):
            groups.append(
                Stranded(
                    "users",
                    f"user {user.email} holds removed role {role!r}",
                    "change their roles first, or keep the role",
                )
            )
        for team in sorted(set(user.teams) - teams):
            groups.append(
                Stranded(
                    "users",
                    f"user {user.email} is in removed team {team!r}",
                    "move them to another team first, or keep the team",
                )
            )
    live = t.tickets.c.status != "closed"
    by_team: dict[str, list[int]] = defaultdict(list)
    by_type: dict[str, list[int]] = defaultdict(list)
    rows = uow.conn.execute(
        select(t.tickets.c.id, t.tickets.c.owning_team, t.tickets.c.request_type).where(live)
    )
    request_types = {rt.id for rt in model.request_types}
    for ticket_id, team, request_type in rows:
        if team is not None and team not in teams:
            by_team[team].append(ticket_id)
        if request_type is not None and request_type not in request_types:
            by_type[request_type].append(ticket_id)
    _report(
        groups,
        "tickets",
        by_team,
        "{n} live ticket(s) owned by removed team {what!r} ({ids})",
        "transfer them to another team first, or keep the team",
    )
    _report(
        groups,
        "tickets",
        by_type,
        "{n} live ticket(s) of removed request type {what!r} ({ids})",
        "re-triage them to another request type first, or keep the request type",
    )
    x = t.exceptions.c
    exception_types = {et.id for et in model.exception_types}
    by_xtype: dict[str, list[int]] = defaultdict(list)
    for exception_id, ticket_id, xtype in uow.conn.execute(
        select(x.id, x.ticket_id, x.exception_type).where(x.status == "requested")
    ):
        if xtype not in exception_types:
            found.exceptions.append((exception_id, ticket_id, xtype))
            by_xtype[xtype].append(exception_id)
    _report(
        groups,
        "exceptions",
        by_xtype,
        "{n} open request(s) of removed exception type {what!r} ({ids}) could never be "
        "decided or expire",
        "decide them first, keep the type, or apply with --expire-exceptions to expire them now",
    )
    c = t.sla_clocks.c
    policies = {p.id for p in model.sla_policies}
    calendars = {cal.id for cal in model.calendars}
    by_policy: dict[str, list[int]] = defaultdict(list)
    for clock_id, ticket_id, policy, calendar, business_hours in uow.conn.execute(
        select(c.id, c.ticket_id, c.policy, c.calendar, c.business_hours).where(
            c.status.in_(("running", "paused"))
        )
    ):
        if policy not in policies:
            why = f"of removed SLA policy {policy!r}"
        elif business_hours and calendar is not None and calendar not in calendars:
            why = f"on removed calendar {calendar!r}"
        else:
            continue
        found.clocks.append((ticket_id, clock_id, policy))
        by_policy[why].append(clock_id)
    _report(
        groups,
        "clocks",
        by_policy,
        "{n} running SLA clock(s) {what} ({ids}) could no longer be re-targeted or "
        "measured as agreed",
        "keep it, or apply with --restart-clocks to stop them and start the clocks of "
        "each ticket's current policy from the same start",
    )
    paths = {p.id for p in model.escalation_paths}
    j = t.jobs.c
    by_ref: dict[str, list[int]] = defaultdict(list)
    for job_id, kind, ticket_id, ref in uow.conn.execute(
        select(j.id, j.kind, j.ticket_id, j.ref).where(j.kind.in_([*_TEAM_JOBS, _PATH_JOB]))
    ):
        if kind in _TEAM_JOBS and ref not in teams:
            why = f"{kind} for removed team {ref!r}"
        elif kind == _PATH_JOB and ref.split("#", 1)[0] not in paths:
            why = f"{kind} for removed escalation path {ref.split('#', 1)[0]!r}"
        else:
            continue
        found.jobs.append((job_id, kind, ticket_id))
        by_ref[why].append(job_id)
    _report(
        groups,
        "jobs",
        by_ref,
        "{n} pending job(s) {what} ({ids})",
        "apply with --requeue-jobs to drop them and queue what the new model needs",
    )
    return found


def _resolve(
    uow: UnitOfWork, found: StrandedFound, options: StrandedWork, version: str
) -> list[str]:
    """Do what the options allow with the stranded work, under the new model, in the
    transaction that puts it in force."""
    from opsdesk.sla import clocks, escalation

    done: list[str] = []
    if found.exceptions and options.expire_exceptions:
        expired = []
        for exception_id, ticket_id, xtype in found.exceptions:
            uow.exception(exception_id)  # loaded, so the expiry folds into it
            ticket = uow.ticket(ticket_id)
            payload = ev.ExceptionExpired(
                exception_id=exception_id,
                reason=f"exception type {xtype} was removed by model version {version}",
            )
            expired.append(
                new_event(
                    "exception.expired",
                    payload,
                    ticket_id=ticket_id,
                    customer_id=ticket.customer_id,
                )
            )
        reactions.append(uow, expired)
        done.append(f"expired {len(expired)} open exception request(s) of removed types")
    if found.clocks and options.restart_clocks:
        pairs = [(ticket_id, clock_id) for ticket_id, clock_id, _ in found.clocks]
        for ticket_id, _ in pairs:
            uow.sla_clocks(ticket_id)  # loaded before the restart looks for them
        events = clocks.restart_stranded(
            uow, pairs, f"its policy or calendar was removed by model version {version}"
        )
        if events:
            reactions.react(uow, events)
        done.append(f"restarted {len(pairs)} SLA clock(s) under their ticket's current policy")
    if found.jobs and options.requeue_jobs:
        ids = [job_id for job_id, _, _ in found.jobs]
        uow.conn.execute(delete(t.jobs).where(t.jobs.c.id.in_(ids)))
        for ticket_id in sorted(
            {tid for _, kind, tid in found.jobs if kind == _PATH_JOB and tid is not None}
        ):
            reactions.react(uow, escalation.evaluate(uow, ticket_id, once=True))
        done.append(f"dropped {len(ids)} job(s) naming removed teams or paths, requeued")
    return done


def apply_model_file(
    uow: UnitOfWork,
    path: Path,
    *,
    author: str,
    stranded: StrandedWork | None = None,
    max_bytes: int = MAX_MODEL_BYTES,
) -> AppliedModel:
    """:func:`apply_model_text` on a file, refused unread when larger than ``max_bytes``."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
        # past the limit the tail may split a character; the loader refuses the size
        text = raw.decode("utf-8", errors="strict" if len(raw) <= max_bytes else "replace")
    except OSError as exc:
        raise DomainError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise DomainError(f"cannot read {path}: not UTF-8 ({exc.reason})") from None
    return apply_model_text(
        uow, text, filename=str(path), author=author, stranded=stranded, max_bytes=max_bytes
    )
