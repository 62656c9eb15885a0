"""IEEE XES (1849-2016) logs flattened into a string table for the shared pipeline.

Parsed with defusedxml's streaming iterparse: a DTD (hence any entity, external or
recursive) is refused outright, since XES never needs one and uploads are untrusted.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from xml.etree.ElementTree import Element, ParseError

import orjson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from opsdesk.analytics.importers.mapping import ColumnMapping, ImportRefused

if TYPE_CHECKING:  # imported where a log is flattened: the importer loads this module always
    import pyarrow as pa

ATTRIBUTE_TAGS: Final = frozenset(
    {"string", "date", "int", "float", "boolean", "id", "list", "container"}
)

#: Columns of the flattened table; mapped fields first, then the attrs JSON.
COLUMNS: Final = (
    "case",
    "time",
    "activity",
    "team",
    "agent",
    "status",
    "customer",
    "channel",
    "category",
    "priority",
    "attrs",
)

#: The flattened table as a ColumnMapping for the shared pipeline.
FLAT_MAPPING: Final = ColumnMapping(
    case="case",
    time="time",
    activity="activity",
    team="team",
    agent="agent",
    status="status",
    customer="customer",
    channel="channel",
    category="category",
    priority="priority",
)

_BATCH: Final = 50_000


@dataclass(frozen=True)
class XesKeys:
    """Which XES attribute feeds each field: the standard extensions unless mapped."""

    case: str = "concept:name"  # a trace attribute
    time: str = "time:timestamp"
    activity: str | None = "concept:name"
    team: str | None = "org:group"
    agent: str | None = "org:resource"
    status: str | None = None  # lifecycle:transition when a status map is given
    customer: str | None = None
    channel: str | None = None
    category: str | None = None
    priority: str | None = None

    @classmethod
    def resolve(cls, mapping: ColumnMapping | None, has_status_map: bool) -> XesKeys:
        if mapping is None:
            # lifecycle:transition (start/complete) is an activity's state, not a case's:
            # it only becomes the status when the user supplies a map for it
            return cls(status="lifecycle:transition" if has_status_map else None)
        # unmapped fields keep the standard extension keys
        default = cls(status="lifecycle:transition" if has_status_map else None)
        return cls(
            case=mapping.case,
            time=mapping.time,
            activity=mapping.activity or default.activity,
            team=mapping.team or default.team,
            agent=mapping.agent or default.agent,
            status=mapping.status or default.status,
            customer=mapping.customer,
            channel=mapping.channel,
            category=mapping.category,
            priority=mapping.priority,
        )


def _local(tag: str) -> str:
    """A tag without its namespace (XES files may declare a default namespace)."""
    return tag.rsplit("}", 1)[-1]


def _value(elem: Element) -> Any:
    """An attribute's value, typed for the attrs JSON."""
    tag, raw = _local(elem.tag), elem.get("value")
    if raw is None:
        return None
    try:
        if tag == "int":
            return int(raw)
        if tag == "float":
            return float(raw)
    except ValueError:
        return raw
    if tag == "boolean":
        return raw.strip().lower() == "true"
    return raw


class _Bounded:
    """A gzip stream refused once it has given more than ``max_bytes`` (a small file can
    expand a thousandfold); the parser reads it in blocks, so this costs one addition
    per block."""

    def __init__(self, stream: gzip.GzipFile, name: str, max_bytes: int) -> None:
        self._stream = stream
        self._name = name
        self._left = max_bytes
        self._max = max_bytes

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._left -= len(data)
        if self._left < 0:
            raise ImportRefused(
                f"{self._name} decompresses to more than the {self._max:,} bytes an import "
                "reads (--max-bytes, OPSDESK_IMPORT_MAX_BYTES); raise the limit if the log "
                "is really that large"
            )
        return data

    def __enter__(self) -> _Bounded:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stream.close()


def _open(path: Path, max_bytes: int) -> _Bounded | io.BufferedReader:
    if path.name.lower().endswith(".gz"):
        return _Bounded(gzip.open(path, "rb"), path.name, max_bytes)
    return path.open("rb")  # its size was checked before it was opened


def _rows(path: Path, keys: XesKeys, max_bytes: int) -> Iterator[list[str | None]]:
    """One row per event, in document order."""
    fields = [(name, getattr(keys, name)) for name in COLUMNS if name not in ("case", "attrs")]
    mapped = {key for _, key in fields if key is not None}
    stack: list[str] = []
    trace_attrs: dict[str, Any] = {}
    event_attrs: dict[str, Any] = {}
    pending: list[dict[str, Any]] = []  # events of the current trace, until it ends
    with _open(path, max_bytes) as fh:
        for kind, elem in iterparse(fh, events=("start", "end"), forbid_dtd=True):
            tag = _local(elem.tag)
            if kind == "start":
                stack.append(tag)
                if tag == "trace":
                    trace_attrs, pending = {}, []
                elif tag == "event":
                    event_attrs = {}
                continue
            stack.pop()
            parent = stack[-1] if stack else ""
            if tag in ATTRIBUTE_TAGS and elem.get("key") is not None:
                # only direct children: nested (meta-)attributes are not the event's own
                if parent == "event":
                    event_attrs[elem.get("key", "")] = _value(elem)
                elif parent == "trace":
                    trace_attrs[elem.get("key", "")] = _value(elem)
            elif tag == "event" and parent == "trace":
                pending.append(event_attrs)
                elem.clear()
            elif tag == "trace":
                # the trace's attributes may follow its events, so rows wait for its end
                case = trace_attrs.get(keys.case)
                for ev in pending:
                    row: list[str | None] = [None if case is None else str(case)]
                    for _, key in fields:
                        value = None if key is None else ev.get(key, trace_attrs.get(key))
                        row.append(None if value is None else str(value))
                    extra = {k: v for k, v in trace_attrs.items() if k != keys.case}
                    extra.update({k: v for k, v in ev.items() if k not in mapped})
                    row.append(orjson.dumps(extra).decode() if extra else None)
                    yield row
                elem.clear()


def flatten(path: Path, keys: XesKeys, out: Path, *, max_bytes: int = 32 << 30) -> int:
    """Write the events of ``path`` to the Parquet table ``out``; the number of events.
    A gzipped log that decompresses to more than ``max_bytes`` is refused."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([pa.field(name, pa.string()) for name in COLUMNS])
    n = 0
    try:
        with pq.ParquetWriter(out, schema) as writer:
            batch: list[list[str | None]] = []
            for row in _rows(path, keys, max_bytes):
                batch.append(row)
                if len(batch) >= _BATCH:
                    writer.write_table(_table(batch, schema))
                    n += len(batch)
                    batch = []
            writer.write_table(_table(batch, schema))
            n += len(batch)
    except DefusedXmlException as exc:
        raise ImportRefused(
            f"{path.name} was refused: it declares a DTD or entities ({type(exc).__name__}), "
            f"which XES never needs and which can read local files or exhaust memory; "
            f"export the log again without a DOCTYPE"
        ) from exc
    except (ParseError, EOFError, OSError) as exc:
        raise ImportRefused(f"{path.name} is not a readable XES file: {exc}") from exc
    return n


def _table(batch: list[list[str | None]], schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_arrays(
        [pa.array([row[i] for row in batch], pa.string()) for i in range(len(COLUMNS))],
        schema=schema,
    )
