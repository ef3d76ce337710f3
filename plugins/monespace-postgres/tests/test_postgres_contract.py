"""The whole storage contract suite of monespace.testing, on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monespace.testing import StorageContract
from monespace_postgres import PostgresStorage

#: The fixtures (empty_pg_url) live there: see its docstring.
pytest_plugins = ["postgres_support"]


class TestPostgresStorage(StorageContract):
    @pytest.fixture
    def storage(self, empty_pg_url: str) -> Iterator[PostgresStorage]:
        backend = PostgresStorage.from_url(empty_pg_url)
        yield backend
        backend.close()
