"""Testing utilities for embedders and plugin authors (needs pytest and hypothesis).

- :class:`StorageContract`: the contract suite every storage backend must pass.
- fixtures ``monespace_space``, ``monespace_clock``, ``monespace_key_provider``, available
  in any pytest run once monespace is installed.
- the in-memory twins of the ports, re-exported: :class:`MemoryStorage`,
  :class:`MemoryTransport`, :class:`StaticKeyProvider`.
- :func:`storage_of`: the storage under a space, for tests that inspect what was stored.
- :func:`reference_app`: an app taken through the whole référencement in one call.

- :func:`statements_of`, :func:`wal_frames_of`: the SQL statements and write-ahead-log
  frames an operation costs, for tests that bound them (deterministic, unlike timings).
- :mod:`monespace.testing.durability`: the kill -9 harness (acknowledged writes survive a
  ``SIGKILL``), for the built-in SQLite backend or a plugin's.

.. versionadded:: 0.1
"""

from .._apps import reference_app
from ..crypto import StaticKeyProvider
from ..storage import MemoryStorage
from ..transport import MemoryTransport
from ._contract import (
    TEST_AUDIT_KEY,
    StorageContract,
    make_document_row,
    make_event,
    make_outbox_row,
    make_patient_row,
)
from ._inspect import statements_of, storage_of, wal_frames_of

__all__ = [
    "TEST_AUDIT_KEY",
    "MemoryStorage",
    "MemoryTransport",
    "StaticKeyProvider",
    "StorageContract",
    "make_document_row",
    "make_event",
    "make_outbox_row",
    "make_patient_row",
    "reference_app",
    "statements_of",
    "storage_of",
    "wal_frames_of",
]
