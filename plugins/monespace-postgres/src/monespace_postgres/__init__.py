"""PostgreSQL storage for monespace: ``monespace.open("postgresql://user@host/database")``.

Installed, this distribution registers :class:`PostgresStorage` for the ``postgresql://`` and
``postgres://`` schemes through the ``monespace`` entry-point group. The repositories are
monespace's own (``monespace.storage.SqlTransaction``); this package brings the connection
pool, the transactions and the PostgreSQL dialect of the numbered migrations.
"""

from __future__ import annotations

from collections.abc import Callable

from monespace import hookimpl
from monespace.storage import StorageBackend

from ._backend import LATEST_SCHEMA_VERSION, PostgresStorage, PostgresUrl, load_migrations

__all__ = ["LATEST_SCHEMA_VERSION", "PostgresStorage", "PostgresUrl", "load_migrations"]


@hookimpl
def monespace_register_storage_backends(
    register: Callable[[type[StorageBackend]], None],
) -> None:
    """Register :class:`PostgresStorage` (``postgresql://``, ``postgres://``)."""
    register(PostgresStorage)
