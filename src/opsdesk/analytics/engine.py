"""The diagnostic engine: KPIs and friction findings with DuckDB over the case-event table.

The source (a Parquet file or an Arrow table shaped like
:data:`~opsdesk.analytics.schema.CASE_EVENTS`, or ``case_events`` an importer loaded
into a :func:`session`) is never pulled into Python. Plain SQL
files under ``opsdesk/analytics/sql`` (see :data:`SQL_FILES`) materialise the ordered
events once (``ev``), one per-case summary (``cases``) and the priced affected cases
(``finding_cases``); only aggregates come back. The queries take DuckDB named
parameters (``$name``) and read tables whose names the engine controls, so they
transpile to Spark SQL or Trino with sqlglot (docs/diagnostic.md).

Typical use::

    from opsdesk.analytics.engine import diagnose

    result = diagnose(Path("case_events.parquet"), model=model)
    print(result.fix_first)
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import duckdb

from opsdesk.analytics.findings import KINDS, build_findings, fix_first, unmeasurable_kinds
from opsdesk.analytics.kpis import backlog_tables, kpi_tables, unavailable_kpis
from opsdesk.analytics.results import HOURS_PER_TOUCH, Diagnosis, Summary
from opsdesk.analytics.schema import COLUMNS

if TYPE_CHECKING:  # only read here: importing the model package (pydantic) costs a cold start
    import pyarrow as pa  # likewise: a log imported into DuckDB never needs Arrow

    from opsdesk.model import OperatingModel

#: The analytic queries, in the order the engine runs them (``sql/<name>.sql``).
SQL_FILES: Final = (
    "events",
    "summary",
    "handoffs",
    "backlog",
    "cases",
    "case_findings",
    "ownership_gaps",
    "pending_agents",
    "kpis",
    "findings",
    "finding_examples",
    "finding_details",
)

#: Default DuckDB memory limit: the 12-million-event target fits in 6 GiB of RAM.
DEFAULT_MEMORY_LIMIT: Final = "5GB"

#: Minimum affected cases for a finding to be reported.
DEFAULT_MIN_CASES: Final = 5

Progress = Callable[[int, int], None]

_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_COMMENT = re.compile(r"--[^\n]*")


def sql_text(name: str) -> str:
    """The text of ``sql/<name>.sql`` shipped in the package."""
    source = resources.files("opsdesk.analytics") / "sql" / f"{name}.sql"
    return source.read_text(encoding="utf-8")


def sql_parameters(sql: str) -> set[str]:
    """Named parameters (``$name``) a query uses, comments ignored."""
    return set(_PARAMETER.findall(_COMMENT.sub("", sql)))


def _run(
    con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any]
) -> duckdb.DuckDBPyConnection:
    sql = sql_text(name)
    used = sql_parameters(sql)
    missing = used - params.keys()
    if missing:  # pragma: no cover - a programming error in this module
        raise KeyError(f"sql/{name}.sql needs parameters {sorted(missing)}")
    return con.execute(sql, {key: params[key] for key in used})


def _rows(
    con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    cursor = _run(con, name, params)
    columns = [column[0] for column in cursor.description or ()]
    return [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]


def model_rows(
    model: OperatingModel | None,
) -> tuple[dict[tuple[str, str], int], list[str]]:
    """What ``path_steps`` and ``escalation_teams`` hold, from the operating model:
    ``{(request type, step): step number}`` and the escalation teams.

    A request type is known in the log by its id or its name (both are keys); step
    names are compared trimmed and lower-cased. Escalation teams are the targets of
    ``transfer_to_team`` actions, by id and by name.
    """
    steps: dict[tuple[str, str], int] = {}
    teams: set[str] = set()
    if model is not None:
        for request_type in model.request_types:
            for number, step in enumerate(request_type.steps, start=1):
                for key in (request_type.id, request_type.name):
                    steps.setdefault((key, step.strip().lower()), number)
        names = {team.id: team.name for team in model.teams}
        for path in model.escalation_paths:
            for level in path.levels:
                for action in level.actions:
                    if action.transfer_to_team:
                        teams.add(action.transfer_to_team)
                        if action.transfer_to_team in names:
                            teams.add(names[action.transfer_to_team])
    return steps, sorted(teams)


def model_tables(model: OperatingModel | None) -> tuple[pa.Table, pa.Table]:
    """``path_steps`` and ``escalation_teams`` for the SQL as Arrow tables (for another
    engine: the diagnostic loads them with :func:`load_model_tables`)."""
    import pyarrow as pa

    steps, teams = model_rows(model)
    path_steps = pa.table(
        {
            "request_type": pa.array([key for key, _ in steps], pa.string()),
            "step": pa.array([step for _, step in steps], pa.string()),
            "step_no": pa.array(list(steps.values()), pa.int64()),
        }
    )
    escalation = pa.table({"team": pa.array(teams, pa.string())})
    return path_steps, escalation


def measurable_kinds(not_measurable: Mapping[str, str]) -> list[str]:
    """The finding kinds to look for on this log (every kind but those
    :func:`~opsdesk.analytics.findings.unmeasurable_kinds` rules out)."""
    return [kind for kind in KINDS if kind not in not_measurable]


def measurable_kinds_table(not_measurable: Mapping[str, str]) -> pa.Table:
    """``measurable_kinds`` for the SQL as an Arrow table (for another engine)."""
    import pyarrow as pa

    return pa.table({"kind": pa.array(measurable_kinds(not_measurable), pa.string())})


# The small tables are filled from parameters rather than registered Arrow tables:
# building an Arrow table imports pandas, a quarter of a second of a cold start.
def load_model_tables(con: duckdb.DuckDBPyConnection, model: OperatingModel | None) -> None:
    """``path_steps`` and ``escalation_teams`` (:func:`model_rows`) as tables in ``con``."""
    steps, teams = model_rows(model)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE path_steps AS SELECT "
        "unnest($types::VARCHAR[]) AS request_type, unnest($steps::VARCHAR[]) AS step, "
        "unnest($numbers::BIGINT[]) AS step_no",
        {
            "types": [key for key, _ in steps],
            "steps": [step for _, step in steps],
            "numbers": list(steps.values()),
        },
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE escalation_teams AS SELECT unnest($teams::VARCHAR[]) AS team",
        {"teams": teams},
    )


def _load_measurable_kinds(
    con: duckdb.DuckDBPyConnection, not_measurable: Mapping[str, str]
) -> None:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE measurable_kinds AS SELECT unnest($kinds::VARCHAR[]) AS kind",
        {"kinds": measurable_kinds(not_measurable)},
    )


def _attach_source(con: duckdb.DuckDBPyConnection, source: Path | str | pa.Table) -> None:
    if not isinstance(source, str | Path):  # an Arrow table
        con.register("case_events", source)
        columns = source.column_names
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such case-event file")
        relation = con.read_parquet(str(path))
        relation.create_view("case_events")
        columns = relation.columns
    _check_columns(columns)


def _check_options(repeat_window_days: int, examples: int, min_cases: int) -> None:
    if repeat_window_days < 0 or examples < 0 or min_cases < 1:
        raise ValueError("repeat_window_days and examples must be >= 0, min_cases >= 1")


def _check_columns(columns: list[str]) -> None:
    missing = [name for name in COLUMNS if name not in columns]
    if missing:
        raise ValueError(
            "the source is not a case-event table (opsdesk.analytics.schema.CASE_EVENTS): "
            f"missing columns {', '.join(missing)}"
        )


@contextmanager
def session(
    *, memory_limit: str = DEFAULT_MEMORY_LIMIT, threads: int | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection set up for the diagnostic: ``memory_limit``
    (spilling to a temporary directory beyond it), ``threads`` (default: every core),
    times in UTC. An importer may load ``case_events`` into it for
    :func:`diagnose_loaded` (``opsdesk.analytics.importers.import_into``)."""
    with tempfile.TemporaryDirectory(prefix="opsdesk-duckdb-") as spill:
        config: dict[str, Any] = {
            "memory_limit": memory_limit,
            "threads": threads or os.cpu_count() or 1,
            "preserve_insertion_order": False,
            "temp_directory": spill,
        }
        con = duckdb.connect(":memory:", config=config)
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()


def diagnose(
    source: Path | str | pa.Table,
    *,
    model: OperatingModel | None = None,
    source_name: str | None = None,
    repeat_window_days: int = 7,
    examples: int = 5,
    min_cases: int = DEFAULT_MIN_CASES,
    progress: Progress | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int | None = None,
    report_tables: bool = True,
) -> Diagnosis:
    """KPIs, ranked friction findings, the handoff map and a summary of a case-event log.

    ``source`` is a Parquet file or an Arrow table with the CASE_EVENTS columns.
    ``model`` enables path deviation and the model-based escalation rate.
    ``progress(done, total)`` is called after each query. DuckDB runs with
    ``memory_limit`` (spilling to a temporary directory beyond it) and ``threads``
    (default: every core). ``report_tables=False`` leaves out what only the reports
    show, the daily backlog and the team handoff map (``examples=0`` the example cases).
    """
    _check_options(repeat_window_days, examples, min_cases)
    if source_name is None:
        source_name = Path(source).name if isinstance(source, str | Path) else "arrow table"
    with session(memory_limit=memory_limit, threads=threads) as con:
        _attach_source(con, source)
        return diagnose_loaded(
            con,
            model=model,
            source_name=source_name,
            repeat_window_days=repeat_window_days,
            examples=examples,
            min_cases=min_cases,
            progress=progress,
            report_tables=report_tables,
        )


def diagnose_loaded(
    con: duckdb.DuckDBPyConnection,
    *,
    source_name: str,
    model: OperatingModel | None = None,
    repeat_window_days: int = 7,
    examples: int = 5,
    min_cases: int = DEFAULT_MIN_CASES,
    progress: Progress | None = None,
    report_tables: bool = True,
    events_ready: bool = False,
) -> Diagnosis:
    """:func:`diagnose` of the table or view ``case_events`` already in ``con`` (a
    :func:`session`), e.g. a log an importer loaded there: no file or Arrow table in
    between."""
    _check_options(repeat_window_days, examples, min_cases)
    _check_columns(con.table("case_events").columns)
    params: dict[str, Any] = {
        "repeat_window_days": repeat_window_days,
        "examples": examples,
        "hours_per_touch": HOURS_PER_TOUCH,
        "min_cases": min_cases,
        "has_model": model is not None,
    }
    total = len(SQL_FILES)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    load_model_tables(con, model)

    if not events_ready:  # else the importer built `ev` (import_into's diagnostic_events)
        _run(con, "events", params)
    step()
    (summary_row,) = _rows(con, "summary", params)
    not_measurable = unmeasurable_kinds(summary_row, has_model=model is not None)
    _load_measurable_kinds(con, not_measurable)
    step()
    # the handoff map and the backlog are only shown by the reports
    handoffs = [
        {"from_team": r["from_team"], "to_team": r["to_team"], "count": r["transfers"]}
        for r in (_rows(con, "handoffs", params) if report_tables else [])
    ]
    step()
    backlog = backlog_tables(_rows(con, "backlog", params)) if report_tables else []
    step()
    _run(con, "cases", params)
    step()
    _run(con, "case_findings", params)
    step()
    # each also checks measurable_kinds; skipping saves the scan of `ev`
    if "ownership_gap" not in not_measurable:
        _run(con, "ownership_gaps", params)
    step()
    if "pending_misuse" not in not_measurable:
        _run(con, "pending_agents", params)
    step()
    con.execute("DROP VIEW ev" if events_ready else "DROP TABLE ev")
    kpi_rows = _rows(con, "kpis", params)
    overall = next((r for r in kpi_rows if r["dimension"] == "overall"), None)
    unavailable = unavailable_kpis(
        summary_row, sla_cases=int(overall["sla_cases"] or 0) if overall else 0
    )
    kpis = kpi_tables(kpi_rows, unavailable) + backlog
    step()
    finding_rows = _rows(con, "findings", params)
    step()
    example_rows = _rows(con, "finding_examples", params) if examples else []
    step()
    detail_rows = _rows(con, "finding_details", params)
    step()

    categorised = int(summary_row["categories"] or 0) > 0
    findings = build_findings(
        finding_rows,
        example_rows,
        detail_rows,
        kpis,
        repeat_window_days=repeat_window_days,
        min_cases=min_cases,
        categorised=categorised,
    )
    summary = Summary(
        source=source_name,
        cases=int(summary_row["cases"]),
        events=int(summary_row["events"]),
        teams=int(summary_row["teams"]),
        agents=int(summary_row["agents"]),
        first_event=summary_row["first_event"],
        last_event=summary_row["last_event"],
    )
    return Diagnosis(
        summary=summary,
        kpis=kpis,
        findings=findings,
        handoffs=handoffs,
        fix_first=fix_first(findings, categorised=categorised),
        unavailable_kpis=unavailable,
        not_measurable=not_measurable,
    )
