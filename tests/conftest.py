"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL is used whenever it is reachable (OPSDESK_TEST_PG_URL, default
127.0.0.1:5432). With OPSDESK_REQUIRE_POSTGRES=1 (set by `make test`, hence CI) an
unreachable server fails the run instead of skipping those tests.

Tests that read the shared real data (``../shared/data/``) carry
``@pytest.mark.data("FILE")``: they skip, naming the file, when it is absent, and fail
instead when OPSDESK_REQUIRE_DATA=1 (set by `.ci/run`).

Hypothesis runs under the ``suite`` profile: no shrinking, so a failure reports within
seconds (with the seed and a blob to reproduce it) instead of spending minutes on a
smaller example. `make soak` loads ``soak``: shrinking on, ``OPSDESK_SOAK_FACTOR`` times
the examples (see :func:`examples`), a random seed per run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, settings
from sqlalchemy import create_engine, text

from opsdesk.model import example_model_path
from opsdesk.store import tables as t
from opsdesk.store.audit import GENESIS
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

settings.register_profile(
    "suite", phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target], print_blob=True
)
settings.register_profile("soak", print_blob=True)
settings.load_profile(os.environ.get("OPSDESK_HYPOTHESIS_PROFILE", "suite"))


def examples(n: int) -> int:
    """``max_examples`` for a property test: ``n``, times OPSDESK_SOAK_FACTOR under soak."""
    return n * max(1, int(os.environ.get("OPSDESK_SOAK_FACTOR", "1")))


SHARED_DATA = Path(
    os.environ.get("OPSDESK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def shared_data(name: str) -> Path:
    """A file of the shared real data; mark the test ``@pytest.mark.data(name)``."""
    return SHARED_DATA / name


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "data(name): reads ../shared/data/NAME; skipped (or failed) when absent"
    )


def require_data(path: Path) -> Path:
    """``path`` when the file is there; else skip, naming it, or fail under
    OPSDESK_REQUIRE_DATA=1 (CI, where the shared data must be present)."""
    if path.is_file():
        return path
    message = f"{path} is missing (the shared real data, see its README.md)"
    if os.environ.get("OPSDESK_REQUIRE_DATA") == "1":
        pytest.fail(f"{message}; OPSDESK_REQUIRE_DATA=1 requires it", pytrace=False)
    pytest.skip(message)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("data"):
        require_data(shared_data(mark.args[0]))


PG_ADMIN_URL = os.environ.get(
    "OPSDESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _pg_reachable() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    if not _pg_reachable():
        if os.environ.get("OPSDESK_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but not reachable at {PG_ADMIN_URL}")
        pytest.skip("PostgreSQL not reachable")
    name = f"opsdesk_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    db.migrate()
    db.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_pg(db: Database) -> None:
    names = ", ".join(f'"{tbl.name}"' for tbl in t.metadata.sorted_tables)
    with db.engine.begin() as conn:
        # the append-only trigger refuses TRUNCATE; tests may bypass it, nothing else does
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(t.log_head.insert().values(id=1, last_seq=0, counters={}))
        conn.execute(t.audit_head.insert().values(id=1, last_seq=0, last_hash=GENESIS))


def fresh_database(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], Database]:
    """A factory of empty databases with the example model in force (for hypothesis,
    which needs a fresh database per example rather than per test)."""
    from opsdesk.desk.models import apply_model_file

    template = request.getfixturevalue("sqlite_template")
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None

    def make() -> Database:
        if url is None:
            path = tmp_path_factory.mktemp("example") / "opsdesk.db"
            shutil.copy(template, path)
            database = Database(f"sqlite:///{path}")
        else:
            database = Database(url)
            _reset_pg(database)
        with UnitOfWork(database) as uow:
            apply_model_file(uow, example_model_path(), author="tests")
        return database

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    """An empty, migrated database: a fresh SQLite file or a truncated PostgreSQL one."""
    if request.param == "sqlite":
        path = tmp_path / "opsdesk.db"
        shutil.copy(sqlite_template, path)
        database = Database(f"sqlite:///{path}")
    else:
        database = Database(request.getfixturevalue("pg_url"))
        _reset_pg(database)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    """SQLite only, for tests about the embedded default itself."""
    path = tmp_path / "opsdesk.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


@pytest.fixture
def model_db(db: Database) -> Database:
    """A database with the shipped example operating model in force."""
    from opsdesk.desk.models import apply_model_file

    with UnitOfWork(db) as uow:
        apply_model_file(uow, example_model_path(), author="tests")
    return db


#: The shared real data (../shared/data/ from the project root; see its README).
