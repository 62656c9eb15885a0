"""On the real ServiceNow log, what we count from the event stream agrees with the
counters the log records itself (docs/diagnostic.md, "Correctness on real data").

Tolerances: transfers per incident equal ``reassignment_count`` for >= 99% of incidents
(and the totals within 1%); reopens equal ``reopen_count`` for >= 99.9%; SLA attainment
equals the share of incidents whose last update says ``made_sla`` within 0.1 point.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from opsdesk.analytics.engine import diagnose
from opsdesk.analytics.importers import import_log
from tests.conftest import shared_data

DATA = shared_data("servicenow_incident_event_log.csv.gz")

pytestmark = pytest.mark.data(DATA.name)


@pytest.fixture(scope="module")
def servicenow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("servicenow") / "incidents.parquet"
    import_log(DATA, out, preset="servicenow")
    return out


def per_case(log: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE per_case AS
        SELECT
            case_id,
            COUNT(*) FILTER (WHERE type = 'ticket.transferred') AS transfers,
            MAX(CAST(json_extract(attrs, '$.reassignment_count') AS INTEGER)) AS reassignment_count,
            COUNT(*) FILTER (WHERE type = 'ticket.status_changed' AND reopened) AS reopens,
            MAX(CAST(json_extract(attrs, '$.reopen_count') AS INTEGER)) AS reopen_count
        FROM (
            SELECT *, LAG(status) OVER (PARTITION BY case_id ORDER BY "at", seq)
                          IN ('solved', 'closed') AND status NOT IN ('solved', 'closed')
                      AS reopened
            FROM read_parquet('{log}')
        )
        GROUP BY case_id"""
    )
    return con


def test_transfers_agree_with_reassignment_count(servicenow: Path) -> None:
    con = per_case(servicenow)
    agree, total, ours, theirs = con.execute(
        "SELECT AVG(CAST(transfers = reassignment_count AS INTEGER)), COUNT(*), "
        "SUM(transfers), SUM(reassignment_count) FROM per_case"
    ).fetchone()  # type: ignore[misc]
    assert total == 20_769
    assert agree >= 0.99
    assert abs(ours - theirs) / theirs <= 0.01


def test_reopens_agree_with_reopen_count(servicenow: Path) -> None:
    con = per_case(servicenow)
    agree, ours, theirs = con.execute(
        "SELECT AVG(CAST(reopens = reopen_count AS INTEGER)), SUM(reopens), SUM(reopen_count) "
        "FROM per_case"
    ).fetchone()  # type: ignore[misc]
    assert agree >= 0.999
    assert abs(ours - theirs) <= 3


def test_sla_attainment_agrees_with_made_sla(servicenow: Path) -> None:
    raw = (
        duckdb.connect()
        .execute(
            "SELECT AVG(CAST(last_made_sla AS INTEGER)) FROM ("
            " SELECT number, arg_max(made_sla = 'true', rn) AS last_made_sla FROM ("
            f"  SELECT *, row_number() OVER () AS rn FROM read_csv('{DATA}', all_varchar=true))"
            " GROUP BY number)"
        )
        .fetchone()[0]
    )  # type: ignore[index]
    diagnosis = diagnose(servicenow)
    overall = next(k for k in diagnosis.kpis if k.dimension == "overall").rows[0]
    assert overall["sla_cases"] == 20_769
    assert abs(overall["sla_attainment"] - raw) <= 0.001
    transfers = overall["transfers_per_case"] * overall["cases"]
    assert abs(transfers - 20_437) <= 1  # the stream's own count, as in the first test
