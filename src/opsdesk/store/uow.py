"""The unit of work: one transaction in which a command reads state, appends its events
and writes the projections those events change.

Every write goes through :meth:`UnitOfWork.append`; nothing else inserts into
``events`` and nothing ever updates or deletes an event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, cast

import orjson
from sqlalchemy import Connection, bindparam, delete, insert, select, update

from opsdesk.domain.commands import Context, check_ownership
from opsdesk.domain.errors import NotFound
from opsdesk.domain.events import PERSONAL, Event, NewEvent
from opsdesk.domain.limits import MAX_ID
from opsdesk.domain.state import (
    CustomerState,
    ExceptionState,
    HandleState,
    MessageState,
    Projection,
    SlaClockState,
    TicketState,
    UserState,
)
from opsdesk.model import OperatingModel
from opsdesk.store import tables as t
from opsdesk.store.audit import AuditAppender, AuditRow
from opsdesk.store.crypto import Sealer
from opsdesk.store.db import Database
from opsdesk.store.fastpath import JobsSql, statements
from opsdesk.store.rowcache import TABLES as CACHED_TABLES
from opsdesk.store.rowcache import RowCache

# The rare statements are built once so SQLAlchemy reuses their compiled form; the hot
# ones go through opsdesk.store.fastpath.
_LOCK_HEAD_SQL = {
    True: "SELECT last_seq, model_version, counters FROM log_head WHERE id = 1",
    False: "SELECT last_seq, model_version, counters FROM log_head WHERE id = 1 FOR UPDATE",
}
_UPDATE_HEAD_SQL = {
    True: "UPDATE log_head SET last_seq = ?, model_version = ?, counters = ? WHERE id = 1",
    False: "UPDATE log_head SET last_seq = %s, model_version = %s, counters = %s::json "
    "WHERE id = 1",
}
_INSERT = {name: insert(getattr(t, name)) for name in ("customer_handles", "ticket_tags")}
_SELECT_HANDLE = select(t.customer_handles).where(
    t.customer_handles.c.kind == bindparam("kind_"),
    t.customer_handles.c.value == bindparam("value_"),
)
_SELECT_HANDLES_OF = select(t.customer_handles).where(
    t.customer_handles.c.customer_id == bindparam("customer_id_")
)
_UPDATE_HANDLE = (
    update(t.customer_handles)
    .where(t.customer_handles.c.kind == bindparam("kind_"))
    .where(t.customer_handles.c.value == bindparam("value_"))
)
_DELETE_TAGS = delete(t.ticket_tags).where(
    t.ticket_tags.c.ticket_id == bindparam("ticket_id_"), t.ticket_tags.c.tag == bindparam("tag_")
)
_USER_BY_EMAIL = select(t.users).where(t.users.c.email == bindparam("email_"))


# The state each projection table holds, and its fields stored as JSON lists (tuples in
# the state). The only place rows become states and back: uow, verify and security use it.
STATE_TYPES: dict[str, Any] = {
    "tickets": TicketState,
    "customers": CustomerState,
    "users": UserState,
    "messages": MessageState,
    "exceptions": ExceptionState,
    "sla_clocks": SlaClockState,
}
_TUPLE_FIELDS: dict[str, tuple[str, ...]] = {
    "tickets": ("tags",),
    "users": ("roles", "teams", "skills"),
}


def state_from_row(table: str, row: dict[str, Any]) -> Any:
    """The state dataclass of a decoded ``table`` row (a dict of column values)."""
    for name in _TUPLE_FIELDS.get(table, ()):
        row[name] = tuple(row[name])
    return STATE_TYPES[table](**row)


def row_from_state(table: str, state: Any) -> dict[str, Any]:
    """The column values of a state, as the table stores them."""
    row = as_dict(state)
    for name in _TUPLE_FIELDS.get(table, ()):
        row[name] = list(row[name])
    return row


class _StateShape:
    """How one table's decoded values (column order) become its state (field order)."""

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        self.state = STATE_TYPES[table]
        fields = list(self.state.__slots__)
        as_tuple = set(_TUPLE_FIELDS.get(table, ()))
        self.order = [(columns.index(f), f in as_tuple) for f in fields]
        self.plain = [i for i, _ in self.order] == list(range(len(columns))) and not as_tuple

    def build(self, values: list[Any]) -> Any:
        if self.plain:
            return self.state(*values)
        return self.state(*[tuple(values[i]) if tup else values[i] for i, tup in self.order])


_SHAPES: dict[tuple[str, str], _StateShape] = {}


def _shape(table: str, sql: Any) -> _StateShape:
    key = (table, sql.ph("x"))
    shape = _SHAPES.get(key)
    if shape is None:
        shape = _SHAPES[key] = _StateShape(table, sql.columns)
    return shape


def as_dict(obj: Any) -> dict[str, Any]:
    """The fields of a slotted state dataclass as a dict."""
    return {name: getattr(obj, name) for name in obj.__slots__}


class UnitOfWork:
    """``with UnitOfWork(db) as uow:`` one write transaction; commits on success.

    >>> with UnitOfWork(db, actor_kind="user", actor_id=3) as uow:  # doctest: +SKIP
    ...     ticket = uow.ticket(42)
    ...     uow.append(commands.change_priority(uow.context(), ticket, "high"))
    """

    def __init__(
        self,
        db: Database,
        *,
        actor_kind: str = "system",
        actor_id: int | None = None,
        now: datetime | None = None,
    ) -> None:
        self.db = db
        self.actor_kind = actor_kind
        self.actor_id = actor_id
        self._now = now
        self.projection = Projection()
        self._loaded: dict[tuple[str, Any], dict[str, Any]] = {}
        self._pending: list[Event] = []
        self._jobs: list[dict[str, Any]] = []
        self._waiting: dict[tuple[int | None, str], set[tuple[str, str, datetime]]] = {}
        self._created: set[int] = set()  # tickets created in this unit of work
        self._clocks_loaded: set[int] = set()
        # SQLite: rows kept between units of work (see opsdesk.store.rowcache), and the
        # raw tuples of the cached tables' rows this one read or wrote
        self._rows: RowCache | None = None
        self._raw: dict[tuple[str, int], tuple[Any, ...]] = {}
        self._stale: set[tuple[str, int]] = set()
        self._head_written = False
        self.appended: list[Event] = []
        #: rows this unit of work wrote, by (table, "insert" | "update"); benchmarks read it
        self.rows_written: Counter[tuple[str, str]] = Counter()
        #: the caller's network address, when an interface knows it (audit rows carry it)
        self.client: str | None = None
        self._audit: AuditAppender | None = None
        # seals customers' personal fields in event payloads (see opsdesk.store.crypto)
        self._sealer: Sealer | None = None
        self.conn: Connection

    # --- transaction ------------------------------------------------------------

    def __enter__(self) -> UnitOfWork:
        lock = self.db.write_lock
        if lock is not None and not lock.acquire(timeout=self.db.busy_timeout_ms / 1000):
            raise TimeoutError(
                f"no write turn on the database within {self.db.busy_timeout_ms} ms "
                "(OPSDESK_SQLITE_BUSY_TIMEOUT_MS); another writer holds it"
            )
        try:
            if lock is not None:
                # SQLite: the one write connection, kept open between units of work; the
                # transaction is begun on the driver (SQLAlchemy's begin and commit cost
                # as much Python as a small command's own rows), and a Core statement
                # run through ``self.conn`` joins it (see ``db.make_engine``)
                self.conn = self.db.writer()
                driver: Any = self.conn.connection.driver_connection
                driver.execute("BEGIN IMMEDIATE")
                self._driver = driver
                self._rows = self.db.row_cache
            else:
                self.conn = self.db.engine.connect()
                self._driver = None
                self._tx = self.conn.begin()
        except BaseException:
            self._release(failed=True)
            raise
        self._sql = statements(self.db.dialect)
        self._jobs_sql = cast(JobsSql, self._sql["jobs"])
        self._sqlite = self.db.dialect == "sqlite"
        events = self._sql["events"]
        self._insert_event = events.insert_positional
        self._event_out = (events.out["at"], events.out["payload"])
        try:
            self._cur: Any = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            # lock the log head first: serialises writers so seq stays gapless, ids are
            # handed out once and the model version read here is the one in force (on
            # SQLite BEGIN IMMEDIATE holds the lock, and the head this connection last
            # committed is still the head unless another connection has committed since)
            head = None
            if self._rows is not None:
                self._changes0 = self._rows.begin(self._cur, self._driver)
                head = self._rows.head
            if head is None:
                self._cur.execute(_LOCK_HEAD_SQL[self._sqlite])
                head = self._cur.fetchone()
            last_seq, model_version, counters = head
        except BaseException:
            self._finish(commit=False)
            raise
        self.last_seq: int = last_seq
        self.model_version: str | None = model_version
        self._counters: dict[str, int] = dict(
            (orjson.loads(counters) if isinstance(counters, str) else counters) or {}
        )
        self._head = (self.last_seq, self.model_version, dict(self._counters))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._finish(commit=False)
            return
        try:
            self.flush()
            if (self.last_seq, self.model_version, self._counters) != self._head:
                counters = orjson.dumps(self._counters).decode()
                self._cur.execute(
                    _UPDATE_HEAD_SQL[self._sqlite],
                    (self.last_seq, self.model_version, counters),
                )
                self._head_written = True
        except BaseException:
            self._finish(commit=False)
            raise
        self._finish(commit=True)

    def _finish(self, *, commit: bool) -> None:
        """Commit or roll back, then give the connection and the write turn back."""
        failed = True
        try:
            if self._driver is None:
                (self._tx.commit if commit else self._tx.rollback)()
            elif self.conn.in_transaction():  # Core joined the driver's transaction
                (self.conn.commit if commit else self.conn.rollback)()
            else:
                (self._driver.commit if commit else self._driver.rollback)()
            failed = False
            if self._rows is not None:
                if commit:
                    self._keep_rows(self._rows)
                else:
                    self._rows.rolled_back(self._driver)
        finally:
            self._release(failed=failed)

    def _keep_rows(self, rows: RowCache) -> None:
        """Hand the committed rows to the cache (it checks they are all it missed)."""
        expected = sum(self.rows_written.values()) + self._head_written
        clocks_of: dict[int, tuple[int, ...] | None] = {}
        for ticket_id in self._clocks_loaded:
            clocks_of[ticket_id] = tuple(
                c.id for c in self.projection.sla_clocks.values() if c.ticket_id == ticket_id
            )
        for table, row_id in self._raw:
            if table == "sla_clocks":
                ticket_id = self.projection.sla_clocks[row_id].ticket_id
                if ticket_id not in self._clocks_loaded:
                    clocks_of[ticket_id] = None  # a clock of a ticket whose set is unknown
        head = (self.last_seq, self.model_version, dict(self._counters))
        rows.commit(self._driver, self._changes0, expected, self._raw, self._stale, clocks_of, head)
        if self._sealer is not None and rows.head is head:  # the cache still holds
            rows.keys.update(self._sealer.used)

    def _release(self, *, failed: bool) -> None:
        lock = self.db.write_lock
        try:
            if lock is None:
                if getattr(self, "conn", None) is not None:
                    self.conn.close()
            elif failed:
                self.db.drop_writer()  # its state is unknown: the next writer opens another
        finally:
            if lock is not None:
                lock.release()

    @property
    def now(self) -> datetime:
        return self._now or datetime.now(UTC)

    # --- model and context ------------------------------------------------------

    @property
    def model(self) -> OperatingModel:
        return self.db.model(self.conn, self.model_version)

    def context(self, now: datetime | None = None) -> Context:
        """The domain context for the acting user (or system) under the model in force."""
        actor = None
        if self.actor_kind == "user" and self.actor_id is not None:
            actor = self.user(self.actor_id)
        return Context(
            model=self.model,
            now=now or self.now,
            ids=self,
            actor_kind=self.actor_kind,
            actor=actor,
        )

    def set_model_version(self, version: str) -> None:
        """Put a stored model version in force (its `model.applied` event follows)."""
        self.model_version = version

    # --- ids -------------------------------------------------------------------

    def next_id(self, kind: str) -> int:
        """The next id of ``kind``; safe because the log head lock is held."""
        value = self._counters.get(kind, 0) + 1
        self._counters[kind] = value
        return value

    # --- loading state -----------------------------------------------------------

    def _load(self, table: str, cache: dict[int, Any], row_id: int, what: str) -> Any:
        """A row as state, loaded once per unit of work (a snapshot of it is kept so a
        later write updates only the changed columns); :class:`NotFound` if missing."""
        if row_id in cache:
            return cache[row_id]
        if not 1 <= row_id <= MAX_ID:
            # beyond the database's integer the driver raises OverflowError: no such row
            raise NotFound(f"{what} {row_id} does not exist")
        sql = self._sql[table]
        raw = None if self._rows is None else self._rows.rows.get((table, row_id))
        if raw is None:
            self._cur.execute(sql.select_by_id, {"id": row_id})
            raw = self._cur.fetchone()
            if raw is None:
                raise NotFound(f"{what} {row_id} does not exist")
        return self._keep(table, cache, sql, raw)

    def _keep(self, table: str, cache: dict[int, Any], sql: Any, raw: Sequence[Any]) -> Any:
        """A fetched row as state, cached, with a snapshot of its stored form (the
        values before lists become the state's tuples) for :meth:`_write` to diff."""
        values = sql.decode_values(raw)
        state = _shape(table, sql).build(values)
        cache[state.id] = state
        if self._rows is not None and table in CACHED_TABLES:
            self._raw[(table, state.id)] = tuple(raw)
        self._loaded[(table, state.id)] = dict(zip(sql.columns, values, strict=True))
        return state

    def ticket(self, ticket_id: int) -> TicketState:
        """The ticket, loaded once per unit of work; :class:`NotFound` if missing."""
        return self._load("tickets", self.projection.tickets, ticket_id, "ticket")  # type: ignore[no-any-return]

    def customer(self, customer_id: int) -> CustomerState:
        return self._load("customers", self.projection.customers, customer_id, "customer")  # type: ignore[no-any-return]

    def customer_handles(self, customer_id: int) -> list[tuple[str, str]]:
        self.flush()
        rows = self.conn.execute(_SELECT_HANDLES_OF, {"customer_id_": customer_id}).all()
        for r in rows:
            self.projection.handles.setdefault((r.kind, r.value), HandleState(*r))
        return sorted((r.kind, r.value) for r in rows)

    def handle_owner(self, kind: str, value: str) -> int | None:
        """The customer holding a handle, if any."""
        key = (kind, value)
        if key in self.projection.handles:
            return self.projection.handles[key].customer_id
        row = self.conn.execute(_SELECT_HANDLE, {"kind_": kind, "value_": value}).first()
        if row is None:
            return None
        self.projection.handles[key] = HandleState(row.kind, row.value, row.customer_id)
        return int(row.customer_id)

    def user(self, user_id: int) -> UserState:
        return self._load("users", self.projection.users, user_id, "user")  # type: ignore[no-any-return]

    def user_by_email(self, email: str) -> UserState | None:
        self.flush()
        row = self.conn.execute(_USER_BY_EMAIL, {"email_": email.strip().lower()}).first()
        if row is None:
            return None
        if row.id not in self.projection.users:
            return self.user(row.id)
        return self.projection.users[row.id]

    def exception(self, exception_id: int) -> ExceptionState:
        return self._load("exceptions", self.projection.exceptions, exception_id, "exception")  # type: ignore[no-any-return]

    def sla_clocks(self, ticket_id: int) -> list[SlaClockState]:
        """Every SLA clock of the ticket (running, paused and ended), oldest first."""
        if ticket_id not in self._clocks_loaded:
            # no flush first: clocks are never deleted, and the ones this unit of work
            # started are already in the projection (the load skips them); a ticket
            # created here has none in the table
            if ticket_id not in self._created and not self._cached_clocks(ticket_id):
                self._load_where("sla_clocks", self.projection.sla_clocks, "ticket_id", [ticket_id])
            self._clocks_loaded.add(ticket_id)
        clocks = [c for c in self.projection.sla_clocks.values() if c.ticket_id == ticket_id]
        return sorted(clocks, key=lambda c: c.id)

    def _cached_clocks(self, ticket_id: int) -> bool:
        """Take the ticket's clocks from the row cache, if it holds every one of them."""
        if self._rows is None:
            return False
        ids = self._rows.clocks_of.get(ticket_id)
        if ids is None:
            return False
        raws = [self._rows.rows.get(("sla_clocks", i)) for i in ids]
        if any(raw is None for raw in raws):
            return False
        sql = self._sql["sla_clocks"]
        cache = self.projection.sla_clocks
        for clock_id, raw in zip(ids, raws, strict=True):
            if clock_id not in cache:
                self._keep("sla_clocks", cache, sql, raw)  # type: ignore[arg-type]
        return True

    def preload(self, ticket_ids: Sequence[int]) -> None:
        """Load many tickets, their customers and their SLA clocks in three queries (a
        sweep of timers over hundreds of tickets would otherwise pay a round trip for
        each row). Rows already loaded in this unit of work are kept as they are."""
        p = self.projection
        wanted = sorted(set(ticket_ids) - p.tickets.keys())
        if not wanted:
            return
        self.flush()
        tickets = self._load_where("tickets", p.tickets, "id", wanted)
        customers = sorted({tk.customer_id for tk in tickets} - p.customers.keys())
        if customers:
            self._load_where("customers", p.customers, "id", customers)
        fresh = [i for i in wanted if i not in self._clocks_loaded]
        if fresh:
            self._load_where("sla_clocks", p.sla_clocks, "ticket_id", fresh)
            self._clocks_loaded.update(fresh)

    def _load_where(
        self, table: str, cache: dict[int, Any], column: str, values: Sequence[int]
    ) -> list[Any]:
        """Rows whose ``column`` is one of ``values`` (ints), loaded as :meth:`_load`
        would load them one by one; rows already in ``cache`` are left untouched."""
        sql = self._sql[table]
        ids = [int(v) for v in values]
        if len(ids) <= 8:
            # placeholders: the driver's statement cache then holds a few shapes, instead
            # of preparing a new statement for every ticket
            marks = ", ".join("?" if self._sqlite else "%s" for _ in ids)
            self._cur.execute(
                f"SELECT {', '.join(sql.columns)} FROM {table} WHERE {column} IN ({marks})",  # noqa: S608
                ids,
            )
        else:
            # ints only, so inlining them is safe and keeps one statement for any count
            listed = ", ".join(map(str, ids))
            self._cur.execute(
                f"SELECT {', '.join(sql.columns)} FROM {table} WHERE {column} IN ({listed})"  # noqa: S608
            )
        id_at = sql.columns.index("id")
        return [
            self._keep(table, cache, sql, raw)
            for raw in self._cur.fetchall()
            if raw[id_at] not in cache
        ]

    # --- the jobs outbox ------------------------------------------------------------

    def schedule(
        self,
        kind: str,
        run_at: datetime,
        *,
        ticket_id: int | None = None,
        ref: str = "",
        once: bool = False,
    ) -> None:
        """Queue timed work in this transaction (see ``tables.jobs``): it exists only if
        the unit of work commits. With ``once``, nothing is queued when the same job
        (kind, ticket, ref and instant) is already waiting."""
        key = (kind, ref, run_at)
        if once:
            waiting = self._waiting_jobs(ticket_id, kind)
            if key in waiting:
                return
            waiting.add(key)
        elif (ticket_id, kind) in self._waiting:
            self._waiting[(ticket_id, kind)].add(key)
        self._jobs.append(
            {
                "kind": kind,
                "ticket_id": ticket_id,
                "ref": ref,
                "run_at": run_at,
                "created_at": self.now,
                "attempts": 0,
                "last_error": None,
            }
        )

    def _waiting_jobs(self, ticket_id: int | None, kind: str) -> set[tuple[str, str, datetime]]:
        """The (kind, ref, run_at) of the ticket's waiting jobs of ``kind``, read once per
        unit of work (the log head lock keeps other writers out meanwhile); a ticket
        created in this unit of work has none in the table."""
        found = self._waiting.get((ticket_id, kind))
        if found is not None:
            return found
        found = set()
        if ticket_id is None or ticket_id not in self._created:
            sql = self._jobs_sql
            if ticket_id is None:
                self._cur.execute(sql.waiting_without_ticket, {"kind": kind})
            else:
                self._cur.execute(sql.waiting_of_ticket, {"ticket_id": ticket_id, "kind": kind})
            found = {(kind, ref, sql.run_at_in(run_at)) for ref, run_at in self._cur.fetchall()}
        for queued in self._jobs:  # scheduled earlier in this unit of work
            if queued["ticket_id"] == ticket_id and queued["kind"] == kind:
                found.add((kind, queued["ref"], queued["run_at"]))
        self._waiting[(ticket_id, kind)] = found
        return found

    # --- the audit trail --------------------------------------------------------------

    def audit(
        self,
        action: str,
        *,
        outcome: str = "ok",
        subject: str | None = None,
        details: dict[str, Any] | None = None,
        actor_kind: str | None = None,
        actor_id: int | None = None,
    ) -> AuditRow:
        """Append an audit row (a declared action of ``opsdesk.domain.audit``) in this
        transaction: it commits or rolls back with the action it records. The actor is
        the unit of work's unless given; details must hold no secret.

        >>> uow.audit("token.created", subject="token:7", details={"user_id": 3})  # doctest: +SKIP
        """
        if self._audit is None:
            self._audit = AuditAppender(self.conn)  # locks the chain head until commit
        if actor_kind is None:
            actor_kind, actor_id = self.actor_kind, self.actor_id
        return self._audit.append(
            action,
            at=self.now,
            outcome=outcome,
            actor_kind=actor_kind,
            actor_id=actor_id,
            subject=subject,
            client=self.client,
            details=details,
        )

    # --- appending ------------------------------------------------------------------

    def append(self, new_events: Sequence[NewEvent], *, at: datetime | None = None) -> list[Event]:
        """Append events and fold them into the loaded state, checking the ownership
        invariant; the rows are written at the next :meth:`flush` (at the latest, just
        before commit), so a unit of work writes each touched row once."""
        if not new_events:
            return []
        at = at or self.now
        stored: list[Event] = []
        for ne in new_events:
            self.last_seq += 1
            stored.append(
                Event(
                    self.last_seq,
                    at,
                    ne.type,
                    ne.ticket_id,
                    ne.customer_id,
                    self.actor_kind,
                    self.actor_id,
                    self.model_version,
                    ne.payload,
                )
            )
        p = self.projection
        for e in stored:
            if e.type == "ticket.created" and e.ticket_id is not None:
                self._created.add(e.ticket_id)
            elif e.type == "customer.merged":  # the merge touches rows not loaded yet
                self.customer(e.payload["source_id"])
                self.customer_handles(e.payload["source_id"])
            p.apply(e)
        for kind, key in p.dirty | p.new:
            if kind == "ticket":
                ticket = p.tickets[key]  # type: ignore[index]
                if ticket.owning_agent is not None:
                    self.user(ticket.owning_agent)
                check_ownership(ticket, p.users)
        self._pending.extend(stored)
        self.appended.extend(stored)
        return stored

    def flush(self) -> None:
        """Write the pending events and every row they changed. Call before reading the
        tables directly with SQL inside this unit of work."""
        if self._pending:
            at_out, payload_out = self._event_out
            personal, seal = PERSONAL, self._seal
            self._cur.executemany(
                self._insert_event,
                [
                    (
                        e.seq,
                        at_out(e.at),
                        e.type,
                        e.ticket_id,
                        e.customer_id,
                        e.actor_kind,
                        e.actor_id,
                        e.model_version,
                        payload_out(seal(e) if e.type in personal else e.payload),
                    )
                    for e in self._pending
                ],
            )
            self.rows_written["events", "insert"] += len(self._pending)
            if self._sealer is not None and self._sealer.created:
                self.rows_written["personal_keys", "insert"] = self._sealer.created
            self._pending = []
        if self._jobs:
            sql = self._sql["jobs"]
            self._cur.executemany(sql.insert, [sql.params(job) for job in self._jobs])
            self.rows_written["jobs", "insert"] += len(self._jobs)
            self._jobs = []
        p = self.projection
        if not (p.dirty or p.new):
            return
        order = ("user", "customer", "handle", "ticket", "message", "exception", "sla_clock")
        touched = sorted(p.dirty | p.new, key=lambda d: order.index(d[0]))
        new_messages = []
        for kind, key in touched:
            is_new = (kind, key) in p.new
            if kind == "ticket":
                self._write_ticket(p.tickets[key], is_new)  # type: ignore[index]
            elif kind == "customer":
                self._write("customers", as_dict(p.customers[key]), is_new)  # type: ignore[index]
            elif kind == "handle":
                h = p.handles[key]  # type: ignore[index]
                if is_new:
                    self.conn.execute(_INSERT["customer_handles"], as_dict(h))
                else:
                    self.conn.execute(
                        _UPDATE_HANDLE,
                        {"kind_": h.kind, "value_": h.value, "customer_id": h.customer_id},
                    )
            elif kind == "user":
                self._write("users", row_from_state("users", p.users[key]), is_new)  # type: ignore[index]
            elif kind == "message":
                new_messages.append(as_dict(p.messages[key]))  # type: ignore[index]
            elif kind == "exception":
                self._write("exceptions", as_dict(p.exceptions[key]), is_new)  # type: ignore[index]
            elif kind == "sla_clock":
                self._write("sla_clocks", as_dict(p.sla_clocks[key]), is_new)  # type: ignore[index]
        if new_messages:
            sql = self._sql["messages"]
            self._cur.executemany(sql.insert, [sql.params(m) for m in new_messages])
            self.rows_written["messages", "insert"] += len(new_messages)
        p.dirty.clear()
        p.new.clear()

    def flush_for_owned_work(self) -> None:
        """:meth:`flush` before a query that reads only users and the tickets agents own
        (routing's loads and previous owners), unless no pending change can show in
        one: no user changed, and every changed ticket had no owning agent when read
        and has none now. A ticket routed by the unit of work that opened it is then
        written once, already assigned, instead of inserted and updated."""
        p = self.projection
        for kind, key in p.dirty | p.new:
            if kind == "user":
                self.flush()
                return
            if kind == "ticket":
                loaded = self._loaded.get(("tickets", key))
                owned_before = loaded is not None and loaded["owning_agent"] is not None
                if owned_before or p.tickets[key].owning_agent is not None:  # type: ignore[index]
                    self.flush()
                    return

    def _seal(self, event: Event) -> dict[str, Any]:
        """The event's payload as stored: its personal fields encrypted."""
        sealer = self._sealer
        if sealer is None:
            known = None if self._rows is None else self._rows.keys
            sealer = self._sealer = Sealer(
                self.conn, self._cur, self._sqlite, self.next_id, self.now, known
            )
        return sealer.seal(event)

    def _write(self, table: str, row: dict[str, Any], is_new: bool) -> None:
        sql = self._sql[table]
        key = (table, row["id"])
        if is_new:
            params = sql.params(row)
            self._cur.execute(sql.insert, params)
            self._loaded[key] = row
            self.rows_written[table, "insert"] += 1
            if self._rows is not None and table in CACHED_TABLES:
                self._raw[key] = tuple(params[c] for c in sql.columns)
            return
        before = self._loaded.get((table, row["id"]))
        # only the changed columns: untouched indexes then stay untouched on disk
        changed = {k: v for k, v in row.items() if before is None or before[k] != v}
        changed.pop("id", None)
        if changed:
            params = sql.params({**changed, "id": row["id"]})
            self._cur.execute(sql.update_sql(list(changed)), params)
            self._loaded[key] = row
            self.rows_written[table, "update"] += 1
            if self._rows is not None and table in CACHED_TABLES:
                base = self._raw.get(key)
                if base is None:  # not read through the cache's path: forget it
                    self._stale.add(key)
                else:
                    stored = list(base)
                    for name in changed:
                        stored[sql.index[name]] = params[name]
                    self._raw[key] = tuple(stored)

    def _write_ticket(self, ticket: TicketState, is_new: bool) -> None:
        loaded = None if is_new else self._loaded.get(("tickets", ticket.id))
        before = tuple(loaded["tags"]) if loaded else ()
        self._write("tickets", row_from_state("tickets", ticket), is_new)
        if ticket.tags != before:
            for tag in set(before) - set(ticket.tags):
                self.conn.execute(_DELETE_TAGS, {"ticket_id_": ticket.id, "tag_": tag})
            added = set(ticket.tags) - set(before)
            if added:
                self.conn.execute(
                    _INSERT["ticket_tags"], [{"ticket_id": ticket.id, "tag": g} for g in added]
                )
