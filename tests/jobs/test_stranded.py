"""One bad job never stops a sweep: expiry jobs of exception requests whose type the
model in force lacks (a database where such a model was applied before `model apply`
refused it) fail one by one, each recorded with what to do, while every other due job
runs in the same sweep; applying the model with --expire-exceptions then clears them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import yaml
from sqlalchemy import insert

from opsdesk.desk.models import StrandedWork, apply_model_text
from opsdesk.domain import commands as cmd
from opsdesk.jobs.outbox import run_due
from opsdesk.model import canonical_json, example_model_path, load_model_text, model_hash
from opsdesk.store import tables as t
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork
from opsdesk.store.verify import verify
from tests.jobs.helpers import ASKED_AT, exception_status, jobs, requested_exceptions

WEEK_LATER = ASKED_AT + timedelta(days=8)


def without_priority_jump() -> str:
    data: dict[str, Any] = yaml.safe_load(example_model_path().read_text())
    data["exception_types"] = [x for x in data["exception_types"] if x["id"] != "priority_jump"]
    return yaml.safe_dump(data, sort_keys=False)


def force_model(db: Database, text: str) -> None:
    """Put a model in force the way opsdesk did before it refused stranding work."""
    model = load_model_text(text, "old.yaml").model
    assert model is not None
    version = model_hash(model)
    with UnitOfWork(db, now=ASKED_AT) as uow:
        uow.conn.execute(
            insert(t.model_versions).values(
                version=version,
                name=model.name,
                author="an older opsdesk",
                applied_at=uow.now,
                source=text,
                canonical=canonical_json(model),
                previous_version=uow.model_version,
            )
        )
        previous = uow.model_version
        uow.set_model_version(version)
        uow.append(
            cmd.apply_model(version=version, name=model.name, author="old", previous=previous)
        )


def test_stranded_jobs_fail_alone_and_the_sweep_goes_on(model_db: Database) -> None:
    good = requested_exceptions(model_db, 3)  # refund_outside_policy, due after 7 days
    stranded = requested_exceptions(model_db, 3, triaged=False)  # priority_jump, 1 day
    force_model(model_db, without_priority_jump())

    result = run_due(model_db, WEEK_LATER, batch=2)
    assert result.fired["exception.expire"] == 3
    assert result.failed["exception.expire"] == 3
    status = exception_status(model_db)
    assert {x: status[x] for x in good} == dict.fromkeys(good, "expired")
    assert {x: status[x] for x in stranded} == dict.fromkeys(stranded, "requested")
    failed = [row for row in jobs(model_db, "exception.expire") if row["attempts"]]
    assert sorted(int(str(row["ref"])) for row in failed) == stranded
    for row in failed:
        error = str(row["last_error"])
        assert error.startswith("StrandedJob: exception ")
        assert "--expire-exceptions" in error and "KeyError" not in error

    # the fix the error names: the same model, applied with the option, expires them
    with UnitOfWork(model_db, now=WEEK_LATER) as uow:
        applied = apply_model_text(
            uow,
            without_priority_jump(),
            filename="old.yaml",
            author="ops",
            stranded=StrandedWork(expire_exceptions=True),
        )
    assert not applied.changed
    assert applied.resolved == ["expired 3 open exception request(s) of removed types"]
    assert {exception_status(model_db)[x] for x in stranded} == {"expired"}
    retried = run_due(model_db, WEEK_LATER + timedelta(hours=2))
    assert not retried.failed and retried.noop["exception.expire"] == 3
    assert verify(model_db).ok
