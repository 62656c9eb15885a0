"""Driver-level statements for the unit of work's hot path.

A command runs about seven statements; through SQLAlchemy Core each costs ~100 µs of
Python (execution context, parameter and result processing) against ~10 µs in the
driver. So the few statements every command runs are rendered here once per dialect
from the table metadata and executed on the unit of work's own DB-API connection (same
transaction). Values are converted exactly as the SQLAlchemy column types would, so
rows read back through SQLAlchemy are identical (a test checks the round trip).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Table

from opsdesk.store import tables as t

Converter = Callable[[Any], Any]


_DT_TEXT: dict[datetime, str] = {}


def _sqlite_dt_out(value: datetime | None) -> str | None:
    if value is None:
        return None
    # a command writes the same few instants many times (its time on every event and
    # row): remembered, since datetimes cache their hash, a repeat costs a dict look-up
    text = _DT_TEXT.get(value)
    if text is None:
        utc = value if value.tzinfo is UTC else value.astimezone(UTC)
        # SQLAlchemy's SQLite DATETIME storage format: 2026-11-25 14:00:00.000000
        text = utc.isoformat(" ", "microseconds")[:26]
        if len(_DT_TEXT) >= 4096:
            _DT_TEXT.clear()
        _DT_TEXT[value] = text
    return text


def _sqlite_json_out(value: Any) -> str:
    # orjson: about 10x json.dumps on event payloads; the text is JSON either way
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # integers beyond 64 bits: the standard library has them
        return json.dumps(value)


def _sqlite_dt_in(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value + "+00:00")


def _pg_dt_out(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _pg_dt_in(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _pg_json_out(value: Any) -> Any:
    from psycopg.types.json import Json

    return Json(value)


def datetime_reader(dialect: str) -> Converter:
    """How a UTC datetime column comes back from the driver, as an aware datetime."""
    return _sqlite_dt_in if dialect == "sqlite" else _pg_dt_in


def datetime_writer(dialect: str) -> Converter:
    """A datetime as the driver stores it (SQLite compares the stored UTC text)."""
    return _sqlite_dt_out if dialect == "sqlite" else _pg_dt_out


def json_reader(value: Any) -> Any:
    """A JSON column from the driver: SQLite hands back text, psycopg the value."""
    return _json_in(value)


def _identity(value: Any) -> Any:
    return value


def _json_in(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


def _bool_in(value: Any) -> Any:
    return None if value is None else bool(value)


class TableSql:
    """Rendered statements and converters for one table on one dialect."""

    def __init__(self, table: Table, dialect: str) -> None:
        self.name = table.name
        self.columns = [c.name for c in table.columns]
        self.index = {name: i for i, name in enumerate(self.columns)}
        sqlite = dialect == "sqlite"
        self.ph: Callable[[str], str] = (lambda n: f":{n}") if sqlite else (lambda n: f"%({n})s")
        out: dict[str, Converter] = {}
        into: dict[str, Converter] = {}
        for column in table.columns:
            if isinstance(column.type, t.UTCDateTime):
                out[column.name] = _sqlite_dt_out if sqlite else _pg_dt_out
                into[column.name] = _sqlite_dt_in if sqlite else _pg_dt_in
            elif isinstance(column.type, JSON):
                out[column.name] = _sqlite_json_out if sqlite else _pg_json_out
                into[column.name] = _json_in
            elif isinstance(column.type, Boolean) and sqlite:
                into[column.name] = _bool_in
        self.out = out
        self.into = [(i, into[c]) for i, c in enumerate(self.columns) if c in into]
        cols = ", ".join(self.columns)
        self.insert = (
            f"INSERT INTO {self.name} ({cols}) VALUES "  # noqa: S608 (names from metadata)
            f"({', '.join(self.ph(c) for c in self.columns)})"
        )
        #: the same insert with positional placeholders, for values in column order
        self.insert_positional = (
            f"INSERT INTO {self.name} ({cols}) VALUES "  # noqa: S608 (names from metadata)
            f"({', '.join(('?' if sqlite else '%s') for _ in self.columns)})"
        )
        self.select_by_id = f"SELECT {cols} FROM {self.name} WHERE id = {self.ph('id')}"  # noqa: S608

    def params(self, row: dict[str, Any]) -> dict[str, Any]:
        out = self.out
        return {k: (out[k](v) if k in out else v) for k, v in row.items()}

    def update_sql(self, names: Sequence[str]) -> str:
        return _update_sql(self, tuple(names))

    def decode(self, row: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.columns, self.decode_values(row), strict=True))

    def decode_values(self, row: Sequence[Any]) -> list[Any]:
        """The row's values in column order, converted as :meth:`decode` converts them."""
        values = list(row)
        for i, convert in self.into:
            values[i] = convert(values[i])
        return values


class JobsSql(TableSql):
    """The jobs outbox: inserts leave ``id`` to the database; the waiting-job lookups that
    ``UnitOfWork.schedule(once=True)`` makes use ``ix_jobs_ticket_kind``."""

    def __init__(self, dialect: str) -> None:
        super().__init__(t.jobs, dialect)
        cols = [c for c in self.columns if c != "id"]
        ph = self.ph
        self.insert = (
            f"INSERT INTO jobs ({', '.join(cols)}) VALUES "  # noqa: S608 (names from metadata)
            f"({', '.join(ph(c) for c in cols)})"
        )
        self.waiting_of_ticket = (
            f"SELECT ref, run_at FROM jobs WHERE ticket_id = {ph('ticket_id')} "  # noqa: S608
            f"AND kind = {ph('kind')}"
        )
        self.waiting_without_ticket = (
            f"SELECT ref, run_at FROM jobs WHERE ticket_id IS NULL AND kind = {ph('kind')}"  # noqa: S608
        )
        self.run_at_in = datetime_reader(dialect)


@lru_cache(maxsize=512)
def _update_sql(table: TableSql, names: tuple[str, ...]) -> str:
    sets = ", ".join(f"{n} = {table.ph(n)}" for n in names)
    return f"UPDATE {table.name} SET {sets} WHERE id = {table.ph('id')}"  # noqa: S608


@lru_cache(maxsize=8)
def statements(dialect: str) -> dict[str, TableSql]:
    """The hot-path tables rendered for ``dialect``."""
    rendered = {
        table.name: TableSql(table, dialect)
        for table in (
            t.events,
            t.tickets,
            t.users,
            t.customers,
            t.messages,
            t.exceptions,
            t.sla_clocks,
        )
    }
    rendered["jobs"] = JobsSql(dialect)
    return rendered
