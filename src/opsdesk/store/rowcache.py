"""Rows as the SQLite write connection last committed them, kept between units of work.

A command reads the ticket it acts on, its actor and the ticket's SLA clocks; on SQLite
every write of the process goes through one connection (``Database.writer``), so the
rows it committed are still what the database holds unless another connection has
committed since. SQLite says so exactly: ``PRAGMA data_version`` changes when, and only
when, another connection commits. The cache keeps the driver's raw tuples (what a
``SELECT`` would return), so a cached row decodes exactly as a fetched one.

It is emptied whenever it might be wrong: another connection committed, the unit of
work changed more rows than the ones it recorded (a statement outside the hot path),
the connection was replaced, or it grew past :data:`MAX_ROWS`.
"""

from __future__ import annotations

from typing import Any

#: the tables whose rows are kept (read by id on every command)
TABLES = frozenset({"tickets", "users", "customers", "sla_clocks"})
MAX_ROWS = 50_000

Key = tuple[str, int]


class RowCache:
    def __init__(self) -> None:
        self.rows: dict[Key, tuple[Any, ...]] = {}
        #: ticket id -> ids of all its SLA clocks, when every one of them is in ``rows``
        self.clocks_of: dict[int, tuple[int, ...]] = {}
        #: the log head as last committed: (last_seq, model_version, counters)
        self.head: tuple[int, str | None, dict[str, int]] | None = None
        #: customers' data keys by (customer id, purpose, period): (key id, cipher), as
        #: committed (see opsdesk.store.crypto.Sealer); erasure empties them with the rest
        self.keys: dict[tuple[int, str, str], Any] = {}
        self._data_version: int | None = None
        self._changes: int | None = None

    def clear(self) -> None:
        self.rows.clear()
        self.clocks_of.clear()
        self.keys.clear()
        self.head = None

    def begin(self, cursor: Any, driver: Any) -> int:
        """Call inside the write transaction, before reading: empties the cache if any
        other connection committed since this one last did. Returns the connection's
        change count, for :meth:`commit` to compare."""
        cursor.execute("PRAGMA data_version")
        (version,) = cursor.fetchone()
        changes = int(driver.total_changes)
        if version != self._data_version or changes != self._changes:
            self.clear()
            self._data_version = version
        return changes

    def commit(
        self,
        driver: Any,
        changes_at_begin: int,
        expected_changes: int,
        rows: dict[Key, tuple[Any, ...]],
        stale: set[Key],
        clocks_of: dict[int, tuple[int, ...] | None],
        head: tuple[int, str | None, dict[str, int]],
    ) -> None:
        """After a commit: keep the rows the unit of work read and wrote, if the rows it
        changed are exactly the ones it counted; otherwise forget everything."""
        changes = int(driver.total_changes)
        self._changes = changes
        if changes - changes_at_begin != expected_changes:
            self.clear()
            return
        for key in stale:
            self.rows.pop(key, None)
        self.rows.update(rows)
        self.head = head
        for ticket_id, ids in clocks_of.items():
            if ids is None:
                self.clocks_of.pop(ticket_id, None)
            else:
                self.clocks_of[ticket_id] = ids
        if len(self.rows) > MAX_ROWS:
            self.clear()

    def rolled_back(self, driver: Any) -> None:
        """After a rollback the database is as last committed: the cache still holds."""
        self._changes = int(driver.total_changes)
