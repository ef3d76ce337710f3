"""The plugin's test fixtures: a throwaway schema per test on a real PostgreSQL.

``MONESPACE_TEST_POSTGRES`` names the server (``postgresql://postgres@127.0.0.1/test`` when
unset); the tests are skipped when it cannot be reached. Each test gets a schema
``monespace_test_<random>``, dropped with everything in it afterwards, so that runs never
collide.

The test modules load it with ``pytest_plugins = ["postgres_support"]`` and take what they
need as fixtures, rather than a conftest.py: the SMTP plugin's tests import their conftest by
name, and a second module called ``conftest`` on the same run would shadow it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from monespace_postgres import PostgresStorage

#: The server the tests use; each test makes its own schema in it.
SERVER = os.environ.get("MONESPACE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1/test")


def _reachable() -> bool:
    try:
        psycopg.connect(SERVER, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def with_query(url: str, **params: str) -> str:
    """*url* with *params* added to its query string."""
    extra = "&".join(f"{key}={value}" for key, value in params.items())
    return f"{url}{'&' if '?' in url else '?'}{extra}"


@pytest.fixture(scope="session")
def server() -> str:
    """The test server's URL; the test is skipped when it does not answer."""
    if not _reachable():
        pytest.skip(f"no PostgreSQL at {SERVER}")
    return SERVER


@pytest.fixture
def schema(server: str) -> Iterator[str]:
    """A fresh schema name; the schema (created by whoever uses it) is dropped afterwards."""
    name = f"monespace_test_{secrets.token_hex(6)}"
    yield name
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def pg_url(server: str, schema: str) -> str:
    """A URL to a fresh schema of the test server, with two partitions per table of persons'
    data (the layout of a large deployment, cheaper to create than the default count)."""
    return with_query(server, schema=schema, partitions="2")


class ReusableSchema:
    """A schema migrated once and emptied between tests, for the tests that need a fresh,
    empty store but not a new schema: creating and dropping a schema (41 tables and their
    partitions) costs about 0.75 s here, emptying it about 0.1 s.

    Emptying truncates every table but restores the rows the migrations wrote (the applied
    migrations and the audit shards), so that the store is as the migrations left it. The
    audit trail's append-only triggers refuse ``TRUNCATE``: they are bypassed for the reset
    only, with ``session_replication_role = replica`` (the test server's superuser).
    """

    def __init__(self, server: str, name: str) -> None:
        self.server = server
        self.name = name
        self.url = with_query(server, schema=name, partitions="2")
        PostgresStorage.from_url(self.url).close()
        with psycopg.connect(server, autocommit=True) as conn:
            self._tables = [
                row[0]
                for row in conn.execute(
                    "SELECT c.relname FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
                    (name,),
                )
            ]
            self._seed: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
            for table in self._tables:
                cur = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(name, table)))
                rows = cur.fetchall()
                if rows:
                    columns = [c.name for c in cur.description or ()]
                    self._seed[table] = (columns, rows)

    def reset(self) -> None:
        """Empty every table, then put back the rows the migrations wrote."""
        with psycopg.connect(self.server, autocommit=True) as conn, conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                    sql.SQL(", ").join(sql.Identifier(self.name, t) for t in self._tables)
                )
            )
            for table, (columns, rows) in self._seed.items():
                statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    sql.Identifier(self.name, table),
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                )
                conn.cursor().executemany(statement, rows)

    def drop(self) -> None:
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.name))
            )


@pytest.fixture(scope="session")
def reusable_schema(server: str) -> Iterator[ReusableSchema]:
    """One migrated schema per test process, emptied by :func:`empty_pg_url` after each use."""
    schema = ReusableSchema(server, f"monespace_test_{secrets.token_hex(6)}")
    yield schema
    schema.drop()


@pytest.fixture
def empty_pg_url(reusable_schema: ReusableSchema) -> Iterator[str]:
    """A URL to a migrated, empty schema (two partitions per table of persons' data), emptied
    again after the test: for tests that neither change the schema nor keep what they wrote."""
    yield reusable_schema.url
    reusable_schema.reset()
