"""`make bench`: throughput of the domain layer and replay speed, with their baselines.

Prints figures beside their targets (issue #10): on SQLite, with every reaction on, at
least 500 lifecycles/s per unit of work and 300/s one command per transaction, each at
least 0.35 of raw inserts of the same rows; replay >= 100,000 events/s; 300 ticket writes/s
through the HTTP API with 8 clients. Copy the tables into docs/benchmarks.md with the
commit and the command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import create_engine, text

from bench import lifecycle, replay
from opsdesk.store.db import Database

PG_ADMIN = os.environ.get(
    "OPSDESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
console = Console(width=130)


def sqlite_db(workdir: Path, name: str) -> Database:
    path = workdir / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = Database(f"sqlite:///{path}")
    db.migrate()
    # as `opsdesk serve` and the demo run it: WAL checkpoints (and their fsync) happen in
    # a background thread, not inside some unlucky writer's commit
    db.start_checkpointer()
    return db


class PgDatabases:
    """Throw-away PostgreSQL databases for the PostgreSQL leg."""

    def __init__(self) -> None:
        self.admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        self.names: list[str] = []

    def new(self) -> Database:
        name = f"opsdesk_bench_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.names.append(name)
        db = Database(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)
        db.migrate()
        return db

    def close(self) -> None:
        with self.admin.connect() as conn:
            for name in self.names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lifecycles", type=int, default=2000)
    parser.add_argument(
        "--replay-lifecycles",
        type=int,
        default=12000,
        help="lifecycles written to build the log replayed (about 10 events each)",
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--only",
        choices=["core", "api", "diagnostic", "timers", "routing"],
        default=None,
        help="run one part only",
    )
    parser.add_argument(
        "--timer-tickets", type=int, default=1_000_000, help="open tickets for the timer sweep"
    )
    parser.add_argument(
        "--timers",
        choices=["sla", "exception"],
        default="sla",
        help="timers swept: SLA clocks, or exception expiry (builds without SLA timers)",
    )
    parser.add_argument(
        "--factors",
        default="1,10,100",
        help="replications of the ServiceNow log for the diagnostic",
    )
    parser.add_argument("--pm4py-timeout", type=float, default=900.0)
    parser.add_argument("--routing-decisions", type=int, default=20_000)
    args = parser.parse_args()
    if args.only in (None, "core"):
        from bench import cli_start

        cli_start.report(console)
        core(args)
    if args.only in (None, "api"):
        from bench import api

        api.report(console)
    if args.only in (None, "diagnostic"):
        diagnostic_part(args)
    if args.only in (None, "timers") and not args.no_postgres:
        from bench import timers

        timers.report(args, PgDatabases(), console)
    if args.only in (None, "routing"):
        from bench import routing

        routing.run(args, console, sqlite_db, None if args.no_postgres else PgDatabases())


def diagnostic_part(args: argparse.Namespace) -> None:
    from bench import diagnostic

    diagnostic.report(args, console)


def core(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="opsdesk-bench-"))
    pg = None if args.no_postgres else PgDatabases()
    rows = []
    try:
        with Progress(console=console, transient=True) as progress:
            backends = ["sqlite"] + ([] if pg is None else ["postgresql"])
            task = progress.add_task("lifecycles", total=len(backends) * 2)
            for backend in backends:
                for mode in ("per_command", "per_lifecycle"):
                    db = sqlite_db(workdir, mode) if backend == "sqlite" else pg.new()  # type: ignore[union-attr]
                    progress.update(task, description=f"{backend} {mode}")
                    rows.append((backend, lifecycle.measure(db, args.lifecycles, mode)))
                    db.dispose()
                    progress.advance(task)
            progress.update(task, description="building a log to replay")
            db = sqlite_db(workdir, "replay")
            a, b, c = lifecycle.setup(db)
            for _ in range(args.replay_lifecycles):
                lifecycle.lifecycle_one_unit(db, a, b, c)
            progress.update(task, description="replaying")
            rep = replay.measure(db)
            db.dispose()
    finally:
        if pg is not None:
            pg.close()
        shutil.rmtree(workdir, ignore_errors=True)

    table = Table(
        title="ticket lifecycles (create + 3 replies + transfer + solve; accept included)"
    )
    for col in (
        "database",
        "transactions",
        "lifecycles/s",
        "raw inserts, same rows/s",
        "domain / raw",
        "target",
    ):
        table.add_column(col, justify="right")
    for backend, r in rows:
        target = ""
        if backend == "sqlite":
            floor = 500 if r.mode == "per_lifecycle" else 300
            met = r.rate >= floor and r.rate / r.raw_rate >= 0.35
            target = f">= {floor}/s and >= 0.35: {'met' if met else 'NOT met'}"
        table.add_row(
            backend,
            r.mode.replace("_", " "),
            f"{r.rate:,.0f}",
            f"{r.raw_rate:,.0f}",
            f"{r.rate / r.raw_rate:.2f}",
            target,
        )
    console.print(table)
    t2 = Table(title=f"replay of {rep.events:,} events (SQLite)")
    for col in ("what", "seconds", "events/s", "target"):
        t2.add_column(col, justify="right")
    t2.add_row(
        "projection fold (events in memory)",
        f"{rep.fold_seconds:.2f}",
        f"{rep.fold_rate:,.0f}",
        ">= 100,000/s",
    )
    t2.add_row("read log + fold", f"{rep.read_fold_seconds:.2f}", f"{rep.read_fold_rate:,.0f}", "")
    t2.add_row(
        "whole `opsdesk verify`",
        f"{rep.verify_seconds:.2f}",
        f"{rep.events / rep.verify_seconds:,.0f}",
        "",
    )
    console.print(t2)


if __name__ == "__main__":
    main()
