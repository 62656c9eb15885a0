"""Our own event log as the flat case-event table (:data:`~opsdesk.analytics.schema.CASE_EVENTS`).

Streams the log once in seq order, keeps a small per-ticket state (team, agent, status,
customer, channel, request type, priority, SLA outcome) and emits one row per
ticket-scoped event (``ticket.*``, ``message.*``, ``exception.*``, ``sla.*``) carrying the
state *after* the event. Customer, user and model events describe no case and are
skipped, as are the ticket-scoped records of automation (``triage.rule_fired``,
``escalation.*``, ``notification.requested``, ``ownership.contested``): what they changed
is in the ticket events that follow them.

SLA clock events (``sla.*``) are rows of their own with ``actor_kind = 'system'``: the
clock's life stays visible, but they are bookkeeping, not work on the case, so the
diagnostic leaves them out of touches, variants, the directly-follows graph and
handovers (docs/diagnostic.md). They set the case's ``made_sla``, the flag the KPIs read:
NULL until the case's first ``sla.activated``, then true until any of its clocks is
``sla.breached``, false from then on (a breach is never undone). Every row carries the
flag as it stands after the event, so the case's last row holds its outcome.

Values are gathered column by column and turned into an Arrow record batch every
:data:`BATCH_ROWS` rows, so a log of millions of events never exists as Python objects
all at once; with ``out`` the batches go straight to a Parquet (zstd) file.

>>> table = export_case_events(db)  # doctest: +SKIP
>>> export_case_events(db, Path("case_events.parquet"), read_back=False)  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from opsdesk.analytics.schema import CASE_EVENTS
from opsdesk.domain.events import Event
from opsdesk.store.db import Database
from opsdesk.store.verify import iter_events

#: rows per Arrow record batch (and Parquet row group slice)
BATCH_ROWS = 100_000
#: call ``progress(events_read)`` every this many events
PROGRESS_EVERY = 20_000

#: event-log actor kinds as CASE_EVENTS actor kinds (a user acting is an agent)
_ACTOR_KINDS = {
    "user": "agent",
    "customer": "customer",
    "bot": "bot",
    "system": "system",
    "importer": "importer",
}
_CASE_PREFIXES = ("ticket.", "message.", "exception.", "sla.")

# indexes into the per-ticket state list
_CASE, _TEAM, _AGENT, _STATUS, _CUSTOMER, _CHANNEL, _CATEGORY, _PRIORITY, _MADE_SLA = range(9)


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def _name(value: Any) -> Any:
    """One shared string per team, status, priority... name: the per-ticket state of
    millions of tickets would otherwise hold a copy per ticket (one per decoded payload)."""
    return sys.intern(value) if isinstance(value, str) else value


def _attrs(kind: str, p: dict[str, Any]) -> str | None:
    """Extra facts an analysis may want, as a JSON object, on the few events that carry
    any (NULL elsewhere: most rows need none, and encoding JSON per row is not free)."""
    extra: dict[str, Any]
    if kind == "ticket.transferred":
        extra = {"reason": p.get("reason"), "from_team": p.get("from_team")}
    elif kind == "ticket.created" and p.get("follow_up_of") is not None:
        extra = {"follow_up_of": str(p["follow_up_of"])}
    elif kind == "ticket.status_changed" and p.get("reopened"):
        extra = {"reopened": True}
    elif kind.startswith("exception."):
        extra = {"exception_id": p.get("exception_id")}
    elif kind.startswith("sla."):
        # which clock, and the target and time used when it ends
        extra = {"clock_id": p.get("clock_id"), "metric": p.get("metric")}
        for key in ("target_minutes", "elapsed_minutes", "reason"):
            if p.get(key) is not None:
                extra[key] = p[key]
    else:
        return None
    return orjson.dumps(extra).decode()


class _CaseEventBuilder:
    """Folds events into per-ticket state and gathers CASE_EVENTS columns.

    Values are appended column by column (cheaper than a tuple per row transposed
    later); :meth:`take_batch` turns what has been gathered into one record batch.
    """

    # the gathered columns, in CASE_EVENTS order; activity repeats type, and
    # handle_seconds is always NULL for our log, so neither is gathered
    _GATHERED = (
        "case_id",
        "seq",
        "at",
        "type",
        "team",
        "agent",
        "status",
        "customer",
        "channel",
        "category",
        "priority",
        "actor_kind",
        "visibility",
        "made_sla",
        "csat",
        "exception_type",
        "attrs",
    )

    def __init__(self) -> None:
        self.tickets: dict[int, list[Any]] = {}
        # exception id -> its type, while a decision or expiry may still follow
        self.exception_types: dict[int, str] = {}
        self.columns: dict[str, list[Any]] = {name: [] for name in self._GATHERED}
        self.rows = 0

    def _state(self, event: Event) -> list[Any]:
        ticket_id = event.ticket_id
        assert ticket_id is not None
        state = self.tickets.get(ticket_id)
        if state is None:
            # a ticket event before its ticket.created (a truncated log): start empty
            state = [
                str(ticket_id),
                None,
                None,
                None,
                _id(event.customer_id),
                None,
                None,
                None,
                None,
            ]
            self.tickets[ticket_id] = state
        return state

    def add(self, event: Event) -> bool:
        """Gather the CASE_EVENTS row of ``event``; False when it concerns no case."""
        kind = event.type
        if event.ticket_id is None or not kind.startswith(_CASE_PREFIXES):
            return False
        p = event.payload
        actor_kind = _ACTOR_KINDS.get(event.actor_kind, event.actor_kind)
        visibility: str | None = None
        csat: float | None = None
        exception_type: str | None = None

        if kind == "ticket.created":
            state = [
                str(event.ticket_id),
                None,
                None,
                "new",
                _id(event.customer_id),
                _name(p.get("channel")),
                None,
                _name(p.get("priority")),
                None,
            ]
            self.tickets[event.ticket_id] = state
        else:
            state = self._state(event)
            if kind == "message.added":
                visibility = p.get("visibility")
                actor_kind = p.get("author_kind") or actor_kind
            elif kind == "ticket.status_changed":
                state[_STATUS] = _name(p["after"])
            elif kind == "ticket.triaged":
                # a new owning team drops the agent, as the projection does
                if state[_TEAM] != p["owning_team"]:
                    state[_AGENT] = None
                state[_TEAM] = _name(p["owning_team"])
                state[_CATEGORY] = _name(p["request_type"])
            elif kind == "ticket.accepted":
                state[_AGENT] = _id(p["agent_id"])
                state[_TEAM] = _name(p.get("team")) or state[_TEAM]
            elif kind == "ticket.transferred":
                state[_TEAM] = _name(p["to_team"])
                state[_AGENT] = _id(p.get("to_agent"))
            elif kind == "ticket.priority_changed":
                state[_PRIORITY] = _name(p["after"])
            elif kind == "ticket.csat_received":
                csat = float(p["score"])
            elif kind.startswith("sla."):
                # the clock is the system's doing, whoever's command started it
                actor_kind = "system"
                if kind == "sla.breached":
                    state[_MADE_SLA] = False
                elif kind == "sla.activated" and state[_MADE_SLA] is None:
                    state[_MADE_SLA] = True
            elif kind.startswith("exception."):
                exception_id = p["exception_id"]
                if kind == "exception.requested":
                    exception_type = p.get("exception_type")
                    if exception_type is not None:
                        self.exception_types[exception_id] = exception_type
                elif kind in ("exception.denied", "exception.expired"):
                    # nothing follows a denial or an expiry: forget the exception
                    exception_type = self.exception_types.pop(exception_id, None)
                else:
                    exception_type = self.exception_types.get(exception_id)

        c = self.columns
        c["case_id"].append(state[_CASE])
        c["seq"].append(event.seq)
        c["at"].append(event.at)
        c["type"].append(kind)
        c["team"].append(state[_TEAM])
        c["agent"].append(state[_AGENT])
        c["status"].append(state[_STATUS])
        c["customer"].append(state[_CUSTOMER])
        c["channel"].append(state[_CHANNEL])
        c["category"].append(state[_CATEGORY])
        c["priority"].append(state[_PRIORITY])
        c["actor_kind"].append(actor_kind)
        c["visibility"].append(visibility)
        c["made_sla"].append(state[_MADE_SLA])
        c["csat"].append(csat)
        c["exception_type"].append(exception_type)
        c["attrs"].append(_attrs(kind, p))
        self.rows += 1
        return True

    def take_batch(self) -> pa.RecordBatch | None:
        """The gathered rows as one record batch (None when there are none); starts over."""
        if not self.rows:
            return None
        n, gathered = self.rows, self.columns
        self.columns = {name: [] for name in self._GATHERED}
        self.rows = 0
        arrays: dict[str, pa.Array] = {}
        for f in CASE_EVENTS:
            if f.name in gathered:
                arrays[f.name] = pa.array(gathered.pop(f.name), type=f.type)
        arrays["activity"] = arrays["type"]
        arrays["handle_seconds"] = pa.nulls(n, type=CASE_EVENTS.field("handle_seconds").type)
        return pa.RecordBatch.from_arrays(
            [arrays[name] for name in CASE_EVENTS.names], schema=CASE_EVENTS
        )


def export_case_events(
    db: Database,
    out: Path | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    read_back: bool = True,
) -> pa.Table:
    """Our event log as a CASE_EVENTS table, one row per ticket-scoped event.

    Without ``out`` the rows are kept in memory as Arrow batches (about 160 bytes per
    event). With ``out`` they are written batch by batch to a Parquet file (zstd), so
    the export itself holds only one batch and the per-ticket state; the returned table
    is then that file read back, or, with ``read_back=False`` (when only the file is
    needed, e.g. for ``diagnose(out)``), an empty CASE_EVENTS table.
    ``progress(events_read)`` is called every :data:`PROGRESS_EVERY` events of the log
    and once at the end.

    >>> export_case_events(db, Path("events.parquet"), read_back=False)  # doctest: +SKIP
    """
    builder = _CaseEventBuilder()
    batches: list[pa.RecordBatch] = []
    writer: pq.ParquetWriter | None = None
    partial: Path | None = None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        # written beside the target and renamed at the end: a failed export leaves no
        # half-written file where a reader expects a complete one
        partial = out.with_name(out.name + ".partial")
        writer = pq.ParquetWriter(partial, CASE_EVENTS, compression="zstd")

    def flush() -> None:
        batch = builder.take_batch()
        if batch is None:
            return
        if writer is not None:
            writer.write_batch(batch)
        else:
            batches.append(batch)

    count = 0
    add = builder.add
    # the fold allocates millions of small acyclic objects: see opsdesk.store.verify.replay
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with db.read() as conn:
            for event in iter_events(conn):
                count += 1
                if add(event) and builder.rows >= BATCH_ROWS:
                    flush()
                if progress is not None and count % PROGRESS_EVERY == 0:
                    progress(count)
        flush()
        if writer is not None and partial is not None and out is not None:
            writer.close()
            writer = None
            partial.replace(out)
    finally:
        if gc_was_enabled:
            gc.enable()
        if writer is not None and partial is not None:
            writer.close()
            partial.unlink(missing_ok=True)
    if progress is not None:
        progress(count)
    if out is not None:
        if not read_back:
            return CASE_EVENTS.empty_table()
        return pq.read_table(out, memory_map=True)
    return pa.Table.from_batches(batches, schema=CASE_EVENTS)
