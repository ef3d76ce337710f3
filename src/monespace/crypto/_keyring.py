"""The keyring: data keys per patient, wrapped by the master key; sealing and blind indexes.

It sits between the services and storage: it reads and writes ``data_keys`` rows through the
transaction it is given, and it is the only code that ever sees an unwrapped key.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

import attrs

from ..errors import DataShreddedError, MasterKeyError, NotFoundError
from ..storage import DataKeyRow, StorageBackend, Transaction
from ._envelope import (
    content_aad,
    generate_data_key,
    open_sealed,
    seal,
    unwrap_key,
    wrap_key,
)
from ._keys import AuditKey, KeyProvider, MasterKey

__all__ = ["Keyring", "RotationReport"]

#: The owner of the space-wide key that seals notifications waiting in the outbox.
NOTIFICATION_KEY = "space:notifications"

#: Owners whose names start with this hold space-wide keys (notifications, blind indexes),
#: which nothing ever destroys: the keyring may serve them from its cache without reading
#: their row again.
SPACE_OWNER_PREFIX = "space:"


@attrs.frozen
class RotationReport:
    """The outcome of a master-key rotation.

    :ivar master_key_id: the fingerprint of the key that now wraps every data key.
    :ivar rewrapped: how many data keys were re-wrapped by this run.
    """

    master_key_id: str
    rewrapped: int


class Keyring:
    """Data keys of one space.

    :param storage: the space's storage, read once to check that the master key fits.
    :param provider_factory: builds the key provider on first use, so that a space opened
        for what needs no key (counting, reading the schema version) never asks for one.
    :param cache_size: how many unwrapped data keys are kept between units of work (least
        recently used first out); ``0`` keeps them only within a transaction.
    :param cache_lifetime: how long an unwrapped key is kept between units of work.

    Where unwrapped keys live, and why crypto-shredding still works at once:

    - within a transaction, each key is unwrapped once (and its row read once: see
      :meth:`monespace.storage.Transaction.subject`);
    - across transactions, a bounded cache keyed by the **wrapped** bytes read from the
      database: a patient's key row is read in every transaction that uses it (with the
      access facts, in the same statement), so a destroyed key (no wrapped bytes left) is
      never served, whichever process destroyed it;
    - space-wide keys (notifications, blind indexes), which are never destroyed, are served
      from the cache by owner without reading their row, within *cache_lifetime*, once a
      transaction that read their row has committed (:meth:`committed`): a key whose
      creation rolled back is never served.

    The cache is emptied by :meth:`rotate` and :meth:`forget` (which the space calls when
    it closes); :meth:`destroy` drops the owner's key from it.

    .. versionchanged:: 0.2
       *cache_size* and *cache_lifetime*.
    """

    def __init__(
        self,
        storage: StorageBackend,
        provider_factory: Callable[[], KeyProvider],
        *,
        cache_size: int = 256,
        cache_lifetime: timedelta = timedelta(minutes=5),
    ) -> None:
        if cache_size < 0 or cache_lifetime < timedelta(0):
            raise ValueError("the data-key cache's size and lifetime must not be negative")
        self._storage = storage
        self._factory = provider_factory
        self._provider: KeyProvider | None = None
        self._lock = threading.Lock()
        self._cache_size = cache_size
        self._cache_lifetime = cache_lifetime.total_seconds()
        # Unwrapped keys by wrapped bytes, with the monotonic time they expire: a re-wrapped
        # or destroyed key has other (or no) wrapped bytes, so this cache can never serve a
        # key the database no longer holds.
        self._cache: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()
        # Space-wide keys by owner (see the class's docstring), and those read by a
        # transaction that has not committed yet.
        self._space_keys: dict[str, tuple[bytes, float]] = {}
        self._space_read: weakref.WeakKeyDictionary[Transaction, dict[str, bytes]] = (
            weakref.WeakKeyDictionary()
        )
        # Unwrapped keys by transaction, then owner: one unwrap per key per transaction
        # even with the cache turned off; gone with the transaction.
        self._in_tx: weakref.WeakKeyDictionary[Transaction, dict[str, bytes]] = (
            weakref.WeakKeyDictionary()
        )
        self._cache_lock = threading.Lock()
        # Audit keys by id, and the current one: deriving them costs two HKDFs and an
        # Ed25519 key, once per key rather than once per transaction.
        self._audit_keys: dict[str, AuditKey] = {}
        self._audit_current: AuditKey | None = None

    @property
    def provider(self) -> KeyProvider:
        """The key provider, checked against the keys stored in the space on first use."""
        with self._lock:
            if self._provider is None:
                provider = self._factory()
                with self._storage.read() as tx:
                    stored = tx.keys.master_key_ids()
                missing = sorted(k for k in stored if provider.get(k) is None)
                if missing:
                    raise MasterKeyError(
                        "this space's data keys are wrapped by master key(s) "
                        f"{', '.join(missing)}, which {provider!r} does not hold: set "
                        "MONESPACE_MASTER_KEY or MONESPACE_KEY_FILE to the right key"
                    )
                self._provider = provider
            return self._provider

    def audit_key(self) -> AuditKey:
        """The audit keys that chain new events and sign checkpoints.

        :raises MasterKeyError: when the provider has no current key.
        """
        current = self._audit_current
        if current is None:
            current = self.provider.audit_key()
            if current is None:
                raise MasterKeyError("the key provider has no current audit key")
            self._audit_current = current
            self._audit_keys[current.id] = current
        return current

    def audit_key_by_id(self, key_id: str) -> AuditKey | None:
        """The audit keys *key_id*, to verify what they chained or signed (``None`` when the
        provider does not hold them)."""
        key = self._audit_keys.get(key_id)
        if key is None:
            key = self.provider.audit_key(key_id)
            if key is not None:
                self._audit_keys[key_id] = key
        return key

    def _master(self, key_id: str) -> MasterKey:
        master = self.provider.get(key_id)
        if master is None:
            raise MasterKeyError(f"master key {key_id} is not available")
        return master

    def create(self, tx: Transaction, owner_id: str, now: datetime) -> bytes:
        """Create, wrap and store a new data key for *owner_id*; return it unwrapped."""
        master = self.provider.current()
        key = generate_data_key()
        tx.keys.add(DataKeyRow(owner_id, master.id, wrap_key(master, owner_id, key), now))
        with self._cache_lock:
            # Known to this transaction only: it may still roll back, so the key is not
            # offered to other transactions until one reads its committed row.
            self._in_tx.setdefault(tx, {})[owner_id] = key
        return key

    def get(self, tx: Transaction, owner_id: str) -> bytes:
        """The unwrapped data key of *owner_id*.

        :raises DataShreddedError: the key was destroyed.
        :raises NotFoundError: there never was one.
        """
        now = time.monotonic()
        with self._cache_lock:
            known = self._in_tx.get(tx)
            if known is not None and owner_id in known:
                return known[owner_id]
            if owner_id.startswith(SPACE_OWNER_PREFIX):
                entry = self._space_keys.get(owner_id)
                if entry is not None and entry[1] > now:
                    return entry[0]
        row = tx.keys.get(owner_id)
        if row is None:
            raise NotFoundError("no data key for this owner")
        if row.wrapped is None or row.master_key_id is None:
            raise DataShreddedError("this data was deleted: its key was destroyed")
        key: bytes | None = None
        with self._cache_lock:
            cached = self._cache.get(row.wrapped)
            if cached is not None and cached[1] > now:
                self._cache.move_to_end(row.wrapped)
                key = cached[0]
        if key is None:
            key = unwrap_key(self._master(row.master_key_id), owner_id, row.wrapped)
        self._remember(tx, owner_id, row.wrapped, key, now)
        return key

    def _remember(
        self, tx: Transaction, owner_id: str, wrapped: bytes, key: bytes, now: float
    ) -> None:
        with self._cache_lock:
            self._in_tx.setdefault(tx, {})[owner_id] = key
            if self._cache_size == 0 or self._cache_lifetime == 0:
                return
            if owner_id.startswith(SPACE_OWNER_PREFIX):
                # The row may be another transaction's uncommitted creation (transactions
                # that share a commit see each other's rows): offered once this one commits.
                self._space_read.setdefault(tx, {})[owner_id] = key
                return
            expires = now + self._cache_lifetime
            if wrapped not in self._cache:
                self._cache[wrapped] = (key, expires)
            self._cache.move_to_end(wrapped)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def get_or_create(self, tx: Transaction, owner_id: str, now: datetime) -> bytes:
        """The data key of *owner_id*, created on first use (space-wide keys)."""
        try:
            return self.get(tx, owner_id)
        except NotFoundError:
            return self.create(tx, owner_id, now)

    def committed(self, tx: Transaction) -> None:
        """*tx* committed: the space-wide keys it read are offered to other transactions
        (see the class's docstring). Called by the unit of work after its commit."""
        with self._cache_lock:
            read = self._space_read.pop(tx, None)
            if read:
                expires = time.monotonic() + self._cache_lifetime
                for owner_id, key in read.items():
                    self._space_keys[owner_id] = (key, expires)

    def forget(self) -> None:
        """Drop every unwrapped key this keyring holds (the space closes, keys rotate)."""
        with self._cache_lock:
            self._cache.clear()
            self._space_keys.clear()
            self._space_read.clear()
            self._in_tx.clear()

    def seal(
        self, tx: Transaction, owner_id: str, kind: str, object_id: str, plaintext: bytes
    ) -> bytes:
        """Encrypt *plaintext* with the owner's data key, bound to (kind, owner, object)."""
        return seal(self.get(tx, owner_id), plaintext, content_aad(kind, owner_id, object_id))

    def open(
        self, tx: Transaction, owner_id: str, kind: str, object_id: str, sealed: bytes
    ) -> bytes:
        """Decrypt what :meth:`seal` produced for the same (kind, owner, object)."""
        return open_sealed(self.get(tx, owner_id), sealed, content_aad(kind, owner_id, object_id))

    def destroy(self, tx: Transaction, owner_id: str, now: datetime) -> bool:
        """Crypto-shred: erase the owner's wrapped key. Everything sealed with it is lost."""
        row = tx.keys.get(owner_id)
        with self._cache_lock:
            if row is not None and row.wrapped is not None:
                self._cache.pop(row.wrapped, None)
            self._space_keys.pop(owner_id, None)
            known = self._in_tx.get(tx)
            if known is not None:
                known.pop(owner_id, None)
        return tx.keys.destroy(owner_id, now)

    def blind_index(self, tx: Transaction, purpose: str, value: str, now: datetime) -> bytes:
        """A keyed hash of *value*: equal values give equal indexes, and without the space's
        index key (itself wrapped by the master key) the index reveals nothing.

        A plain hash of a NIR would not do: NIRs are structured and few enough to enumerate.
        """
        key = self.get_or_create(tx, f"space:index:{purpose}", now)
        return hmac.new(key, value.encode(), hashlib.sha256).digest()

    def to_rewrap(self, *, new_key: bool = True) -> int:
        """How many data keys :meth:`rotate` would re-wrap now: all the live ones for a new
        key, those not yet wrapped by the current key otherwise."""
        target = "" if new_key else self.provider.current().id
        with self._storage.read() as tx:
            return tx.keys.count_wrapped_by_other_than(target)

    def rotate(
        self,
        *,
        new_key: bool = True,
        batch: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> RotationReport:
        """Re-wrap every data key with the provider's current master key.

        :param new_key: first ask the provider for a new current key
            (:meth:`KeyProvider.rotate`); with ``False``, finish a rotation whose new key was
            installed by other means (a changed ``MONESPACE_MASTER_KEY``).
        :param batch: keys re-wrapped per transaction. Each batch commits on its own, so an
            interrupted rotation is resumed by running it again: both keys stay valid until
            it completes.
        :param progress: called after each batch with the number of keys it re-wrapped.
        """
        provider = self.provider
        current = provider.rotate() if new_key else provider.current()
        # New events are chained, and checkpoints signed, with the new key from now on;
        # events chained with the old one keep its id and are verified with it.
        self._audit_current = None
        self.forget()
        done = 0
        while True:
            with self._storage.write() as tx:
                rows = tx.keys.wrapped_by_other_than(current.id, limit=batch)
                for row in rows:
                    assert row.wrapped is not None
                    assert row.master_key_id is not None
                    key = unwrap_key(self._master(row.master_key_id), row.patient_id, row.wrapped)
                    if tx.keys.rewrap(
                        row.patient_id,
                        expected_master_key_id=row.master_key_id,
                        master_key_id=current.id,
                        wrapped=wrap_key(current, row.patient_id, key),
                    ):
                        done += 1
            if progress is not None and rows:
                progress(len(rows))
            if len(rows) < batch:
                return RotationReport(current.id, done)
