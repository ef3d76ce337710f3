"""The whole storage contract suite of monespace.testing, on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import needs_postgres
from monespace.testing import StorageContract
from monespace_postgres import PostgresStorage


@needs_postgres
class TestPostgresStorage(StorageContract):
    @pytest.fixture
    def storage(self, pg_url: str) -> Iterator[PostgresStorage]:
        backend = PostgresStorage.from_url(pg_url)
        yield backend
        backend.close()
