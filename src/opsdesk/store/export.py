"""Streaming export of the event log (CSV rows, Parquet via PyArrow)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, select

from opsdesk.store import tables as t
from opsdesk.store.crypto import Opener

EVENT_COLUMNS = [
    "seq",
    "at",
    "type",
    "ticket_id",
    "customer_id",
    "actor_kind",
    "actor_id",
    "model_version",
    "payload",
]
BATCH = 50_000

SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("type", pa.string()),
        ("ticket_id", pa.int64()),
        ("customer_id", pa.int64()),
        ("actor_kind", pa.string()),
        ("actor_id", pa.int64()),
        ("model_version", pa.string()),
        ("payload", pa.string()),
    ]
)


def event_batches(conn: Connection, *, after_seq: int = 0) -> Iterator[list[list[Any]]]:
    """Events after ``after_seq`` as lists of row values (payload as JSON text), personal
    fields opened for live customers and ``[erased]`` for erased ones (never ciphertext)."""
    open_payload = Opener.all_keys(conn).open_payload
    result = conn.execution_options(yield_per=BATCH).execute(
        select(t.events).where(t.events.c.seq > after_seq).order_by(t.events.c.seq)
    )
    for part in result.partitions():
        yield [
            [
                r.seq,
                r.at.isoformat(),
                r.type,
                r.ticket_id,
                r.customer_id,
                r.actor_kind,
                r.actor_id,
                r.model_version,
                json.dumps(open_payload(r.type, dict(r.payload)), sort_keys=True),
            ]
            for r in part
        ]


def write_parquet(conn: Connection, path: Path, *, after_seq: int = 0) -> int:
    """Write the events to a Parquet file (personal fields opened, as
    :func:`event_batches`); returns how many were written."""
    n = 0
    open_payload = Opener.all_keys(conn).open_payload
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        result = conn.execution_options(yield_per=BATCH).execute(
            select(t.events).where(t.events.c.seq > after_seq).order_by(t.events.c.seq)
        )
        for part in result.partitions():
            columns: dict[str, list[Any]] = {name: [] for name in EVENT_COLUMNS}
            for r in part:
                for name in EVENT_COLUMNS[:-1]:
                    columns[name].append(getattr(r, name))
                payload = open_payload(r.type, dict(r.payload))
                columns["payload"].append(json.dumps(payload, sort_keys=True))
            writer.write_table(pa.table(columns, schema=SCHEMA))
            n += len(part)
        if n == 0:
            writer.write_table(SCHEMA.empty_table())
    return n
