"""Every CSV input row is imported or rejected, never lost (docs/importing.md, "Input rows").

The files are built row by row, so the truth is known without reading them back: each
generated row is one input row (a damaged one is one rejected row, whatever the damage
does to the lines after it), blank lines are none, and a quoted value spanning two lines
is one row.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsdesk.analytics.importers import ColumnMapping, ImportRefused, import_log

MAPPING = ColumnMapping(case="id", time="ts", status="state", attrs={"idx": "idx"})
STATUS_MAP = {"working": "open", "done": "solved"}
HEADER = b"id,ts,state,idx,note"
DAMAGE = ("unclosed quote", "stray delimiter", "bad bytes", "short row")


def good_line(i: int, quoted: bool, note: str) -> bytes:
    fields = [f"c{i % 7}", f"2024-01-{1 + i % 28:02d} 10:00", ("working", "done")[i % 2], str(i)]
    fields.append(note)
    if quoted:
        return ",".join(f'"{f}"' for f in fields).encode()
    return ",".join(fields).encode()


def damaged_line(i: int, quoted: bool, damage: str, where: int) -> bytes:
    line = good_line(i, quoted, f"n{i}")
    fields = line.split(b",")
    if damage == "unclosed quote":
        # a quote that opens a value and never closes it: it must not swallow what follows
        fields[where % 5] = b'"' + fields[where % 5].strip(b'"')
    elif damage == "stray delimiter":
        fields.insert(where % 5, b"x")
    elif damage == "bad bytes":
        fields[where % 5] = fields[where % 5] + b"\xff\xfe"
    else:
        fields = fields[: where % 4 + 1]
    return b",".join(fields)


row = st.one_of(
    st.tuples(st.just("good"), st.sampled_from(["plain", "stray quote", "two lines"])),
    st.tuples(st.just("damaged"), st.sampled_from(DAMAGE)),
    st.tuples(st.just("blank"), st.just("")),
)


def build(
    path: Path, kinds: list[tuple[str, str]], quoted: bool, crlf: bool, wheres: list[int]
) -> tuple[int, set[int], list[int]]:
    """Write the file; return (input rows, indices of rows that must be imported, lines of
    the rows that must be rejected)."""
    end = b"\r\n" if crlf else b"\n"
    lines = [HEADER]
    good: set[int] = set()
    bad_lines: list[int] = []
    rows = 0
    for i, (kind, detail) in enumerate(kinds):
        line_no = sum(part.count(b"\n") + 1 for part in lines) + 1
        if kind == "blank":
            lines.append(b"")
            continue
        rows += 1
        if kind == "damaged":
            lines.append(damaged_line(i, quoted, detail, wheres[i % len(wheres)]))
            bad_lines.append(line_no)
            continue
        good.add(i)
        if detail == "stray quote":  # a quote inside an unquoted value is a character
            lines.append(good_line(i, False, f'a"b{i}'))
        elif detail == "two lines":  # a quoted value may span lines
            lines.append(good_line(i, quoted, "") + f'"first{i}\nsecond{i}"'.encode())
        else:
            lines.append(good_line(i, quoted, f"n{i}"))
    path.write_bytes(end.join(lines) + end)
    return rows, good, bad_lines


@settings(
    max_examples=int(os.environ.get("OPSDESK_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    kinds=st.lists(row, min_size=1, max_size=30),
    quoted=st.booleans(),
    crlf=st.booleans(),
    wheres=st.lists(st.integers(0, 20), min_size=1, max_size=5),
    max_rejects=st.none() | st.integers(0, 4),
)
def test_input_rows_are_imported_plus_rejected(
    kinds: list[tuple[str, str]],
    quoted: bool,
    crlf: bool,
    wheres: list[int],
    max_rejects: int | None,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "log.csv"
        rows, good, bad_lines = build(src, kinds, quoted, crlf, wheres)
        out, rejects = Path(tmp) / "out.parquet", Path(tmp) / "rejects.csv"
        options = {"mapping": MAPPING, "status_map": STATUS_MAP, "rejects": rejects}
        too_many = max_rejects is not None and len(bad_lines) > max_rejects
        if too_many or (rows and not good):
            with pytest.raises(ImportRefused, match=rf"{len(bad_lines)} of {rows} rows|all"):
                import_log(src, out, max_rejects=max_rejects, **options)  # type: ignore[arg-type]
            assert sorted(p.name for p in Path(tmp).iterdir()) == ["log.csv"]
            return
        result = import_log(src, out, max_rejects=max_rejects, **options)  # type: ignore[arg-type]
        assert result.rows == rows
        assert result.rejected == len(bad_lines)
        assert result.imported_rows == len(good)
        assert result.rows == result.imported_rows + result.rejected
        # the very rows: every good row's events, and only those, are in the output
        attrs = pq.read_table(out, columns=["attrs"]).column("attrs").to_pylist()
        assert {int(json.loads(a)["idx"]) for a in attrs} == good
        if bad_lines:
            with rejects.open(newline="", encoding="utf-8") as fh:
                reasons = [r["reason"] for r in csv.DictReader(fh)]
            # each damaged row is in the rejects file under the line it began on
            assert [int(r.split(":")[0].split()[-1]) for r in reasons] == bad_lines


def test_an_unclosed_quote_is_reported_at_the_line_it_opened(tmp_path: Path) -> None:
    lines = ["id,ts,state,idx,note"] + [
        f'{i},"2024-01-01 10:00","working",{i},"n {i}"' for i in range(1, 31_001)
    ]
    lines[5_000] = '5000,"2024-01-01 10:00,working,5000,x'  # line 5001 of the file
    src = tmp_path / "log.csv"
    src.write_text("\n".join(lines) + "\n")
    result = import_log(src, tmp_path / "o.parquet", mapping=MAPPING, status_map=STATUS_MAP)
    assert (result.rows, result.imported_rows, result.rejected) == (31_000, 30_999, 1)
    assert result.accounting() == "31,000 input rows = 30,999 imported + 1 rejected"
    assert result.rejects_path is not None
    reason = next(csv.DictReader(result.rejects_path.read_text().splitlines()))["reason"]
    assert reason.startswith("malformed line 5001: a quote opened on this line")
    with pytest.raises(ImportRefused, match=r"1 of 31000 rows rejected.*line 5001"):
        import_log(
            src, tmp_path / "o2.parquet", mapping=MAPPING, status_map=STATUS_MAP, max_rejects=0
        )


def test_a_quote_that_never_closes_says_so(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    src.write_text(
        "id,ts,state,idx,note\n"
        "1,2024-01-01 10:00,working,1,ok\n"
        '2,2024-01-01 11:00,working,2,"never closed\n'
        "3,2024-01-01 12:00,done,3,ok\n"
    )
    result = import_log(src, tmp_path / "o.parquet", mapping=MAPPING, status_map=STATUS_MAP)
    assert (result.rows, result.imported_rows, result.rejected) == (3, 2, 1)
    assert result.rejects_path is not None
    assert "malformed line 3: a quote opened on this line never closes" in (
        result.rejects_path.read_text()
    )


def test_one_bad_line_among_quoted_rows_rejects_only_that_line(tmp_path: Path) -> None:
    """A sniffer that met the bad line would read the file as unquoted and reject every
    row for a bad time ('"2024-01-01 10:00"'); the dialect is fixed instead."""
    lines = ["id,ts,state,idx,note"] + [
        f'"c{i}","2024-01-01 10:00","working","{i}","n"' for i in range(1, 201)
    ]
    lines[2] = '"c2","2024-01-01 10:00","working","2","n",extra'
    src = tmp_path / "log.csv"
    src.write_text("\n".join(lines) + "\n")
    result = import_log(src, tmp_path / "o.parquet", mapping=MAPPING, status_map=STATUS_MAP)
    assert (result.rows, result.rejected, result.reasons) == (200, 1, {"malformed line": 1})
    assert result.rejects_path is not None
    assert "malformed line 3: 6 fields where the header has 5" in result.rejects_path.read_text()


def test_a_header_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    src.write_text("id,ts,id\n1,2024-01-01 10:00,2\n")
    with pytest.raises(ImportRefused, match="names column 'id' twice"):
        import_log(src, tmp_path / "o.parquet", mapping=MAPPING)
    assert not (tmp_path / "o.parquet").exists()


def test_bad_bytes_in_a_column_not_mapped_still_reject_the_row(tmp_path: Path) -> None:
    """DuckDB checks the encoding of the columns it reads only: the file is checked whole."""
    src = tmp_path / "log.csv"
    src.write_bytes(
        b"id,ts,state,idx,note\n"
        b"1,2024-01-01 10:00,working,1,ok\n"
        b"2,2024-01-01 11:00,working,2,caf\xe9\n"
    )
    result = import_log(src, tmp_path / "o.parquet", mapping=MAPPING, status_map=STATUS_MAP)
    assert (result.rows, result.imported_rows, result.rejected) == (2, 1, 1)
    assert result.rejects_path is not None
    assert "malformed line 3: not UTF-8 text" in result.rejects_path.read_text()


def test_a_file_separated_by_semicolons_says_so(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    src.write_text("id;ts;state\n1;2024-01-01 10:00;open\n")
    with pytest.raises(ImportRefused, match="looks separated by ';', not by commas"):
        import_log(src, tmp_path / "o.parquet", mapping=MAPPING)
