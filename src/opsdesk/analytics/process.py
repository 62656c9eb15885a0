"""Process-mining views of a case-event log: directly-follows graph, variants, and the
handover of work between teams. Plain SQL (``sql/process_*.sql``) run by DuckDB over one
ordered pass of the log (``process_steps.sql``)."""

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
    """A DuckDB connection with the ordered ``steps`` of the case-event Parquet file."""
    config: dict[str, Any] = {"memory_limit": memory_limit, "preserve_insertion_order": False}
    if threads:
        config["threads"] = threads
    con = duckdb.connect(":memory:", config=config)
    con.read_parquet(str(source)).create_view("case_events")
    con.execute(query_text("process_steps"))
    return con


def directly_follows(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """(source activity, target activity, frequency), most frequent first."""
    return con.execute(query_text("process_dfg")).fetchall()


def variants(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """(activity sequence joined by ' > ', cases), most common first."""
    return con.execute(query_text("process_variants")).fetchall()


def team_handover(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """(from team, to team, handovers), most frequent first."""
    return con.execute(query_text("process_handover")).fetchall()
