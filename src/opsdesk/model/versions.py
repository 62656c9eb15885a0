"""Content-addressed versions of an operating model.

A version is the sha256 of the canonical JSON, so comments, key order, indentation,
``1h`` vs ``60m`` and the order of the id-keyed collections do not create a new version;
the order of steps and escalation levels does, because it means something.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from opsdesk.model.schema import OperatingModel

# Top-level collections whose order carries no meaning (items are looked up by id).
_ID_COLLECTIONS = (
    "teams",
    "roles",
    "calendars",
    "sla_policies",
    "escalation_paths",
    "request_types",
    "exception_types",
)


def canonical_data(model: OperatingModel) -> dict[str, Any]:
    """The model as plain JSON data with unordered collections sorted by id."""
    data = model.model_dump(mode="json")
    for name in _ID_COLLECTIONS:
        data[name] = sorted(data[name], key=lambda item: str(item["id"]))
    data["skills"] = sorted(data["skills"])
    return data


def canonical_json(model: OperatingModel) -> str:
    """Deterministic JSON text of the model (sorted keys, no whitespace)."""
    return json.dumps(
        canonical_data(model), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def model_hash(model: OperatingModel) -> str:
    """sha256 hex digest of :func:`canonical_json`; the model's version id."""
    return hashlib.sha256(canonical_json(model).encode("utf-8")).hexdigest()


def short_version(digest: str) -> str:
    """First 12 hex characters of a model hash, for display: ``"3f9a0c1b2d4e"``."""
    return digest[:12]
