"""Process-mining views of a case-event log: the directly-follows graph, the variants and
the handover of work between teams, all three from one ordered pass of the log
(``sql/process_views.sql``, plain SQL run by DuckDB).

>>> views = mine(Path("case_events.parquet"))  # doctest: +SKIP
>>> views.variants[0]  # doctest: +SKIP
('ticket.created > ticket.status_changed', 9210)

DuckDB's in-memory database is created once per process (about 10 ms, as much as the
whole computation on a 100,000-event log) and each call works on a connection of its
own to it, so concurrent calls neither wait for each other nor see each other's data.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa

#: DuckDB's working memory for the process views: the views of 13 million events take
#: about 1 GiB.
MEMORY_LIMIT: Final = "4GB"

_LOCK = threading.Lock()


@dataclass(frozen=True)
class ProcessViews:
    """The three views, each ordered most frequent first (ties by name)."""

    #: (source activity, target activity, times target directly followed source)
    directly_follows: list[tuple[str, str, int]]
    #: (activity sequence joined by " > ", cases that follow it)
    variants: list[tuple[str, int]]
    #: (from team, to team, handovers): consecutive team-carrying events whose team differs
    team_handover: list[tuple[str, str, int]]


def query_text(name: str) -> str:
    """The text of one packaged analytic query."""
    return (resources.files("opsdesk.analytics") / "sql" / f"{name}.sql").read_text("utf-8")


@functools.cache
def _views_sql() -> str:
    return query_text("process_views")


@functools.cache
def _database() -> duckdb.DuckDBPyConnection:
    config: dict[str, Any] = {"memory_limit": MEMORY_LIMIT, "preserve_insertion_order": False}
    return duckdb.connect(":memory:", config=config)


def connection() -> duckdb.DuckDBPyConnection:
    """A new connection to the process-wide DuckDB database (close it when done)."""
    with _LOCK:  # the shared connection object is not safe to use from two threads
        return _database().cursor()


def mine(
    source: Path | str | pa.Table, *, con: duckdb.DuckDBPyConnection | None = None
) -> ProcessViews:
    """The directly-follows graph, variants and team handover of a CASE_EVENTS source (a
    Parquet file or an Arrow table), in one pass.

    ``con``: a DuckDB connection to work on (default: a connection of this call's own to
    the process-wide database, closed at the end). The source is visible to the query
    as the temporary view ``case_events`` of that connection only.
    """
    if not isinstance(source, pa.Table) and not Path(source).exists():
        raise FileNotFoundError(f"{source}: no such case-event file")
    cursor = connection() if con is None else con
    try:
        if isinstance(source, pa.Table):
            cursor.register("case_events", source)
        else:
            quoted = "'" + str(source).replace("'", "''") + "'"
            cursor.execute(
                # the path is quoted as a literal (a view's definition takes no parameters)
                f"CREATE OR REPLACE TEMP VIEW case_events AS SELECT * FROM read_parquet({quoted})"  # noqa: S608
            )
        rows = cursor.execute(_views_sql()).fetchall()
    finally:
        if con is None:
            cursor.close()
        elif isinstance(source, pa.Table):
            cursor.unregister("case_events")
        else:
            cursor.execute("DROP VIEW IF EXISTS case_events")
    dfg: list[tuple[str, str, int]] = []
    variants: list[tuple[str, int]] = []
    handover: list[tuple[str, str, int]] = []
    for view, first, second, n in rows:
        if view == "dfg":
            dfg.append((first, second, int(n)))
        elif view == "handover":
            handover.append((first, second, int(n)))
        else:
            variants.append((first, int(n)))
    dfg.sort(key=lambda r: (-r[2], r[0], r[1]))
    handover.sort(key=lambda r: (-r[2], r[0], r[1]))
    variants.sort(key=lambda r: (-r[1], r[0]))
    return ProcessViews(directly_follows=dfg, variants=variants, team_handover=handover)
