"""The storage contract suite, run on both built-in backends."""

from __future__ import annotations

import pytest

from monespace.storage import MemoryStorage, SQLiteStorage
from monespace.testing import StorageContract


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    def storage(self):
        backend = MemoryStorage()
        yield backend
        backend.close()


class TestSQLiteStorage(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path):
        backend = SQLiteStorage(tmp_path / "contract.db")
        yield backend
        backend.close()
