"""Importers: foreign event logs (CSV, Parquet, XES, ServiceNow) into CASE_EVENTS.

See docs/importing.md for formats, flags, presets, status maps, rejects and how event
types are derived.
"""

from __future__ import annotations

from opsdesk.analytics.importers.core import (
    FORMATS,
    ImportResult,
    detect_format,
    import_into,
    import_log,
)
from opsdesk.analytics.importers.mapping import (
    PRESETS,
    ColumnMapping,
    ImportRefused,
    Preset,
    load_status_map,
    parse_attr_specs,
)

__all__ = [
    "FORMATS",
    "PRESETS",
    "ColumnMapping",
    "ImportRefused",
    "ImportResult",
    "Preset",
    "detect_format",
    "import_into",
    "import_log",
    "load_status_map",
    "parse_attr_specs",
]
