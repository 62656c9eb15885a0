"""The ServiceNow preset on the real public incident log (imported once per module)."""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
import pytest
from tests.conftest import require_data, shared_data

from opsdesk.analytics.importers import ImportResult, import_log
from opsdesk.analytics.schema import CASE_EVENTS, STATUSES

DATA = shared_data("servicenow_incident_event_log.csv.gz")

pytestmark = pytest.mark.data(DATA.name)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> ImportResult:
    out = tmp_path_factory.mktemp("servicenow") / "events.parquet"
    return import_log(require_data(DATA), out, preset="servicenow")


def q(result: ImportResult, sql: str) -> list[tuple[object, ...]]:
    return duckdb.sql(sql.replace("EVENTS", f"read_parquet('{result.out}')")).fetchall()


def test_every_input_row_is_accounted_for(imported: ImportResult) -> None:
    assert imported.rows == 119_998
    assert imported.rejected == 0 and imported.rejects_path is None
    assert imported.cases == 20_769
    # a row that changed several things yields several events sharing its time and attrs
    # (attrs hold sys_mod_count, unique per update): distinct ones are the input rows
    rows, events, created = q(
        imported,
        """SELECT count(DISTINCT (case_id, "at", attrs)), count(*),
            count(*) FILTER (WHERE type = 'ticket.created') FROM EVENTS""",
    )[0]
    assert rows + imported.rejected == 119_998
    assert events == imported.events > rows
    assert created == 20_769


def test_schema_and_utc(imported: ImportResult) -> None:
    assert pq.read_schema(imported.out) == CASE_EVENTS
    first = q(imported, 'SELECT min("at"), max("at") FROM EVENTS')[0]
    assert str(first[0]).endswith("+00:00")
    row = q(imported, "SELECT \"at\" FROM EVENTS WHERE case_id = 'INC0000045' ORDER BY seq")
    # 29/2/2016 01:23 in the file, read as UTC
    assert str(row[0][0]).startswith("2016-02-29 01:23:00")


def test_statuses_and_types(imported: ImportResult) -> None:
    statuses = {s for (s,) in q(imported, "SELECT DISTINCT status FROM EVENTS")}
    assert statuses <= {*STATUSES, None}
    assert {"new", "open", "pending", "on_hold", "solved", "closed"} <= statuses
    types = dict(q(imported, "SELECT type, count(*) FROM EVENTS GROUP BY 1"))
    assert set(types) == {
        "ticket.created",
        "ticket.transferred",
        "ticket.accepted",
        "ticket.priority_changed",
        "ticket.status_changed",
        "ticket.updated",
    }
    # the source counts its own reassignments: our transfers match it for almost all cases
    agree = q(
        imported,
        """
        SELECT avg((transfers = rc)::INT) FROM (
            SELECT case_id, count(*) FILTER (WHERE type = 'ticket.transferred') AS transfers,
                max(CAST(attrs->>'reassignment_count' AS INT)) AS rc
            FROM EVENTS GROUP BY 1)
        """,
    )[0][0]
    assert agree > 0.99


def test_order_and_ties(imported: ImportResult) -> None:
    # sorted by case, time, seq; within a case seq follows time then input order
    bad = q(
        imported,
        """
        SELECT count(*) FROM (
            SELECT case_id, "at", seq,
                lag(case_id) OVER w AS pc, lag("at") OVER w AS pa, lag(seq) OVER w AS ps
            FROM (SELECT *, row_number() OVER () AS pos FROM EVENTS)
            WINDOW w AS (ORDER BY pos))
        WHERE pc = case_id AND (pa > "at" OR (pa = "at" AND ps >= seq))
        """,
    )[0][0]
    assert bad == 0
    attrs = q(imported, "SELECT attrs FROM EVENTS WHERE case_id = 'INC0000045' ORDER BY seq")
    assert '"sys_mod_count":0' in str(attrs[0][0])
    assert '"subcategory":"Subcategory 170"' in str(attrs[0][0])
