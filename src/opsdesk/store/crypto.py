"""Crypto-shredding of customers' personal data in the event log.

The domain declares which payload fields are personal (``opsdesk.domain.events.PERSONAL``).
When the unit of work writes an event, those fields are encrypted (AES-256-GCM, random
96-bit nonce) under a data key of the event's customer; the projections keep plaintext.
The data keys live in ``personal_keys``, each wrapped under the master key (settings:
``OPSDESK_MASTER_KEY`` or the key file). Erasure and retention delete key rows: replay,
exports and the timeline then read those fields as ``ERASED``, while the events keep
their type, time, actors and every other field (the log stays append-only).

A field is stored as ``enc:1:<key id>:<base64(nonce + ciphertext + tag)>``.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import weakref
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, func, select

from opsdesk.domain.events import ERASED, PERSONAL, Event, PersonalFields
from opsdesk.store import tables as t
from opsdesk.store.errors import DatabaseNotReady
from opsdesk.store.fastpath import datetime_writer

ENVELOPE = "enc:1:"
_NONCE = 12
_b2a = binascii.b2a_base64
_b64decode = binascii.a2b_base64
_urandom = os.urandom


class PersonalDataError(DatabaseNotReady):
    """The master key is missing or wrong, or a sealed field fails authentication: the
    database cannot be read until the right master key is restored."""


def period_of(at: datetime) -> str:
    """The month a ``messages`` key covers: ``2026-11``."""
    return f"{at.year:04d}-{at.month:02d}"


def is_sealed(value: Any) -> bool:
    return type(value) is str and value.startswith(ENVELOPE)


def sealed_key_id(value: str) -> int:
    """The data key id of a sealed value."""
    return int(value[len(ENVELOPE) : value.index(":", len(ENVELOPE))])


def personal_values(spec: PersonalFields, payload: dict[str, Any]) -> Iterable[Any]:
    """The personal field values of a payload (sealed or not)."""
    for name in spec.texts:
        yield payload.get(name)
    for name in spec.handle_lists:
        for handle in payload.get(name) or ():
            yield handle.get("value")


# --- the master key --------------------------------------------------------------------


def new_master_key_text() -> str:
    return base64.urlsafe_b64encode(_urandom(32)).decode()


def _decode_master(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise PersonalDataError(
            f"the master key in {where} is not 32 bytes of URL-safe base64; restore it from "
            "your backup (see docs/security.md, Personal data)"
        )
    return key


def create_master_key_file(path: Path) -> bool:
    """Create the key file (mode 0600) if missing; True when it was created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(new_master_key_text() + "\n")
    return True


def master_key_path(database_url: str) -> Path:
    from opsdesk.settings import Settings

    return Settings(database_url=database_url).master_key_path()


def _load_master_key(engine: Engine, conn: Connection) -> bytes:
    from opsdesk.settings import Settings

    url = engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url)
    if settings.master_key is not None:
        return _decode_master(settings.master_key.get_secret_value(), "OPSDESK_MASTER_KEY")
    path = settings.master_key_path()
    if not path.exists():
        # created on first need only while no data key exists: a lost file must never be
        # silently replaced by a new one
        keys = conn.execute(select(func.count()).select_from(t.personal_keys)).scalar() or 0
        if keys:
            raise PersonalDataError(
                f"the master key file {path} is missing but {keys} data keys were wrapped "
                "under it; restore it from your backup or set OPSDESK_MASTER_KEY"
            )
        create_master_key_file(path)
    return _decode_master(path.read_text(encoding="ascii"), str(path))


# --- data keys -------------------------------------------------------------------------


def _wrap_aad(key_id: int, customer_id: int, purpose: str, period: str) -> bytes:
    # binds a wrapped key to its row: a key copied onto another row does not unwrap
    return f"opsdesk-data-key:{key_id}:{customer_id}:{purpose}:{period}".encode()


class Keyring:
    """The master key of one database and the data keys unwrapped so far (by id)."""

    def __init__(self, master: bytes) -> None:
        self._master = AESGCM(master)
        self.ciphers: dict[int, AESGCM] = {}

    def wrap(self, key_id: int, customer_id: int, purpose: str, period: str, key: bytes) -> bytes:
        nonce = _urandom(_NONCE)
        aad = _wrap_aad(key_id, customer_id, purpose, period)
        return nonce + self._master.encrypt(nonce, key, aad)

    def unwrap(
        self, key_id: int, customer_id: int, purpose: str, period: str, wrapped: bytes
    ) -> AESGCM:
        cipher = self.ciphers.get(key_id)
        if cipher is None:
            wrapped = bytes(wrapped)
            aad = _wrap_aad(key_id, customer_id, purpose, period)
            try:
                key = self._master.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], aad)
            except InvalidTag:
                raise PersonalDataError(
                    f"data key {key_id} does not unwrap under this master key: the master "
                    "key (OPSDESK_MASTER_KEY or its file) is not the one the data was "
                    "written with; restore it from your backup"
                ) from None
            cipher = self.ciphers[key_id] = AESGCM(key)
        return cipher

    def forget(self, key_ids: Iterable[int]) -> None:
        """Drop destroyed keys from memory."""
        for key_id in key_ids:
            self.ciphers.pop(key_id, None)


_RINGS: weakref.WeakKeyDictionary[Engine, Keyring] = weakref.WeakKeyDictionary()
_RINGS_LOCK = threading.Lock()


def forget_keys(conn: Connection, key_ids: Iterable[int]) -> None:
    """Drop destroyed keys from this process's memory (without needing the master key)."""
    ring = _RINGS.get(conn.engine)
    if ring is not None:
        ring.forget(key_ids)


def keyring(conn: Connection) -> Keyring:
    """The keyring of ``conn``'s database (the master key is read once per process)."""
    engine = conn.engine
    ring = _RINGS.get(engine)
    if ring is None:
        with _RINGS_LOCK:
            ring = _RINGS.get(engine)
            if ring is None:
                ring = _RINGS[engine] = Keyring(_load_master_key(engine, conn))
    return ring


# --- sealing (the write path) ---------------------------------------------------------

Scope = tuple[int, str, str]  # customer id, purpose, period

# on the unit of work's driver cursor, by "is SQLite"
_SELECT_KEY = {
    True: "SELECT id, wrapped FROM personal_keys WHERE customer_id = ? AND purpose = ? "
    "AND period = ?",
    False: "SELECT id, wrapped FROM personal_keys WHERE customer_id = %s AND purpose = %s "
    "AND period = %s",
}
_INSERT_KEY = {
    True: "INSERT INTO personal_keys (id, customer_id, purpose, period, wrapped, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    False: "INSERT INTO personal_keys (id, customer_id, purpose, period, wrapped, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s)",
}


class Sealer:
    """Seals the personal fields of one unit of work's events.

    Keys are looked up once per unit of work and customer (``known``: on SQLite the row
    cache's dict, kept between units of work and emptied whenever another connection
    commits), and created on first use; ``created`` are the rows this unit of work
    inserted, ``used`` every key it relied on (for the row cache after commit).
    """

    def __init__(
        self,
        conn: Connection,
        cursor: Any,
        sqlite: bool,
        next_id: Any,
        now: datetime,
        known: dict[Scope, tuple[int, AESGCM]] | None,
    ) -> None:
        self.ring = keyring(conn)
        self._cur = cursor
        self._sqlite = sqlite
        self._next_id = next_id
        self._now = now
        self._known = known
        self.used: dict[Scope, tuple[int, AESGCM]] = {}
        self.created = 0
        self._at: datetime | None = None
        self._period = ""

    def seal(self, event: Event) -> dict[str, Any]:
        """The payload to store: a copy with the personal fields sealed."""
        spec = PERSONAL[event.type]
        customer_id = event.customer_id
        if customer_id is None:
            raise ValueError(
                f"{event.type} event without a customer: its personal fields "
                "would be stored in clear"
            )
        if spec.purpose == "messages":
            at = event.at
            if at is not self._at:  # the events of a command share their instant
                self._at, self._period = at, period_of(at)
            scope = (customer_id, "messages", self._period)
        else:
            scope = (customer_id, "identity", "")
        found = self.used.get(scope)
        if found is None:
            found = self._key(scope)
        key_id, cipher = found
        prefix = f"{ENVELOPE}{key_id}:"
        payload = dict(event.payload)
        for name in spec.texts:
            value = payload.get(name)
            if value:
                nonce = _urandom(_NONCE)
                sealed = nonce + cipher.encrypt(nonce, value.encode(), None)
                payload[name] = prefix + _b2a(sealed, newline=False).decode()
        for name in spec.handle_lists:
            handles = []
            for handle in payload[name]:
                nonce = _urandom(_NONCE)
                sealed = nonce + cipher.encrypt(nonce, handle["value"].encode(), None)
                handles.append({**handle, "value": prefix + _b2a(sealed, newline=False).decode()})
            payload[name] = handles
        return payload

    def _key(self, scope: Scope) -> tuple[int, AESGCM]:
        found = None if self._known is None else self._known.get(scope)
        if found is None:
            customer_id, purpose, period = scope
            self._cur.execute(_SELECT_KEY[self._sqlite], (customer_id, purpose, period))
            row = self._cur.fetchone()
            if row is not None:
                key_id = int(row[0])
                found = (key_id, self.ring.unwrap(key_id, *scope, row[1]))
            else:
                key_id = self._next_id("personal_key")
                key = AESGCM.generate_key(bit_length=256)
                wrapped = self.ring.wrap(key_id, *scope, key)
                at = datetime_writer("sqlite" if self._sqlite else "postgresql")(self._now)
                self._cur.execute(
                    _INSERT_KEY[self._sqlite], (key_id, customer_id, purpose, period, wrapped, at)
                )
                self.created += 1
                cipher = AESGCM(key)
                self.ring.ciphers[key_id] = cipher
                found = (key_id, cipher)
        self.used[scope] = found
        return found


# --- opening (replay, exports, the timeline) ---------------------------------------------


class Opener:
    """Opens sealed fields with the keys that still exist; destroyed ones read ERASED.

    ``Opener.all_keys(conn)`` reads every key row once (replay, exports); otherwise
    :meth:`open_events` fetches the keys a page of events needs in one query.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._rows: dict[int, tuple[int, str, str, bytes]] = {}
        self._complete = False
        self._ring: Keyring | None = None
        self._ciphers: dict[int, AESGCM] = {}

    @classmethod
    def all_keys(cls, conn: Connection) -> Opener:
        opener = cls(conn)
        opener._complete = True
        query = select(
            t.personal_keys.c.id,
            t.personal_keys.c.customer_id,
            t.personal_keys.c.purpose,
            t.personal_keys.c.period,
            t.personal_keys.c.wrapped,
        )
        for key_id, customer_id, purpose, period, wrapped in conn.execute(query):
            opener._rows[key_id] = (customer_id, purpose, period, wrapped)
        return opener

    def _fetch(self, key_ids: set[int]) -> None:
        wanted = sorted(key_ids - self._rows.keys())
        if not wanted or self._complete:
            return
        keys = t.personal_keys.c
        for start in range(0, len(wanted), 500):
            query = select(keys.id, keys.customer_id, keys.purpose, keys.period, keys.wrapped)
            rows = self._conn.execute(query.where(keys.id.in_(wanted[start : start + 500])))
            for key_id, customer_id, purpose, period, wrapped in rows:
                self._rows[key_id] = (customer_id, purpose, period, wrapped)

    def _cipher(self, key_id: int) -> AESGCM | None:
        cipher = self._ciphers.get(key_id)
        if cipher is not None:
            return cipher
        row = self._rows.get(key_id)
        if row is None:
            return None  # destroyed: erased or past retention
        if self._ring is None:
            self._ring = keyring(self._conn)
        cipher = self._ciphers[key_id] = self._ring.unwrap(key_id, *row)
        return cipher

    def open_text(self, value: Any) -> Any:
        if type(value) is not str or not value.startswith(ENVELOPE):
            return value  # clear (empty, or written before encryption)
        cut = value.index(":", 6)
        cipher = self._cipher(int(value[6:cut]))
        if cipher is None:
            return ERASED
        raw = _b64decode(value[cut + 1 :])
        try:
            return cipher.decrypt(raw[:_NONCE], raw[_NONCE:], None).decode()
        except InvalidTag:
            raise PersonalDataError(
                f"a sealed field under data key {value[6:cut]} fails authentication: the "
                "event log was edited"
            ) from None

    def open_payload(self, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload with its personal fields opened (changed in place)."""
        spec = PERSONAL.get(type_)
        if spec is None:
            return payload
        open_text = self.open_text
        for name in spec.texts:
            if name in payload:
                payload[name] = open_text(payload[name])
        for name in spec.handle_lists:
            payload[name] = [{**h, "value": open_text(h["value"])} for h in payload[name]]
        return payload

    def open_events(self, events: Sequence[Event]) -> Sequence[Event]:
        """Open a page of events (its keys fetched in one query)."""
        if not self._complete:
            ids = set()
            for e in events:
                spec = PERSONAL.get(e.type)
                if spec is not None:
                    for value in personal_values(spec, e.payload):
                        if is_sealed(value):
                            ids.add(sealed_key_id(value))
            self._fetch(ids)
        for e in events:
            if e.type in PERSONAL:
                e.payload = self.open_payload(e.type, dict(e.payload))
        return events


def open_events(conn: Connection, events: Sequence[Event]) -> Sequence[Event]:
    """``events`` with their personal fields readable (or ERASED), for a page of the log."""
    if not any(e.type in PERSONAL for e in events):
        return events
    return Opener(conn).open_events(events)
