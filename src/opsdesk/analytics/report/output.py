"""The JSON report and writing both reports to files."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, is_dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from opsdesk.analytics.results import Diagnosis

_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(value: Any) -> Any:
    """What orjson does not serialise by itself (datetimes it writes as ISO 8601)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, Path):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if hasattr(value, "isoformat"):  # e.g. pandas/numpy timestamps
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} into the JSON report")


def json_bytes(diagnosis: Diagnosis) -> bytes:
    """``Diagnosis.to_json()`` as indented UTF-8 JSON, datetimes as ISO 8601.

    >>> json.loads(json_bytes(diagnosis))["summary"]["cases"]  # doctest: +SKIP
    1234
    """
    return orjson.dumps(diagnosis.to_json(), default=_default, option=_OPTIONS) + b"\n"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target and rename: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(diagnosis: Diagnosis, html: Path | None, json: Path | None) -> None:
    """Write the HTML report to ``html`` and the JSON report to ``json`` (either may be
    None to skip it). Both are rendered before either file is written."""
    html_data = None
    if html is not None:
        from opsdesk.analytics.report.html import render_html  # matplotlib: only for HTML

        html_data = render_html(diagnosis).encode("utf-8")
    json_data = json_bytes(diagnosis) if json is not None else None
    if html is not None and html_data is not None:
        _write_atomic(html, html_data)
    if json is not None and json_data is not None:
        _write_atomic(json, json_data)
