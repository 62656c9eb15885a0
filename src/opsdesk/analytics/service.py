"""Run the diagnostic on the app's own database or on an event-log file.

The interfaces (CLI, API) call these; they own the scratch space the case-event table
lives in while the engine reads it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from opsdesk.analytics.engine import diagnose, diagnose_loaded, session
from opsdesk.analytics.importers import ImportRefused, ImportResult, import_into, import_log
from opsdesk.analytics.results import Diagnosis

if TYPE_CHECKING:  # a file's diagnostic needs neither the database nor the model loader
    from opsdesk.model import OperatingModel
    from opsdesk.store.db import Database

Progress = Callable[[int, int], None]


#: Logs up to this size are imported into memory for the diagnostic; larger ones go
#: through a scratch Parquet file, which DuckDB reads without holding it all.
IN_MEMORY_BYTES: Final = 1 << 30


@dataclass(frozen=True)
class FileDiagnosis:
    imported: ImportResult | None  # None when the file was already our case-event table
    diagnosis: Diagnosis
    rejects: Path | None  # where the rejected rows were kept, when there were any
    seconds: float = 0.0  # import plus diagnostic, from the file to the result


def is_case_event_file(source: Path) -> bool:
    """Whether ``source`` is a Parquet file of our own case-event table (what
    ``opsdesk import`` writes): the CASE_EVENTS columns with their types, so the
    diagnostic reads it as it is, with no mapping."""
    if not source.name.lower().endswith(".parquet") or not source.is_file():
        return False
    import pyarrow.parquet as pq

    from opsdesk.analytics.schema import CASE_EVENTS

    try:
        schema = pq.read_schema(source)
    except (OSError, ValueError):
        return False
    return all(
        name in schema.names and schema.field(name).type == CASE_EVENTS.field(name).type
        for name in CASE_EVENTS.names
    )


def diagnose_database(
    db: Database,
    *,
    model: OperatingModel | None = None,
    read_progress: Callable[[int], None] | None = None,
    progress: Progress | None = None,
    summary_only: bool = False,
) -> Diagnosis:
    """The diagnostic of the app's own event log, under ``model`` (default: the model in
    force, which enables path deviation; none when no model was ever applied).
    ``summary_only``: see :func:`diagnose_file`."""
    from opsdesk.analytics.ownlog import export_case_events
    from opsdesk.domain.errors import NoModelInForce

    if model is None:
        try:
            model = db.model_in_force()[1]
        except NoModelInForce:
            model = None
    with tempfile.TemporaryDirectory(prefix="opsdesk-diagnose-") as tmp:
        log = Path(tmp) / "case_events.parquet"
        export_case_events(db, log, progress=read_progress, read_back=False)
        return diagnose(
            log,
            model=model,
            source_name="opsdesk database",
            progress=progress,
            **_summary_options(summary_only),
        )


def diagnose_file(
    source: Path,
    *,
    model: OperatingModel | None = None,
    rejects: Path | None = None,
    import_progress: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    summary_only: bool = False,
    **import_options: Any,
) -> FileDiagnosis:
    """Diagnose an event-log file: our own case-event Parquet file as it is (what
    ``opsdesk import`` wrote; no mapping needed), anything else imported first with the
    options of :func:`import_log`.

    Rejected rows are kept in ``rejects``, by default ``<source name>.rejects.csv`` in the
    current directory (only when there are any), so they outlive the scratch space.
    ``summary_only`` leaves out what only the reports show (the daily backlog, the team
    handoff map, example cases), for a caller that writes no report.
    """
    started = time.perf_counter()
    options = _summary_options(summary_only)
    source = Path(source)
    mapped = any(import_options.get(k) is not None for k in _MAPPING_OPTIONS)
    if not mapped and is_case_event_file(source):
        needless = [k for k in ("status_map", "time_format") if import_options.get(k)]
        if needless:
            flags = " and ".join("--" + k.replace("_", "-") for k in needless)
            raise ImportRefused(
                f"{source.name} is already an opsdesk case-event file: its statuses and "
                f"times need no {flags}; leave them out (or pass --case ... to import it "
                f"as a foreign log)"
            )
        diagnosis = diagnose(
            source, model=model, source_name=source.name, progress=progress, **options
        )
        return FileDiagnosis(None, diagnosis, None, time.perf_counter() - started)
    rejects = rejects or Path(f"{source.name.split('.')[0]}.rejects.csv")
    if source.is_file() and source.stat().st_size <= IN_MEMORY_BYTES:
        # a log this size fits in memory: imported into the diagnostic's own DuckDB
        # connection, no Parquet file or Arrow table in between; no attrs: the
        # diagnostic reads none (test_diagnose_files compares this path with diagnosing
        # the imported file, attrs and all)
        with session() as con:
            imported = import_into(
                con,
                source,
                rejects,
                progress=import_progress,
                keep_attrs=False,
                diagnostic_events=True,
                **import_options,
            )
            diagnosis = diagnose_loaded(
                con,
                model=model,
                source_name=source.name,
                progress=progress,
                events_ready=True,
                **options,
            )
    else:
        with tempfile.TemporaryDirectory(prefix="opsdesk-diagnose-") as tmp:
            log = Path(tmp) / "case_events.parquet"
            imported = import_log(
                source, log, rejects=rejects, progress=import_progress, **import_options
            )
            diagnosis = diagnose(
                log, model=model, source_name=source.name, progress=progress, **options
            )
    return FileDiagnosis(imported, diagnosis, imported.rejects_path, time.perf_counter() - started)


def _summary_options(summary_only: bool) -> dict[str, Any]:
    """The engine's options for a diagnosis shown on the terminal only."""
    return {"report_tables": False, "examples": 0} if summary_only else {}


#: import options that say how to read the source: given any, the file is imported
_MAPPING_OPTIONS: Final = ("preset", "mapping", "columns", "attrs")
