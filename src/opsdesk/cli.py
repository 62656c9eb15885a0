"""The `opsdesk` command line: thin wrappers that parse, call a capability, render."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

# Only typer and rich load at start: `opsdesk --help` must answer at once, so each
# command imports what it needs (SQLAlchemy, Alembic, pydantic-settings, DuckDB...).
if TYPE_CHECKING:
    from rich.progress import Progress
    from rich.table import Table

    from opsdesk.store.db import Database

if TYPE_CHECKING:
    from opsdesk.desk.models import StrandedWork

app = typer.Typer(
    help="opsdesk: the service desk with the operations layer built in.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
model_app = typer.Typer(help="Check, compare and apply the operating model.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
user_app = typer.Typer(help="Users (agents, leads, admins).", no_args_is_help=True)
export_app = typer.Typer(help="Export data.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail of security and admin actions.", no_args_is_help=True)
app.add_typer(model_app, name="model")
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")
app.add_typer(export_app, name="export")
app.add_typer(audit_app, name="audit")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> NoReturn:
    """One actionable line on stderr and a non-zero exit."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    from opsdesk.domain.errors import DomainError
    from opsdesk.store.errors import DatabaseNotReady  # not store.db: a second to import

    try:
        yield
    except DomainError as exc:
        fail(exc.message)
    except DatabaseNotReady as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": "))


def open_db(*, ready: bool = True) -> Database:
    from opsdesk.settings import Settings
    from opsdesk.store.db import Database, DatabaseNotReady

    settings = Settings()
    db = Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    if ready:
        try:
            db.ensure_ready()
        except DatabaseNotReady as exc:
            fail(str(exc))
        except Exception as exc:  # connection refused, bad URL
            fail(
                f"cannot open the database {settings.database_url}: {exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0]}; check OPSDESK_DATABASE_URL"
            )
    return db


def progress_bar() -> Progress:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    )


# --- init / serve ---------------------------------------------------------------


@app.command(
    epilog="Example: opsdesk init --model examples/operating-model.yaml --admin admin@example.com"
)
def init(
    model: Annotated[Path | None, typer.Option(help="Operating model YAML to apply.")] = None,
    admin: Annotated[str | None, typer.Option(help="E-mail of an admin user to create.")] = None,
) -> None:
    """Create or upgrade the database schema; optionally apply a model and create an admin."""
    db = open_db(ready=False)
    with errors():
        db.migrate()
        out.print(f"database ready at migration [bold]{db.current_revision()}[/]")
        _init_master_key()
        if model is not None:
            _apply(db, model, author="opsdesk init")
        if admin is not None:
            _create_admin(db, admin)


def _init_master_key() -> None:
    """Create the master key file (0600) unless OPSDESK_MASTER_KEY is set."""
    from opsdesk.settings import Settings
    from opsdesk.store.crypto import create_master_key_file

    settings = Settings()
    if settings.master_key is not None:
        out.print("master key: from OPSDESK_MASTER_KEY")
        return
    path = settings.master_key_path()
    if create_master_key_file(path):
        out.print(
            f"master key created at [bold]{path}[/] (mode 0600): back it up apart from the "
            "database; without it no personal field of the log can be read"
        )
    else:
        out.print(f"master key: {path}")


def _create_admin(db: Database, email: str) -> None:
    import secrets

    from opsdesk.desk import security, service
    from opsdesk.store.uow import UnitOfWork

    password = secrets.token_urlsafe(12)
    with UnitOfWork(db) as uow:
        user = service.create_user(
            uow, name="Administrator", email=email, roles=["admin"], teams=[]
        )
        security.set_password(uow, user.id, password)
        # the first admin's token may do everything, account management included
        token = security.create_token(uow, user.id, "init", scopes=security.SCOPES)
    out.print(f"admin login: [bold]{email}[/] / password [bold]{password}[/]")
    out.print(f"API token:   [bold]{token.token}[/]")


@app.command(epilog="Example: opsdesk serve --port 8000")
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (OPSDESK_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (OPSDESK_PORT).")] = None,
) -> None:
    """Serve the API (and OpenAPI docs) over HTTP."""
    import gc

    import uvicorn

    from opsdesk.api import create_app
    from opsdesk.settings import Settings

    settings = Settings()
    db = open_db()
    db.start_checkpointer()
    host = host or settings.host
    port = port or settings.port
    out.print(
        f"opsdesk serving on [bold]http://{host}:{port}[/] "
        f"(API under /api/v1, docs at /docs); Ctrl+C stops it"
    )
    scheduler = None
    if settings.jobs_run_inprocess():
        from opsdesk.jobs.scheduler import InProcessScheduler

        scheduler = InProcessScheduler(
            db,
            settings.jobs_interval,
            batch=settings.jobs_batch,
            max_attempts=settings.jobs_max_attempts,
        )
        scheduler.start()
        out.print(f"timers run in this process every {settings.jobs_interval:g} s")
        import signal

        # uvicorn re-raises SIGTERM once it has shut down: leave through the finally
        # below, so the timers finish their batch, and exit 0
        signal.signal(signal.SIGTERM, _exit_cleanly)
    api = create_app(settings, db)
    # what is loaded by now (libraries, routes, schemas) lives as long as the server: keep
    # it out of the collector's full passes, which walked all of it in 150-300 ms pauses
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(api, host=host, port=port, log_level=settings.log_level)
    finally:
        if scheduler is not None:
            scheduler.stop()


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


@app.command(
    epilog="Example: opsdesk worker --interval 5 (with OPSDESK_DATABASE_URL="
    "postgresql+psycopg://opsdesk@db/opsdesk); opsdesk worker --status"
)
def worker(
    interval: Annotated[
        float | None,
        typer.Option(min=0.01, help="Seconds between sweeps (OPSDESK_JOBS_INTERVAL)."),
    ] = None,
    batch: Annotated[
        int | None, typer.Option(min=1, help="Jobs per transaction (OPSDESK_JOBS_BATCH).")
    ] = None,
    once: Annotated[bool, typer.Option(help="Run one sweep, print what fired, exit.")] = False,
    status: Annotated[
        bool, typer.Option(help="Show what is due and every failed or dead job, then exit.")
    ] = False,
    retry_dead: Annotated[
        bool, typer.Option(help="Give dead jobs a fresh set of attempts, then exit.")
    ] = False,
    name: Annotated[str | None, typer.Option(help="Name in the logs (default: host:pid).")] = None,
) -> None:
    """Run the timers (SLA warnings and breaches, escalations, exception expiry,
    overflow) from the jobs outbox until SIGTERM or Ctrl+C. Run one or more next to the
    API processes on PostgreSQL; they never fire the same job twice."""
    import logging
    import os
    import signal
    import socket
    import threading

    from opsdesk.jobs import queries
    from opsdesk.jobs.outbox import run_due
    from opsdesk.jobs.scheduler import sweep_until_stopped
    from opsdesk.settings import Settings

    settings = Settings()
    db = open_db()
    max_attempts = settings.jobs_max_attempts
    if status:
        _print_jobs_status(queries.queue_status(db, max_attempts=max_attempts))
        return
    if retry_dead:
        count = queries.retry_dead(db, max_attempts=max_attempts)
        out.print(f"{count:,} dead job(s) will run at the next sweep")
        return
    label = name or f"{socket.gethostname()}:{os.getpid()}"
    interval = interval if interval is not None else settings.jobs_interval
    batch = batch or settings.jobs_batch
    if db.dialect == "sqlite" and not once:
        err.print(
            "[yellow]note:[/] on SQLite `opsdesk serve` already runs the timers in-process "
            "(OPSDESK_JOBS_INPROCESS); a separate worker is for PostgreSQL"
        )
    if once:
        with errors():
            result = run_due(db, batch=batch, worker=label, max_attempts=max_attempts)
        _print_sweep(result)
        if result.failed:
            raise typer.Exit(1)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    totals: dict[str, int] = {}

    def on_sweep(result: Any) -> None:
        if result.kinds():
            logging.getLogger("opsdesk.jobs").info("%s: %s", label, result.summary())
        for kind in result.kinds():
            totals[kind] = totals.get(kind, 0) + result.fired[kind] + result.noop[kind]

    err.print(f"worker {label}: sweeping every {interval:g} s; SIGTERM or Ctrl+C stops it")
    db.start_checkpointer()
    sweep_until_stopped(
        db,
        stop,
        interval=interval,
        batch=batch,
        worker=label,
        max_attempts=max_attempts,
        on_sweep=on_sweep,
    )
    db.dispose()
    done = ", ".join(f"{kind} {n:,}" for kind, n in sorted(totals.items())) or "no jobs"
    err.print(f"worker {label} stopped; ran {done}")


def new_table(title: str, **options: Any) -> Table:
    from rich.table import Table

    return Table(title=title, **options)


def _print_sweep(result: Any) -> None:
    table = new_table(f"one sweep by {result.worker} ({result.seconds:.2f} s)")
    for col in ("kind", "fired", "no-op", "failed"):
        table.add_column(col, justify="right" if col != "kind" else "left")
    for kind in result.kinds():
        table.add_row(
            kind, f"{result.fired[kind]:,}", f"{result.noop[kind]:,}", f"{result.failed[kind]:,}"
        )
    if result.kinds():
        out.print(table)
    else:
        out.print("nothing was due")


def _print_jobs_status(status: Any) -> None:
    kinds = sorted(set(status.due) | set(status.later) | set(status.dead))
    table = new_table("jobs outbox")
    for col in ("kind", "due now", "later", "dead"):
        table.add_column(col, justify="right" if col != "kind" else "left")
    for kind in kinds:
        table.add_row(
            kind,
            f"{status.due.get(kind, 0):,}",
            f"{status.later.get(kind, 0):,}",
            f"{status.dead.get(kind, 0):,}",
        )
    out.print(table if kinds else "the jobs outbox is empty")
    if status.next_run_at is not None:
        out.print(f"next job due at {status.next_run_at.isoformat(timespec='seconds')}")
    if status.failed:
        out.print("[bold]failed jobs[/] (dead ones are no longer retried):")
    for job in status.failed:
        when = "dead" if job.dead else f"retry at {job.run_at.isoformat(timespec='seconds')}"
        out.print(
            f"job {job.id} {job.kind} ticket {job.ticket_id or '-'} ref {job.ref!r}: "
            f"{job.attempts} attempt(s), {when}\n  {(job.last_error or '').splitlines()[0]}",
            highlight=False,
            soft_wrap=True,
        )
    if status.dead_total:
        raise typer.Exit(1)


# --- demo -----------------------------------------------------------------------


@app.command(epilog="Example: opsdesk demo --days 30 --seed 7 --reset")
def demo(
    days: Annotated[int, typer.Option(min=1, max=365, help="Days of operations to simulate.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same log.")] = 7,
    start: Annotated[
        str | None,
        typer.Option(help="First simulated day (YYYY-MM-DD); default: DAYS days before today."),
    ] = None,
    reset: Annotated[bool, typer.Option(help="Empty the database first.")] = False,
) -> None:
    """Build a fictional company from the example model and simulate N days of operations."""
    from opsdesk.demo import run_demo

    db = open_db(ready=False)
    with errors():
        if reset:
            _reset(db)
        db.migrate()
        from sqlalchemy import select

        from opsdesk.store import tables as t

        with db.read() as conn:
            if conn.execute(select(t.log_head.c.last_seq)).scalar():
                fail("the database already holds events; run with --reset to rebuild the demo")
        first = date.fromisoformat(start) if start else None
        db.start_checkpointer()
        with progress_bar() as bar:
            task = bar.add_task("simulating days", total=days)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            summary = run_demo(db, days=days, seed=seed, start=first, progress=progress)
        db.dispose()  # stops the checkpointer, which folds the WAL back into the file
    table = new_table(f"demo: {days} days, seed {seed}", show_header=False)
    for key in (
        "customers",
        "users",
        "tickets",
        "events",
        "messages",
        "transfers",
        "exceptions",
        "reopens",
        "csat_answers",
    ):
        table.add_row(key.replace("_", " "), f"{getattr(summary, key):,}")
    out.print(table)
    out.print(
        f"admin login: [bold]{summary.admin_email}[/] / password [bold]{summary.admin_password}[/]"
    )
    out.print(f"API token:   [bold]{summary.admin_token}[/]")


def _reset(db: Database) -> None:
    from sqlalchemy import MetaData

    if db.dialect == "sqlite":
        db.dispose()
        path = Path(db.engine.url.database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    meta = MetaData()
    meta.reflect(db.engine)
    meta.drop_all(db.engine)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS opsdesk_events_append_only()")
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS opsdesk_audit_append_only()")


# --- verify ---------------------------------------------------------------------


@app.command(epilog="Example: opsdesk verify")
def verify() -> None:
    """Replay the event log into fresh projections and compare with the live tables.

    Exit 0 when identical; exit 1 listing every difference.
    """
    from opsdesk.store.verify import verify as run_verify

    db = open_db()
    with progress_bar() as bar:
        task = bar.add_task("replaying events", total=None)
        report = run_verify(db, progress=lambda n: bar.update(task, completed=n))
        bar.update(task, completed=report.events, total=report.events)
    counts = ", ".join(f"{n:,} {k}" for k, n in report.counts.items())
    if report.ok:
        out.print(
            f"[green]ok[/]: {report.events:,} events replayed; projections identical ({counts})"
        )
        return
    for line in report.differences:
        out.print(line, highlight=False, soft_wrap=True)
    fail(f"{len(report.differences)} difference(s) between the event log and the tables")


# --- model ----------------------------------------------------------------------


@model_app.command("check", epilog="Example: opsdesk model check examples/operating-model.yaml")
def model_check(file: Path) -> None:
    """Check an operating model; print FILE:LINE:COL: error|warning: message per problem."""
    from opsdesk.model import check_file
    from opsdesk.settings import Settings

    problems = check_file(file, max_bytes=Settings().model_max_bytes)
    for problem in problems:
        out.print(problem.format(), highlight=False, soft_wrap=True)
    n_errors = sum(1 for p in problems if p.severity == "error")
    n_warnings = len(problems) - n_errors
    summary = f"{file}: {n_errors} error(s), {n_warnings} warning(s)"
    if n_errors:
        err.print(summary, highlight=False)
        raise typer.Exit(1)
    out.print(summary, highlight=False)


@model_app.command("diff", epilog="Example: opsdesk model diff old.yaml new.yaml")
def model_diff(
    old: Path,
    new: Path,
    as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False,
) -> None:
    """Print what changed between two models, grouped as added, removed and changed."""
    from opsdesk.model import diff_models, load_model_file, render_diff
    from opsdesk.settings import Settings

    loaded = []
    for path in (old, new):
        result = load_model_file(path, max_bytes=Settings().model_max_bytes)
        if result.model is None:
            first = next((p for p in result.problems if p.severity == "error"), None)
            fail(first.format() if first else f"{path}: cannot load the model")
        loaded.append(result.model)
    diff = diff_models(loaded[0], loaded[1])
    if as_json:
        out.print_json(json.dumps(diff.to_dict()))
    else:
        out.print(render_diff(diff), highlight=False, markup=False)


@model_app.command(
    "apply",
    epilog="Example: opsdesk model apply examples/operating-model.yaml --expire-exceptions",
)
def model_apply(
    file: Path,
    author: Annotated[str, typer.Option(help="Who applies it (recorded).")] = "cli",
    expire_exceptions: Annotated[
        bool,
        typer.Option(
            "--expire-exceptions",
            help="Expire open requests of exception types the new model removes "
            "(otherwise such a change is refused).",
        ),
    ] = False,
    restart_clocks: Annotated[
        bool,
        typer.Option(
            "--restart-clocks",
            help="Stop running SLA clocks of removed policies or calendars and start the "
            "clocks of each ticket's current policy from the same start (otherwise refused).",
        ),
    ] = False,
    requeue_jobs: Annotated[
        bool,
        typer.Option(
            "--requeue-jobs",
            help="Drop pending jobs naming removed teams or escalation paths and queue what "
            "the new model needs (otherwise refused).",
        ),
    ] = False,
) -> None:
    """Check, then store a new model version and put it in force (identical: no change).

    A model that would strand live work (tickets of removed request types or teams,
    open exception requests of removed types, running clocks of removed policies, jobs
    naming removed things) is refused with the list of what and how to proceed.
    """
    from opsdesk.desk.models import StrandedWork

    db = open_db()
    options = StrandedWork(
        expire_exceptions=expire_exceptions,
        restart_clocks=restart_clocks,
        requeue_jobs=requeue_jobs,
    )
    with errors():
        _apply(db, file, author=author, stranded=options)


def _apply(db: Database, file: Path, *, author: str, stranded: StrandedWork | None = None) -> None:
    from opsdesk.desk.models import ModelRejected, apply_model_file
    from opsdesk.model import short_version
    from opsdesk.settings import Settings
    from opsdesk.store.uow import UnitOfWork

    max_bytes = Settings().model_max_bytes
    try:
        with UnitOfWork(db) as uow:
            applied = apply_model_file(
                uow, file, author=author, stranded=stranded, max_bytes=max_bytes
            )
    except ModelRejected as exc:
        for problem in exc.problems:
            out.print(problem.format(), highlight=False, soft_wrap=True)
        fail(f"{file} has errors; nothing was applied")
    for warning in applied.warnings:
        out.print(warning.format(), highlight=False, soft_wrap=True)
    for line in applied.resolved:
        out.print(line, highlight=False)
    if applied.changed:
        out.print(f"applied [bold]{applied.name}[/] version {short_version(applied.version)}")
    else:
        out.print(f"unchanged: version {short_version(applied.version)} is already in force")


# --- users and tokens -------------------------------------------------------------


@user_app.command(
    "create",
    epilog="Example: opsdesk user create ana@example.com --name 'Ana Lima' "
    "--role agent --team billing --password-prompt",
)
def user_create(
    email: str,
    name: Annotated[str, typer.Option(help="Display name.")],
    role: Annotated[list[str], typer.Option(help="Role id (repeatable).")],
    team: Annotated[list[str] | None, typer.Option(help="Team id (repeatable).")] = None,
    skill: Annotated[list[str] | None, typer.Option(help="Skill (repeatable).")] = None,
    password_prompt: Annotated[bool, typer.Option(help="Ask for a password.")] = False,
) -> None:
    """Create a user with roles, teams and skills from the model in force."""
    from opsdesk.desk import security, service
    from opsdesk.store.uow import UnitOfWork

    db = open_db()
    password = (
        typer.prompt("password", hide_input=True, confirmation_prompt=True)
        if password_prompt
        else None
    )
    with errors(), UnitOfWork(db) as uow:
        user = service.create_user(
            uow, name=name, email=email, roles=role, teams=team or [], skills=skill or []
        )
        if password:
            security.set_password(uow, user.id, password)
    out.print(f"created user {user.id} <{user.email}>")


@user_app.command(
    "deactivate",
    epilog="Example: opsdesk user deactivate ana@example.com --reason 'left the company'",
)
def user_deactivate(
    email: str,
    reason: Annotated[str, typer.Option(help="Why (recorded in the event and audit trail).")],
) -> None:
    """Deactivate a user and revoke every token they hold, in one transaction; refused
    while they own open tickets (transfer them first)."""
    from opsdesk.desk import accounts
    from opsdesk.store.uow import UnitOfWork

    db = open_db()
    with errors(), UnitOfWork(db) as uow:
        account = _account(uow, email)
        if not account.active:
            fail(f"user {account.id} <{account.email}> is already deactivated")
        user, revoked = accounts.deactivate_user(uow, account.id, reason)
    out.print(
        f"deactivated user {user.id} <{user.email}>; revoked {len(revoked)} token(s)",
        highlight=False,
    )


@user_app.command("password", epilog="Example: opsdesk user password ana@example.com")
def user_password(email: str) -> None:
    """Set or change a user's password (asked twice, never echoed). A change revokes
    every token the user holds."""
    from opsdesk.desk import security
    from opsdesk.store.uow import UnitOfWork

    db = open_db()
    password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    with errors(), UnitOfWork(db) as uow:
        account = _account(uow, email)
        revoked = security.set_password(uow, account.id, password)
    out.print(
        f"password set for user {account.id} <{account.email}>; revoked {revoked} token(s)",
        highlight=False,
    )


def _account(uow: Any, email: str) -> Any:
    """The user with this e-mail, or one actionable line and exit 1."""
    account = uow.user_by_email(email)
    if account is None:
        fail(f"no user with e-mail {email}; `opsdesk user create` makes one")
    return account


class TokenScope(StrEnum):
    read = "read"
    write = "write"
    admin = "admin"


@token_app.command(
    "create",
    epilog="Example: opsdesk token create --user admin@example.com --name ci "
    "--scope read --expires-in 30d",
)
def token_create(
    user: Annotated[str, typer.Option(help="E-mail of the user the token acts as.")],
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "api",
    scope: Annotated[
        list[TokenScope] | None,
        typer.Option(
            help="read (GET routes), write (other routes), admin (users and tokens); "
            "repeatable. Default: read and write. Never more than the user's roles allow."
        ),
    ] = None,
    expires_in: Annotated[
        str | None,
        typer.Option(
            help="Lifetime, e.g. 30d, 12h or 1d12h (default OPSDESK_TOKEN_TTL_DAYS, at most "
            "OPSDESK_TOKEN_MAX_TTL_DAYS)."
        ),
    ] = None,
) -> None:
    """Create an API bearer token; it is shown once and stored only as a hash."""
    from datetime import timedelta

    from opsdesk.desk import security
    from opsdesk.model import parse_duration
    from opsdesk.settings import Settings
    from opsdesk.store.uow import UnitOfWork

    settings = Settings()
    lifetime = security.TokenLifetime.days(settings.token_ttl_days, settings.token_max_ttl_days)
    ttl = None
    if expires_in is not None:
        try:
            ttl = timedelta(minutes=parse_duration(expires_in))
        except ValueError:
            fail(f"--expires-in {expires_in!r} is not a duration like 30d, 12h or 1d12h")
    scopes = [s.value for s in scope] if scope else list(security.DEFAULT_SCOPES)
    db = open_db()
    with errors(), UnitOfWork(db) as uow:
        account = _account(uow, user)
        created = security.create_token(
            uow, account.id, name, scopes=scopes, expires_in=ttl, lifetime=lifetime
        )
    out.print(created.token, highlight=False)
    assert created.expires_at is not None
    err.print(
        f"token {created.id} ({', '.join(created.scopes)}) for {account.email}, expires "
        f"{created.expires_at.isoformat(timespec='seconds')}; it is not shown again",
        highlight=False,
    )


@token_app.command("list", epilog="Example: opsdesk token list --user ana@example.com")
def token_list(
    user: Annotated[str, typer.Option(help="E-mail of the user whose tokens to list.")],
) -> None:
    """List a user's tokens (never the tokens: id, name, prefix, scopes, dates, state)."""
    from datetime import UTC, datetime

    from opsdesk.desk import security

    db = open_db()
    with db.read() as conn:
        account = conn.execute(_user_by_email_sql(), {"email": user.strip().lower()}).first()
        if account is None:
            fail(f"no user with e-mail {user}; `opsdesk user create` makes one")
        tokens = security.tokens_of(conn, account.id)
    now = datetime.now(UTC)
    table = new_table(f"tokens of {account.email}")
    for col in ("id", "name", "prefix", "scopes", "created", "expires", "state"):
        table.add_column(col, justify="right" if col == "id" else "left")
    for tok in tokens:
        if tok.revoked_at is not None:
            state = f"revoked {tok.revoked_at:%Y-%m-%d} ({tok.revoked_reason or ''})"
        elif not tok.active(now):
            state = "expired"
        else:
            state = "active"
        expires = f"{tok.expires_at:%Y-%m-%d %H:%M}" if tok.expires_at else "-"
        table.add_row(
            str(tok.id),
            tok.name,
            tok.prefix,
            " ".join(tok.scopes),
            f"{tok.created_at:%Y-%m-%d %H:%M}",
            expires,
            state,
        )
    out.print(table if tokens else f"{account.email} has no tokens")


def _user_by_email_sql() -> Any:
    from sqlalchemy import bindparam, select

    from opsdesk.store import tables as t

    return select(t.users.c.id, t.users.c.email).where(t.users.c.email == bindparam("email"))


@token_app.command(
    "revoke",
    epilog="Example: opsdesk token revoke 12 --reason 'leaked in a CI log'; "
    "opsdesk token revoke --user ana@example.com --reason 'laptop stolen'",
)
def token_revoke(
    token_id: Annotated[
        int | None, typer.Argument(min=1, help="The token's id (`opsdesk token list`).")
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="Revoke every token of this user instead.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit trail).")] = "revoked",
) -> None:
    """Revoke a token (or every token of a user): it is refused from its next request."""
    from opsdesk.desk import security
    from opsdesk.domain.limits import MAX_ID
    from opsdesk.store.uow import UnitOfWork

    if (token_id is None) == (user is None):
        fail("name one token by id, or every token of a user with --user EMAIL")
    if token_id is not None and token_id > MAX_ID:
        fail(f"token {token_id} does not exist")
    db = open_db()
    with errors(), UnitOfWork(db) as uow:
        if user is not None:
            account = _account(uow, user)
            revoked = security.revoke_credentials(uow, account.id, reason=reason)
            done = f"revoked {len(revoked)} token(s) of {account.email}"
        else:
            assert token_id is not None
            info = security.revoke_token(uow, token_id, reason=reason)
            done = f"revoked token {info.id} ({info.name}) of user {info.user_id}"
    out.print(done, highlight=False)


# --- export -----------------------------------------------------------------------


class ExportFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


@export_app.command(
    "events", epilog="Example: opsdesk export events --format parquet -o events.parquet"
)
def export_events(
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="csv or parquet.")
    ] = ExportFormat.csv,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: stdout for csv).")
    ] = None,
    after_seq: Annotated[int, typer.Option(help="Only events after this seq.")] = 0,
) -> None:
    """Export the event log (seq order) as CSV or Parquet."""
    from opsdesk.desk.audit import record_export
    from opsdesk.store.export import EVENT_COLUMNS, event_batches

    db = open_db()
    details = {"format": fmt.value, "after_seq": after_seq}
    if fmt is ExportFormat.parquet:
        if output is None:
            fail("Parquet needs a file: add --output events.parquet")
        from opsdesk.store.export import write_parquet

        with db.read() as conn:
            n = write_parquet(conn, output, after_seq=after_seq)
        record_export(db, "events.exported", output=str(output), details={**details, "rows": n})
        err.print(f"wrote {n:,} events to {output}")
        return
    handle = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        writer = csv.writer(handle)
        writer.writerow(EVENT_COLUMNS)
        n = 0
        with db.read() as conn:
            for batch in event_batches(conn, after_seq=after_seq):
                writer.writerows(batch)
                n += len(batch)
    finally:
        if output:
            handle.close()
    record_export(
        db,
        "events.exported",
        output=str(output) if output else None,
        details={**details, "rows": n},
    )
    if output:
        err.print(f"wrote {n:,} events to {output}")


# --- audit trail --------------------------------------------------------------------


@audit_app.command("verify", epilog="Example: opsdesk audit verify")
def audit_verify() -> None:
    """Re-hash the audit trail and check every link and the head.

    Exit 0 with the row count; exit 1 naming the first row that was edited, inserted
    or deleted.
    """
    from opsdesk.desk.audit import verify_chain

    db = open_db()
    report = verify_chain(db)
    if report.ok:
        out.print(f"[green]ok[/]: {report.rows:,} audit rows, chain intact up to the head")
        return
    fail(f"the audit trail was tampered with: {report.problem}")


@audit_app.command(
    "export", epilog="Example: opsdesk audit export --since 1200 --output audit.jsonl"
)
def audit_export(
    since: Annotated[int, typer.Option(help="Only rows after this seq.")] = 0,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: stdout).")
    ] = None,
) -> None:
    """Write the audit trail as JSON lines for a SIEM (hash and prev_hash included);
    the export itself is recorded in the trail."""
    from opsdesk.desk.audit import export_json_lines, record_export

    db = open_db()
    with errors():
        handle = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            n = export_json_lines(db, handle, since=since)
        finally:
            if output:
                handle.close()
        record_export(
            db,
            "audit.exported",
            output=str(output) if output else None,
            details={"since": since, "rows": n},
        )
    if output:
        err.print(f"wrote {n:,} audit rows to {output}")


# --- personal data: erasure and retention ----------------------------------------------

customer_app = typer.Typer(help="Customers' personal data.", no_args_is_help=True)
retention_app = typer.Typer(help="Retention of message bodies.", no_args_is_help=True)
app.add_typer(customer_app, name="customer")
app.add_typer(retention_app, name="retention")


@customer_app.command(
    "erase", epilog="Example: opsdesk customer erase 42 --reason 'request #881' --dry-run"
)
def customer_erase(
    customer_id: Annotated[int, typer.Argument(help="Id of the customer to erase.")],
    reason: Annotated[str, typer.Option(help="Why (a ticket or request reference).")] = "",
    dry_run: Annotated[
        bool, typer.Option(help="Show what would be erased; change nothing.")
    ] = False,
) -> None:
    """Erase a customer's personal data (name, handles, ticket subjects, message bodies),
    with every customer merged with it: their data keys are destroyed, so the log keeps
    its events but their personal fields read [erased]. Irreversible; idempotent."""
    from opsdesk.desk import privacy

    db = open_db()
    with errors():
        plan = privacy.erase(db, customer_id, reason=reason, dry_run=dry_run)
    what = (
        f"{plan.keys_destroyed} data keys destroyed, {plan.names_blanked} names and "
        f"{plan.tickets_blanked} ticket subjects and {plan.messages_blanked} message bodies "
        f"blanked, {plan.handles_removed} handles removed, "
        f"{plan.cached_responses_dropped} cached API responses dropped"
    )
    ids = ", ".join(map(str, plan.customer_ids))
    if plan.nothing_to_do:
        out.print(f"customer {customer_id} (customers {ids}): already erased, nothing to do")
    elif dry_run:
        out.print(f"dry run, nothing changed: erasing customers {ids} would mean {what}")
    else:
        out.print(f"erased customers {ids}: {what}")


@retention_app.command(
    "apply", epilog="Example: opsdesk retention apply --older-than-days 365 --dry-run"
)
def retention_apply(
    older_than_days: Annotated[
        int | None,
        typer.Option(
            help="Age in days (default: OPSDESK_RETENTION_MESSAGE_DAYS).", min=1, max=36_500
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Show what would be purged; change nothing.")
    ] = False,
) -> None:
    """Purge message bodies of the calendar months that ended more than the age ago (their
    monthly data keys are destroyed; names, handles and subjects stay)."""
    from opsdesk.desk import privacy
    from opsdesk.settings import Settings

    days = older_than_days or Settings().retention_message_days
    if days is None:
        fail("no retention age: give --older-than-days or set OPSDESK_RETENTION_MESSAGE_DAYS")
    db = open_db()
    with errors():
        plan = privacy.retention(db, days, dry_run=dry_run)
    what = (
        f"bodies of messages before {plan.before:%Y-%m-%d} (older than {days} days, whole "
        f"months): {plan.keys_destroyed} monthly keys destroyed, {plan.messages_blanked} "
        f"message bodies blanked, {plan.cached_responses_dropped} cached API responses dropped"
    )
    if plan.messages_unsealed:
        what += (
            f"; {plan.messages_unsealed} older bodies were written before encryption and "
            "stay in the log"
        )
    if plan.nothing_to_do:
        out.print(f"nothing to purge: {what}")
    elif dry_run:
        out.print(f"dry run, nothing changed: would purge {what}")
    else:
        out.print(f"purged {what}")


# --- business calendars -------------------------------------------------------------

calendar_app = typer.Typer(
    help="Business-time arithmetic on the model's calendars.", no_args_is_help=True
)
app.add_typer(calendar_app, name="calendar")
ModelOption = Annotated[
    Path | None, typer.Option("--model", help="Model file (default: the model in force).")
]


def _calendar(calendar_id: str, model_file: Path | None) -> Any:
    from opsdesk.sla import BusinessCalendar

    if model_file is not None:
        model = _load_model(model_file)
    else:
        with errors():
            model = open_db().model_in_force()[1]
    try:
        return BusinessCalendar.from_model(model.calendar(calendar_id))
    except KeyError:
        known = ", ".join(c.id for c in model.calendars)
        fail(f"no calendar {calendar_id!r} in the model; it has {known}")


def _instant(text: str, zone: Any) -> Any:
    from datetime import datetime

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{text!r} is not an ISO 8601 time, e.g. 2026-12-24T16:30 or 2026-12-24T16:30Z")
    # a time without an offset is wall-clock time in the calendar's zone
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


@calendar_app.command("add", epilog="Example: opsdesk calendar add uk_site 2026-12-24T15:00 4h")
def calendar_add(calendar: str, start: str, duration: str, model: ModelOption = None) -> None:
    """The instant DURATION of business time after START (times without an offset are
    local to the calendar)."""
    from datetime import UTC

    from opsdesk.model import parse_duration
    from opsdesk.sla import BusinessTimeError

    cal = _calendar(calendar, model)
    try:
        minutes = parse_duration(duration)
    except ValueError as exc:
        fail(f"{duration!r} is not a duration like 90m, 4h, 2d or 1h30m ({exc})")
    try:
        due = cal.add(_instant(start, cal.zone), minutes)
    except BusinessTimeError as exc:
        fail(str(exc))
    out.print(f"{due.astimezone(UTC).isoformat()}  (UTC)", highlight=False)
    out.print(f"{due.astimezone(cal.zone).isoformat()}  ({calendar}, local)", highlight=False)


@calendar_app.command(
    "between", epilog="Example: opsdesk calendar between uk_site 2026-12-24T09:00 2026-12-29T12:00"
)
def calendar_between(calendar: str, start: str, end: str, model: ModelOption = None) -> None:
    """The business minutes between START and END."""
    from opsdesk.sla import BusinessTimeError

    cal = _calendar(calendar, model)
    try:
        span = cal.between(_instant(start, cal.zone), _instant(end, cal.zone))
    except BusinessTimeError as exc:
        fail(str(exc))
    minutes = span.total_seconds() / 60
    out.print(f"{minutes:g} business minutes ({minutes / 60:.2f} h)", highlight=False)


# --- import and diagnose -----------------------------------------------------------

MappingOption = Annotated[str | None, typer.Option(show_default=False)]
# the mapping flags, named as ColumnMapping's fields
MAPPED_COLUMNS = (
    "case",
    "time",
    "activity",
    "team",
    "agent",
    "status",
    "customer",
    "channel",
    "category",
    "priority",
    "made_sla",
)
AttrOption = Annotated[list[str] | None, typer.Option(help="Extra attribute NAME=COLUMN.")]
TimeFormatOption = Annotated[str | None, typer.Option(help="strptime format, e.g. %d/%m/%Y %H:%M.")]
TzOption = Annotated[str, typer.Option(help="Time zone of naive times.")]
StatusMapOption = Annotated[
    Path | None, typer.Option(help="Status map file (source,status or YAML).")
]
RejectsOption = Annotated[Path | None, typer.Option(help="Where to write rejected rows.")]
MaxRejectsOption = Annotated[int | None, typer.Option(help="Fail beyond this many rejects.")]
PresetOption = Annotated[str | None, typer.Option(help="Column preset: servicenow.")]
MaxBytesOption = Annotated[
    int | None,
    typer.Option(
        min=1, help="Refuse a log larger than this (default OPSDESK_IMPORT_MAX_BYTES, 32 GiB)."
    ),
]


def _import_options(
    *,
    preset: str | None,
    columns: dict[str, str | None],
    attr: list[str] | None,
    time_format: str | None,
    tz: str,
    status_map: Path | None,
    max_rejects: int | None,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """The keyword arguments of import_log from the shared import flags (the importer
    merges single mapping flags over a preset's mapping)."""
    from opsdesk.analytics.importers import parse_attr_specs

    with errors():
        attrs = parse_attr_specs(attr or [])
    given = {name: column for name, column in columns.items() if column is not None}
    return {
        "preset": preset,
        "columns": given or None,
        "attrs": attrs or None,
        "status_map": status_map,
        "time_format": time_format,
        "tz": tz,
        "max_rejects": max_rejects,
        "max_bytes": max_bytes or _import_max_bytes(),
    }


def _import_max_bytes() -> int:
    """OPSDESK_IMPORT_MAX_BYTES, read through the settings only when it is set (they cost
    a tenth of a second to import, which a file's diagnostic otherwise never pays)."""
    import os

    from opsdesk.analytics.importers.core import MAX_LOG_BYTES

    if "OPSDESK_IMPORT_MAX_BYTES" not in os.environ:
        return MAX_LOG_BYTES
    from opsdesk.settings import Settings

    return Settings().import_max_bytes


def _report_import(source: Path, result: Any, rejects: Path | None) -> None:
    line = f"{source}: {result.accounting()}; {result.events:,} events of {result.cases:,} cases"
    if result.rejected:
        line += f"; rejected rows and why: {rejects}"
    err.print(line, highlight=False, soft_wrap=True)
    if result.status_map_draft is not None:
        from opsdesk.analytics.importers.statusmap import describe

        err.print(
            f"statuses not in the status map: {describe(result.unmapped)}; a status map to "
            f"edit is in {result.status_map_draft}: check the guesses, replace each TODO, "
            f"then pass --status-map {result.status_map_draft}",
            highlight=False,
            soft_wrap=True,
        )


@app.command(
    "import",
    epilog="Example: opsdesk import incidents.csv.gz --preset servicenow -o incidents.parquet",
)
def import_cmd(
    source: Path,
    output: Annotated[Path, typer.Option("--output", "-o", help="Parquet file to write.")],
    preset: PresetOption = None,
    case: MappingOption = None,
    time: MappingOption = None,
    activity: MappingOption = None,
    team: MappingOption = None,
    agent: MappingOption = None,
    status: MappingOption = None,
    customer: MappingOption = None,
    channel: MappingOption = None,
    category: MappingOption = None,
    priority: MappingOption = None,
    made_sla: MappingOption = None,
    attr: AttrOption = None,
    time_format: TimeFormatOption = None,
    tz: TzOption = "UTC",
    status_map: StatusMapOption = None,
    rejects: RejectsOption = None,
    max_rejects: MaxRejectsOption = None,
    max_bytes: MaxBytesOption = None,
) -> None:
    """Import a CSV, Parquet or XES event log (gzip too) into opsdesk's case-event format."""
    from opsdesk.analytics.importers import import_log

    columns = {k: v for k, v in locals().items() if k in MAPPED_COLUMNS}
    options = _import_options(
        preset=preset,
        columns=columns,
        attr=attr,
        time_format=time_format,
        tz=tz,
        status_map=status_map,
        max_rejects=max_rejects,
        max_bytes=max_bytes,
    )
    with errors(), progress_bar() as bar:
        task = bar.add_task(f"importing {source.name}", total=None)
        result = import_log(
            source,
            output,
            rejects=rejects,
            progress=lambda stage: bar.update(task, description=f"{source.name}: {stage}"),
            **options,
        )
    _report_import(source, result, result.rejects_path)


@app.command(
    epilog="Example: opsdesk diagnose incidents.csv.gz --preset servicenow "
    "--html report.html --json report.json"
)
def diagnose(
    source: Annotated[
        Path | None, typer.Argument(help="Log file to import; default: the opsdesk database.")
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the JSON report here.")
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="Operating model for path deviation "
            "(default for the database: the model in force)."
        ),
    ] = None,
    preset: PresetOption = None,
    case: MappingOption = None,
    time: MappingOption = None,
    activity: MappingOption = None,
    team: MappingOption = None,
    agent: MappingOption = None,
    status: MappingOption = None,
    customer: MappingOption = None,
    channel: MappingOption = None,
    category: MappingOption = None,
    priority: MappingOption = None,
    made_sla: MappingOption = None,
    attr: AttrOption = None,
    time_format: TimeFormatOption = None,
    tz: TzOption = "UTC",
    status_map: StatusMapOption = None,
    rejects: RejectsOption = None,
    max_rejects: MaxRejectsOption = None,
    max_bytes: MaxBytesOption = None,
) -> None:
    """Rank where operations force improvisation: KPIs and friction findings, as HTML/JSON.

    Reads the opsdesk database, a case-event Parquet file written by `opsdesk import` as
    it is, or any other event log, imported on the way with the import flags.
    """
    from opsdesk.analytics import service

    columns = {k: v for k, v in locals().items() if k in MAPPED_COLUMNS}
    # the terminal shows no backlog, handoff map or example cases: only a report needs them
    summary_only = html is None and json_out is None
    timing = None
    operating_model = _load_model(model) if model is not None else None
    with errors(), progress_bar() as bar:
        task = bar.add_task("diagnosing", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if source is None:
            result = service.diagnose_database(
                open_db(),
                model=operating_model,
                progress=progress,
                read_progress=lambda n: bar.update(task, description=f"reading {n:,} events"),
                summary_only=summary_only,
            )
        else:
            options = _import_options(
                preset=preset,
                columns=columns,
                attr=attr,
                time_format=time_format,
                tz=tz,
                status_map=status_map,
                max_rejects=max_rejects,
                max_bytes=max_bytes,
            )
            outcome = service.diagnose_file(
                source,
                model=operating_model,
                rejects=rejects,
                progress=progress,
                import_progress=lambda stage: bar.update(task, description=stage),
                summary_only=summary_only,
                **options,
            )
            if outcome.imported is not None:
                _report_import(source, outcome.imported, outcome.rejects)
            result = outcome.diagnosis
            done = "diagnosed" if outcome.imported is None else "imported and diagnosed"
            timing = f"{source.name}: {done} in {outcome.seconds:.2f} s"
        if html is not None or json_out is not None:
            # the report module pulls in matplotlib: only when a report is asked for
            from opsdesk.analytics.report import write_reports

            write_reports(result, html=html, json=json_out)
    if timing is not None:
        err.print(timing, highlight=False)
    _print_diagnosis(result)
    for path in (html, json_out):
        if path is not None:
            out.print(f"wrote {path}")


#: findings listed by `diagnose` on the terminal (the reports have them all)
CLI_FINDINGS = 10


def _print_diagnosis(result: Any) -> None:
    """Summary, overall KPIs (unavailable ones with their reason), the top findings with
    their units and baselines, the kinds this log cannot measure, and the fix-first list."""
    from opsdesk.analytics.findings import BASELINE_LABELS
    from opsdesk.analytics.kpis import KPI_COLUMNS, lookup
    from opsdesk.analytics.report.format import fmt_hours, fmt_percent, fmt_value, humanize
    from opsdesk.analytics.results import HOURS_PER_TOUCH

    s = result.summary
    out.print(
        f"{s.cases:,} cases, {s.events:,} events, {s.teams:,} teams; "
        f"{len(result.findings)} findings",
        highlight=False,
    )
    overall = lookup(result.kpis, "overall", "all")
    if overall is not None and s.cases:
        kpis = new_table("KPIs, all cases", title_justify="left")
        kpis.add_column("KPI")
        kpis.add_column("value", overflow="fold")
        for name in KPI_COLUMNS:
            if name in result.unavailable_kpis:
                kpis.add_row(humanize(name), f"unavailable: {result.unavailable_kpis[name]}")
            elif name in overall:
                kpis.add_row(humanize(name), fmt_value(overall[name], name))
        out.print(kpis)
    if result.findings:
        shown = result.findings[:CLI_FINDINGS]
        more = ""
        if len(result.findings) > len(shown):
            more = f" (top {len(shown)} of {len(result.findings)})"
        table = new_table(
            f"Findings{more}, cost in hours = extra elapsed hours + {HOURS_PER_TOUCH} h per "
            "extra touch",
            title_justify="left",
        )
        for column in ("#", "kind", "where"):
            table.add_column(column, justify="right" if column == "#" else "left")
        for column in ("cases", "share", "extra elapsed h", "extra touches", "cost h"):
            table.add_column(column, justify="right")
        table.add_column("priced against")
        for rank, f in enumerate(shown, 1):
            table.add_row(
                str(rank),
                humanize(f.kind),
                f.where or f.segment,
                f"{f.cases:,}",
                fmt_percent(f.share),
                fmt_hours(f.extra_hours),
                fmt_hours(f.extra_touches),
                fmt_hours(f.cost),
                BASELINE_LABELS.get(f.baseline, f.baseline),
            )
        out.print(table)
    for kind, reason in result.not_measurable.items():
        out.print(
            f"Not measurable on this log: {humanize(kind).lower()}: {reason}.",
            highlight=False,
            soft_wrap=True,
        )
    for i, sentence in enumerate(result.fix_first, 1):
        out.print(f"{i}. {sentence}", highlight=False, soft_wrap=True)


def _load_model(path: Path) -> Any:
    """The operating model in a file, or one actionable line and exit 1."""
    from opsdesk.model import load_model_file
    from opsdesk.settings import Settings

    loaded = load_model_file(path, max_bytes=Settings().model_max_bytes)
    if loaded.model is None:
        fail(next((p.format() for p in loaded.problems), f"{path}: cannot load the model"))
    return loaded.model


def main() -> None:
    app()


if __name__ == "__main__":
    main()
