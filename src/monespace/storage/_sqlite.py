"""The embedded SQLite backend (the default).

Durability and safety settings, each deliberate:

- ``journal_mode=WAL``: readers never block the writer and see a consistent snapshot;
- ``synchronous=FULL``: in WAL mode ``NORMAL`` may lose the last commits on power loss, and an
  acknowledged health document must not be lost;
- ``foreign_keys=ON``: SQLite leaves them off unless asked;
- ``secure_delete=ON``: deleted content (a destroyed data key) is overwritten, not left in
  free pages;
- explicit ``BEGIN IMMEDIATE`` for writes (the ``sqlite3`` module runs in autocommit mode,
  so it never opens transactions behind our back); one writer at a time, readers in parallel
  on their own connections;
- writers of several processes queue on an advisory lock on a file beside the database
  (``<file>-writer``, see :class:`_ProcessLock`) before ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Self
from urllib.parse import unquote, urlsplit

try:
    import fcntl

    _FLOCK = True
except ImportError:  # not POSIX: writers of several processes take turns by backoff only
    _FLOCK = False

from ..errors import ConfigurationError, SchemaVersionError, StorageError
from ._base import StorageBackend, Transaction
from ._migrations import load_migrations
from ._slices import slice_of
from ._sql import Dialect, SqlTransaction, to_db_time

__all__ = ["LATEST_SCHEMA_VERSION", "MemoryStorage", "SQLiteStorage", "sqlite_path_from_url"]

_MIGRATIONS = load_migrations("sqlite")
LATEST_SCHEMA_VERSION = _MIGRATIONS[-1].version
_DIALECT = Dialect(
    placeholder="?",
    integrity_errors=(sqlite3.IntegrityError,),
    driver_errors=(sqlite3.Error,),
)
_BUSY_TIMEOUT_MS = 10_000
#: Another process's write transaction: retry ``BEGIN IMMEDIATE`` after a random pause of up
#: to this much, doubled at each try up to the cap, and give up after ``_BUSY_TIMEOUT_MS``.
_BACKOFF_FIRST_S = 0.000_2
_BACKOFF_CAP_S = 0.001
#: How many times a committer lets waiting callers into its group before committing.
_MAX_LET_IN = 64


def _register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions the repositories use that SQLite lacks (PostgreSQL's are created
    by its migrations)."""
    conn.create_function("monespace_slice", 2, slice_of, deterministic=True)


def sqlite_path_from_url(url: str) -> Path:
    """``sqlite:///relative.db`` → ``relative.db``; ``sqlite:////abs/path.db`` → ``/abs/path.db``.

    The same convention as SQLAlchemy's, so URLs can be shared between tools.
    """
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or not parts.path.startswith("/"):
        raise ConfigurationError(
            "a SQLite URL looks like sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    path = unquote(parts.path[1:])
    if not path or path == ":memory:":
        raise ConfigurationError("a SQLite URL needs a file path (use memory:// for no file)")
    return Path(path)


class _Attempt:
    """One wait for the process lock, in a thread of its own, which the caller may abandon."""

    __slots__ = ("abandoned", "acquired", "done", "failed", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.acquired = False
        self.failed = False
        self.abandoned = False


class _ProcessLock:
    """The write lock of the monespace processes sharing one database file: an exclusive
    ``flock`` on ``<file>-writer``, held from before ``BEGIN IMMEDIATE`` to after ``COMMIT``
    or ``ROLLBACK``.

    SQLite's own write lock has no queue: a writer that finds it taken can only retry, and
    retries leave it idle between the holder's commit and the next retry. Waiters on this
    lock sleep in the kernel instead and one of them is woken as soon as it is released, so
    SQLite's lock passes from writer to writer without a gap; ``BEGIN IMMEDIATE`` still
    decides, and still waits for writers that do not take this lock (another program).

    The lock is advisory, on a file that holds nothing: a process that dies releases it
    with its descriptors. A lock that cannot be had at once is waited for in a daemon
    thread, on a descriptor of its own, so that the caller can stop waiting after
    :data:`_BUSY_TIMEOUT_MS` as it would for SQLite's lock: an abandoned wait closes its
    descriptor, which releases the lock, the moment it gets it, and never keeps the process
    from exiting. The threads of one process never contend for the lock: the storage's own
    write lock lets one of them at a time begin a transaction.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        #: This process's descriptor for trying the lock without waiting; -1 without one.
        self._fd = -1
        self._pid = 0
        #: The descriptor through which the lock is held, if it is.
        self._held: int | None = None

    def _descriptor(self) -> int:
        # A forked child must not share the parent's open file description (a flock
        # belongs to it: parent and child would hold the lock at once), nor release a
        # lock its parent holds.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._held = None
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                # A directory this process may not create files in (read-only, another
                # owner): writers take turns on SQLite's lock alone, as they would without
                # this one; correctness never depends on it.
                self._fd = -1
        return self._fd

    def acquire(self, timeout: float) -> bool:
        """Take the lock, waiting up to *timeout* seconds; whether the caller may go on
        (true also where there is no lock to take)."""
        fd = self._descriptor() if _FLOCK else -1
        if fd < 0:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return self._wait_for(timeout)
        self._held = fd
        return True

    def _wait_for(self, timeout: float) -> bool:
        try:
            waiting = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return True
        attempt = _Attempt()
        threading.Thread(
            target=self._wait, args=(waiting, attempt), name="monespace-writer-lock", daemon=True
        ).start()
        attempt.done.wait(timeout)
        with attempt.lock:
            if attempt.acquired:
                self._held = waiting
            elif not attempt.failed:  # failed: the lock cannot be had here, SQLite's decides
                attempt.abandoned = True
                return False
        return True

    @staticmethod
    def _wait(fd: int, attempt: _Attempt) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # sleeps in the kernel, the interpreter released
        except OSError:
            with attempt.lock:
                attempt.failed = True
            os.close(fd)
            attempt.done.set()
            return
        with attempt.lock:
            if not attempt.abandoned:
                attempt.acquired = True
                attempt.done.set()
                return
        os.close(fd)  # abandoned: closing the only descriptor of its file releases the lock

    def release(self) -> None:
        """Release the lock if this process holds it (it may be released twice)."""
        held, self._held = self._held, None
        if held is None or self._pid != os.getpid():
            return
        if held == self._fd:
            fcntl.flock(held, fcntl.LOCK_UN)
        else:
            os.close(held)  # a wait's own descriptor: closing it releases the lock

    def close(self) -> None:
        self.release()
        if self._fd >= 0 and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = -1
        self._pid = 0


class _Group:
    """The write transactions committed together (see :meth:`SQLiteStorage.write`)."""

    __slots__ = ("done", "error", "members")

    def __init__(self) -> None:
        self.members = 0
        self.done = False
        self.error: StorageError | None = None


class SQLiteStorage(StorageBackend):
    """Storage in one SQLite file. URL: ``sqlite:///path/to/file.db``.

    :param path: the database file; created (mode 0600) with its schema when missing.
    """

    name: ClassVar[str] = "sqlite"
    schemes: ClassVar[tuple[str, ...]] = ("sqlite",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._write_lock = threading.Lock()
        # Taken by the caller that commits a group (see :meth:`write`), before the write
        # lock: callers of the next group run their statements meanwhile.
        self._commit_lock = threading.Lock()
        self._group = _Group()
        # Callers waiting for the write lock (see :meth:`_close_group`).
        self._entering = 0
        self._entering_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        is_new = not self.path.exists()
        if is_new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Create the file ourselves so that it is private from the first byte.
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
        self._process_lock = _ProcessLock(self.path.with_name(self.path.name + "-writer"))
        self._writer = self._connect()
        try:
            self._version = self._migrate()
            # From here the writer waits for other processes in _begin (jittered backoff),
            # not in SQLite's busy handler, whose sleeps grow to 100 ms: with several writer
            # processes, a transaction could sleep through many others' commits and wait
            # seconds. A write transaction meets the lock only at its BEGIN IMMEDIATE.
            self._writer.execute("PRAGMA busy_timeout = 0")
        except BaseException:
            self._writer.close()
            raise

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(sqlite_path_from_url(url))

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            _register_functions(conn)
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StorageError(f"could not switch {self.path} to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path} is not a usable SQLite database: {exc}") from exc
        return conn

    def _migrate(self) -> int:
        return _migrate(self._writer)

    @property
    def schema_version(self) -> int:
        return self._version

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        """A write transaction, committed (durably: ``synchronous=FULL``) before this
        returns.

        **Group commit.** Write transactions of concurrent threads share one commit: a
        transaction that starts while another group is committing (waiting for the disk)
        runs its statements in the next group's open transaction, inside a savepoint of
        its own, and waits; the first of the group to reach the commit commits all of
        them, with one ``fsync``. Each caller still returns only once its own changes are
        durable, and a failure rolls back only the failing caller's statements. Alone,
        a transaction commits at once, as it always did.
        """
        with self._entering_lock:
            self._entering += 1
        with self._write_lock:
            with self._entering_lock:
                self._entering -= 1
            self._check_open()
            group = self._group
            cursor = self._writer.cursor()
            try:
                first = not self._writer.in_transaction
                if first:
                    self._begin(cursor)
                else:
                    # Others of this group wait for the commit: a failure here must roll
                    # back this caller's statements only.
                    cursor.execute("SAVEPOINT grouped")
                try:
                    yield SqlTransaction(cursor, _DIALECT)
                except BaseException:
                    if first:
                        try:
                            if self._writer.in_transaction:
                                cursor.execute("ROLLBACK")
                        finally:
                            self._process_lock.release()
                    else:
                        cursor.execute("ROLLBACK TO grouped")
                        cursor.execute("RELEASE grouped")
                    raise
                if not first:
                    cursor.execute("RELEASE grouped")
                group.members += 1
            finally:
                cursor.close()
        self._commit(group)

    def _commit(self, group: _Group) -> None:
        """Return once *group* is committed; commit it if no one has yet."""
        with self._commit_lock:
            if not group.done:
                self._close_group()
                try:
                    self._commit_locked()
                finally:
                    self._write_lock.release()
        if group.error is not None:
            raise StorageError(str(group.error))

    def _commit_locked(self) -> None:
        """Commit the open group, if any; the caller holds the commit and write locks."""
        group = self._group
        # New callers wait for the write lock: the group is closed from here.
        self._group = _Group()
        group.done = True
        try:
            if self._writer.in_transaction:
                self._commit_open(group)
        finally:
            # Also when SQLite ended the transaction itself (some errors roll it back).
            self._process_lock.release()

    def _commit_open(self, group: _Group) -> None:
        cursor = self._writer.cursor()
        try:
            _run(cursor, "COMMIT", "could not commit")
        except StorageError as exc:
            group.error = exc
        finally:
            # A failed COMMIT (disk full, I/O error) leaves the transaction open: roll it
            # back so that nothing half-written is ever acknowledged.
            if self._writer.in_transaction:
                cursor.execute("ROLLBACK")
            cursor.close()

    def _begin(self, cursor: sqlite3.Cursor) -> None:
        """Queue behind the writers of other processes, then ``BEGIN IMMEDIATE``; both
        waits together give up after ``_BUSY_TIMEOUT_MS``."""
        deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
        if not self._process_lock.acquire(_BUSY_TIMEOUT_MS / 1000):
            raise StorageError(
                "could not start a write transaction: another process kept the database "
                f"locked for {_BUSY_TIMEOUT_MS / 1000:g} s"
            )
        try:
            _begin(cursor, deadline)
        except BaseException:
            self._process_lock.release()
            raise

    def _close_group(self) -> None:
        """Take the write lock to commit, after letting in the callers already waiting for
        it (they queued during the previous commit's fsync): they join this group rather
        than each waiting for a commit of their own. Bounded, so that a stream of new
        callers cannot hold a commit back."""
        for _ in range(_MAX_LET_IN):
            self._write_lock.acquire()
            with self._entering_lock:
                waiting = self._entering
            if not waiting:
                return
            self._write_lock.release()
            time.sleep(0)  # hand the lock to a waiting caller
        self._write_lock.acquire()

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        self._check_open()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        cursor = conn.cursor()
        depth = getattr(self._local, "depth", 0)
        # A read inside a read (a key lookup while reading) shares the outer snapshot: SQLite
        # has no nested transactions, and the inner read must see what the outer one sees.
        if depth == 0:
            # Deferred: the first SELECT fixes the snapshot for the whole block.
            _run(cursor, "BEGIN", "could not start a read transaction")
        self._local.depth = depth + 1
        try:
            yield SqlTransaction(cursor, _DIALECT)
        finally:
            self._local.depth = depth
            if depth == 0:
                cursor.execute("COMMIT")
            cursor.close()

    def scrub(self) -> None:
        """Checkpoint the write-ahead log into the database (where ``secure_delete`` has
        overwritten deleted content) and truncate it: its frames would otherwise keep copies
        of destroyed keys and deleted ciphertexts until SQLite reuses them."""
        with self._commit_lock, self._write_lock:
            self._check_open()
            self._commit_locked()  # writers waiting for a commit get it first
            try:
                # The checkpoint waits for readers of other connections: in SQLite's busy
                # handler, as the writer did before it used its own backoff.
                self._writer.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
                try:
                    self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                finally:
                    self._writer.execute("PRAGMA busy_timeout = 0")
            except sqlite3.Error as exc:
                raise StorageError(f"could not checkpoint the write-ahead log: {exc}") from exc

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the storage is closed")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._commit_lock, self._write_lock:
            self._commit_locked()  # writers waiting for a commit get it first
            self._writer.close()
            self._process_lock.close()

    def __repr__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r})"


class MemoryStorage(StorageBackend):
    """Storage in process memory, lost when the process ends. URL: ``memory://``.

    An in-memory SQLite database behind the same SQL and the same numbered migrations as
    :class:`SQLiteStorage`, so that tests on ``memory://`` exercise the code production runs.
    Each ``memory://`` URL opens a new, empty, private store.

    One connection serves every thread, behind one re-entrant lock: writers are serialised,
    a read waits for a write in another thread to finish (so it always sees committed data)
    and a read nested in a transaction of the same thread shares that transaction. An
    in-memory database has no file and no write-ahead log, so there is nothing for
    :meth:`scrub` to flush; ``secure_delete`` still overwrites deleted pages in memory.
    """

    name: ClassVar[str] = "memory"
    schemes: ClassVar[tuple[str, ...]] = ("memory",)

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._closed = False
        self._depth = 0
        try:
            self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            _register_functions(self._conn)
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA secure_delete = ON")
        except sqlite3.Error as exc:
            raise StorageError(f"could not open an in-memory database: {exc}") from exc
        try:
            self._version = _migrate(self._conn)
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls()

    @property
    def schema_version(self) -> int:
        return self._version

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        with self._lock:
            self._check_open()
            if self._depth:
                raise StorageError("a write transaction cannot start inside another transaction")
            cursor = self._conn.cursor()
            self._depth = 1
            try:
                _run(cursor, "BEGIN IMMEDIATE", "could not start a write transaction")
                try:
                    yield SqlTransaction(cursor, _DIALECT)
                except BaseException:
                    if self._conn.in_transaction:
                        cursor.execute("ROLLBACK")
                    raise
                try:
                    _run(cursor, "COMMIT", "could not commit")
                finally:
                    if self._conn.in_transaction:
                        cursor.execute("ROLLBACK")
            finally:
                self._depth = 0
                cursor.close()

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        with self._lock:
            self._check_open()
            cursor = self._conn.cursor()
            outermost = self._depth == 0
            # query_only makes any write attempt fail, as on a reader connection of the file
            # backend; a read nested in a write gives the write its rights back when it ends.
            was_query_only = cursor.execute("PRAGMA query_only").fetchone()[0]
            cursor.execute("PRAGMA query_only = ON")
            if outermost:
                _run(cursor, "BEGIN", "could not start a read transaction")
            self._depth += 1
            try:
                yield SqlTransaction(cursor, _DIALECT)
            finally:
                self._depth -= 1
                if outermost:
                    cursor.execute("COMMIT")
                cursor.execute(f"PRAGMA query_only = {int(was_query_only)}")
                cursor.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the storage is closed")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()

    def __repr__(self) -> str:
        return "MemoryStorage()"


def _migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations *conn*'s database lacks; return its schema version."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT"
    )
    current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
    version = int(current.fetchone()[0])
    if version > LATEST_SCHEMA_VERSION:
        raise SchemaVersionError(version, LATEST_SCHEMA_VERSION)
    for migration in _MIGRATIONS[version:]:
        # One transaction per migration: a failure leaves the previous version intact.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, to_db_time(datetime.now(UTC))),
            )
            conn.execute(f"PRAGMA user_version = {migration.version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = migration.version
    return version


def _begin(cursor: sqlite3.Cursor, deadline: float) -> None:
    """``BEGIN IMMEDIATE``, tried again while another process holds the write lock, until
    *deadline* (``time.monotonic()``).

    The pauses are random (full jitter) and short, so that writers of several processes
    take turns as the lock frees instead of sleeping in step, and no caller waits much
    longer than the transactions ahead of it take.

    :raises StorageError: when the lock stays taken until *deadline*, or on any other
        failure.
    """
    ceiling = _BACKOFF_FIRST_S
    while True:
        try:
            cursor.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise StorageError(f"could not start a write transaction: {exc}") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"could not start a write transaction: {exc}") from exc
        # Not a secret: a pause length (S311 is about cryptographic randomness).
        time.sleep(random.uniform(0, ceiling))  # noqa: S311
        ceiling = min(ceiling * 2, _BACKOFF_CAP_S)


def _run(cursor: sqlite3.Cursor, statement: str, failure: str) -> None:
    try:
        cursor.execute(statement)
    except sqlite3.Error as exc:
        raise StorageError(f"{failure}: {exc}") from exc


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements, keeping trigger bodies (with their ``;``) whole."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            buffer = ""
            if statement and not all(
                ln.strip().startswith("--") or not ln.strip() for ln in statement.splitlines()
            ):
                yield statement
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise StorageError("a migration ends with an incomplete SQL statement")
