"""Storing and putting operating model versions in force."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select

from opsdesk.domain import commands as cmd
from opsdesk.domain.errors import DomainError
from opsdesk.model import (
    OperatingModel,
    Problem,
    canonical_json,
    check_model,
    load_model_text,
    model_hash,
    sort_problems,
)
from opsdesk.store import tables as t
from opsdesk.store.uow import UnitOfWork


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
class AppliedModel:
    version: str
    name: str
    changed: bool
    previous: str | None
    warnings: list[Problem]


def apply_model_text(uow: UnitOfWork, text: str, *, filename: str, author: str) -> AppliedModel:
    """Check a model, store it as a new version and put it in force.

    Applying content identical to the version in force changes nothing.
    """
    result = load_model_text(text, filename)
    problems = sort_problems([*result.problems, *(check_model(result) if result.model else [])])
    if result.model is None or any(p.severity == "error" for p in problems):
        raise ModelRejected(problems)
    model: OperatingModel = result.model
    version = model_hash(model)
    previous = uow.model_version
    warnings = [p for p in problems if p.severity != "error"]
    if version == previous:
        return AppliedModel(version, model.name, False, previous, warnings)
    _refuse_orphaning(uow, model)
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
    return AppliedModel(version, model.name, True, previous, warnings)


def _refuse_orphaning(uow: UnitOfWork, model: OperatingModel) -> None:
    """Refuse a model that drops a role or team people or open tickets still rely on."""
    uow.flush()
    roles = {r.id for r in model.roles}
    teams = {team.id for team in model.teams}
    problems: list[str] = []
    for user in uow.conn.execute(select(t.users).where(t.users.c.active.is_(True))):
        for role in sorted(set(user.roles) - roles):
            problems.append(f"user {user.email} holds role {role!r}")
        for team in sorted(set(user.teams) - teams):
            problems.append(f"user {user.email} is in team {team!r}")
    owned = uow.conn.execute(
        select(t.tickets.c.owning_team, func.count())
        .where(t.tickets.c.status != "closed", t.tickets.c.owning_team.is_not(None))
        .group_by(t.tickets.c.owning_team)
    ).all()
    for team, count in owned:
        if team not in teams:
            problems.append(f"{count} open ticket(s) are owned by team {team!r}")
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise DomainError(
            f"the new model removes roles or teams still in use ({shown}); "
            "move those users and tickets first, then apply again"
        )


def apply_model_file(uow: UnitOfWork, path: Path, *, author: str) -> AppliedModel:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DomainError(f"cannot read {path}: {exc.strerror}") from None
    return apply_model_text(uow, text, filename=str(path), author=author)
