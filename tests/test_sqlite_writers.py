"""Several writers on one SQLite file (several processes, or several spaces of one process):
a writer waits for another's transaction (queued on the lock file ``<file>-writer``, then
SQLite's own lock with a jittered backoff), gets its turn as soon as the lock frees, and gives
up with a clear error once the wait exceeds the busy timeout.

Two :class:`SQLiteStorage` objects on one file hold two connections, which lock each other
exactly as two processes do.
"""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

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


# --- the lock file the writers of several processes queue on -------------------------------

_HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def other_process(tmp_path):
    """Start a process holding ``<path>-writer`` until the returned function releases it."""
    started: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> Callable[[], None]:
        process = subprocess.Popen(
            [sys.executable, "-c", _HOLD, f"{path}-writer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        assert process.stdout.readline() == "held\n"

        def release() -> None:
            assert process.stdin is not None
            process.stdin.write("\n")
            process.stdin.flush()
            process.wait(10)

        return release

    yield hold
    for process in started:
        process.kill()
        process.wait(10)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


def _taken_by_someone(path: Path) -> bool:
    fd = os.open(f"{path}-writer", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_writer_queues_behind_another_process_and_then_commits(tmp_path, other_process):
    path = tmp_path / "queue.db"
    storage = SQLiteStorage(path)
    release = other_process(path)
    done = threading.Event()

    def write() -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    # The other process holds no SQLite lock: only the lock file keeps the writer waiting.
    assert not done.wait(0.3)
    assert make_patient_row(1).id not in _ids(storage)
    release()
    writer.join(10)
    assert done.is_set()
    assert make_patient_row(1).id in _ids(storage)
    # Released after the commit: another process may take it now.
    assert not _taken_by_someone(path)
    storage.close()


def test_a_writer_gives_up_on_the_lock_file_and_its_abandoned_wait_lets_go(
    tmp_path, monkeypatch, other_process
):
    monkeypatch.setattr(sqlite_module, "_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "abandoned.db"
    storage = SQLiteStorage(path)
    release = other_process(path)
    with (
        pytest.raises(StorageError, match="could not start a write transaction"),
        storage.write() as tx,
    ):
        tx.patients.add(make_patient_row(1))
    release()
    # The wait that timed out gets the lock once the other process lets go, and gives it
    # back at once: nobody holds it for good.
    deadline = time.monotonic() + 5
    while _taken_by_someone(path):
        assert time.monotonic() < deadline, "the abandoned wait kept the lock"
        time.sleep(0.01)
    with storage.write() as tx:
        tx.patients.add(make_patient_row(2))
    assert _ids(storage) >= {make_patient_row(2).id}
    assert make_patient_row(1).id not in _ids(storage)
    storage.close()


def test_a_failed_write_releases_the_lock_file(tmp_path):
    path = tmp_path / "failed.db"
    storage = SQLiteStorage(path)
    with pytest.raises(RuntimeError), storage.write() as tx:
        tx.patients.add(make_patient_row(1))
        assert _taken_by_someone(path)
        raise RuntimeError("the caller's block failed")
    assert not _taken_by_someone(path)
    assert make_patient_row(1).id not in _ids(storage)
    storage.close()


def test_the_lock_file_is_private(tmp_path):
    path = tmp_path / "private.db"
    with SQLiteStorage(path) as storage, storage.write() as tx:
        tx.patients.add(make_patient_row(1))
    assert stat.S_IMODE(os.stat(f"{path}-writer").st_mode) == 0o600


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_does_not_share_its_parents_lock(tmp_path):
    path = tmp_path / "fork.db"
    storage = SQLiteStorage(path)
    lock = storage._process_lock
    assert lock.acquire(1)
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's outcome is its exit status
        # Sharing the parent's open file description, the child would "take" the lock
        # while the parent holds it.
        os._exit(0 if not lock.acquire(0.1) else 1)
    _, status = os.waitpid(child, 0)
    lock.release()
    assert os.waitstatus_to_exitcode(status) == 0
    storage.close()


def test_the_lock_file_is_released_when_sqlite_ended_the_transaction_itself(tmp_path):
    path = tmp_path / "ended.db"
    storage = SQLiteStorage(path)
    with storage.write() as tx:
        tx.patients.add(make_patient_row(1))
        # What SQLite does on some errors (a full disk, an I/O error): roll back at once,
        # leaving nothing to commit.
        storage._writer.execute("ROLLBACK")
    assert not _taken_by_someone(path)
    assert make_patient_row(1).id not in _ids(storage)
    storage.close()


_DIE_HOLDING = """
import sys, time
from monespace.storage import SQLiteStorage
from monespace.testing import make_patient_row
storage = SQLiteStorage(sys.argv[1])
with storage.write() as tx:
    tx.patients.add(make_patient_row(7))
    print("writing", flush=True)
    time.sleep(60)
"""


def test_a_writer_killed_in_its_transaction_leaves_no_lock_behind(tmp_path):
    path = tmp_path / "killed.db"
    SQLiteStorage(path).close()
    process = subprocess.Popen(
        [sys.executable, "-c", _DIE_HOLDING, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "writing\n"
        assert _taken_by_someone(path)
        process.kill()
        process.wait(10)
    finally:
        process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
    # The kernel released both locks with the process: the next writer goes ahead, and
    # nothing of the killed transaction is there.
    storage = SQLiteStorage(path)
    with storage.write() as tx:
        tx.patients.add(make_patient_row(8))
    assert make_patient_row(8).id in _ids(storage)
    assert make_patient_row(7).id not in _ids(storage)
    storage.close()
