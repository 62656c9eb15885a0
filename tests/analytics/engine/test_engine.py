"""The engine's contract: sources, JSON shape, progress and errors."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opsdesk.analytics.engine import diagnose

from .builder import Log


def sample() -> Log:
    log = Log()
    for i in range(5):
        log.clean(f"c{i}", category="PP")
        log.case(f"p{i}", category="PP").transfer(1, "B", "b1").transfer(2, "A", "a1").solve(30)
    return log


def test_parquet_and_arrow_sources_agree(tmp_path: Path) -> None:
    table = sample().table()
    path = tmp_path / "events.parquet"
    pq.write_table(table, path, compression="zstd")
    from_file = diagnose(path)
    from_arrow = diagnose(table, source_name="events.parquet")
    assert from_file.to_json() == from_arrow.to_json()
    assert from_file.summary.source == "events.parquet"


def test_json_shape() -> None:
    d = diagnose(sample().table(), examples=2)
    data = json.loads(orjson.dumps(d.to_json()))
    assert data["summary"]["cases"] == 10
    assert data["summary"]["events"] == 5 * 3 + 5 * 4
    assert data["summary"]["teams"] == 2
    assert data["summary"]["agents"] == 12  # ag-c0..4, ag-p0..4, b1, a1
    assert {t["dimension"] for t in data["kpis"]} >= {"overall", "category", "team", "week"}
    finding = data["findings"][0]
    assert finding["kind"] == "ping_pong"
    assert finding["segment"] == "category=PP"
    assert (finding["cases"], finding["share"]) == (5, 0.5)
    assert finding["extra_hours"] == 100.0
    assert finding["examples"] == ["p0", "p1"]
    assert finding["cost"] == pytest.approx(100 + 0.25 * 5)
    for key in ("extra_touches", "explanation", "details"):
        assert key in finding
    assert data["handoffs"][0] == {"from_team": "A", "to_team": "B", "count": 5}
    assert len(data["fix_first"]) == 1


def test_progress_reports_every_step() -> None:
    calls: list[tuple[int, int]] = []
    diagnose(sample().table(), progress=lambda done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert calls == [(n, total) for n in range(1, total + 1)]


def test_empty_log() -> None:
    d = diagnose(Log().table())
    assert (d.summary.cases, d.summary.events, d.summary.first_event) == (0, 0, None)
    assert d.findings == [] and d.handoffs == [] and d.fix_first == []


def test_rejects_a_table_that_is_not_case_events() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        diagnose(pa.table({"case_id": ["1"]}))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        diagnose(tmp_path / "nope.parquet")
