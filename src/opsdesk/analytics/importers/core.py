"""``import_log``: a foreign event log in, one CASE_EVENTS Parquet file out."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import time
import uuid
import zlib
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

import duckdb

from opsdesk.analytics.importers import csvfile, tabular, xes
from opsdesk.analytics.importers.mapping import (
    PRESETS,
    ColumnMapping,
    ImportRefused,
    Preset,
    load_status_map,
    normalise_status_map,
    resolve_mapping,
)
from opsdesk.analytics.schema import STATUSES

MEMORY_LIMIT: Final = "4GB"  # DuckDB's working memory before it spills to disk
#: The largest log read, on disk and, for a gzipped one, decompressed (bytes): real logs
#: run to several GiB; ``--max-bytes`` / ``OPSDESK_IMPORT_MAX_BYTES`` change it
MAX_LOG_BYTES: Final = 32 << 30
_COPY_CHUNK: Final = 1 << 20  # bytes per read when decompressing into scratch space

FORMATS: Final = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
    ".parquet.gz": "parquet",
    ".xes": "xes",
    ".xes.gz": "xes",
}


@dataclass(frozen=True)
class ImportResult:
    cases: int
    events: int  # rows written (a row that changed several things yields several)
    rejected: int  # input rows not imported, each in the rejects file with its reason
    rejects_path: Path | None  # None when nothing was rejected and no path was asked for
    out: Path | None  # None when the events were kept in memory (import_events)
    seconds: float
    rows: int = 0  # input rows read (events of an XES log): imported + rejected, always
    reasons: dict[str, int] = field(default_factory=dict)  # reject kind -> rows
    unmapped: dict[str, int] = field(default_factory=dict)  # unmapped status value -> rows
    status_map_draft: Path | None = None  # a status map to edit, when some were unmapped

    @property
    def imported_rows(self) -> int:
        """Input rows imported (each yields one or more events)."""
        return self.rows - self.rejected

    def accounting(self) -> str:
        """``'31,000 input rows = 30,999 imported + 1 rejected'``: every row is one or
        the other (docs/importing.md defines an input row)."""
        return (
            f"{self.rows:,} input rows = {self.imported_rows:,} imported + "
            f"{self.rejected:,} rejected"
        )


def detect_format(source: Path) -> str:
    name = source.name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return FORMATS[suffix]
    raise ImportRefused(
        f"cannot tell the format of {source.name}: use a file ending in {', '.join(FORMATS)}"
    )


def _given_status_map(given: Mapping[str, str] | Path | None) -> dict[str, str | None]:
    """The user's status map, normalised (keys lower-cased and trimmed)."""
    if isinstance(given, Path):
        return load_status_map(given)
    return normalise_status_map(given) if given is not None else {}


def import_log(
    source: Path,
    out: Path,
    *,
    preset: str | None = None,
    mapping: ColumnMapping | None = None,
    columns: Mapping[str, str | None] | None = None,
    attrs: Mapping[str, str] | None = None,
    status_map: Mapping[str, str] | Path | None = None,
    time_format: str | None = None,
    tz: str = "UTC",
    rejects: Path | None = None,
    max_rejects: int | None = None,
    progress: Callable[[str], None] | None = None,
    max_bytes: int = MAX_LOG_BYTES,
) -> ImportResult:
    """Import ``source`` (CSV, Parquet or XES, optionally gzipped) into ``out``.

    ``out`` is one zstd Parquet file with exactly the CASE_EVENTS schema, sorted by
    ``case_id, at, seq``. Rejected rows go to ``rejects`` (default: next to ``out`` as
    ``<stem>.rejects.csv``, written only when there are rejects). Beyond ``max_rejects``
    rejected rows, or on any refusal, nothing is written. ``progress`` receives one line
    per stage. A file larger than ``max_bytes``, or a gzipped one that decompresses to
    more, is refused. The options map 1:1 to the ``opsdesk import`` / ``diagnose`` flags.
    """
    out = Path(out)
    return _import(
        Path(source),
        out,
        rejects or out.with_name(f"{out.name.split('.')[0]}.rejects.csv"),
        rejects_always=rejects is not None,
        max_bytes=max_bytes,
        preset=preset,
        mapping=mapping,
        columns=columns,
        attrs=attrs,
        status_map=status_map,
        time_format=time_format,
        tz=tz,
        max_rejects=max_rejects,
        progress=progress,
    )


def import_into(
    con: duckdb.DuckDBPyConnection,
    source: Path,
    rejects: Path,
    *,
    preset: str | None = None,
    mapping: ColumnMapping | None = None,
    columns: Mapping[str, str | None] | None = None,
    attrs: Mapping[str, str] | None = None,
    status_map: Mapping[str, str] | Path | None = None,
    time_format: str | None = None,
    tz: str = "UTC",
    max_rejects: int | None = None,
    progress: Callable[[str], None] | None = None,
    keep_attrs: bool = True,
    diagnostic_events: bool = False,
    max_bytes: int = MAX_LOG_BYTES,
) -> ImportResult:
    """Like :func:`import_log`, but the events stay in DuckDB: the table ``case_events``
    (the CASE_EVENTS columns, in no particular order) is created in ``con``, where the
    diagnostic reads it (``opsdesk.analytics.engine.session`` and ``diagnose_loaded``)
    without a file or an Arrow table in between. ``con``'s memory limit and spill
    directory apply; its time zone and insertion-order setting are restored afterwards.
    ``result.out`` is None; rejected rows go to ``rejects`` when there are any.
    ``keep_attrs=False`` leaves ``attrs`` empty and skips reading and typing those
    columns (the diagnostic does not read them). ``diagnostic_events=True`` also builds
    the diagnostic's table ``ev`` from the importer's own sort (``diagnose_loaded(...,
    events_ready=True)`` then reads it instead of sorting the log again)."""
    return _import(
        Path(source),
        None,
        Path(rejects),
        rejects_always=False,
        preset=preset,
        mapping=mapping,
        columns=columns,
        attrs=attrs,
        status_map=status_map,
        time_format=time_format,
        tz=tz,
        max_rejects=max_rejects,
        progress=progress,
        keep_attrs=keep_attrs,
        con=con,
        diagnostic_events=diagnostic_events,
        max_bytes=max_bytes,
    )


def _import(
    source: Path,
    out: Path | None,
    rejects_final: Path,
    *,
    rejects_always: bool,
    preset: str | None,
    mapping: ColumnMapping | None,
    columns: Mapping[str, str | None] | None,
    attrs: Mapping[str, str] | None,
    status_map: Mapping[str, str] | Path | None,
    time_format: str | None,
    tz: str,
    max_rejects: int | None,
    progress: Callable[[str], None] | None,
    keep_attrs: bool = True,
    con: duckdb.DuckDBPyConnection | None = None,
    diagnostic_events: bool = False,
    max_bytes: int = MAX_LOG_BYTES,
) -> ImportResult:
    """The import behind :func:`import_log` (``out`` given) and :func:`import_into`
    (``con`` given, ``out`` None)."""
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    if not source.is_file():
        raise ImportRefused(f"{source} not found; pass the path of an event-log file")
    fmt = detect_format(source)
    check_size(source, max_bytes)
    chosen = None
    if preset is not None:
        chosen = PRESETS.get(preset)
        if chosen is None:
            raise ImportRefused(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ImportRefused(
            f"unknown --tz {tz!r}; use an IANA zone such as UTC or Europe/Paris"
        ) from exc
    if max_rejects is not None and max_rejects < 0:
        raise ImportRefused("--max-rejects must be 0 or more")
    given = _given_status_map(status_map)
    statuses: dict[str, str | None] = {s: s for s in STATUSES}
    statuses.update(chosen.status_map if chosen else {})
    statuses.update(given)
    xes_keys = xes.XesKeys()
    mapping = resolve_mapping(
        preset=chosen,
        mapping=mapping,
        columns=columns,
        attrs=attrs,
        defaults=ColumnMapping(case=xes_keys.case, time=xes_keys.time) if fmt == "xes" else None,
    )
    if not keep_attrs and mapping is not None:
        mapping = replace(mapping, attrs={})
    token = uuid.uuid4().hex[:8]
    out_tmp = None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out_tmp = out.with_name(f".{out.name}.{token}.tmp")
    rejects_tmp = rejects_final.with_name(f".{rejects_final.name}.{token}.tmp")
    try:
        with tempfile.TemporaryDirectory(prefix="opsdesk-import-") as scratch_dir:
            scratch = Path(scratch_dir)
            plan = _plan(
                source, fmt, scratch, mapping, statuses, time_format, tz, chosen, say, max_bytes
            )
            plan = replace(
                plan,
                status_map_given=given,
                status_map_path=status_map if isinstance(status_map, Path) else None,
                diagnostic_events=diagnostic_events and con is not None,
            )

            def pipeline(db: duckdb.DuckDBPyConnection) -> tabular.Outcome:
                return tabular.run(
                    db, plan, source, out_tmp, rejects_tmp, rejects_always, max_rejects, say
                )

            if con is not None:
                outcome = _in_session(con, tz, pipeline)
            else:
                # in memory (a file database is ~1.5x slower here), spilling to scratch
                # beyond MEMORY_LIMIT so a 12-million-row log stays within a few GiB
                own = duckdb.connect(":memory:")
                try:
                    own.execute(f"SET temp_directory = {tabular.lit(str(scratch / 'spill'))}")
                    own.execute(f"SET memory_limit = {tabular.lit(MEMORY_LIMIT)}")
                    own.execute("SET enable_progress_bar = false")
                    outcome = _in_session(own, tz, pipeline)
                finally:
                    own.close()
        if out_tmp is not None:
            _check_written(out_tmp)
        wrote_rejects = rejects_tmp.exists()
        if wrote_rejects:
            rejects_final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(rejects_tmp, rejects_final)
        if out_tmp is not None and out is not None:
            os.replace(out_tmp, out)
    finally:
        for leftover in (out_tmp, rejects_tmp):
            if leftover is not None:
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
    result = ImportResult(
        cases=outcome.cases,
        events=outcome.events,
        rejected=outcome.rejected,
        rejects_path=rejects_final if wrote_rejects else None,
        out=out,
        seconds=time.perf_counter() - started,
        rows=outcome.rows,
        reasons=outcome.reasons,
        unmapped=outcome.unmapped,
        status_map_draft=outcome.status_map_draft,
    )
    return result


def too_large(source: Path, size: int, max_bytes: int, *, decompressed: bool = False) -> str:
    """The message refusing a log over the size limit."""
    what = "decompresses to more than" if decompressed else f"is {size:,} bytes, more than"
    return (
        f"{source.name} {what} the {max_bytes:,} bytes an import reads (--max-bytes, "
        f"OPSDESK_IMPORT_MAX_BYTES); raise the limit if the log is really that large"
    )


def check_size(source: Path, max_bytes: int) -> None:
    """Refuse a log larger than ``max_bytes`` before reading it."""
    if max_bytes < 1:
        raise ImportRefused("--max-bytes must be at least 1")
    size = source.stat().st_size
    if size > max_bytes:
        raise ImportRefused(too_large(source, size, max_bytes))


def _decompress(source: Path, out: Path, max_bytes: int) -> None:
    """Decompress a gzipped log into scratch space, refusing it once it passes
    ``max_bytes`` (a small file can expand a thousandfold)."""
    written = 0
    try:
        with gzip.open(source, "rb") as src, out.open("wb") as dst:
            while chunk := src.read(_COPY_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise ImportRefused(too_large(source, written, max_bytes, decompressed=True))
                dst.write(chunk)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ImportRefused(f"{source.name} is not a readable gzip file: {exc}") from exc


def _check_written(path: Path) -> None:
    import pyarrow.parquet as pq  # only a written file needs it (see tabular)

    from opsdesk.analytics.schema import CASE_EVENTS

    if pq.read_schema(path) != CASE_EVENTS:
        raise RuntimeError(f"importer wrote {pq.read_schema(path)}, not CASE_EVENTS")


def _in_session(
    con: duckdb.DuckDBPyConnection,
    tz: str,
    pipeline: Callable[[duckdb.DuckDBPyConnection], tabular.Outcome],
) -> tabular.Outcome:
    """Run the import pipeline on ``con`` in the import's time zone and keeping insertion
    order (the input row number is a rowid), then put both settings back."""
    (zone, ordered) = con.execute(
        "SELECT current_setting('TimeZone'), current_setting('preserve_insertion_order')"
    ).fetchone()  # type: ignore[misc]
    try:
        try:
            con.execute(f"SET TimeZone = {tabular.lit(tz)}")
        except duckdb.Error as exc:
            raise ImportRefused(f"--tz {tz!r} is not known to DuckDB: {exc}") from exc
        con.execute("SET preserve_insertion_order = true")
        return pipeline(con)
    finally:
        tabular.drop_scratch_tables(con)
        con.execute(f"SET TimeZone = {tabular.lit(str(zone))}")
        con.execute(f"SET preserve_insertion_order = {'true' if ordered else 'false'}")


def _plan(
    source: Path,
    fmt: str,
    scratch: Path,
    mapping: ColumnMapping | None,
    statuses: dict[str, str | None],
    time_format: str | None,
    tz: str,
    preset: Preset | None,
    say: Callable[[str], None],
    max_bytes: int = MAX_LOG_BYTES,
) -> tabular.Plan:
    """Resolve the source into a SQL relation and the mapping the pipeline applies."""
    null_value = preset.null_value if preset else None
    # the preset's typing applies to its attributes still read from its own columns
    attr_kinds = {
        name: kind
        for name, kind in (preset.attr_kinds if preset else {}).items()
        if mapping is not None
        and preset is not None
        and mapping.attrs.get(name) == preset.mapping.attrs.get(name)
    }
    time_format = time_format or (preset.time_format if preset else None)
    if fmt == "xes":
        say(f"parsing {source.name}")
        flat = scratch / "xes.parquet"
        keys = xes.XesKeys.resolve(mapping, has_status_map=len(statuses) > len(STATUSES))
        if xes.flatten(source, keys, flat, max_bytes=max_bytes) == 0:
            raise ImportRefused(f"{source.name} holds no events (no <trace><event> elements)")
        return tabular.Plan(
            relation=f"read_parquet({tabular.lit(str(flat))})",
            mapping=xes.FLAT_MAPPING,
            status_map=statuses,
            time_format=time_format,
            tz=tz,
            attrs_json_column="attrs",
        )
    if mapping is None:
        raise ImportRefused(
            f"say which columns hold what in {source.name}: pass --case COLUMN and "
            f"--time COLUMN (and --team, --agent, --status, ...), or --preset "
            f"{' / '.join(PRESETS)}"
        )
    if fmt == "csv":
        path = source
        if source.name.lower().endswith(".gz"):
            # DuckDB reads a gzip stream with one thread and a plain file with all of
            # them: decompressing first (2 to 3 s per GB) makes the read parallel
            say(f"decompressing {source.name}")
            path = scratch / "source.csv"
            _decompress(source, path, max_bytes)
        header = csvfile.read_header(path)
        relation = tabular.csv_relation(path, header)
        csv_source = tabular.CsvSource(path=path, columns=header, scratch=scratch)
    else:
        path = source
        if source.name.lower().endswith(".gz"):
            # Parquet cannot be read through a gzip stream: decompress into scratch space
            path = scratch / "source.parquet"
            _decompress(source, path, max_bytes)
        relation = f"read_parquet({tabular.lit(str(path))})"
        csv_source = None
    return tabular.Plan(
        relation=relation,
        mapping=mapping,
        status_map=statuses,
        time_format=time_format,
        tz=tz,
        null_value=null_value,
        attr_kinds=attr_kinds,
        csv=csv_source,
    )
