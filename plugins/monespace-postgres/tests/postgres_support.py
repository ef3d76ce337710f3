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

import psycopg
import pytest
from psycopg import sql

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
