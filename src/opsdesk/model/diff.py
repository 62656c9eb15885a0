"""Compare two operating models item by item, down to the changed fields."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from opsdesk.model.schema import OperatingModel, format_duration

KINDS: tuple[str, ...] = (
    "model",
    "teams",
    "roles",
    "skills",
    "calendars",
    "sla_policies",
    "escalation_paths",
    "request_types",
    "exception_types",
    "settings",
)
# Kinds that are one object rather than a list of items with ids.
_SINGLETONS = frozenset({"model", "settings"})
# Shown as "4h" rather than 240 in the rendered diff.
_DURATION_FIELDS = frozenset(
    {
        "first_reply",
        "next_reply",
        "periodic_update",
        "resolution",
        "max_duration",
        "before_breach",
        "after_breach",
    }
)


@dataclass(frozen=True)
class FieldChange:
    """One field that differs; ``path`` is dotted, e.g. ``targets.high.first_reply``."""

    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class ItemChange:
    """An item present in both models whose fields differ."""

    id: str
    fields: list[FieldChange]


@dataclass
class KindDiff:
    """Added, removed and changed ids of one kind."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[ItemChange] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """True when nothing of this kind changed."""
        return not (self.added or self.removed or self.changed)


@dataclass
class ModelDiff:
    """Differences between two models, per kind (see :data:`KINDS`)."""

    kinds: dict[str, KindDiff]

    @property
    def is_empty(self) -> bool:
        """True when the models are equivalent."""
        return all(kind.is_empty for kind in self.kinds.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{kind: {added, removed, changed: {id: {path: {before, after}}}}}``."""
        return {
            name: {
                "added": list(kind.added),
                "removed": list(kind.removed),
                "changed": {
                    item.id: {
                        change.path: {"before": change.before, "after": change.after}
                        for change in item.fields
                    }
                    for item in kind.changed
                },
            }
            for name, kind in self.kinds.items()
            if not kind.is_empty
        }


def _field_changes(before: Any, after: Any, prefix: str) -> list[FieldChange]:
    """Recursive field-level comparison of JSON data."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[FieldChange] = []
        for key in sorted(set(before) | set(after), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            changes.extend(_field_changes(before.get(key), after.get(key), path))
        return changes
    is_record_list = (
        isinstance(before, list)
        and isinstance(after, list)
        and all(isinstance(item, dict) for item in [*before, *after])
        and before
        and after
    )
    if is_record_list:
        changes = []
        for index in range(max(len(before), len(after))):
            old = before[index] if index < len(before) else None
            new = after[index] if index < len(after) else None
            changes.extend(_field_changes(old, new, f"{prefix}[{index}]"))
        return changes
    return [FieldChange(prefix, before, after)]


def _by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    # With duplicate ids (which the checker rejects) the first one wins, as in lookups.
    result: dict[str, dict[str, Any]] = {}
    for item in items:
        result.setdefault(str(item["id"]), item)
    return result


def diff_models(old: OperatingModel, new: OperatingModel) -> ModelDiff:
    """Compare two models: ids added/removed per kind and field-level changes."""
    old_data = old.model_dump(mode="json")
    new_data = new.model_dump(mode="json")
    kinds: dict[str, KindDiff] = {}
    for name in KINDS:
        kind = KindDiff()
        if name == "model":
            old_top = {k: old_data[k] for k in ("name", "version_note")}
            new_top = {k: new_data[k] for k in ("name", "version_note")}
            fields = _field_changes(old_top, new_top, "")
            if fields:
                kind.changed.append(ItemChange("", fields))
        elif name == "settings":
            fields = _field_changes(old_data["settings"], new_data["settings"], "")
            if fields:
                kind.changed.append(ItemChange("", fields))
        elif name == "skills":
            kind.added = [s for s in new_data["skills"] if s not in old_data["skills"]]
            kind.removed = [s for s in old_data["skills"] if s not in new_data["skills"]]
        else:
            before, after = _by_id(old_data[name]), _by_id(new_data[name])
            kind.added = [item_id for item_id in after if item_id not in before]
            kind.removed = [item_id for item_id in before if item_id not in after]
            for item_id, item in after.items():
                if item_id in before:
                    fields = _field_changes(before[item_id], item, "")
                    if fields:
                        kind.changed.append(ItemChange(item_id, fields))
        kinds[name] = kind
    return ModelDiff(kinds)


def _render_value(path: str, value: Any) -> str:
    if value is None:
        return "(none)"
    leaf = path.rsplit(".", 1)[-1]
    if leaf in _DURATION_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        return format_duration(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def render_diff(diff: ModelDiff) -> str:
    """Plain-text diff grouped as Added, Removed, Changed, then by kind.

    Example lines: ``  request_types: refund`` and
    ``  request_types.refund.owner_team: billing -> payments``.
    """
    if diff.is_empty:
        return "No changes.\n"
    lines: list[str] = []
    added = [(name, i) for name, kind in diff.kinds.items() for i in kind.added]
    removed = [(name, i) for name, kind in diff.kinds.items() for i in kind.removed]
    for title, entries in (("Added", added), ("Removed", removed)):
        if entries:
            lines.append(f"{title}:")
            lines.extend(f"  {name}: {item_id}" for name, item_id in entries)
    changed = [
        (name, item, change)
        for name, kind in diff.kinds.items()
        for item in kind.changed
        for change in item.fields
    ]
    if changed:
        lines.append("Changed:")
        for name, item, change in changed:
            prefix = name if name in _SINGLETONS else f"{name}.{item.id}"
            if name == "model":
                prefix = ""
            target = f"{prefix}.{change.path}" if prefix else change.path
            lines.append(
                f"  {target}: {_render_value(change.path, change.before)}"
                f" -> {_render_value(change.path, change.after)}"
            )
    return "\n".join(lines) + "\n"
