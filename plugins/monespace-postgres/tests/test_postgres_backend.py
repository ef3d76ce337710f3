"""What the contract suite does not cover: URLs, schemas, migrations, faults, the triggers."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg import sql

import monespace
from monespace.audit import event_from_row, event_row
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.errors import (
    ConfigurationError,
    ConflictError,
    SchemaVersionError,
    StorageError,
)
from monespace.storage._migrations import load_migrations as load_sqlite_migrations
from monespace.testing import make_event, make_patient_row
from monespace_postgres import (
    LATEST_SCHEMA_VERSION,
    PostgresStorage,
    PostgresUrl,
    load_migrations,
)

#: The fixtures (pg_url, schema) live there: see its docstring.
pytest_plugins = ["postgres_support"]


def with_query(url: str, **params: str) -> str:
    """*url* with *params* added to its query string."""
    extra = "&".join(f"{key}={value}" for key, value in params.items())
    return f"{url}{'&' if '?' in url else '?'}{extra}"


def _raw(server: str, schema: str) -> psycopg.Connection:
    conn = psycopg.connect(server, autocommit=True)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return conn


# --- URLs ----------------------------------------------------------------------------------


def test_the_plugin_parameters_are_taken_out_of_the_url_and_the_rest_is_kept() -> None:
    url = PostgresUrl.parse(
        "postgres://me:s3cret@db.example:5433/space?sslmode=require&schema=ms&pool_max=4"
    )
    assert url.conninfo == "postgresql://me:s3cret@db.example:5433/space?sslmode=require"
    assert (url.schema, url.pool_min, url.pool_max) == ("ms", 1, 4)
    assert url.redacted == (
        "postgres://me:***@db.example:5433/space?sslmode=require&schema=ms&pool_max=4"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://h/db?schema=Bad-Name",
        "postgresql://h/db?schema=x;drop",
        "postgresql://h/db?pool_max=1",
        "postgresql://h/db?pool_min=5&pool_max=2",
        "postgresql://h/db?pool_max=many",
        "mysql://h/db",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        PostgresUrl.parse(url)


def test_wrong_credentials_name_the_url_without_its_password() -> None:
    url = "postgresql://nobody_here:TopSecret42@127.0.0.1:5432/test?schema=x&connect_timeout=5"
    with pytest.raises(StorageError) as caught:
        PostgresStorage.from_url(url)
    message = str(caught.value)
    assert "TopSecret42" not in message
    assert "postgresql://nobody_here:***@127.0.0.1:5432/test" in message
    assert "TopSecret42" not in repr(caught.value.__cause__) or caught.value.__cause__ is None


def test_the_entry_point_serves_both_schemes(pg_url: str) -> None:
    keys = StaticKeyProvider(MasterKey.generate())
    for scheme_url in (pg_url, pg_url.replace("postgresql://", "postgres://", 1)):
        with monespace.open(scheme_url, key_provider=keys) as space:
            assert space.schema_version() == LATEST_SCHEMA_VERSION


# --- schemas and migrations ----------------------------------------------------------------


def test_a_fresh_schema_is_created_and_migrated_once(server: str, pg_url: str, schema: str) -> None:
    PostgresStorage.from_url(pg_url).close()
    with PostgresStorage.from_url(pg_url) as again:
        assert again.schema_version == LATEST_SCHEMA_VERSION
    with _raw(server, schema) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == list(range(1, LATEST_SCHEMA_VERSION + 1))


def test_a_newer_schema_is_refused(server: str, pg_url: str, schema: str) -> None:
    PostgresStorage.from_url(pg_url).close()
    with _raw(server, schema) as conn:
        conn.execute(
            "INSERT INTO schema_migrations VALUES (%s, 'future', '2030-01-01T00:00:00.000000Z')",
            (LATEST_SCHEMA_VERSION + 1,),
        )
    with pytest.raises(SchemaVersionError) as caught:
        PostgresStorage.from_url(pg_url)
    assert caught.value.found == LATEST_SCHEMA_VERSION + 1


def test_schemas_are_separate_stores(server: str, pg_url: str, schema: str) -> None:
    other = f"{schema}_b"
    try:
        with (
            PostgresStorage.from_url(pg_url) as one,
            PostgresStorage.from_url(with_query(server, schema=other, partitions="2")) as two,
        ):
            with one.write() as tx:
                tx.patients.add(make_patient_row(1))
            with two.read() as tx:
                assert tx.patients.count() == 0
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(other)))


# --- the audit trail -----------------------------------------------------------------------


def test_the_audit_tables_are_append_only(server: str, pg_url: str, schema: str) -> None:
    with PostgresStorage.from_url(pg_url) as storage, storage.write() as tx:
        tx.audit.append(event_row(make_event(None)))
    with _raw(server, schema) as conn:
        for statement in (
            "UPDATE audit_events SET actor_id = 'someone else'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
            "TRUNCATE audit_checkpoints",
        ):
            with pytest.raises(psycopg.Error, match="append-only"):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == (1,)


# --- concurrency and faults ----------------------------------------------------------------


def test_writers_in_two_stores_on_one_schema_are_serialised(pg_url: str) -> None:
    """Two backends stand for two processes: the advisory lock serialises them."""
    with PostgresStorage.from_url(pg_url) as one, PostgresStorage.from_url(pg_url) as two:
        failures: list[BaseException] = []

        def work(storage: PostgresStorage) -> None:
            try:
                for _ in range(20):
                    with storage.write() as tx:
                        last = tx.audit.last()
                        previous = None if last is None else event_from_row(last)
                        tx.audit.append(event_row(make_event(previous)))
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(s,)) for s in (one, two, one, two)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        with one.read() as tx:
            assert [r.seq for r in tx.audit.scan()] == list(range(1, 81))


def _terminate_sessions(server: str, application_name: str) -> int:
    """Kill the server sessions of one pool (named by *application_name*), as a server
    restart would, and no one else's: other test runs may share the server."""
    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


def test_dropped_connections_are_replaced_before_a_transaction_starts(
    server: str, pg_url: str, schema: str
) -> None:
    with PostgresStorage.from_url(with_query(pg_url, application_name=schema)) as storage:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
        with storage.read() as tx:
            assert tx.patients.count() == 1
        assert _terminate_sessions(server, schema) >= 1
        with storage.write() as tx:
            tx.patients.add(make_patient_row(2))
        with storage.read() as tx:
            assert tx.patients.count() == 2


def test_a_connection_lost_inside_a_write_is_a_storage_error_and_nothing_is_kept(
    server: str, pg_url: str
) -> None:
    with PostgresStorage.from_url(pg_url) as storage:
        with pytest.raises(StorageError), storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            pid = tx.cursor.execute("SELECT pg_backend_pid()").fetchone()[0]
            with psycopg.connect(server, autocommit=True) as killer:
                killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
            tx.patients.add(make_patient_row(2))
        with storage.read() as tx:
            assert tx.patients.count() == 0
        with storage.write() as tx:  # the pool replaced the lost connection
            tx.patients.add(make_patient_row(3))
        with storage.read() as tx:
            assert tx.patients.ids() == ["p000003"]


def test_a_statement_timeout_inside_a_write_is_a_storage_error_and_nothing_is_kept(
    server: str, pg_url: str, schema: str
) -> None:
    """A statement the server cancels (``statement_timeout``, given to libpq in the URL: here
    it waits for a lock another client holds) ends the write with nothing of it kept, and
    the next write goes through."""
    url = with_query(pg_url, options="-c%20statement_timeout%3D200")
    with PostgresStorage.from_url(url) as storage:
        with psycopg.connect(server) as blocker:
            blocker.execute(
                sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                    sql.Identifier(schema, "accounts")
                )
            )
            with pytest.raises(StorageError, match="statement timeout"), storage.write() as tx:
                tx.patients.add(make_patient_row(1))
                tx.accounts.get("p000001")
        with storage.read() as tx:
            assert tx.patients.count() == 0
        with storage.write() as tx:
            tx.patients.add(make_patient_row(2))
        with storage.read() as tx:
            assert tx.patients.ids() == ["p000002"]


def test_errors_do_not_quote_the_values_of_the_row(pg_url: str) -> None:
    """PostgreSQL's DETAIL ("Key (id)=(...) already exists") never reaches an exception."""
    with PostgresStorage.from_url(pg_url) as storage:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
        with pytest.raises(ConflictError) as caught, storage.write() as tx:
            tx.patients.add(make_patient_row(1))
    shown: list[str] = []
    error: BaseException | None = caught.value
    while error is not None:
        shown.append(str(error))
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    assert len(shown) >= 2  # the conflict, and the driver's terse error as its cause
    assert not any("p000001" in text or "DETAIL" in text for text in shown)


def test_every_sqlite_migration_has_its_postgresql_twin():
    """The two schemas move together: a migration added to the library's SQLite schema
    without its PostgreSQL twin would fail the first write of the new column here."""
    sqlite = [(m.version, m.name) for m in load_sqlite_migrations("sqlite")]
    postgres = [(m.version, m.name) for m in load_migrations()]
    assert postgres == sqlite
