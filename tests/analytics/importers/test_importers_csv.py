"""Generic CSV / Parquet imports: mapping, typing, times, rejects, status maps."""

from __future__ import annotations

import csv
import gzip
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsdesk.analytics.importers import (
    ColumnMapping,
    ImportRefused,
    import_log,
    parse_attr_specs,
    tabular,
)
from opsdesk.analytics.schema import CASE_EVENTS

HEADER = ["id", "ts", "act", "grp", "who", "state", "prio", "reg"]
MAPPING = ColumnMapping(
    case="id",
    time="ts",
    activity="act",
    team="grp",
    agent="who",
    status="state",
    priority="prio",
    attrs={"region": "reg"},
)


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read(path: Path) -> list[dict[str, object]]:
    return pq.read_table(path).to_pylist()


def test_multi_change_rows_split_into_typed_events(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "log.csv",
        [
            ["A", "2024-01-01 10:00", "open", "T1", "ann", "new", "P3", "eu"],
            # team, agent, priority and status change at once: three events
            ["A", "2024-01-01 11:00", "move", "T2", "bob", "open", "P2", "eu"],
            ["A", "2024-01-01 12:00", "take", "T2", "cat", "open", "P2", "eu"],
            ["A", "2024-01-01 13:00", "note", "T2", "cat", "open", "P2", "us"],
            ["A", "2024-01-01 14:00", "done", "T2", "cat", "solved", "P2", "us"],
            ["A", "2024-01-02 09:00", "again", "T2", "cat", "open", "P2", "us"],
        ],
    )
    result = import_log(src, tmp_path / "out.parquet", mapping=MAPPING)
    rows = read(result.out)
    assert [r["type"] for r in rows] == [
        "ticket.created",
        "ticket.transferred",
        "ticket.priority_changed",
        "ticket.status_changed",
        "ticket.accepted",
        "ticket.updated",
        "ticket.status_changed",
        "ticket.status_changed",  # solved -> open: a reopen
    ]
    assert [r["seq"] for r in rows] == list(range(1, 9))
    split = rows[1:4]
    assert {r["at"] for r in split} == {datetime(2024, 1, 1, 11, tzinfo=UTC)}
    # each split event carries the state after itself
    assert [(r["team"], r["agent"], r["priority"], r["status"]) for r in split] == [
        ("T2", "bob", "P3", "new"),
        ("T2", "bob", "P2", "new"),
        ("T2", "bob", "P2", "open"),
    ]
    assert rows[1]["activity"] == "move"
    assert json.loads(str(rows[0]["attrs"])) == {"region": "eu"}
    assert {r["actor_kind"] for r in rows} == {"importer"}
    assert (result.cases, result.events, result.rejected, result.rows) == (1, 8, 0, 6)
    assert pq.read_schema(result.out) == CASE_EVENTS


def test_time_order_within_a_case_and_ties_keep_input_order(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "log.csv",
        [
            ["B", "2024-01-01 12:00", "second", "", "", "", "", ""],
            ["A", "2024-01-01 10:00", "x", "", "", "", "", ""],
            ["B", "2024-01-01 09:00", "first", "", "", "", "", ""],
            ["B", "2024-01-01 12:00", "third", "", "", "", "", ""],
        ],
    )
    rows = read(import_log(src, tmp_path / "out.parquet", mapping=MAPPING).out)
    assert [(r["case_id"], r["activity"], r["seq"]) for r in rows] == [
        ("A", "x", 2),
        ("B", "first", 3),
        ("B", "second", 1),
        ("B", "third", 4),
    ]
    # no status or team columns in use: created, then updated
    assert [r["type"] for r in rows] == [
        "ticket.created",
        "ticket.created",
        "ticket.updated",
        "ticket.updated",
    ]


def test_time_format_and_tz(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "log.csv.gz",
        [
            ["A", "3/1/2024 10:00", "", "", "", "", "", ""],  # 3 January, winter
            ["A", "3/7/2024 10:00", "", "", "", "", "", ""],  # 3 July, summer
        ],
    )
    out = import_log(
        src,
        tmp_path / "out.parquet",
        mapping=MAPPING,
        time_format="%d/%m/%Y %H:%M",
        tz="Europe/Paris",
    ).out
    assert [r["at"] for r in read(out)] == [
        datetime(2024, 1, 3, 9, tzinfo=UTC),
        datetime(2024, 7, 3, 8, tzinfo=UTC),
    ]
    assert pq.read_schema(out).field("at").type == pa.timestamp("us", tz="UTC")


def test_offsets_in_the_source_win_over_tz(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "log.csv", [["A", "2024-01-03T10:00:00+02:00"] + [""] * 6])
    out = import_log(src, tmp_path / "o.parquet", mapping=MAPPING, tz="America/New_York").out
    assert read(out)[0]["at"] == datetime(2024, 1, 3, 8, tzinfo=UTC)


def test_ambiguous_dates_without_format_are_refused_with_a_hint(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "log.csv", [["A", "29/2/2016 01:16"] + [""] * 6])
    with pytest.raises(ImportRefused, match="time-format"):
        import_log(src, tmp_path / "out.parquet", mapping=MAPPING)
    assert not (tmp_path / "out.parquet").exists()


def test_rejects_file_keeps_the_original_row_and_reason(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "log.csv",
        [
            ["A", "2024-01-01 10:00", "ok", "T1", "", "new", "", "eu"],
            ["", "2024-01-01 10:00", "nocase", "T1", "", "new", "", "eu"],
            ["A", "yesterday", "badtime", "T1", "", "new", "", "eu"],
            ["A", "2024-01-01 11:00", "weird", "T1", "", "Limbo", "", "eu"],
            ["A", "2024-01-01 12:00", "ok2", "T1", "", "OPEN", "", "eu"],
        ],
    )
    result = import_log(src, tmp_path / "out.parquet", mapping=MAPPING)
    assert (result.events, result.rejected, result.rows) == (2, 3, 5)
    assert result.rejects_path == tmp_path / "out.rejects.csv"
    with result.rejects_path.open(newline="") as fh:
        rejects = list(csv.DictReader(fh))
    assert [r["act"] for r in rejects] == ["nocase", "badtime", "weird"]
    assert list(rejects[0]) == [*HEADER, "reason"]
    assert rejects[0]["reason"].startswith("missing case id")
    assert rejects[1]["reason"].startswith("bad time 'yesterday'")
    assert rejects[2]["reason"].startswith("unmapped status 'Limbo'")
    assert result.reasons == {"missing case id": 1, "bad time": 1, "unmapped status": 1}


def test_max_rejects_fails_and_writes_nothing(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "log.csv",
        [
            ["A", "2024-01-01 10:00", "", "", "", "", "", ""],
            ["A", "nope", "", "", "", "", "", ""],
            ["B", "never", "", "", "", "", "", ""],
        ],
    )
    out, rejects = tmp_path / "out.parquet", tmp_path / "rej.csv"
    with pytest.raises(ImportRefused, match=r"2 of 3 rows rejected.*--max-rejects 1"):
        import_log(src, out, mapping=MAPPING, rejects=rejects, max_rejects=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]
    result = import_log(src, out, mapping=MAPPING, rejects=rejects, max_rejects=2)
    assert (result.rejected, result.rejects_path) == (2, rejects)


@pytest.mark.parametrize("kind", ["yaml", "csv", "dict"])
def test_status_map(tmp_path: Path, kind: str) -> None:
    src = write_csv(
        tmp_path / "log.csv",
        [
            ["A", "2024-01-01 10:00", "", "", "", "Fresh", "", ""],
            ["A", "2024-01-01 11:00", "", "", "", "Working", "", ""],
            ["A", "2024-01-01 12:00", "", "", "", "Unheard", "", ""],
        ],
    )
    entries = {"Fresh": "new", "Working": "open"}
    status_map: dict[str, str] | Path
    if kind == "yaml":
        status_map = tmp_path / "map.yaml"
        status_map.write_text("Fresh: new\nWorking: open\n")
    elif kind == "csv":
        status_map = tmp_path / "map.csv"
        status_map.write_text("source,status\nFresh,new\nWorking,open\n")
    else:
        status_map = entries
    result = import_log(src, tmp_path / "out.parquet", mapping=MAPPING, status_map=status_map)
    assert [r["status"] for r in read(result.out)] == ["new", "open"]
    assert result.rejected == 1  # Unheard: a reject, never dropped silently


def test_status_map_to_an_unknown_status_is_refused(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "log.csv", [["A", "2024-01-01 10:00"] + [""] * 6])
    with pytest.raises(ImportRefused, match="not one of new, open"):
        import_log(src, tmp_path / "o.parquet", mapping=MAPPING, status_map={"x": "wip"})


def test_missing_column_says_which_flag(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "log.csv", [["A", "2024-01-01 10:00"] + [""] * 6])
    mapping = ColumnMapping(case="number", time="ts")
    with pytest.raises(ImportRefused, match=r"'number'.*columns id, ts, .*pass --case COLUMN"):
        import_log(src, tmp_path / "o.parquet", mapping=mapping)


def test_attr_flags_land_in_attrs_json(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "log.csv", [["A", "2024-01-01 10:00", "x", "", "", "", "", "eu"]])
    attrs = parse_attr_specs(["region=reg", "step=act"])
    mapping = ColumnMapping(case="id", time="ts", attrs=attrs)
    row = read(import_log(src, tmp_path / "o.parquet", mapping=mapping).out)[0]
    assert json.loads(str(row["attrs"])) == {"region": "eu", "step": "x"}
    with pytest.raises(ImportRefused, match="NAME=COLUMN"):
        parse_attr_specs(["region"])


@pytest.mark.parametrize("name", ["log.parquet", "log.parquet.gz"])
def test_parquet_input(tmp_path: Path, name: str) -> None:
    csv_src = write_csv(
        tmp_path / "log.csv",
        [
            ["A", "2024-01-01 10:00", "a", "T1", "", "new", "", ""],
            ["A", "2024-01-01 11:00", "b", "T2", "", "new", "", ""],
        ],
    )
    table = pacsv.read_csv(csv_src)
    plain = tmp_path / "log.parquet"
    pq.write_table(table, plain)
    src = plain
    if name.endswith(".gz"):
        src = tmp_path / name
        src.write_bytes(gzip.compress(plain.read_bytes()))
    rows = read(import_log(src, tmp_path / "o.parquet", mapping=MAPPING).out)
    assert [r["type"] for r in rows] == ["ticket.created", "ticket.transferred"]


def test_unknown_extension_and_missing_mapping(tmp_path: Path) -> None:
    odd = tmp_path / "log.json"
    odd.write_text("{}")
    with pytest.raises(ImportRefused, match=r"\.csv, \.csv\.gz, \.parquet"):
        import_log(odd, tmp_path / "o.parquet", mapping=MAPPING)
    src = write_csv(tmp_path / "log.csv", [["A", "2024-01-01 10:00"] + [""] * 6])
    with pytest.raises(ImportRefused, match="--case COLUMN"):
        import_log(src, tmp_path / "o.parquet")
    with pytest.raises(ImportRefused, match="IANA"):
        import_log(src, tmp_path / "o.parquet", mapping=MAPPING, tz="Mars/Olympus")


def test_malformed_lines_become_rejects_not_failures(tmp_path: Path) -> None:
    from opsdesk.analytics.importers import ColumnMapping, ImportRefused, import_log

    src = tmp_path / "log.csv"
    src.write_text(
        "id,when,state\n"
        "1,2026-01-01 10:00,open\n"
        "2,2026-01-01 11:00,open,EXTRA\n"
        "1,2026-01-01 12:00,solved\n"
    )
    mapping = ColumnMapping(case="id", time="when", status="state")
    status_map = {"open": "open", "solved": "solved"}
    result = import_log(src, tmp_path / "out.parquet", mapping=mapping, status_map=status_map)
    assert (result.rows, result.events, result.rejected) == (3, 2, 1)
    assert result.reasons == {"malformed line": 1}
    rejects = result.rejects_path.read_text()
    assert "malformed line 3" in rejects and "2,2026-01-01 11:00,open,EXTRA" in rejects
    with pytest.raises(ImportRefused, match="malformed line"):
        import_log(
            src, tmp_path / "o2.parquet", mapping=mapping, status_map=status_map, max_rejects=0
        )
    assert not (tmp_path / "o2.parquet").exists()


_CASES = ("A", "B", "b", "A~1", "Z{x}", "c'q")
_TIMES = ("2024-01-01 10:00", "2024-01-01 11:00", "2024-01-02 09:00", "not a time")
csv_row = st.tuples(
    st.sampled_from(_CASES),
    st.sampled_from(_TIMES),
    st.sampled_from(("a", "b", "")),
    st.sampled_from(("T1", "T2", "")),
    st.sampled_from(("ann", "bob", "")),
    st.sampled_from(("new", "open", "pending", "solved", "")),
    st.sampled_from(("P1", "P2", "")),
    st.sampled_from(("eu", "us")),
)


@settings(
    max_examples=int(os.environ.get("OPSDESK_HYPOTHESIS_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(csv_row, min_size=1, max_size=40))
def test_ranges_and_blocks_do_not_change_the_output(rows: list[tuple[str, ...]]) -> None:
    """The file is written one range of case ids at a time and seq is numbered per block
    of input rows: tiny ranges and blocks give the very same file as one of each."""
    with tempfile.TemporaryDirectory() as tmp:
        src = write_csv(Path(tmp) / "log.csv", [list(r) for r in rows])
        if all(r[1] == "not a time" for r in rows):
            with pytest.raises(ImportRefused, match="rejected"):
                import_log(src, Path(tmp) / "none.parquet", mapping=MAPPING)
            return
        whole = pq.read_table(import_log(src, Path(tmp) / "whole.parquet", mapping=MAPPING).out)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(tabular, "_BUCKET_ROWS", 2)
            mp.setattr(tabular, "_SEQ_BLOCK_BITS", 1)
            small = import_log(src, Path(tmp) / "small.parquet", mapping=MAPPING).out
            pieces = pq.read_table(small)
    assert pieces.equals(whole)
    out = whole.to_pylist()
    accepted = [i for i, r in enumerate(rows) if r[1] != "not a time"]
    # seq numbers every event from 1 in input order; each accepted row yields 1 to 4
    by_seq = sorted(out, key=lambda r: r["seq"])
    assert [r["seq"] for r in by_seq] == list(range(1, len(out) + 1))
    assert len(accepted) <= len(out) <= 4 * len(accepted)
    assert {r["case_id"] for r in out} == {rows[i][0] for i in accepted}
    # sorted by case, time, seq; a case starts with its creation
    keys = [(r["case_id"], r["at"], r["seq"]) for r in out]
    assert keys == sorted(keys)
    firsts = {}
    for r in out:
        firsts.setdefault(r["case_id"], r["type"])
    assert set(firsts.values()) == {"ticket.created"}


def test_seq_follows_the_input_order_when_read_in_parallel(tmp_path: Path) -> None:
    """Many row groups are read by several threads into the parsed table, whose rowid
    is taken for the input row number: seq must still follow the input. All rows share
    one instant, so within a case the input order alone decides."""
    n = 60_000
    src = tmp_path / "log.parquet"
    pq.write_table(
        pa.table(
            {
                "id": [f"c{i % 97}" for i in range(n)],
                "ts": ["2024-01-01 10:00"] * n,
                "state": [("new", "open", "pending", "solved")[(i // 97) % 4] for i in range(n)],
                "idx": [str(i) for i in range(n)],
            }
        ),
        src,
        row_group_size=1000,
    )
    mapping = ColumnMapping(case="id", time="ts", status="state", attrs={"idx": "idx"})
    result = import_log(src, tmp_path / "out.parquet", mapping=mapping)
    rows = pq.read_table(result.out, columns=["seq", "attrs"]).to_pylist()
    order = [int(json.loads(str(r["attrs"]))["idx"]) for r in sorted(rows, key=lambda r: r["seq"])]
    assert order == list(range(n))
