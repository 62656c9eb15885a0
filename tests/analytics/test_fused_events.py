"""A log diagnosed straight from its file is sorted once: the importer's typing window
also yields the diagnostic's per-event table ``ev``. It must hold exactly the rows
events.sql derives from the imported ``case_events`` (``pos`` compared by rank: the
fused one orders a case's events without being dense)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsdesk.analytics import engine
from opsdesk.analytics.importers import ColumnMapping, import_into
from tests.conftest import examples, require_data, shared_data

MAPPING = ColumnMapping(
    case="id", time="ts", team="grp", agent="who", status="state", priority="prio"
)


def differences(
    con: duckdb.DuckDBPyConnection, source: Path, tmp: Path, **options: Any
) -> tuple[int, int, int]:
    """(rows of ev, rows only in the fused ev, rows only in events.sql's)."""
    rejects = tmp / "rejects.csv"
    import_into(con, source, rejects, keep_attrs=False, diagnostic_events=True, **options)
    con.execute("ALTER VIEW ev RENAME TO ev_fused")
    engine._run(con, "events", {})
    columns = [row[0] for row in con.execute("DESCRIBE ev").fetchall()]
    fused_types = con.execute("DESCRIBE ev_fused").fetchall()
    assert [r[:2] for r in fused_types] == [r[:2] for r in con.execute("DESCRIBE ev").fetchall()]
    ranked = ", ".join(
        "ROW_NUMBER() OVER (PARTITION BY case_id ORDER BY pos) AS pos" if c == "pos" else c
        for c in columns
    )
    (total,) = con.execute("SELECT count(*) FROM ev").fetchone()
    only = []
    for a, b in (("ev_fused", "ev"), ("ev", "ev_fused")):
        (n,) = con.execute(
            f"SELECT count(*) FROM (SELECT {ranked} FROM {a} EXCEPT ALL SELECT {ranked} FROM {b})"
        ).fetchone()
        only.append(n)
    return total, only[0], only[1]


rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 5),  # case
        st.integers(0, 6),  # minute: ties at one instant are common
        st.sampled_from(["T1", "T2", "T3", ""]),
        st.sampled_from(["ann", "bob", ""]),
        st.sampled_from(["new", "open", "pending", "solved", "closed", ""]),
        st.sampled_from(["p1", "p2", ""]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=examples(25), deadline=None)
@given(rows=rows_strategy)
def test_the_fused_ev_equals_events_sql(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[Any, ...]]
) -> None:
    tmp = tmp_path_factory.mktemp("fused")
    source = tmp / "log.csv"
    with source.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "ts", "grp", "who", "state", "prio"])
        for case, minute, team, agent, state, prio in rows:
            writer.writerow([f"C{case}", f"2024-01-01 10:0{minute}", team, agent, state, prio])
    with engine.session() as con:
        total, only_fused, only_sql = differences(con, source, tmp, mapping=MAPPING)
    assert total >= len(rows)
    assert (only_fused, only_sql) == (0, 0)


def test_the_fused_ev_equals_events_sql_on_servicenow(tmp_path: Path) -> None:
    source = require_data(shared_data("servicenow_incident_event_log.csv.gz"))
    with engine.session() as con:
        total, only_fused, only_sql = differences(con, source, tmp_path, preset="servicenow")
    assert total > 100_000
    assert (only_fused, only_sql) == (0, 0)
