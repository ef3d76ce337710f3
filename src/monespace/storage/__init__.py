"""The storage port and the built-in backends (memory, SQLite).

.. versionadded:: 0.1
"""

from ._base import (
    AccessRepository,
    AccountRepository,
    AuditRepository,
    BlobRepository,
    CodeRepository,
    DocumentRepository,
    EntryRepository,
    KeyRepository,
    LedgerRepository,
    OutboxRepository,
    PatientRepository,
    ProofRepository,
    RepresentationRepository,
    StorageBackend,
    Transaction,
    paged,
)
from ._memory import MemoryStorage
from ._rows import (
    BlobRow,
    DataKeyRow,
    DocumentRow,
    EntryRow,
    LedgerRow,
    OutboxRow,
    OutboxStatus,
    PatientRow,
)
from ._sql import Cursor, Dialect, SqlTransaction, from_db_time, to_db_time
from ._sqlite import LATEST_SCHEMA_VERSION, SQLiteStorage, sqlite_path_from_url

__all__ = [
    "LATEST_SCHEMA_VERSION",
    "AccessRepository",
    "AccountRepository",
    "AuditRepository",
    "BlobRepository",
    "BlobRow",
    "CodeRepository",
    "Cursor",
    "DataKeyRow",
    "Dialect",
    "DocumentRepository",
    "DocumentRow",
    "EntryRepository",
    "EntryRow",
    "KeyRepository",
    "LedgerRepository",
    "LedgerRow",
    "MemoryStorage",
    "OutboxRepository",
    "OutboxRow",
    "OutboxStatus",
    "PatientRepository",
    "PatientRow",
    "ProofRepository",
    "RepresentationRepository",
    "SQLiteStorage",
    "SqlTransaction",
    "StorageBackend",
    "Transaction",
    "from_db_time",
    "paged",
    "sqlite_path_from_url",
    "to_db_time",
]
