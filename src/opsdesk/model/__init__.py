"""The operating model as code: schema, YAML loader with positions, checker, diff, versions.

Typical use::

    from opsdesk.model import check_file, load_model_file, model_hash

    problems = check_file("operating-model.yaml")
    model = load_model_file("operating-model.yaml").model
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from opsdesk.model.checker import check_file, check_model, sort_problems
from opsdesk.model.diff import (
    FieldChange,
    ItemChange,
    KindDiff,
    ModelDiff,
    diff_models,
    render_diff,
)
from opsdesk.model.loader import (
    MAX_ALIAS_NODES,
    MAX_MODEL_BYTES,
    LoadResult,
    PathKey,
    Position,
    Problem,
    format_path,
    load_model_file,
    load_model_text,
)
from opsdesk.model.schema import (
    Calendar,
    Duration,
    EscalationAction,
    EscalationLevel,
    EscalationPath,
    EscalationWhen,
    ExceptionType,
    HolidaySource,
    ModelSettings,
    OperatingModel,
    RequestType,
    Role,
    SlaPolicy,
    SlaTarget,
    Team,
    format_duration,
    parse_clock,
    parse_duration,
)
from opsdesk.model.versions import canonical_json, model_hash, short_version
from opsdesk.model.vocabulary import (
    ALL_PERMISSIONS,
    CHANNELS,
    PERMISSION_MEANINGS,
    PERMISSIONS,
    PRIORITIES,
    WEEKDAYS,
)


def example_model_path() -> Path:
    """Path of the canonical example model shipped inside the package."""
    return Path(str(resources.files("opsdesk") / "examples" / "operating-model.yaml"))


__all__ = [
    "ALL_PERMISSIONS",
    "CHANNELS",
    "MAX_ALIAS_NODES",
    "MAX_MODEL_BYTES",
    "PERMISSIONS",
    "PERMISSION_MEANINGS",
    "PRIORITIES",
    "WEEKDAYS",
    "Calendar",
    "Duration",
    "EscalationAction",
    "EscalationLevel",
    "EscalationPath",
    "EscalationWhen",
    "ExceptionType",
    "FieldChange",
    "HolidaySource",
    "ItemChange",
    "KindDiff",
    "LoadResult",
    "ModelDiff",
    "ModelSettings",
    "OperatingModel",
    "PathKey",
    "Position",
    "Problem",
    "RequestType",
    "Role",
    "SlaPolicy",
    "SlaTarget",
    "Team",
    "canonical_json",
    "check_file",
    "check_model",
    "diff_models",
    "example_model_path",
    "format_duration",
    "format_path",
    "load_model_file",
    "load_model_text",
    "model_hash",
    "parse_clock",
    "parse_duration",
    "render_diff",
    "short_version",
    "sort_problems",
]
