"""The keyring: data keys per patient, wrapped by the master key; sealing and blind indexes.

It sits between the services and storage: it reads and writes ``data_keys`` rows through the
transaction it is given, and it is the only code that ever sees an unwrapped key.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

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

_CACHE_SIZE = 4096


#: The owner of the space-wide key that seals notifications waiting in the outbox.
NOTIFICATION_KEY = "space:notifications"


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
    """

    def __init__(
        self, storage: StorageBackend, provider_factory: Callable[[], KeyProvider]
    ) -> None:
        self._storage = storage
        self._factory = provider_factory
        self._provider: KeyProvider | None = None
        self._lock = threading.Lock()
        # Unwrapped keys by wrapped bytes: a re-wrapped or destroyed key has other (or no)
        # wrapped bytes, so the cache can never serve a key the database no longer holds.
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
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
        return key

    def get(self, tx: Transaction, owner_id: str) -> bytes:
        """The unwrapped data key of *owner_id*.

        :raises DataShreddedError: the key was destroyed.
        :raises NotFoundError: there never was one.
        """
        row = tx.keys.get(owner_id)
        if row is None:
            raise NotFoundError("no data key for this owner")
        if row.wrapped is None or row.master_key_id is None:
            raise DataShreddedError("this data was deleted: its key was destroyed")
        with self._cache_lock:
            cached = self._cache.get(row.wrapped)
            if cached is not None:
                self._cache.move_to_end(row.wrapped)
                return cached
        key = unwrap_key(self._master(row.master_key_id), owner_id, row.wrapped)
        with self._cache_lock:
            self._cache[row.wrapped] = key
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return key

    def get_or_create(self, tx: Transaction, owner_id: str, now: datetime) -> bytes:
        """The data key of *owner_id*, created on first use (space-wide keys)."""
        if tx.keys.get(owner_id) is None:
            return self.create(tx, owner_id, now)
        return self.get(tx, owner_id)

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
        if row is not None and row.wrapped is not None:
            with self._cache_lock:
                self._cache.pop(row.wrapped, None)
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
