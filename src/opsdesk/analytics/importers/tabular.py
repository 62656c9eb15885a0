# ruff: noqa: S608
# (SQL is built from text: every name and value goes through ident() or lit())
"""The DuckDB pipeline shared by every format: parse, reject, type, write.

Parsing and type derivation are plain SQL over a DuckDB table so a 12-million-row log
imports without a Python loop; the CSV reader streams and DuckDB spills to a scratch
directory when memory runs short.

Only narrow columns are ever sorted, so the work grows linearly with the log:

1. ``parsed``: every input row, parsed, with its input row number ``rn`` (the rowid of
   a table filled in input order), wide (attributes are kept as a typed struct and
   serialised to JSON only when written);
2. ``typed``: one row per output event, from a window over the accepted rows' keys and
   state (case, time, team, agent, status, priority) alone; ``seq`` numbers the events
   in input order without a second global sort (per block of rows, plus the block's
   offset);
3. the Parquet file, written one range of case ids at a time: each range's events
   (about :data:`_BUCKET_ROWS`) are joined back to their wide row and sorted in memory.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

import duckdb

from opsdesk.analytics.importers import csvfile, statusmap
from opsdesk.analytics.importers.mapping import (
    FLAGS,
    PLAIN_FIELDS,
    AttrKind,
    ColumnMapping,
    ImportRefused,
)
from opsdesk.analytics.schema import COLUMNS, SQL_TYPES

if TYPE_CHECKING:  # pyarrow only writes the Parquet file: a log kept in DuckDB needs none
    import pyarrow as pa

Progress = Callable[[str], None]

_BATCH_ROWS: Final = 1_000_000  # rows per Arrow batch (and Parquet row group) written
#: events written per range of case ids: each range is sorted in memory on its own
_BUCKET_ROWS: Final = 1_000_000
#: input rows per block when numbering events: a block's events are ordered on their own
_SEQ_BLOCK_BITS: Final = 16

# Stage numbers of a row's changes: their order is the order of the emitted events.
_TYPE_SQL: Final = """CASE t.stage
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
    csv: CsvSource | None = None  # set when ``relation`` is DuckDB's fast CSV read
    # the user's own status map (normalised) and its file, for the draft of a new one
    status_map_given: Mapping[str, str | None] = field(default_factory=dict)
    status_map_path: Path | None = None
    # also build the diagnostic's `ev` table from the typing window (see _events_table)
    diagnostic_events: bool = False


@dataclass(frozen=True)
class CsvSource:
    """A CSV file read by DuckDB's fast path, and what the careful path needs instead
    (see :mod:`opsdesk.analytics.importers.csvfile`)."""

    path: Path  # the plain CSV (a gzipped one was decompressed into scratch space)
    columns: list[str]  # the header's column names
    scratch: Path


@dataclass(frozen=True)
class Outcome:
    cases: int
    events: int
    rows: int  # input rows: imported + rejected, always
    rejected: int
    reasons: dict[str, int]
    unmapped: dict[str, int] = field(default_factory=dict)  # unmapped status -> rows
    status_map_draft: Path | None = None  # a status map to edit, written beside the source


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
    """The attrs of a row as parsed: the JSON column of a flattened XES log, or a struct
    of the typed ``--attr`` values (serialised by :func:`_attrs_json` when written)."""
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
    return f"{{{', '.join(parts)}}}"


def _attrs_json(plan: Plan, expr: str) -> str:
    """SQL turning the parsed attrs into the JSON text of CASE_EVENTS.attrs."""
    if plan.attrs_json_column is not None or not plan.mapping.attrs:
        return f"CAST({expr} AS VARCHAR)"
    # one struct serialised once: json_object per key is several times slower at scale
    return f"CAST(to_json({expr}) AS VARCHAR)"


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
    # one CASE gives both: '' for a known value mapped to NULL, NULL for an unknown one
    # (an IN list would run as a join, which does not keep the input order)
    whens = " ".join(
        f"WHEN {lit(src)} THEN {lit(dst or '')}" for src, dst in plan.status_map.items()
    )
    mapped = f"CASE {key} {whens} END"
    return f"NULLIF({mapped}, '')", f"{mapped} IS NOT NULL"


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
    """One pass over the source into ``parsed``, each row with its input row number."""
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
    # one parallel pass over the source (a gzipped CSV was decompressed into scratch
    # space: a gzip stream can only be read by one thread) into a table that keeps the
    # input order (preserve_insertion_order, and nothing but projections on the way), so
    # its rowid is the input row number: the view `parsed` names it rn
    needed = sorted({col for col in m.columns().values()})
    if plan.attrs_json_column is not None:
        needed.append(plan.attrs_json_column)
    columns = ", ".join(ident(c) for c in needed)
    con.execute(f"""
        CREATE TABLE parsed_rows AS
        SELECT case_id, ts, status, {", ".join(PLAIN_FIELDS)}, made_sla, attrs,
            CASE WHEN status_src IS NOT NULL AND NOT status_known THEN status_src END
                AS unmapped_status,
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
                    {_field(plan, m.case, trim=True)} AS case_id,
                    {_field(plan, m.time, trim=True)} AS time_src,
                    {_time(plan, _field(plan, m.time, trim=True))} AS ts,
                    {status_raw} AS status_src,
                    {plain},
                    {made_sla} AS made_sla,
                    {_attrs(plan)} AS attrs
                FROM (SELECT {columns} FROM {plan.relation})
            )
        )
    """)
    con.execute("CREATE VIEW parsed AS SELECT rowid AS rn, * FROM parsed_rows")


def _write_rejects(
    con: duckdb.DuckDBPyConnection, plan: Plan, columns: list[str], path: Path
) -> None:
    """Rejected rows as they were in the source, plus why (input order)."""
    reason = "reason"
    while reason in columns:
        reason = "_" + reason
    cols = ", ".join(f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" for c in columns)
    names = ", ".join(f"o.{ident(c)}" for c in columns)
    # a second read of the source, numbered as the first (rowid in input order, see
    # _load): only needed when there are rejects
    con.execute(f"CREATE TABLE original AS SELECT {cols} FROM {plan.relation}")
    con.execute(f"""
        COPY (
            SELECT {names}, p.reason AS {ident(reason)}
            FROM original o JOIN parsed p ON o.rowid = p.rn
            WHERE p.reason IS NOT NULL
            ORDER BY p.rn
        ) TO {lit(str(path))} (FORMAT csv, HEADER true, NULLSTR {lit(plan.null_value or "")})
    """)
    con.execute("DROP TABLE original")


def _append_malformed(path: Path, columns: list[str], malformed: list[csvfile.Malformed]) -> None:
    """Add malformed lines to the rejects file: their fields cannot be told apart, so
    the reason carries the line number, the problem and the raw line."""
    if not malformed:
        return
    import csv

    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for bad in malformed:
            writer.writerow(
                [""] * len(columns) + [f"malformed line {bad.line}: {bad.problem}: {bad.text}"]
            )


def _read(
    con: duckdb.DuckDBPyConnection, plan: Plan, source: Path, progress: Progress
) -> tuple[Plan, list[csvfile.Malformed]]:
    """Load ``parsed`` from the source; a CSV by the fast path when it can be trusted,
    else by the careful one. Returns the plan actually read and the malformed lines."""
    if plan.csv is None:
        _load_or_refuse(con, plan, source)
        return plan, []
    # the lines are counted in a thread while DuckDB reads (it releases the GIL)
    with ThreadPoolExecutor(max_workers=1) as pool:
        counting = pool.submit(csvfile.scan, plan.csv.path)
        try:
            _load(con, plan)
            scan = counting.result()
            read = con.execute("SELECT count(*) FROM parsed").fetchone()[0]  # type: ignore[index]
            if read == scan.lines and not scan.lone_cr and scan.utf8:
                return plan, []  # one record per physical line: nothing merged, nothing lost
        except duckdb.Error:
            pass  # a malformed line: the careful path says which and why
    con.execute("DROP VIEW IF EXISTS parsed")
    con.execute("DROP TABLE IF EXISTS parsed_rows")
    progress(f"reading {source.name} record by record")
    records = plan.csv.scratch / "records.csv"
    written, malformed = csvfile.split(plan.csv.path, plan.csv.columns, records)
    careful = replace(plan, relation=csv_relation(records, plan.csv.columns), csv=None)
    _load_or_refuse(con, careful, source)
    read = con.execute("SELECT count(*) FROM parsed").fetchone()[0]  # type: ignore[index]
    if read != written:  # pragma: no cover - the clean file is well-formed by construction
        raise RuntimeError(f"read {read} of the {written} records split from {source}")
    return careful, malformed


def csv_relation(path: Path, columns: list[str]) -> str:
    """DuckDB's read of a CSV with the dialect fixed (RFC 4180, strict, every column
    text), never sniffed: a sniffer that meets one broken line may decide the file has
    no quoting at all and keep every quote in the values. A line is at most
    :data:`~opsdesk.analytics.importers.csvfile.MAX_RECORD_BYTES` long."""
    names = ", ".join(f"{lit(c)}: 'VARCHAR'" for c in columns)
    return (
        f"read_csv({lit(str(path))}, header = true, auto_detect = false, delim = ',', "
        f"quote = '\"', escape = '\"', strict_mode = true, columns = {{{names}}}, "
        # a longer line fails the fast read: the careful one rejects it as malformed
        f"max_line_size = {csvfile.MAX_RECORD_BYTES})"
    )


def _load_or_refuse(con: duckdb.DuckDBPyConnection, plan: Plan, source: Path) -> None:
    try:
        _load(con, plan)
    except duckdb.Error as exc:
        raise ImportRefused(
            f"could not read {source}: {exc}; check the file is well-formed and that "
            f"--time-format is a strptime format"
        ) from exc


def _changes_sql(payload: str, extra: str = "") -> str:
    """Each accepted row of ``parsed`` compared with the previous row of its case: its
    changes (``ch_*``), the last known status and priority before it (``p_*``) and the
    stage numbers of the events it yields (``stages``), with the ``payload`` columns
    (``", col, col"``) and the ``extra`` window columns (``", expr AS name"``, over the
    window ``c``) carried along. The one statement of the typing rules
    (docs/importing.md, "How event types are derived")."""
    return f"""
        WITH w AS (
            SELECT rn, case_id, ts, team, agent, status, priority{payload},
                row_number() OVER c AS k,
                lag(team) OVER c AS p_team,
                lag(agent) OVER c AS p_agent,
                -- a row with an unknown status or priority is no change; compare with
                -- the last known value
                lag(status IGNORE NULLS) OVER c AS p_status,
                lag(priority IGNORE NULLS) OVER c AS p_priority{extra}
            FROM parsed
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
        )
        SELECT *,
            -- stage numbers of the row's changes: their order is the order of its events
            CASE
                WHEN k = 1 THEN [-1]
                WHEN NOT (ch_team OR ch_agent OR ch_priority OR ch_status) THEN [4]
                ELSE list_filter([
                    CASE WHEN ch_team THEN 0 END,
                    CASE WHEN ch_agent THEN 1 END,
                    CASE WHEN ch_priority THEN 2 END,
                    CASE WHEN ch_status THEN 3 END
                ], lambda s: s IS NOT NULL)
            END AS stages
        FROM f
    """


#: CASE_EVENTS columns no import fills from the source: one value on every event (SQL)
_IMPORT_CONSTANTS: Final = {
    "actor_kind": "'importer'",
    "visibility": "NULL",
    "csat": "NULL",
    "handle_seconds": "NULL",
    "exception_type": "NULL",
}


def _constant_columns(plan: Plan) -> dict[str, str]:
    """CASE_EVENTS columns with one value on every event of this import (SQL): those no
    import fills, and the fields the mapping leaves out (NULL)."""
    constants = dict(_IMPORT_CONSTANTS)
    for name in (*PLAIN_FIELDS, "made_sla"):
        if getattr(plan.mapping, name) is None:
            constants[name] = "NULL"
    if plan.attrs_json_column is None and not plan.mapping.attrs:
        constants["attrs"] = "NULL"
    return constants


#: The window columns of the input rows that the diagnostic's per-event neighbours are
#: derived from (see _diagnostic_events): over the typing window ``c``, so no second sort
_ROW_NEIGHBOURS: Final = """,
                lag(status) OVER c AS r_prev_status,
                lead(ts) OVER c AS r_next_ts,
                lag(team IGNORE NULLS) OVER c AS r_prev_team,
                count(agent) OVER (c ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                    AS r_agents"""

#: Each split event's neighbours, from its row's (``t``): the first event of a row
#: follows the previous row's last, which carries that row's status; the events inside
#: a row share its time, team and agent, and each but the status change carries the
#: status before the row when it has one (see _event_columns)
_EVENT_NEIGHBOURS: Final = """,
            CASE WHEN t.stage = t.stages[1] THEN t.r_prev_status
                WHEN t.ch_status THEN t.p_status
                ELSE t.status END AS ev_prev_status,
            CAST((t.k - 1) * 8 + t.stage + 2 AS BIGINT) AS ev_pos,
            epoch(CASE WHEN t.stage = t.stages[-1] THEN t.r_next_ts ELSE t.ts END)
                AS ev_next_t,
            CASE WHEN t.stage = t.stages[1] THEN t.r_prev_team
                ELSE COALESCE(t.team, t.r_prev_team) END AS ev_prev_team,
            t.r_agents > 0 AS ev_agent_seen,
            HASH(t.case_id) AS ev_case"""


def _events_table(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """The events as ``case_events`` in DuckDB (the CASE_EVENTS columns and types),
    typed and written in one pass over ``parsed``; with ``plan.diagnostic_events`` also
    the diagnostic's ``ev`` (see :func:`_diagnostic_events`).

    For a log kept in DuckDB the window carries the wide columns along instead of
    joining them back, and ``seq`` is ``8 x input row + stage``: increasing in input
    order (ties at one instant keep it) but not dense, which only the Parquet file
    promises. Only the columns that vary are stored (``case_event_rows``); the view
    ``case_events`` adds the constant ones, which costs nothing to store or sort and
    lets DuckDB fold the tests on them.
    """
    constants = _constant_columns(plan)
    payload = "".join(
        f", {name}"
        for name in (*PLAIN_FIELDS, "made_sla", "attrs")
        if name not in ("team", "agent", "priority") and name not in constants
    )
    stored = ", ".join(
        f"CAST({ident(name)} AS {SQL_TYPES[name]}) AS {ident(name)}"
        for name in COLUMNS
        if name not in constants
    )
    extra, neighbours = "", ""
    if plan.diagnostic_events:
        extra, neighbours = _ROW_NEIGHBOURS, _EVENT_NEIGHBOURS
        stored += ", ev_prev_status, ev_pos, ev_next_t, ev_prev_team, ev_agent_seen, ev_case"
    seq = "CAST(t.rn * 8 + t.stage + 2 AS BIGINT)"
    con.execute(f"""
        CREATE TABLE case_event_rows AS
        SELECT {stored}
        FROM (
            SELECT {_event_columns(plan, seq, "t", leave_out=constants)}{neighbours}
            FROM (SELECT *, unnest(stages) AS stage FROM ({_changes_sql(payload, extra)})) AS t
        )
    """)
    every = ", ".join(
        f"CAST({constants[name]} AS {SQL_TYPES[name]}) AS {ident(name)}"
        if name in constants
        else ident(name)
        for name in COLUMNS
    )
    con.execute(f"CREATE VIEW case_events AS SELECT {every} FROM case_event_rows")
    if plan.diagnostic_events:
        _diagnostic_events(con, constants)


def _diagnostic_events(con: duckdb.DuckDBPyConnection, constants: Mapping[str, str]) -> None:
    """The diagnostic's ``ev`` (the columns and rows of analytics/sql/events.sql) from
    ``case_event_rows``, whose neighbour columns the typing window already computed: a
    log imported for the diagnostic is sorted by case and time once, not twice.

    Same rows and values as events.sql's, but ``pos``, which only orders the events of
    a case (1 for the first), is not dense. An import yields no ``sla.*`` events and no
    customer messages (every actor is the importer).
    """

    def col(name: str) -> str:
        if name in constants:
            return f"CAST({constants[name]} AS {SQL_TYPES[name]})"
        return ident(name)

    activity, category = col("activity"), col("category")
    con.execute(f"""
        CREATE TEMP VIEW ev AS
        SELECT
            ev_case AS case_id,
            "at" AS event_at,
            epoch("at") AS t,
            type = 'ticket.transferred' AS is_transfer,
            FALSE AS is_customer_message,
            CASE WHEN {activity} <> type THEN LOWER(TRIM({activity})) END AS step_activity,
            {col("team")} AS team,
            {col("agent")} AS agent,
            {col("status")} AS status,
            CASE WHEN {activity} <> type THEN {category} END AS step_category,
            COALESCE({col("status")} IN ('solved', 'closed'), FALSE) AS is_done,
            COALESCE(ev_prev_status IN ('solved', 'closed'), FALSE) AS prev_done,
            ev_prev_status AS prev_status,
            ev_pos AS pos,
            ev_next_t AS next_t,
            ev_prev_team AS prev_team,
            ev_agent_seen AS agent_seen
        FROM case_event_rows
    """)


def drop_scratch_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Drop what the pipeline builds on the way (all but ``case_events``)."""
    con.execute("DROP VIEW IF EXISTS parsed")
    for table in ("parsed_rows", "original", "typed_rows", "typed"):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _derive(con: duckdb.DuckDBPyConnection) -> None:
    """Type every accepted row against the previous row of its case (see docs/importing.md)
    into ``typed``: one row per output event (``rn``, ``stage``), with ``seq``.

    The window sorts the accepted rows by case and time carrying only the keys and the
    four state columns compared; the wide columns stay in ``parsed``.
    """
    con.execute(
        "CREATE TABLE typed_rows AS SELECT rn, case_id, ts, ch_status, p_status, ch_priority, "
        f"p_priority, stages FROM ({_changes_sql('')})"
    )
    # seq numbers the events by (input row, stage) from 1 without sorting them all at
    # once: each block of input rows is ordered on its own and starts after the events
    # of the blocks before it
    con.execute(f"""
        CREATE TABLE typed AS
        WITH blocks AS (
            SELECT rn >> {_SEQ_BLOCK_BITS} AS block, SUM(len(stages)) AS events
            FROM typed_rows
            GROUP BY block
        ), starts AS (
            SELECT block,
                COALESCE(SUM(events) OVER (
                    ORDER BY block ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                ), 0) AS start
            FROM blocks
        ), x AS (
            SELECT rn, case_id, ts, ch_status, p_status, ch_priority, p_priority,
                unnest(stages) AS stage
            FROM typed_rows
        )
        SELECT x.*,
            CAST(starts.start + row_number() OVER (
                PARTITION BY x.rn >> {_SEQ_BLOCK_BITS} ORDER BY x.rn, x.stage
            ) AS BIGINT) AS seq
        FROM x
        INNER JOIN starts ON starts.block = x.rn >> {_SEQ_BLOCK_BITS}
    """)
    con.execute("DROP TABLE typed_rows")


def _case_ranges(con: duckdb.DuckDBPyConnection) -> list[tuple[str | None, str | None]]:
    """Ranges [low, high) of case ids holding about :data:`_BUCKET_ROWS` events each, in
    order (None: unbounded)."""
    starts = [
        row[0]
        for row in con.execute(f"""
            WITH per_case AS (
                SELECT case_id, count(*) AS n FROM typed GROUP BY case_id
            ), running AS (
                SELECT case_id,
                    SUM(n) OVER (ORDER BY case_id ROWS UNBOUNDED PRECEDING) - n AS before
                FROM per_case
            )
            SELECT min(case_id) FROM running
            GROUP BY before // {_BUCKET_ROWS}
            ORDER BY 1
        """).fetchall()
    ]
    bounds: list[str | None] = [None, *starts[1:], None]
    return list(itertools.pairwise(bounds))


def run(
    con: duckdb.DuckDBPyConnection,
    plan: Plan,
    source: Path,
    out_tmp: Path | None,
    rejects_tmp: Path,
    rejects_always: bool,
    max_rejects: int | None,
    progress: Progress,
) -> Outcome:
    """Parse, reject, type and write ``out_tmp`` (sorted by case, time, seq) or, when it
    is None, the table ``case_events`` in ``con`` in no particular order; write
    ``rejects_tmp`` when there are rejects or ``rejects_always``."""
    columns = check_columns(con, plan, source)
    progress(f"reading {source.name}")
    plan, malformed = _read(con, plan, source, progress)
    rows = con.execute("SELECT count(*) FROM parsed").fetchone()[0]  # type: ignore[index]
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
    unmapped: dict[str, int] = {}
    draft = None
    if "unmapped status" in reasons:
        unmapped = dict(
            con.execute(
                "SELECT unmapped_status, count(*) FROM parsed "
                "WHERE unmapped_status IS NOT NULL GROUP BY 1"
            ).fetchall()
        )
        draft = statusmap.write_draft(source, unmapped, plan.status_map_given, plan.status_map_path)
    if max_rejects is not None and rejected > max_rejects:
        raise ImportRefused(
            f"{rejected} of {rows} rows rejected, more than --max-rejects {max_rejects} "
            f"({_summary(con, reasons, malformed)}); nothing was written. Fix the mapping, "
            f"--time-format or --status-map, or raise --max-rejects"
            + _unmapped_note(unmapped, draft)
        )
    if rows and rejected == rows:
        hint = (
            "Check the file is comma-separated UTF-8 text with a header line"
            if len(malformed) == rows
            else "Check --case, --time, --time-format and --status-map"
        )
        raise ImportRefused(
            f"all {rows} rows rejected ({_summary(con, reasons, malformed)}); nothing was "
            f"written. {hint}" + _unmapped_note(unmapped, draft)
        )
    if rejected or rejects_always:
        progress(f"writing {rejected} rejects")
        _write_rejects(con, plan, columns, rejects_tmp)
        _append_malformed(rejects_tmp, columns, malformed)
    progress("typing events")
    if out_tmp is None:
        # the whole log at once, unsorted: the diagnostic orders each case itself
        _events_table(con, plan)
        # every case has exactly one creation event
        cases, events = con.execute(
            "SELECT count(*) FILTER (WHERE type = 'ticket.created'), count(*) FROM case_events"
        ).fetchone()  # type: ignore[misc]
    else:
        _derive(con)
        progress("writing parquet")
        _write_parquet(con, plan, out_tmp)
        cases, events = con.execute(
            "SELECT count(DISTINCT case_id), count(*) FROM typed"
        ).fetchone()  # type: ignore[misc]
    return Outcome(
        cases=cases,
        events=events,
        rows=rows,
        rejected=rejected,
        reasons=reasons,
        unmapped=unmapped,
        status_map_draft=draft,
    )


def _unmapped_note(unmapped: Mapping[str, int], draft: Path | None) -> str:
    """What to do about unmapped statuses, for an error message ('' without any)."""
    if not unmapped or draft is None:
        return ""
    return (
        f". Statuses not in the status map: {statusmap.describe(unmapped)}. A status map "
        f"to edit is in {draft}: check the guesses, replace each TODO, then pass "
        f"--status-map {draft}"
    )


def _write_parquet(con: duckdb.DuckDBPyConnection, plan: Plan, path: Path) -> None:
    """Write the events sorted by (case_id, at, seq), one range of case ids at a time.

    Each range's events are joined back to their parsed row and sorted in memory, so no
    sort ever holds the whole log's wide rows. Written by pyarrow rather than DuckDB's
    COPY because DuckDB marks a column required whenever it happens to hold no NULL,
    and the schema must not depend on the data. pyarrow compresses and writes in a
    thread of its own while DuckDB produces the next rows.
    """
    with _ParquetSink(path) as sink:
        for low, high in _case_ranges(con):

            def within(alias: str, low: str | None = low, high: str | None = high) -> str:
                bounds = [f"{alias}.case_id >= {lit(low)}"] if low is not None else []
                bounds += [f"{alias}.case_id < {lit(high)}"] if high is not None else []
                return " AND ".join(bounds) or "TRUE"

            reader = con.sql(_events_sql(plan, within("t"), within("p"))).to_arrow_reader(
                _BATCH_ROWS
            )
            for batch in reader:
                sink.put(batch)


def _event_columns(plan: Plan, seq: str, row: str, leave_out: Collection[str] = ()) -> str:
    """The CASE_EVENTS select list of split events (but the columns in ``leave_out``):
    ``t`` holds each event's stage and state changes, ``row`` the input row's wide
    columns. Each split event carries the state after itself, not after the row."""
    columns = {
        **{name: f"{row}.{name}" for name in (*PLAIN_FIELDS, "made_sla")},
        **_IMPORT_CONSTANTS,
        "case_id": f"{row}.case_id",
        "seq": seq,
        "at": f"{row}.ts",
        "type": _TYPE_SQL,
        "status": f"""CASE WHEN t.ch_status AND t.stage < 3 THEN t.p_status
                ELSE {row}.status END""",
        "priority": f"""CASE WHEN t.ch_priority AND t.stage < 2 THEN t.p_priority
                ELSE {row}.priority END""",
        "attrs": _attrs_json(plan, f"{row}.attrs"),
    }
    return ",\n            ".join(
        f"{columns[name]} AS {ident(name)}" for name in COLUMNS if name not in leave_out
    )


def _events_sql(plan: Plan, where_typed: str, where_parsed: str) -> str:
    """The CASE_EVENTS rows of the typed events in one range of case ids, sorted."""
    order = "ORDER BY p.case_id, p.ts, t.seq"
    return f"""
        SELECT {_event_columns(plan, "t.seq", "p")}
        FROM (SELECT * FROM typed AS t WHERE {where_typed}) AS t
        INNER JOIN (SELECT * FROM parsed AS p WHERE {where_parsed}) AS p
            ON p.rn = t.rn
        {order}
    """


class _ParquetSink:
    """A CASE_EVENTS Parquet file written by a thread of its own from a short queue of
    record batches (pyarrow releases the GIL while it encodes and compresses)."""

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        from opsdesk.analytics.schema import CASE_EVENTS

        self._schema = CASE_EVENTS
        self._writer = pq.ParquetWriter(path, CASE_EVENTS, compression="zstd")
        self._queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="parquet-writer", daemon=True)

    def __enter__(self) -> _ParquetSink:
        self._thread.start()
        return self

    def _drain(self) -> None:
        import pyarrow as pa

        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so the producer never blocks
            try:
                # the session zone is only Arrow metadata on the instants: casting relabels
                self._writer.write_table(pa.Table.from_batches([batch]).cast(self._schema))
            except BaseException as exc:  # re-raised in the caller's thread
                self._error = exc

    def put(self, batch: pa.RecordBatch) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def __exit__(self, *exc_info: object) -> None:
        self._queue.put(None)
        self._thread.join()
        self._writer.close()
        if self._error is not None and exc_info[0] is None:
            raise self._error


def _summary(
    con: duckdb.DuckDBPyConnection, reasons: dict[str, int], malformed: list[csvfile.Malformed]
) -> str:
    """'12 bad time, e.g. <first reason>; ...' for an error message."""
    parts = []
    for kind, n in reasons.items():
        example = con.execute(
            "SELECT reason FROM parsed WHERE reason_kind = ? ORDER BY rn LIMIT 1", [kind]
        ).fetchone()
        if example is None and kind == "malformed line" and malformed:
            example = (f"line {malformed[0].line}: {malformed[0].problem}",)
        parts.append(f"{n} {kind}" + (f", e.g. {example[0]}" if example else ""))
    return "; ".join(parts)
