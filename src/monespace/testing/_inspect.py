"""Looking past the services, for tests only."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from .._space import Space
from ..storage import MemoryStorage, SQLiteStorage, StorageBackend

__all__ = ["statements_of", "storage_of", "wal_frames_of"]


def storage_of(space: Space) -> StorageBackend:
    """The storage backend under *space*, for tests that check what was stored (rows,
    ciphertexts, the outbox) beneath the services.

    Application code never needs it: a space's data is read through its services, under
    the access policy and the audit trail; ``Space`` keeps its storage private.

    .. versionadded:: 0.1
    """
    return space._storage


def _write_connection(space: Space) -> sqlite3.Connection:
    storage = space._storage
    if isinstance(storage, SQLiteStorage):
        return storage._writer
    if isinstance(storage, MemoryStorage):
        return storage._conn
    raise TypeError(f"statements are counted on the built-in SQLite backends, not {storage!r}")


@contextmanager
def statements_of(space: Space) -> Iterator[list[str]]:
    """The SQL statements *space* runs on its write connection inside the ``with`` block,
    in order (``BEGIN`` and ``COMMIT`` included), for tests that bound the round trips of
    an operation: unlike a time, a count does not depend on the machine.

    Only for the built-in SQLite backends (``sqlite://`` and ``memory://``).

    .. versionadded:: 0.2
    """
    conn = _write_connection(space)
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        conn.set_trace_callback(None)


def wal_frames_of(space: Space) -> int:
    """How many frames the write-ahead log of a ``sqlite://`` *space* holds: truncate the
    log first (``storage_of(space).scrub()``), run an operation, and this is the number of
    pages its commits wrote (SQLite's own checkpoints aside, every 1,000 pages).

    .. versionadded:: 0.2
    """
    storage = space._storage
    if not isinstance(storage, SQLiteStorage):
        raise TypeError("only a sqlite:// space has a write-ahead log")
    wal = f"{storage.path}-wal"
    size = os.path.getsize(wal) if os.path.exists(wal) else 0
    if size == 0:
        return 0
    page_size = int(storage._writer.execute("PRAGMA page_size").fetchone()[0])
    # A 32-byte file header, then each frame: a 24-byte frame header and one page.
    return (size - 32) // (page_size + 24)
