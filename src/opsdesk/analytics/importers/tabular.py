# ruff: noqa: S608
# (SQL is built from text: every name and value goes through ident() or lit())
"""The DuckDB pipeline shared by every format: parse, reject, type, write.

Parsing and type derivation are plain SQL over a DuckDB table so a 12-million-row log
imports without a Python loop; the CSV reader streams and DuckDB spills to a scratch
directory when memory runs short.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from opsdesk.analytics.importers.mapping import (
    FLAGS,
    PLAIN_FIELDS,
    AttrKind,
    ColumnMapping,
    ImportRefused,
)
from opsdesk.analytics.schema import CASE_EVENTS

Progress = Callable[[str], None]

_BATCH_ROWS: Final = 1_000_000  # rows per Arrow batch (and Parquet row group) written

#: CASE_EVENTS as DuckDB DDL; NOT NULL here is what makes the Parquet fields required.
EVENTS_DDL: Final = """
CREATE TABLE events (
    case_id VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    "at" TIMESTAMPTZ NOT NULL,
    type VARCHAR NOT NULL,
    activity VARCHAR,
    team VARCHAR,
    agent VARCHAR,
    status VARCHAR,
    customer VARCHAR,
    channel VARCHAR,
    category VARCHAR,
    priority VARCHAR,
    actor_kind VARCHAR,
    visibility VARCHAR,
    made_sla BOOLEAN,
    csat DOUBLE,
    handle_seconds DOUBLE,
    exception_type VARCHAR,
    attrs VARCHAR
)
"""

# Stage numbers of a row's changes: their order is the order of the emitted events.
_TYPE_SQL: Final = """CASE stage
    WHEN -1 THEN 'ticket.created'
    WHEN 0 THEN 'ticket.transferred'
    WHEN 1 THEN 'ticket.accepted'
    WHEN 2 THEN 'ticket.priority_changed'
    WHEN 3 THEN 'ticket.status_changed'
    ELSE 'ticket.updated' END"""


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """A quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Plan:
    """Everything the pipeline needs, already resolved from preset and options."""

    relation: str  # SQL table expression reading the source, e.g. read_csv('...')
    mapping: ColumnMapping
    status_map: Mapping[str, str | None]  # lower-cased source value -> status or None
    time_format: str | None
    tz: str
    null_value: str | None = None
    attr_kinds: Mapping[str, AttrKind] = field(default_factory=dict)
    attrs_json_column: str | None = None  # a column already holding the attrs JSON (XES)


@dataclass(frozen=True)
class Outcome:
    cases: int
    events: int
    rows: int
    rejected: int
    reasons: dict[str, int]


def _field(plan: Plan, col: str, trim: bool = False) -> str:
    """A mapped source column as VARCHAR; blanks and the null marker become NULL.

    Only keys are trimmed (case id, time, status): each string function costs seconds
    per ten million rows.
    """
    expr = f"CAST({ident(col)} AS VARCHAR)"
    expr = f"NULLIF(TRIM({expr}), '')" if trim else f"NULLIF({expr}, '')"
    if plan.null_value is not None:
        expr = f"NULLIF({expr}, {lit(plan.null_value)})"
    return expr


def _time(plan: Plan, expr: str) -> str:
    """SQL turning a time string into TIMESTAMPTZ (naive times read in the session zone)."""
    if plan.time_format is not None:
        return f"CAST(TRY_STRPTIME({expr}, {lit(plan.time_format)}) AS TIMESTAMPTZ)"
    return f"TRY_CAST({expr} AS TIMESTAMPTZ)"


def _attrs(plan: Plan) -> str:
    if plan.attrs_json_column is not None:
        return ident(plan.attrs_json_column)
    if not plan.mapping.attrs:
        return "NULL"
    parts = []
    for name, col in plan.mapping.attrs.items():
        raw = _field(plan, col)
        kind = plan.attr_kinds.get(name, "str")
        if kind == "int":
            typed = f"TRY_CAST({raw} AS BIGINT)"
        elif kind == "bool":
            typed = f"TRY_CAST({raw} AS BOOLEAN)"
        elif kind == "time":
            typed = f"strftime({_utc_naive(plan, raw)}, '%Y-%m-%dT%H:%M:%SZ')"
        else:
            typed = raw
        parts.append(f"{lit(name)}: {typed}")
    # one struct serialised once: json_object per key is several times slower at scale
    return f"CAST(to_json({{{', '.join(parts)}}}) AS VARCHAR)"


def _utc_naive(plan: Plan, expr: str) -> str:
    """A time string as a naive UTC TIMESTAMP (skips ICU when the source is already UTC)."""
    if plan.tz == "UTC" and plan.time_format is not None and "%z" not in plan.time_format:
        return f"TRY_STRPTIME({expr}, {lit(plan.time_format)})"
    return f"({_time(plan, expr)} AT TIME ZONE 'UTC')"


def _status(plan: Plan, raw: str) -> tuple[str, str]:
    """(status expression, "is the source value known" expression) from the status map."""
    key = f"lower({raw})"
    if not plan.status_map:
        return "NULL", "FALSE"
    whens = " ".join(
        f"WHEN {lit(src)} THEN {'NULL' if dst is None else lit(dst)}"
        for src, dst in plan.status_map.items()
    )
    known = f"{key} IN ({', '.join(lit(src) for src in plan.status_map)})"
    return f"CASE {key} {whens} END", known


def check_columns(con: duckdb.DuckDBPyConnection, plan: Plan, source: Path) -> list[str]:
    """The source's columns; refuse when a mapped column is missing."""
    try:
        columns = [
            row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {plan.relation}").fetchall()
        ]
    except duckdb.Error as exc:
        raise ImportRefused(f"could not read {source}: {exc}") from exc
    for name, col in plan.mapping.columns().items():
        if col not in columns:
            flag = "--attr NAME=COLUMN" if name.startswith("attr ") else f"{FLAGS[name]} COLUMN"
            shown = ", ".join(columns[:40]) + (", ..." if len(columns) > 40 else "")
            raise ImportRefused(
                f"column {col!r} ({name}) not found in {source.name}; the file has columns "
                f"{shown}; pass {flag}"
            )
    return columns


def _load(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """One pass over the source into ``parsed``: its rowid is the input row order."""
    m = plan.mapping
    status_raw = _field(plan, m.status, trim=True) if m.status else "NULL"
    status_expr, known_expr = _status(plan, "status_src")
    plain = ",\n".join(
        f"{_field(plan, col) if (col := getattr(m, name)) else 'NULL'} AS {name}"
        for name in PLAIN_FIELDS
    )
    made_sla = f"TRY_CAST({_field(plan, m.made_sla)} AS BOOLEAN)" if m.made_sla else "NULL"
    fmt = f"format {plan.time_format}" if plan.time_format else "no --time-format given"
    case_col, time_col, status_col = lit(m.case), lit(m.time), lit(m.status or "")
    # the read (single-threaded for gzip) only copies columns; the parsing below then
    # runs in parallel over the table, and raw's rowid is the input row order
    needed = sorted({col for col in m.columns().values()})
    if plan.attrs_json_column is not None:
        needed.append(plan.attrs_json_column)
    con.execute(
        f"CREATE TABLE raw AS SELECT {', '.join(ident(c) for c in needed)} FROM {plan.relation}"
    )
    con.execute(f"""
        CREATE TABLE parsed AS
        SELECT *,
            CASE
                WHEN case_id IS NULL THEN 'missing case id (column ' || {case_col} || ')'
                WHEN time_src IS NULL THEN 'missing time (column ' || {time_col} || ')'
                WHEN ts IS NULL THEN 'bad time ''' || time_src || ''' (column '
                    || {time_col} || ', ' || {lit(fmt)} || ')'
                WHEN status_src IS NOT NULL AND NOT status_known THEN 'unmapped status '''
                    || status_src || ''' (column ' || {status_col}
                    || '); add it to the status map'
            END AS reason,
            CASE
                WHEN case_id IS NULL THEN 'missing case id'
                WHEN time_src IS NULL THEN 'missing time'
                WHEN ts IS NULL THEN 'bad time'
                WHEN status_src IS NOT NULL AND NOT status_known THEN 'unmapped status'
            END AS reason_kind
        FROM (
            SELECT *, {status_expr} AS status, {known_expr} AS status_known
            FROM (
                SELECT
                    rowid AS rn,
                    {_field(plan, m.case, trim=True)} AS case_id,
                    {_field(plan, m.time, trim=True)} AS time_src,
                    {_time(plan, _field(plan, m.time, trim=True))} AS ts,
                    {status_raw} AS status_src,
                    {plain},
                    {made_sla} AS made_sla,
                    {_attrs(plan)} AS attrs
                FROM raw
            )
        )
    """)
    con.execute("DROP TABLE raw")


def _write_rejects(
    con: duckdb.DuckDBPyConnection, plan: Plan, columns: list[str], path: Path
) -> None:
    """Rejected rows as they were in the source, plus why (input order)."""
    reason = "reason"
    while reason in columns:
        reason = "_" + reason
    cols = ", ".join(f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" for c in columns)
    # a second read of the source: only needed when there are rejects, and rowids of
    # both tables are input positions because DuckDB preserves insertion order
    con.execute(f"CREATE TABLE original AS SELECT {cols} FROM {plan.relation}")
    con.execute(f"""
        COPY (
            SELECT o.*, p.reason AS {ident(reason)}
            FROM original o JOIN parsed p ON o.rowid = p.rn
            WHERE p.reason IS NOT NULL
            ORDER BY p.rn
        ) TO {lit(str(path))} (FORMAT csv, HEADER true, NULLSTR {lit(plan.null_value or "")})
    """)
    con.execute("DROP TABLE original")


def _malformed_lines(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str]]:
    """(line number, error, raw text) of the CSV lines DuckDB could not split into the
    header's fields (read_csv's store_rejects); empty for other formats."""
    try:
        rows = con.execute(
            "SELECT line, ANY_VALUE(error_message), ANY_VALUE(csv_line) FROM reject_errors "
            "GROUP BY line ORDER BY line"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    return [(int(line), str(message), str(text)) for line, message, text in rows]


def _append_malformed(
    path: Path, columns: list[str], malformed: list[tuple[int, str, str]]
) -> None:
    """Add malformed lines to the rejects file: their fields cannot be told apart, so
    the reason carries the line number, the parser's complaint and the raw line."""
    if not malformed:
        return
    import csv

    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for line, message, text in malformed:
            writer.writerow([""] * len(columns) + [f"malformed line {line}: {message}: {text}"])


def _derive(con: duckdb.DuckDBPyConnection) -> None:
    """Type every accepted row against the previous row of its case (see docs/importing.md)."""
    con.execute(EVENTS_DDL)
    con.execute(f"""
        INSERT INTO events
        WITH w AS (
            SELECT p.*,
                row_number() OVER c AS k,
                lag(team) OVER c AS p_team,
                lag(agent) OVER c AS p_agent,
                -- a row with an unknown status or priority is no change; compare with
                -- the last known value
                lag(status IGNORE NULLS) OVER c AS p_status,
                lag(priority IGNORE NULLS) OVER c AS p_priority
            FROM parsed p
            WHERE reason IS NULL
            WINDOW c AS (PARTITION BY case_id ORDER BY ts, rn)
        ), f AS (
            SELECT *,
                -- team to or from unassigned counts, as ServiceNow's reassignment_count does
                k > 1 AND team IS DISTINCT FROM p_team AS ch_team,
                k > 1 AND team IS NOT DISTINCT FROM p_team AND agent IS NOT NULL
                    AND agent IS DISTINCT FROM p_agent AS ch_agent,
                k > 1 AND priority IS NOT NULL AND priority IS DISTINCT FROM p_priority
                    AS ch_priority,
                k > 1 AND status IS NOT NULL AND status IS DISTINCT FROM p_status AS ch_status
            FROM w
        ), x AS (
            SELECT *, unnest(CASE
                WHEN k = 1 THEN [-1]
                WHEN NOT (ch_team OR ch_agent OR ch_priority OR ch_status) THEN [4]
                ELSE list_filter([
                    CASE WHEN ch_team THEN 0 END,
                    CASE WHEN ch_agent THEN 1 END,
                    CASE WHEN ch_priority THEN 2 END,
                    CASE WHEN ch_status THEN 3 END
                ], lambda s: s IS NOT NULL)
            END) AS stage
            FROM f
        )
        SELECT
            case_id,
            row_number() OVER (ORDER BY rn, stage) AS seq,
            ts AS "at",
            {_TYPE_SQL} AS type,
            activity, team, agent,
            -- each split event carries the state after itself, not after the whole row
            CASE WHEN ch_status AND stage < 3 THEN p_status ELSE status END AS status,
            customer, channel, category,
            CASE WHEN ch_priority AND stage < 2 THEN p_priority ELSE priority END AS priority,
            'importer' AS actor_kind,
            NULL AS visibility,
            made_sla,
            NULL AS csat,
            NULL AS handle_seconds,
            NULL AS exception_type,
            attrs
        FROM x
    """)


def run(
    con: duckdb.DuckDBPyConnection,
    plan: Plan,
    source: Path,
    out_tmp: Path,
    rejects_tmp: Path,
    rejects_always: bool,
    max_rejects: int | None,
    progress: Progress,
) -> Outcome:
    """Parse, reject, type and write ``out_tmp``; ``rejects_tmp`` when there are rejects
    or ``rejects_always``."""
    columns = check_columns(con, plan, source)
    progress(f"reading {source.name}")
    try:
        _load(con, plan)
    except duckdb.Error as exc:
        raise ImportRefused(
            f"could not read {source}: {exc}; check the file is well-formed and that "
            f"--time-format is a strptime format"
        ) from exc
    rows = con.execute("SELECT count(*) FROM parsed").fetchone()[0]  # type: ignore[index]
    malformed = _malformed_lines(con)
    rows += len(malformed)
    reasons = dict(
        con.execute(
            "SELECT reason_kind, count(*) FROM parsed WHERE reason IS NOT NULL "
            "GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
    )
    if malformed:
        reasons["malformed line"] = len(malformed)
    rejected = sum(reasons.values())
    if max_rejects is not None and rejected > max_rejects:
        raise ImportRefused(
            f"{rejected} of {rows} rows rejected, more than --max-rejects {max_rejects} "
            f"({_summary(con, reasons)}); nothing was written. Fix the mapping, "
            f"--time-format or --status-map, or raise --max-rejects"
        )
    if rows and rejected == rows:
        raise ImportRefused(
            f"all {rows} rows rejected ({_summary(con, reasons)}); nothing was written. "
            f"Check --case, --time, --time-format and --status-map"
        )
    if rejected or rejects_always:
        progress(f"writing {rejected} rejects")
        _write_rejects(con, plan, columns, rejects_tmp)
        _append_malformed(rejects_tmp, columns, malformed)
    progress("typing events")
    _derive(con)
    progress("writing parquet")
    _write_parquet(con, out_tmp)
    cases, events = con.execute("SELECT count(DISTINCT case_id), count(*) FROM events").fetchone()  # type: ignore[misc]
    return Outcome(cases=cases, events=events, rows=rows, rejected=rejected, reasons=reasons)


def _write_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Stream the sorted events into Parquet through Arrow, cast to CASE_EVENTS.

    Written by pyarrow rather than DuckDB's COPY because DuckDB marks a column required
    whenever it happens to hold no NULL, and the schema must not depend on the data.
    """
    reader = con.sql('SELECT * FROM events ORDER BY case_id, "at", seq').to_arrow_reader(
        _BATCH_ROWS
    )
    with pq.ParquetWriter(path, CASE_EVENTS, compression="zstd") as writer:
        for batch in reader:
            # the session zone is only Arrow metadata on the instants: casting relabels UTC
            writer.write_table(pa.Table.from_batches([batch]).cast(CASE_EVENTS))


def _summary(con: duckdb.DuckDBPyConnection, reasons: dict[str, int]) -> str:
    """'12 bad time, e.g. <first reason>; ...' for an error message."""
    parts = []
    for kind, n in reasons.items():
        example = con.execute(
            "SELECT reason FROM parsed WHERE reason_kind = ? ORDER BY rn LIMIT 1", [kind]
        ).fetchone()
        if example is None and kind == "malformed line":
            first = _malformed_lines(con)[:1]
            example = (f"line {first[0][0]}: {first[0][1]}",) if first else None
        parts.append(f"{n} {kind}" + (f", e.g. {example[0]}" if example else ""))
    return "; ".join(parts)
