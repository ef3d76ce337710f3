"""Several writers on one SQLite file (several processes, or several spaces of one process):
a writer waits for another's transaction with its own jittered backoff, gets its turn as soon
as the lock frees, and gives up with a clear error once the wait exceeds the busy timeout.

Two :class:`SQLiteStorage` objects on one file hold two connections, which lock each other
exactly as two processes do.
"""

from __future__ import annotations

import threading
import time

import pytest

from monespace.errors import StorageError
from monespace.storage import SQLiteStorage
from monespace.storage import _sqlite as sqlite_module
from monespace.testing import make_patient_row


def _ids(storage: SQLiteStorage) -> set[str]:
    with storage.read() as tx:
        return set(tx.patients.ids(limit=100_000))


def test_a_writer_waits_for_another_connection_and_then_commits(tmp_path):
    path = tmp_path / "two.db"
    first, second = SQLiteStorage(path), SQLiteStorage(path)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with first.write() as tx:
            tx.patients.add(make_patient_row(1))
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(5)
    timer = threading.Timer(0.2, release.set)
    timer.start()
    started = time.monotonic()
    with second.write() as tx:  # waits for the first connection's commit
        tx.patients.add(make_patient_row(2))
    waited = time.monotonic() - started
    holder.join()
    assert waited >= 0.15
    assert {make_patient_row(1).id, make_patient_row(2).id} <= _ids(second)
    first.close()
    second.close()


def test_a_writer_gives_up_when_the_lock_stays_taken(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_module, "_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "stuck.db"
    first, second = SQLiteStorage(path), SQLiteStorage(path)
    with first.write() as tx:
        tx.patients.add(make_patient_row(1))
        started = time.monotonic()
        with (
            pytest.raises(StorageError, match="could not start a write transaction"),
            second.write() as other,
        ):
            other.patients.add(make_patient_row(2))
        assert 0.15 <= time.monotonic() - started < 5
    # Nothing of the refused writer was written; the first one committed; the second
    # connection writes again once the lock is free.
    assert make_patient_row(2).id not in _ids(first)
    with second.write() as tx:
        tx.patients.add(make_patient_row(3))
    assert {make_patient_row(1).id, make_patient_row(3).id} <= _ids(first)
    first.close()
    second.close()


def test_writers_of_several_connections_lose_nothing(tmp_path):
    path = tmp_path / "many.db"
    spaces = [SQLiteStorage(path) for _ in range(4)]
    failures: list[BaseException] = []
    returned: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(spaces))

    def writer(n: int, storage: SQLiteStorage) -> None:
        try:
            start.wait()
            for i in range(30):
                row = make_patient_row(n * 1000 + i)
                with storage.write() as tx:
                    tx.patients.add(row)
                with lock:
                    returned.append(row.id)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n, s)) for n, s in enumerate(spaces)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert _ids(spaces[0]) >= set(returned)
    assert len(returned) == 120
    for storage in spaces:
        storage.close()
