"""Run the diagnostic on the app's own database or on an event-log file.

The interfaces (CLI, API) call these; they own the scratch space the case-event table
lives in while the engine reads it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsdesk.analytics.engine import diagnose
from opsdesk.analytics.importers import ImportResult, import_log
from opsdesk.analytics.ownlog import export_case_events
from opsdesk.analytics.results import Diagnosis
from opsdesk.domain.errors import NoModelInForce
from opsdesk.model import OperatingModel
from opsdesk.store.db import Database

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FileDiagnosis:
    imported: ImportResult
    diagnosis: Diagnosis
    rejects: Path | None  # where the rejected rows were kept, when there were any


def diagnose_database(
    db: Database,
    *,
    model: OperatingModel | None = None,
    read_progress: Callable[[int], None] | None = None,
    progress: Progress | None = None,
) -> Diagnosis:
    """The diagnostic of the app's own event log, under ``model`` (default: the model in
    force, which enables path deviation; none when no model was ever applied)."""
    if model is None:
        try:
            model = db.model_in_force()[1]
        except NoModelInForce:
            model = None
    with tempfile.TemporaryDirectory(prefix="opsdesk-diagnose-") as tmp:
        log = Path(tmp) / "case_events.parquet"
        export_case_events(db, log, progress=read_progress, read_back=False)
        return diagnose(log, model=model, source_name="opsdesk database", progress=progress)


def diagnose_file(
    source: Path,
    *,
    model: OperatingModel | None = None,
    rejects: Path | None = None,
    import_progress: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    **import_options: Any,
) -> FileDiagnosis:
    """Import ``source`` (the options of :func:`import_log`) and diagnose it.

    Rejected rows are kept in ``rejects``, by default ``<source name>.rejects.csv`` in the
    current directory (only when there are any), so they outlive the scratch space.
    """
    with tempfile.TemporaryDirectory(prefix="opsdesk-diagnose-") as tmp:
        log = Path(tmp) / "case_events.parquet"
        imported = import_log(
            source, log, rejects=rejects, progress=import_progress, **import_options
        )
        kept = imported.rejects_path
        if kept is not None and rejects is None:
            kept = Path(shutil.move(kept, Path(f"{source.name.split('.')[0]}.rejects.csv")))
        diagnosis = diagnose(log, model=model, source_name=source.name, progress=progress)
    return FileDiagnosis(imported, diagnosis, kept)
