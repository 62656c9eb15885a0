"""Engine set-up, migrations and the in-force operating model cache."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.engine import make_url

from opsdesk.domain.errors import NoModelInForce
from opsdesk.model import OperatingModel
from opsdesk.store import tables as t
from opsdesk.store.errors import DatabaseNotReady as DatabaseNotReady  # re-exported
from opsdesk.store.rowcache import RowCache

# Writers leave WAL checkpoints (which fsync) to a background thread when one runs; this
# automatic checkpoint is the safety net that bounds the WAL when none does.
WAL_AUTOCHECKPOINT_PAGES = 16_384


def make_engine(url: str, *, busy_timeout_ms: int = 30_000) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and explicit BEGIN IMMEDIATE writes."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # let SQLAlchemy's begin event decide the transaction mode (pysqlite's own
            # implicit BEGIN is deferred, which deadlocks two writers upgrading locks)
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            driver: Any = conn.connection.driver_connection
            if driver.in_transaction:
                # the unit of work began it on the driver: SQLAlchemy's transaction joins
                return
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            # straight to the driver: this runs for every transaction
            driver.execute(f"BEGIN {mode}")

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


def alembic_config(engine: Engine | None = None) -> Config:
    """Alembic configuration pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("opsdesk.store") / "migrations"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


class Database:
    """One application database: engine, migrations and the model in force."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 30_000) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout_ms=busy_timeout_ms)
        self.dialect = self.engine.dialect.name
        self._models: dict[str, OperatingModel] = {}
        self._lock = threading.Lock()
        self.busy_timeout_ms = busy_timeout_ms
        # SQLite has one writer at a time; threads of this process queue here for it
        # rather than in SQLite's busy handler, which sleeps in steps of up to 100 ms
        self.write_lock = threading.Lock() if self.dialect == "sqlite" else None
        # ... and, holding it, use one connection that stays open: checking a connection
        # out of the pool and back (with its reset) cost a fifth of a small command
        self._writer: Connection | None = None
        #: the rows that connection last committed (see ``opsdesk.store.rowcache``)
        self.row_cache = RowCache()

    # --- schema ---------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the latest migration (creating it when empty)."""
        command.upgrade(alembic_config(self.engine), "head")

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def ensure_ready(self) -> None:
        """Refuse to work on a database that is not at the latest migration."""
        current = self.current_revision()
        if current is None:
            raise DatabaseNotReady(
                f"the database {self.engine.url.render_as_string()} has no opsdesk schema; "
                "run `opsdesk init`"
            )
        if current != head_revision():
            raise DatabaseNotReady(
                f"the database is at migration {current}, opsdesk needs {head_revision()}; "
                "run `opsdesk init` to upgrade it"
            )

    # --- connections ------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (SQLite: deferred, so readers never block writers)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="DEFERRED")
            with conn.begin():
                yield conn

    def writer(self) -> Connection:
        """The SQLite write connection; only with :attr:`write_lock` held."""
        if self._writer is None or self._writer.closed or self._writer.invalidated:
            self._writer = self.engine.connect()
        return self._writer

    def drop_writer(self) -> None:
        """Close the SQLite write connection (after an error that may have left it in an
        unknown state, or on the way out); the next writer opens a fresh one."""
        writer, self._writer = self._writer, None
        self.row_cache = RowCache()  # it described that connection's commits
        if writer is not None:
            try:
                writer.close()
            except Exception:  # it is being thrown away either way
                writer.invalidate()

    # --- operating model --------------------------------------------------------

    def model(self, conn: Connection, version: str | None) -> OperatingModel:
        """The operating model of ``version`` (cached; versions never change)."""
        if version is None:
            raise NoModelInForce()
        cached = self._models.get(version)
        if cached is not None:
            return cached
        canonical = conn.execute(
            select(t.model_versions.c.canonical).where(t.model_versions.c.version == version)
        ).scalar_one()
        model = OperatingModel.model_validate(json.loads(canonical))
        with self._lock:
            self._models[version] = model
        return model

    def model_in_force(self) -> tuple[str, OperatingModel]:
        """The version in force and its model, or :class:`NoModelInForce`."""
        with self.read() as conn:
            version = conn.execute(select(t.log_head.c.model_version)).scalar()
            return version or "", self.model(conn, version)

    # --- SQLite checkpoints ---------------------------------------------------------

    def start_checkpointer(self, interval: float = 0.5) -> None:
        """Checkpoint the SQLite WAL from a background thread, so the fsync a checkpoint
        needs happens off the write path (long-running processes: serve, demo, workers)."""
        if self.dialect != "sqlite" or getattr(self, "_checkpointer", None) is not None:
            return
        stop = threading.Event()
        database = self.engine.url.database

        def run() -> None:
            import sqlite3

            conn = sqlite3.connect(database or ":memory:", isolation_level=None)
            try:
                while not stop.wait(interval):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                # on the way out, also shrink the WAL file back (a no-op while readers remain)
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()

        thread = threading.Thread(target=run, name="opsdesk-wal-checkpoint", daemon=True)
        self._checkpointer: tuple[threading.Thread, threading.Event] | None = (thread, stop)
        thread.start()

    def stop_checkpointer(self) -> None:
        checkpointer = getattr(self, "_checkpointer", None)
        if checkpointer is not None:
            thread, stop = checkpointer
            stop.set()
            thread.join(timeout=10)
            self._checkpointer = None

    def dispose(self) -> None:
        self.stop_checkpointer()
        if self.write_lock is not None:
            with self.write_lock:
                self.drop_writer()
        self.engine.dispose()
