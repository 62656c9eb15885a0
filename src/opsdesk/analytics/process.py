"""Process-mining views of a case-event log: directly-follows graph, variants, and the
handover of work between teams. Plain SQL (``sql/process_*.sql``) run by DuckDB."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import duckdb


def query_text(name: str) -> str:
    """The text of one packaged analytic query."""
    return (resources.files("opsdesk.analytics") / "sql" / f"{name}.sql").read_text("utf-8")


def connect(
    source: Path, *, memory_limit: str = "4GB", threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a ``case_events`` view over a Parquet file."""
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute(
        "CREATE VIEW case_events AS SELECT * FROM read_parquet($path)".replace(
            "$path", "'" + str(source).replace("'", "''") + "'"
        )
    )
    return con


def directly_follows(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(query_text("process_dfg")).fetchall()


def variants(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(query_text("process_variants")).fetchall()


def team_handover(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(query_text("process_handover")).fetchall()
