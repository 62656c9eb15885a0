"""Column mappings, status maps and presets: what an import reads from where."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, Literal

import yaml

from opsdesk.analytics.schema import STATUSES
from opsdesk.domain.errors import DomainError

#: The largest status map read: one short line per distinct status value of a log.
MAX_STATUS_MAP_BYTES = 1_048_576


class ImportRefused(DomainError):
    """An import was refused; nothing was written."""

    code = "import-refused"


#: The CLI flag that sets each mapped field, so error messages can say what to pass.
FLAGS: Final = {
    "case": "--case",
    "time": "--time",
    "activity": "--activity",
    "team": "--team",
    "agent": "--agent",
    "status": "--status",
    "customer": "--customer",
    "channel": "--channel",
    "category": "--category",
    "priority": "--priority",
    "made_sla": "--made-sla",
}

#: Fields copied as-is into the output column of the same name.
PLAIN_FIELDS: Final = ("activity", "team", "agent", "customer", "channel", "category", "priority")

AttrKind = Literal["str", "int", "bool", "time"]


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column feeds each case-event field (``None``: not in the source).

    ``attrs`` maps an attribute NAME to a source COLUMN (``--attr NAME=COLUMN``); those
    values land in the ``attrs`` JSON object.
    """

    case: str
    time: str
    activity: str | None = None
    team: str | None = None
    agent: str | None = None
    status: str | None = None
    customer: str | None = None
    channel: str | None = None
    category: str | None = None
    priority: str | None = None
    made_sla: str | None = None
    attrs: Mapping[str, str] = field(default_factory=dict)

    def columns(self) -> dict[str, str]:
        """Field (or ``attr NAME``) -> source column, for every mapped field."""
        out = {name: col for name in FLAGS if (col := getattr(self, name)) is not None}
        out.update({f"attr {name}": col for name, col in self.attrs.items()})
        return out


def parse_attr_specs(specs: Iterable[str]) -> dict[str, str]:
    """``["NAME=COLUMN", ...]`` (the ``--attr`` flags) -> ``{NAME: COLUMN}``."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, col = spec.partition("=")
        if not sep or not name.strip() or not col.strip():
            raise ImportRefused(f"--attr {spec!r} is not NAME=COLUMN; e.g. --attr region=u_region")
        out[name.strip()] = col.strip()
    return out


def normalise_status_map(raw: Mapping[str, str | None]) -> dict[str, str | None]:
    """Check a status map's targets and key it by the lower-cased, trimmed source value.

    A target of ``None`` or ``""`` means "the source's placeholder for unknown": the row
    is kept with a NULL status rather than rejected.
    """
    out: dict[str, str | None] = {}
    for source, target in raw.items():
        value = None if target is None or str(target).strip() == "" else str(target).strip()
        if value is not None and value not in STATUSES:
            raise ImportRefused(
                f"status map sends {source!r} to {value!r}, which is not one of "
                f"{', '.join(STATUSES)}; fix the status map"
            )
        out[str(source).strip().lower()] = value
    return out


def load_status_map(path: Path) -> dict[str, str | None]:
    """Read a status map: YAML (``source: status``) or CSV (``source,status``)."""
    if not path.is_file():
        raise ImportRefused(f"status map {path} not found; pass --status-map FILE (YAML or CSV)")
    size = path.stat().st_size
    if size > MAX_STATUS_MAP_BYTES:
        raise ImportRefused(
            f"status map {path} is {size:,} bytes; a status map is at most "
            f"{MAX_STATUS_MAP_BYTES:,} (one line per status value): is it the right file?"
        )
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        # the model's YAML reader (aliases bounded); imported here, as the model package
        # is not needed by an import without a status map
        from opsdesk.model.loader import load_yaml_bounded

        try:
            data = load_yaml_bounded(path.read_text(encoding="utf-8"))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            raise ImportRefused(f"{where}: status map is not usable YAML: {exc.problem}") from exc
        except yaml.YAMLError as exc:
            raise ImportRefused(f"status map {path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ImportRefused(
                f"status map {path} must be a YAML mapping 'source value: status', "
                f"e.g. 'In Progress: open'"
            )
        return normalise_status_map({str(k): v for k, v in data.items()})
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"source", "status"} <= set(reader.fieldnames):
                raise ImportRefused(
                    f"status map {path} must be a CSV with a header 'source,status'; "
                    f"found {reader.fieldnames}"
                )
            return normalise_status_map({row["source"]: row["status"] for row in reader})
    raise ImportRefused(f"status map {path} must be .yaml, .yml or .csv")


@dataclass(frozen=True)
class Preset:
    """A known export format: its mapping, status map, time format and null marker."""

    name: str
    mapping: ColumnMapping
    status_map: Mapping[str, str | None]
    time_format: str | None = None
    null_value: str | None = None  # the source's marker for a missing value
    attr_kinds: Mapping[str, AttrKind] = field(default_factory=dict)  # typed attrs


SERVICENOW = Preset(
    name="servicenow",
    mapping=ColumnMapping(
        case="number",
        time="sys_updated_at",
        team="assignment_group",
        agent="assigned_to",
        status="incident_state",
        customer="caller_id",
        channel="contact_type",
        category="category",
        priority="priority",
        made_sla="made_sla",
        attrs={
            name: name
            for name in (
                "reassignment_count",
                "reopen_count",
                "sys_mod_count",
                "opened_at",
                "resolved_at",
                "closed_at",
                "knowledge",
                "subcategory",
            )
        },
    ),
    status_map=normalise_status_map(
        {
            "New": "new",
            "Active": "open",
            "Awaiting User Info": "pending",
            "Awaiting Problem": "on_hold",
            "Awaiting Vendor": "on_hold",
            "Awaiting Evidence": "on_hold",
            "Resolved": "solved",
            "Closed": "closed",
            # the export's placeholder for an unknown state (2 rows of the public log):
            # kept with a NULL status, not guessed and not rejected
            "-100": None,
        }
    ),
    time_format="%d/%m/%Y %H:%M",
    null_value="?",
    attr_kinds={
        "reassignment_count": "int",
        "reopen_count": "int",
        "sys_mod_count": "int",
        # opened_at, resolved_at, closed_at stay as the source wrote them (D/M/YYYY HH:MM):
        # parsing three more dates per row would cost ~30 s on 12 million rows
        "knowledge": "bool",
    },
)

PRESETS: Final[dict[str, Preset]] = {SERVICENOW.name: SERVICENOW}


def resolve_mapping(
    *,
    preset: Preset | None,
    mapping: ColumnMapping | None,
    columns: Mapping[str, str | None] | None,
    attrs: Mapping[str, str] | None,
    defaults: ColumnMapping | None = None,
) -> ColumnMapping | None:
    """The mapping an import uses: ``mapping`` (whole) or the preset's, with the single
    flags (``columns``: field -> column, e.g. ``{"category": "u_type"}``; ``attrs``: NAME
    -> COLUMN) merged over it. Without either, the flags must name the case and the time
    (``defaults`` supplies them for formats with standard keys, such as XES).
    """
    given = {k: v for k, v in (columns or {}).items() if v is not None}
    unknown = sorted(set(given) - set(FLAGS))
    if unknown:
        raise ImportRefused(f"unknown mapped field(s) {', '.join(unknown)}; use {', '.join(FLAGS)}")
    base = mapping or (preset.mapping if preset else None) or defaults
    if not given and not attrs:
        return mapping or (preset.mapping if preset else None)
    if base is None:
        missing = [FLAGS[k] for k in ("case", "time") if k not in given]
        if missing:
            raise ImportRefused(
                f"a generic import needs both --case COLUMN and --time COLUMN (missing "
                f"{' and '.join(missing)}), or --preset {' / '.join(PRESETS)}"
            )
        return ColumnMapping(**given, attrs=dict(attrs or {}))
    return replace(base, **given, attrs={**base.attrs, **(attrs or {})})
