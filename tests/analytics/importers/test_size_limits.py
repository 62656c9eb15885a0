"""Hostile log files: every format the importer reads has a size limit (the file, and a
gzipped one once decompressed) and CSV a bound on one line, each refused with an
actionable message and nothing written."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest
from tests.analytics.importers.test_importers_xes import XES
from typer.testing import CliRunner

from opsdesk.analytics.importers import ColumnMapping, ImportRefused, import_log
from opsdesk.analytics.importers.core import MAX_LOG_BYTES
from opsdesk.analytics.importers.csvfile import MAX_RECORD_BYTES
from opsdesk.settings import Settings

MAPPING = ColumnMapping(case="id", time="ts", activity="act")
GOOD_ROWS = [["A", "2024-01-01 10:00", "open"], ["A", "2024-01-01 11:00", "close"]]


def _csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "ts", "act"])
        writer.writerows(rows)
    return path


def _nothing_written(folder: Path) -> None:
    assert not (folder / "out.parquet").exists()
    assert not list(folder.glob(".out.parquet.*"))


def test_the_default_limit_is_the_documented_setting() -> None:
    assert Settings.model_fields["import_max_bytes"].default == MAX_LOG_BYTES == 32 << 30


def test_a_log_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    # sparse: 40 GiB on paper, a few blocks on disk; never read, only measured
    src = tmp_path / "huge.csv"
    with src.open("wb") as fh:
        fh.write(b"id,ts,act\n")
        fh.truncate(40 << 30)
    with pytest.raises(ImportRefused, match=r"huge\.csv is 42,949,672,960 bytes.*--max-bytes"):
        import_log(src, tmp_path / "out.parquet", mapping=MAPPING)
    _nothing_written(tmp_path)


@pytest.mark.parametrize("name", ["log.csv", "log.xes", "log.parquet"])
def test_every_format_honours_a_smaller_limit(tmp_path: Path, name: str) -> None:
    src = tmp_path / name
    if name.endswith(".csv"):
        _csv(src, GOOD_ROWS)
    elif name.endswith(".xes"):
        src.write_text(XES, encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = list(zip(*GOOD_ROWS, strict=True))
        pq.write_table(pa.table({"id": columns[0], "ts": columns[1], "act": columns[2]}), src)
    mapping = None if name.endswith(".xes") else MAPPING
    size = src.stat().st_size
    # exactly at the limit is read; one byte under it is refused
    import_log(src, tmp_path / "ok.parquet", mapping=mapping, max_bytes=size)
    with pytest.raises(ImportRefused, match=f"{size:,} bytes, more than the {size - 1:,}"):
        import_log(src, tmp_path / "out.parquet", mapping=mapping, max_bytes=size - 1)
    _nothing_written(tmp_path)


@pytest.mark.parametrize("name", ["bomb.csv.gz", "bomb.xes.gz", "bomb.parquet.gz"])
def test_a_gzip_bomb_is_refused_once_it_passes_the_limit(tmp_path: Path, name: str) -> None:
    # 64 MiB of spaces after a plausible start compress to ~64 KiB: the compressed file is
    # far under the limit, its content far over it
    src = tmp_path / name
    start = {"csv": b"id,ts,act\nA,", "xes": b"<?xml version='1.0'?><log><!--", "parquet": b"PAR1"}
    with gzip.open(src, "wb") as fh:
        fh.write(start[name.split(".")[1]])
        for _ in range(64):
            fh.write(b" " * (1 << 20))
    assert src.stat().st_size < 1 << 20
    mapping = None if ".xes" in name else MAPPING
    with pytest.raises(ImportRefused, match=r"decompresses to more than the 8,388,608 bytes"):
        import_log(src, tmp_path / "out.parquet", mapping=mapping, max_bytes=8 << 20)
    _nothing_written(tmp_path)


def test_a_huge_single_field_is_one_rejected_row_never_held_whole(tmp_path: Path) -> None:
    huge = "x" * (3 * MAX_RECORD_BYTES)  # one line three times the longest record read
    src = _csv(tmp_path / "log.csv", [GOOD_ROWS[0], ["B", "2024-01-01 10:30", huge], GOOD_ROWS[1]])
    rejects = tmp_path / "rejects.csv"
    result = import_log(src, tmp_path / "out.parquet", mapping=MAPPING, rejects=rejects)
    assert (result.rows, result.imported_rows, result.rejected) == (3, 2, 1)
    assert result.reasons == {"malformed line": 1}
    with rejects.open(newline="", encoding="utf-8") as fh:
        (row,) = list(csv.reader(fh))[1:]
    reason = row[-1]
    assert reason.startswith("malformed line 3: the line is longer than 1024 KiB")
    assert len(reason) < 2_000  # only its start is kept


def test_a_huge_field_inside_an_open_quote_rejects_both_and_keeps_the_rest(tmp_path: Path) -> None:
    huge = "y" * (2 * MAX_RECORD_BYTES)
    src = tmp_path / "log.csv"
    src.write_text(
        "id,ts,act\n"
        'A,2024-01-01 10:00,"never closed\n'  # line 2: its quote runs into line 3
        f"{huge}\n"  # line 3: too long to read
        "A,2024-01-01 11:00,close\n",  # line 4: read as the good line it is
        encoding="utf-8",
    )
    result = import_log(src, tmp_path / "out.parquet", mapping=MAPPING)
    assert (result.rows, result.imported_rows, result.rejected) == (3, 1, 2)


def test_a_header_longer_than_a_record_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    src.write_text("id,ts," + "z" * (MAX_RECORD_BYTES + 10) + "\nA,2024-01-01,x\n")
    with pytest.raises(ImportRefused, match=r"header line of log\.csv is longer than 1024 KiB"):
        import_log(src, tmp_path / "out.parquet", mapping=MAPPING)
    _nothing_written(tmp_path)


def test_the_cli_refuses_over_max_bytes_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsdesk.cli import app

    src = _csv(tmp_path / "log.csv", GOOD_ROWS)
    out = tmp_path / "out.parquet"
    flags = ["--case", "id", "--time", "ts", "-o", str(out)]
    runner = CliRunner()
    refused = runner.invoke(app, ["import", str(src), *flags, "--max-bytes", "10"])
    assert refused.exit_code != 0
    assert "--max-bytes" in refused.output and "more than the 10 bytes" in refused.output
    monkeypatch.setenv("OPSDESK_IMPORT_MAX_BYTES", "12")
    by_setting = runner.invoke(app, ["diagnose", str(src), "--case", "id", "--time", "ts"])
    assert by_setting.exit_code != 0
    assert "more than the 12 bytes" in by_setting.output
    assert not out.exists()
    monkeypatch.delenv("OPSDESK_IMPORT_MAX_BYTES")
    assert runner.invoke(app, ["import", str(src), *flags]).exit_code == 0
