"""Import then diagnose just works: our own Parquet is read as it is, mapping flags given
with a preset are honoured, unknown statuses come back as a status map to edit."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from opsdesk.analytics import service
from opsdesk.analytics.engine import diagnose, session
from opsdesk.analytics.importers import ColumnMapping, ImportRefused, import_into, import_log
from opsdesk.analytics.importers.statusmap import TODO
from opsdesk.analytics.schema import CASE_EVENTS
from opsdesk.cli import app
from tests.conftest import require_data, shared_data

MAPPING = ColumnMapping(
    case="id", time="ts", team="grp", agent="who", status="state", attrs={"step": "ts"}
)
SERVICENOW = shared_data("servicenow_incident_event_log.csv.gz")


def write_log(path: Path) -> Path:
    """Twelve cases handed between teams (ping-pong in some), owned all along."""
    rows = []
    for case in range(12):
        teams = ["T1", "T2", "T1"] if case % 2 else ["T1", "T2"]
        for step, team in enumerate(teams):
            status = "open" if step < len(teams) - 1 else "solved"
            rows.append([f"C{case}", f"2024-01-01 {10 + step}:0{case % 10}", team, "ann", status])
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "ts", "grp", "who", "state"])
        writer.writerows(rows)
    return path


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The JSON report without the source's name."""
    return {**report, "summary": {k: v for k, v in report["summary"].items() if k != "source"}}


def test_diagnose_reads_an_imported_file_as_it_is(tmp_path: Path) -> None:
    src = write_log(tmp_path / "log.csv")
    imported = import_log(src, tmp_path / "log.parquet", mapping=MAPPING)
    assert imported.out is not None
    outcome = service.diagnose_file(imported.out)  # no mapping at all
    assert outcome.imported is None and outcome.rejects is None
    direct = diagnose(imported.out)
    assert outcome.diagnosis.to_json() == direct.to_json()
    # the teams are read, not taken for a log without owners
    assert outcome.diagnosis.summary.teams == 2
    assert not [f for f in outcome.diagnosis.findings if f.segment == "team=(no team)"]
    assert {f.kind for f in outcome.diagnosis.findings} >= {"ping_pong"}
    with pytest.raises(ImportRefused, match=r"already an opsdesk case-event file.*--status-map"):
        service.diagnose_file(imported.out, status_map={"x": "open"})


def test_a_csv_diagnosed_in_memory_equals_the_imported_file(tmp_path: Path) -> None:
    src = write_log(tmp_path / "log.csv")
    imported = import_log(src, tmp_path / "log.parquet", mapping=MAPPING)
    assert imported.out is not None
    via_memory = service.diagnose_file(src, mapping=MAPPING)
    assert via_memory.imported is not None and via_memory.imported.out is None
    counts = (imported.rows, imported.cases, imported.events)
    assert (via_memory.imported.rows, via_memory.imported.cases, via_memory.imported.events) == (
        counts
    )
    from_file = diagnose(imported.out)
    assert comparable(via_memory.diagnosis.to_json()) == comparable(from_file.to_json())


def test_the_terminal_summary_is_the_full_diagnosis_without_report_tables(
    tmp_path: Path,
) -> None:
    src = write_log(tmp_path / "log.csv")
    full = service.diagnose_file(src, mapping=MAPPING).diagnosis
    brief = service.diagnose_file(src, mapping=MAPPING, summary_only=True).diagnosis
    assert full.handoffs and any(t.dimension.startswith("backlog") for t in full.kpis)
    assert any(f.examples for f in full.findings)
    assert brief.handoffs == [] and [t for t in full.kpis if t not in brief.kpis] == [
        t for t in full.kpis if t.dimension.startswith("backlog")
    ]
    assert [replace(f, examples=[]) for f in full.findings] == brief.findings
    assert (brief.summary, brief.fix_first, brief.unavailable_kpis, brief.not_measurable) == (
        full.summary,
        full.fix_first,
        full.unavailable_kpis,
        full.not_measurable,
    )


def test_import_into_leaves_case_events_and_the_session_as_it_was(tmp_path: Path) -> None:
    src = write_log(tmp_path / "log.csv")
    imported = import_log(src, tmp_path / "log.parquet", mapping=MAPPING)
    with session() as con:
        result = import_into(con, src, tmp_path / "rejects.csv", mapping=MAPPING, tz="Asia/Tokyo")
        settings = con.execute(
            "SELECT current_setting('TimeZone'), current_setting('preserve_insertion_order')"
        ).fetchone()
        assert settings == ("UTC", False)
        loaded = con.table("case_events")
        assert dict(zip(loaded.columns, loaded.types, strict=True)) == dict(
            zip(
                CASE_EVENTS.names,
                con.sql("SELECT * FROM read_parquet($p)", params={"p": str(imported.out)}).types,
                strict=True,
            )
        )
        left = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
        assert left == {"case_events", "case_event_rows"}
        assert (result.rows, result.events, result.cases) == (
            imported.rows,
            imported.events,
            imported.cases,
        )
        # times without an offset were read in the import's zone, not the session's
        first = con.execute('SELECT min("at") FROM case_events').fetchone()[0]
        assert first.utcoffset() == timedelta(0) and first.hour == 1


def test_a_foreign_parquet_file_still_needs_a_mapping(tmp_path: Path) -> None:
    import pyarrow.csv as pacsv

    src = tmp_path / "foreign.parquet"
    pq.write_table(pacsv.read_csv(write_log(tmp_path / "log.csv")), src)
    assert not service.is_case_event_file(src)
    with pytest.raises(ImportRefused, match="--case COLUMN"):
        service.diagnose_file(src)
    outcome = service.diagnose_file(src, mapping=MAPPING)
    assert outcome.diagnosis.summary.cases == 12


SERVICENOW_COLUMNS = sorted(
    {
        "number", "sys_updated_at", "assignment_group", "assigned_to", "incident_state",
        "caller_id", "contact_type", "category", "priority", "made_sla", "reassignment_count",
        "reopen_count", "sys_mod_count", "opened_at", "resolved_at", "closed_at", "knowledge",
        "subcategory", "u_type",
    }
)  # fmt: skip


def write_servicenow_like(path: Path, states: list[str]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, SERVICENOW_COLUMNS)
        writer.writeheader()
        for i, state in enumerate(states):
            row = dict.fromkeys(SERVICENOW_COLUMNS, "?")
            row.update(
                number=f"INC{i // 2}",
                sys_updated_at=f"1/3/2016 10:{i:02d}",
                incident_state=state,
                category="Category 1",
                subcategory=f"Subcategory {i % 3}",
                u_type="Type A",
                assignment_group="Group 1",
            )
            writer.writerow(row)
    return path


def test_mapping_flags_with_a_preset_are_honoured(tmp_path: Path) -> None:
    src = write_servicenow_like(tmp_path / "sn.csv", ["New", "Active", "New", "Resolved"])
    result = import_log(
        src, tmp_path / "o.parquet", preset="servicenow", columns={"category": "u_type"}
    )
    assert result.out is not None
    rows = pq.read_table(result.out).to_pylist()
    assert {r["category"] for r in rows} == {"Type A"}
    # the rest of the preset still applies: its time format, status map and typed attrs
    assert {r["status"] for r in rows} == {"new", "open", "solved"}
    assert json.loads(rows[0]["attrs"])["reassignment_count"] is None  # '?' is missing
    # an extra --attr joins the preset's attributes
    extra = import_log(src, tmp_path / "o2.parquet", preset="servicenow", attrs={"kind": "u_type"})
    assert extra.out is not None
    attrs = json.loads(pq.read_table(extra.out).to_pylist()[0]["attrs"])
    assert attrs["kind"] == "Type A" and "subcategory" in attrs


def test_cli_honours_category_with_a_preset(tmp_path: Path) -> None:
    src = write_servicenow_like(tmp_path / "sn.csv", ["New", "Active"])
    out = tmp_path / "o.parquet"
    result = CliRunner().invoke(
        app, ["import", str(src), "-o", str(out), "--preset", "servicenow", "--category", "u_type"]
    )
    assert result.exit_code == 0, result.output
    assert "2 input rows = 2 imported + 0 rejected" in result.output
    assert set(pq.read_table(out).column("category").to_pylist()) == {"Type A"}


def test_unknown_statuses_come_back_as_a_status_map_to_edit(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    src.write_text(
        "id,ts,state\n"
        "1,2024-01-01 10:00,In Progress\n"
        "1,2024-01-01 11:00,Wibble\n"
        "2,2024-01-01 10:00,In Progress\n"
        "2,2024-01-01 12:00,open\n"
    )
    mapping = ColumnMapping(case="id", time="ts", status="state")
    with pytest.raises(ImportRefused) as refused:
        import_log(src, tmp_path / "o.parquet", mapping=mapping, max_rejects=0)
    message = str(refused.value)
    draft = tmp_path / "log.status-map.yaml"
    assert "'In Progress' (2 rows), 'Wibble' (1 row)" in message
    assert f"--status-map {draft}" in message
    assert not (tmp_path / "o.parquet").exists()
    entries = yaml.safe_load(draft.read_text())
    assert entries == {"In Progress": "open", "Wibble": TODO}
    # a TODO left in is refused with what to do
    with pytest.raises(ImportRefused, match="'TODO', which is not one of"):
        import_log(src, tmp_path / "o.parquet", mapping=mapping, status_map=draft)
    draft.write_text(draft.read_text().replace(TODO, "pending"))
    result = import_log(
        src, tmp_path / "o.parquet", mapping=mapping, status_map=draft, max_rejects=0
    )
    assert (result.rows, result.rejected, result.status_map_draft) == (4, 0, None)


def test_a_draft_never_overwrites_another_file(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    src.write_text("id,ts,state\n1,2024-01-01 10:00,Odd\n2,2024-01-01 10:00,open\n")
    mine = tmp_path / "log.status-map.yaml"
    mine.write_text("# my notes\n")
    mapping = ColumnMapping(case="id", time="ts", status="state")
    result = import_log(src, tmp_path / "o.parquet", mapping=mapping)
    assert result.status_map_draft == tmp_path / "log.status-map-2.yaml"
    assert mine.read_text() == "# my notes\n"
    assert result.unmapped == {"Odd": 1}


def test_servicenow_import_then_diagnose_needs_no_flags(tmp_path: Path) -> None:
    src = require_data(SERVICENOW)
    runner = CliRunner()
    out = tmp_path / "sn.parquet"
    imported = runner.invoke(app, ["import", str(src), "-o", str(out), "--preset", "servicenow"])
    assert imported.exit_code == 0, imported.output
    assert "119,998 input rows = 119,998 imported + 0 rejected" in imported.output
    plain = runner.invoke(app, ["diagnose", str(out), "--json", str(tmp_path / "a.json")])
    assert plain.exit_code == 0, plain.output
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["summary"]["cases"] == 20_769 and report["summary"]["teams"] > 50
    gaps = [f for f in report["findings"] if f["segment"] == "team=(no team)"]
    assert not gaps or gaps[0]["cases"] < report["summary"]["cases"] / 2


def test_cli_import_then_diagnose_with_no_flags(tmp_path: Path) -> None:
    src = write_log(tmp_path / "log.csv")
    out = tmp_path / "log.parquet"
    runner = CliRunner()
    flags = ["--case", "id", "--time", "ts", "--team", "grp", "--agent", "who", "--status", "state"]
    imported = runner.invoke(app, ["import", str(src), "-o", str(out), *flags])
    assert imported.exit_code == 0, imported.output
    assert "30 input rows = 30 imported + 0 rejected" in imported.output
    diagnosed = runner.invoke(app, ["diagnose", str(out)])
    assert diagnosed.exit_code == 0, diagnosed.output
    assert "12 cases" in diagnosed.output and "2 teams" in diagnosed.output
    assert "log.parquet: diagnosed in" in diagnosed.output
