"""The flat case-event table every analysis reads.

Our own log (``opsdesk.analytics.ownlog``) and every importer
(``opsdesk.analytics.importers``) produce this one shape, so KPIs and the friction
diagnostic treat ours and theirs alike. One row per event, carrying the state of the
case *after* the event. Stored as Parquet (zstd) and read by DuckDB.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

#: Lifecycle statuses every source is mapped onto (see docs/diagnostic.md).
STATUSES: Final = ("new", "open", "pending", "on_hold", "solved", "closed")

CASE_EVENTS = pa.schema(
    [
        pa.field("case_id", pa.string(), nullable=False),
        # position in the log; breaks ties between events at the same instant (imports:
        # input row order)
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
        # an event type of docs/events.md: ticket.created, ticket.triaged,
        # ticket.accepted, ticket.status_changed, ticket.priority_changed,
        # ticket.transferred, ticket.updated, message.added, exception.*,
        # ticket.csat_received
        pa.field("type", pa.string(), nullable=False),
        pa.field("activity", pa.string()),  # the source's own label for the event
        pa.field("team", pa.string()),  # owning team after the event
        pa.field("agent", pa.string()),  # owning agent after the event
        pa.field("status", pa.string()),  # one of STATUSES, after the event
        pa.field("customer", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("category", pa.string()),  # request type, or the source's category
        pa.field("priority", pa.string()),
        pa.field("actor_kind", pa.string()),  # customer / agent / bot / system / importer
        pa.field("visibility", pa.string()),  # public / internal, for message.added
        pa.field("made_sla", pa.bool_()),  # the source's own SLA flag on this row
        pa.field("csat", pa.float64()),  # on ticket.csat_received
        pa.field("handle_seconds", pa.float64()),  # work time the source recorded
        pa.field("exception_type", pa.string()),  # on exception.* events
        pa.field("attrs", pa.string()),  # JSON object of extra source columns
    ]
)

COLUMNS: Final = tuple(CASE_EVENTS.names)
