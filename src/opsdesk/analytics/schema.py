"""The flat case-event table every analysis reads.

Our own log (``opsdesk.analytics.ownlog``) and every importer
(``opsdesk.analytics.importers``) produce this one shape, so KPIs and the friction
diagnostic treat ours and theirs alike. One row per event, carrying the state of the
case *after* the event. Stored as Parquet (zstd) and read by DuckDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import pyarrow as pa

#: Lifecycle statuses every source is mapped onto (see docs/diagnostic.md).
STATUSES: Final = ("new", "open", "pending", "on_hold", "solved", "closed")

#: (name, type, nullable) of each column, in order; CASE_EVENTS is its Arrow schema.
FIELDS: Final = (
    ("case_id", "string", False),
    # position in the log; breaks ties between events at the same instant (imports:
    # input row order)
    ("seq", "int64", False),
    ("at", "timestamp[us, UTC]", False),
    # an event type of docs/events.md: ticket.created, ticket.triaged,
    # ticket.accepted, ticket.status_changed, ticket.priority_changed,
    # ticket.transferred, ticket.updated, message.added, exception.*,
    # ticket.csat_received
    ("type", "string", False),
    ("activity", "string", True),  # the source's own label for the event
    ("team", "string", True),  # owning team after the event
    ("agent", "string", True),  # owning agent after the event
    ("status", "string", True),  # one of STATUSES, after the event
    ("customer", "string", True),
    ("channel", "string", True),
    ("category", "string", True),  # request type, or the source's category
    ("priority", "string", True),
    ("actor_kind", "string", True),  # customer / agent / bot / system / importer
    ("visibility", "string", True),  # public / internal, for message.added
    ("made_sla", "bool", True),  # the source's own SLA flag on this row
    ("csat", "double", True),  # on ticket.csat_received
    ("handle_seconds", "double", True),  # work time the source recorded
    ("exception_type", "string", True),  # on exception.* events
    ("attrs", "string", True),  # JSON object of extra source columns
)

COLUMNS: Final = tuple(name for name, _, _ in FIELDS)

#: DuckDB's SQL type of each column
SQL_TYPES: Final = {
    name: {
        "string": "VARCHAR",
        "int64": "BIGINT",
        "timestamp[us, UTC]": "TIMESTAMPTZ",
        "bool": "BOOLEAN",
        "double": "DOUBLE",
    }[kind]
    for name, kind, _ in FIELDS
}

if TYPE_CHECKING:
    CASE_EVENTS: pa.Schema


def __getattr__(name: str) -> Any:
    # CASE_EVENTS is built on first use: importing pyarrow takes a tenth of a second of
    # a cold start that `opsdesk diagnose LOG.csv` (all in DuckDB) never needs
    if name != "CASE_EVENTS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "timestamp[us, UTC]": pa.timestamp("us", tz="UTC"),
        "bool": pa.bool_(),
        "double": pa.float64(),
    }
    schema = pa.schema(
        [pa.field(name, types[kind], nullable=nullable) for name, kind, nullable in FIELDS]
    )
    globals()["CASE_EVENTS"] = schema
    return schema
