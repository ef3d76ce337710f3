"""PostgreSQL storage: monespace's shared SQL repositories over psycopg 3 and a connection pool.

Transactions, each deliberate:

- writes run at ``READ COMMITTED`` after taking a transaction-scoped advisory lock named
  after the schema, so writers are serialised across every process sharing the database,
  as ``BEGIN IMMEDIATE`` serialises them on SQLite; inside one process a lock also keeps
  waiting writers from holding pooled connections;
- every writing statement runs under a savepoint: PostgreSQL aborts the whole transaction
  on a failed statement, SQLite only the statement, and the repositories rely on the latter
  (a conflict is reported and the earlier rows of the transaction stay);
- driver errors keep PostgreSQL's primary message only, never its ``DETAIL`` (which quotes
  the values of the offending row);
- reads run at ``REPEATABLE READ READ ONLY``: one snapshot for the whole block, and any
  write is refused; a read nested in a read of the same thread shares its snapshot, a read
  nested in a write uses its own connection and sees committed data only (as on SQLite);
- faults: a connection that fails before a transaction has executed anything is discarded
  and the transaction started again on a fresh connection (up to :data:`_START_ATTEMPTS`
  times). Once the caller's block has run, nothing is retried: the block cannot be replayed
  from here, so a failure surfaces as :class:`~monespace.errors.StorageError`, and a
  connection lost during ``COMMIT`` says that the outcome is unknown. Serialisation failures
  cannot occur: writers never run concurrently and reads are read-only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import attrs
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from monespace.errors import ConfigurationError, SchemaVersionError, StorageError
from monespace.storage import Dialect, SqlTransaction, StorageBackend, Transaction, to_db_time

__all__ = [
    "DEFAULT_AUDIT_SHARDS",
    "DEFAULT_PARTITIONS",
    "LATEST_SCHEMA_VERSION",
    "PostgresStorage",
    "PostgresUrl",
    "load_migrations",
]

DIALECT = Dialect(
    placeholder="%s",
    integrity_errors=(psycopg.IntegrityError,),
    driver_errors=(psycopg.Error,),
    lock_skipping=" FOR UPDATE SKIP LOCKED",
)
_START_ATTEMPTS = 3
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: URL query parameters read by the plugin; every other one goes to libpq untouched.
_OWN_PARAMETERS = ("schema", "pool_min", "pool_max", "partitions", "audit_shards")
#: Hash partitions per table of persons' data when the schema is created (``?partitions=``).
DEFAULT_PARTITIONS = 8
#: Audit chains of patients when the schema is created (``?audit_shards=``), besides shard 0.
DEFAULT_AUDIT_SHARDS = 16
_WRITING = ("INSERT", "UPDATE", "DELETE")


@attrs.frozen
class Migration:
    """One schema step of the PostgreSQL dialect: its number, its name and its SQL."""

    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The plugin's migrations, in order; numbering must be 1, 2, 3... without gaps."""
    folder = resources.files("monespace_postgres") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise StorageError("the postgresql migrations are not numbered 1..n without gaps")
    return found


_MIGRATIONS = load_migrations()
LATEST_SCHEMA_VERSION = _MIGRATIONS[-1].version


@attrs.frozen
class PostgresUrl:
    """A ``postgresql://`` URL split into what libpq reads and what the plugin reads.

    :ivar conninfo: the URL for libpq, without the plugin's own query parameters.
    :ivar schema: the schema holding monespace's tables (``public`` unless ``?schema=``).
    :ivar pool_min: connections the pool keeps open (``?pool_min=``, default 1).
    :ivar pool_max: connections the pool opens at most (``?pool_max=``, default 10).
    :ivar partitions: hash partitions of each table of persons' data, used when the schema
        is created (``?partitions=``, default :data:`DEFAULT_PARTITIONS`); an existing
        schema keeps the count it was created with.
    :ivar audit_shards: audit chains of patients (besides shard ``0``, for events without a
        patient), used when the schema is created (``?audit_shards=``, default
        :data:`DEFAULT_AUDIT_SHARDS`; 0 keeps a single chain).
    :ivar redacted: the URL with its password replaced by ``***``, for messages and logs.
    """

    conninfo: str
    schema: str
    pool_min: int
    pool_max: int
    redacted: str
    partitions: int = DEFAULT_PARTITIONS
    audit_shards: int = DEFAULT_AUDIT_SHARDS

    @classmethod
    def parse(cls, url: str) -> Self:
        """Split *url*; refuse a scheme, schema name or pool size that cannot be right.

        :raises ConfigurationError: naming the URL without its password.
        """
        parts = urlsplit(url)
        redacted = _redact(url)
        if parts.scheme not in PostgresStorage.schemes:
            raise ConfigurationError(f"not a PostgreSQL URL: {redacted}")
        query = parse_qsl(parts.query, keep_blank_values=True)
        own = {key: value for key, value in query if key in _OWN_PARAMETERS}
        schema = own.get("schema", "public")
        if not _SCHEMA.fullmatch(schema):
            raise ConfigurationError(
                f"the schema in {redacted} must be a lower-case SQL identifier"
            )
        try:
            pool_min = int(own.get("pool_min", "1"))
            pool_max = int(own.get("pool_max", "10"))
            partitions = int(own.get("partitions", str(DEFAULT_PARTITIONS)))
            audit_shards = int(own.get("audit_shards", str(DEFAULT_AUDIT_SHARDS)))
        except ValueError:
            raise ConfigurationError(
                f"the pool sizes, partitions and audit shards in {redacted} must be integers"
            ) from None
        if not 1 <= partitions <= 1024:
            raise ConfigurationError(f"the partitions in {redacted} must be between 1 and 1024")
        if not 0 <= audit_shards <= 1024:
            raise ConfigurationError(f"the audit_shards in {redacted} must be between 0 and 1024")
        # A read nested in a write takes a second connection: two is the least that works.
        if not 0 <= pool_min <= pool_max or pool_max < 2:
            raise ConfigurationError(
                f"{redacted} needs 0 <= pool_min <= pool_max and pool_max >= 2"
            )
        # Percent-encoded for libpq, which does not read '+' as a space (``options=-c x=y``).
        rest = urlencode(
            [(key, value) for key, value in query if key not in _OWN_PARAMETERS], quote_via=quote
        )
        conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, rest, parts.fragment))
        return cls(conninfo, schema, pool_min, pool_max, redacted, partitions, audit_shards)


def _redact(url: str) -> str:
    """*url* with the password of its user info (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class _Cursor:
    """The cursor the repositories see.

    - Driver errors are re-raised (same class) with PostgreSQL's primary message only: its
      ``DETAIL`` quotes the offending values ("Key (nir_index)=(...)", "Failing row contains
      (...)"), which may be a person's data, and would reach messages and tracebacks.
    - In a write transaction (*savepoints*), each writing statement runs under a savepoint,
      so a failed statement undoes itself only and the transaction goes on, as on SQLite.
    """

    def __init__(self, cursor: psycopg.Cursor[Any], *, savepoints: bool) -> None:
        self._cur = cursor
        self._savepoints = savepoints
        self._rowcount: int | None = None

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Self:
        self._rowcount = None
        if not (self._savepoints and sql.lstrip().upper().startswith(_WRITING)):
            self._run(sql, params)
            return self
        self._run("SAVEPOINT monespace_statement")
        try:
            self._run(sql, params)
        except psycopg.Error:
            if not self._cur.connection.closed:
                self._run("ROLLBACK TO SAVEPOINT monespace_statement")
            raise
        # rowcount belongs to the last statement: keep it before RELEASE replaces it.
        self._rowcount = self._cur.rowcount
        self._run("RELEASE SAVEPOINT monespace_statement")
        return self

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Self:
        """Run *sql* once per parameter tuple, in one pipeline (one round trip's worth of
        waiting for a whole batch), under one savepoint in a write transaction."""
        self._rowcount = None
        if self._savepoints:
            self._run("SAVEPOINT monespace_statement")
        try:
            self._cur.executemany(sql, params)
        except psycopg.Error as exc:
            if self._savepoints and not self._cur.connection.closed:
                self._run("ROLLBACK TO SAVEPOINT monespace_statement")
            terse = type(exc)(exc.diag.message_primary or type(exc).__name__)
            raise terse from None
        # The sum of the rows each execution changed, kept before RELEASE replaces it.
        self._rowcount = self._cur.rowcount
        if self._savepoints:
            self._run("RELEASE SAVEPOINT monespace_statement")
        return self

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            self._cur.execute(sql, params)
        except psycopg.Error as exc:
            terse = type(exc)(exc.diag.message_primary or type(exc).__name__)
            raise terse from None

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount if self._rowcount is None else self._rowcount

    @property
    def description(self) -> Any:
        """The columns of the last query (DB-API), for row copies that name no column."""
        return self._cur.description


class PostgresStorage(StorageBackend):
    """Storage in a PostgreSQL database. URL: ``postgresql://user@host:port/database``.

    Optional query parameters: ``schema`` (the schema holding the tables, created when
    missing; ``public`` by default), ``pool_min`` and ``pool_max`` (the connection pool's
    bounds, 1 and 10 by default); any other parameter (``sslmode``, ``connect_timeout``...)
    is passed to libpq. The schema is created and migrated on first use.

    :param url: the parsed URL.
    """

    name: ClassVar[str] = "postgresql"
    shared_by_processes: ClassVar[bool] = True
    schemes: ClassVar[tuple[str, ...]] = ("postgresql", "postgres")

    def __init__(self, url: PostgresUrl) -> None:
        self.url = url
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._closed = False
        self._version = self._migrate()
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url.conninfo,
            min_size=url.pool_min,
            max_size=url.pool_max,
            kwargs={"autocommit": True},
            configure=self._configure,
            check=ConnectionPool.check_connection,
            name=f"monespace {url.redacted}",
            open=True,
        )

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(PostgresUrl.parse(url))

    @property
    def schema_version(self) -> int:
        return self._version

    # --- connections ---------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.url.conninfo, autocommit=True)
        except psycopg.Error as exc:
            # libpq's message names the host, user and database, never the password.
            raise StorageError(f"could not connect to {self.url.redacted}: {exc}") from exc
        return conn

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            psycopg.sql.SQL("SET search_path TO {}").format(psycopg.sql.Identifier(self.url.schema))
        )

    def _migrate(self) -> int:
        with self._connect() as conn:
            try:
                return _migrate(
                    conn,
                    self.url.schema,
                    partitions=self.url.partitions,
                    audit_shards=self.url.audit_shards,
                )
            except psycopg.Error as exc:
                raise StorageError(f"could not migrate {self.url.redacted}: {exc}") from exc

    @contextmanager
    def _begin(self, statements: Sequence[str]) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in a transaction opened by *statements*, retried on a fresh
        connection when the connection fails before anything else ran; rolled back (when
        still open) and returned to the pool afterwards."""
        for attempt in range(1, _START_ATTEMPTS + 1):
            self._check_open()
            try:
                conn = self._pool.getconn()
            except PoolTimeout as exc:
                raise StorageError(f"no connection to {self.url.redacted}: {exc}") from exc
            try:
                for statement in statements:
                    conn.execute(statement)
            except psycopg.OperationalError as exc:
                # Nothing of the caller's ran yet: starting again is safe.
                self._pool.putconn(conn)
                if attempt == _START_ATTEMPTS:
                    raise StorageError(
                        f"could not start a transaction on {self.url.redacted}: {exc}"
                    ) from exc
                continue
            except psycopg.Error as exc:
                self._release(conn)
                raise StorageError(f"could not start a transaction: {exc}") from exc
            break
        try:
            yield conn
        finally:
            self._release(conn)

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                conn.close()  # the pool discards a closed connection
        self._pool.putconn(conn)

    # --- transactions --------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        if getattr(self._local, "writing", False):
            raise StorageError("a write transaction cannot start inside another transaction")
        with self._write_lock:
            self._check_open()
            begin = (
                "BEGIN ISOLATION LEVEL READ COMMITTED",
                "SELECT pg_advisory_xact_lock(hashtext('monespace:' || current_schema()))",
            )
            self._local.writing = True
            try:
                with self._begin(begin) as conn, conn.cursor() as cursor:
                    yield SqlTransaction(_Cursor(cursor, savepoints=True), DIALECT)
                    try:
                        conn.execute("COMMIT")
                    except psycopg.OperationalError as exc:
                        raise StorageError(
                            "the connection failed during COMMIT: the transaction may or may "
                            f"not have been committed ({exc})"
                        ) from exc
                    except psycopg.Error as exc:
                        raise StorageError(f"could not commit: {exc}") from exc
            finally:
                self._local.writing = False

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        depth: int = getattr(self._local, "depth", 0)
        if depth:
            # A read inside a read shares the outer snapshot (a key lookup while reading).
            conn: psycopg.Connection[Any] = self._local.conn
            self._local.depth = depth + 1
            try:
                with conn.cursor() as cursor:
                    yield SqlTransaction(_Cursor(cursor, savepoints=False), DIALECT)
            finally:
                self._local.depth = depth
            return
        with self._begin(("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",)) as conn:
            self._local.conn, self._local.depth = conn, 1
            try:
                with conn.cursor() as cursor:
                    yield SqlTransaction(_Cursor(cursor, savepoints=False), DIALECT)
            finally:
                self._local.conn, self._local.depth = None, 0

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the storage is closed")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresStorage({self.url.redacted!r})"


def _migrate(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    partitions: int = DEFAULT_PARTITIONS,
    audit_shards: int = DEFAULT_AUDIT_SHARDS,
) -> int:
    """Create *schema* if needed and apply the migrations it lacks; return its version.

    *partitions* and *audit_shards* are read by the migration that partitions the tables by
    patient and shards the audit trail (through the session settings
    ``monespace.partitions`` and ``monespace.audit_shards``), once, when it runs.

    A session advisory lock keeps two processes opening a fresh database from migrating it
    at the same time; each migration is one transaction.
    """
    ident = psycopg.sql.Identifier(schema)
    conn.execute("SELECT pg_advisory_lock(hashtext('monespace-migrate:' || %s))", (schema,))
    try:
        conn.execute(psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        conn.execute(psycopg.sql.SQL("SET search_path TO {}").format(ident))
        conn.execute("SELECT set_config('monespace.partitions', %s, false)", (str(partitions),))
        conn.execute("SELECT set_config('monespace.audit_shards', %s, false)", (str(audit_shards),))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, "
            'name TEXT COLLATE "C" NOT NULL, applied_at TEXT COLLATE "C" NOT NULL)'
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        version = int(row[0]) if row else 0
        if version > LATEST_SCHEMA_VERSION:
            raise SchemaVersionError(version, LATEST_SCHEMA_VERSION)
        for migration in _MIGRATIONS[version:]:
            with conn.transaction():
                # No parameters: psycopg sends the file as one multi-statement query.
                conn.execute(migration.sql.encode("utf-8"))
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, to_db_time(datetime.now(UTC))),
                )
            version = migration.version
        return version
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext('monespace-migrate:' || %s))", (schema,))
