"""Copy a space's rows from one store to another (SQLite to PostgreSQL, or back), keyed by
patient, resumable, and compared row for row at the end.

It moves rows, never the domain model: ciphertexts, wrapped keys and the audit trail are
copied byte for byte, so the destination opens with the same master key and its trail
verifies with the same audit keys. Both stores must be SQL stores of monespace's schema
(:class:`SqlTransaction`), at the same schema version.

Resuming: each patient's rows are written in one transaction of the destination, so a
patient present there is complete; the shared tables are written in one transaction each
and skipped once present. A copy interrupted anywhere is started again with the same
command and goes on where it stopped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from ..errors import StorageError
from ._base import StorageBackend, Transaction
from ._sql import SqlTransaction

__all__ = ["PATIENT_TABLES", "SHARED_TABLES", "CopyReport", "compare_stores", "copy_store"]

#: Tables written before any patient (no foreign key into patient tables), in order.
SHARED_TABLES: tuple[str, ...] = (
    "professionals",
    "data_keys",
    "catalogue_applications",
    "catalogue_apps",
)
#: Tables of one patient's data, in foreign-key order, with the column naming the patient
#: and the order that keeps references valid (a replaced document before its replacement).
PATIENT_TABLES: tuple[tuple[str, str, str], ...] = (
    ("patients", "id", "id"),
    ("blobs", "patient_id", "id"),
    ("accounts", "patient_id", "patient_id"),
    ("provisional_codes", "patient_id", "patient_id"),
    ("identity_proofs", "patient_id", "patient_id"),
    ("documents", "patient_id", "version, id"),
    ("profile_entries", "patient_id", "id"),
    ("measures", "patient_id", "id"),
    ("access_grants", "patient_id", "professional_id, kind"),
    ("access_blocks", "patient_id", "professional_id"),
    ("access_settings", "patient_id", "patient_id"),
    ("emergency_sessions", "patient_id", "id"),
    ("access_seen", "patient_id", "professional_id"),
    ("message_threads", "patient_id", "id"),
    ("messages", "patient_id", "thread_id, position"),
    ("message_attachments", "patient_id", "message_id, position"),
    ("agenda_events", "patient_id", "id"),
    ("agenda_history", "patient_id", "id, version"),
    ("reminder_opt_outs", "patient_id", "family"),
    ("reminders_sent", "patient_id", "reminder_id, cycle, recipient_id"),
    ("app_consents", "patient_id", "client_id"),
    ("oauth_codes", "patient_id", "code_hash"),
    ("oauth_tokens", "patient_id", "token_hash"),
)
#: Written once every patient is there (they name patients, or another patient), in order,
#: with the order of their rows.
FINAL_TABLES: tuple[tuple[str, str], ...] = (
    ("representations", "patient_id, representative_id"),
    ("outbox", "id"),
    ("dmp_ledger", "rowid"),
    ("audit_checkpoints", "number, shard"),
    ("audit_events", "shard, seq"),
)
# Columns a store generates itself (PostgreSQL's identity column standing for SQLite's
# implicit rowid): never copied.
_GENERATED = frozenset({"rowid"})
_PAGE = 1000


@attrs.frozen
class CopyReport:
    """What :func:`copy_store` did.

    :ivar patients: patients copied by this run.
    :ivar skipped: patients found complete in the destination (an earlier, interrupted run).
    :ivar rows: rows written by this run, every table together.
    """

    patients: int
    skipped: int
    rows: int


def _sql(tx: Transaction) -> SqlTransaction:
    if not isinstance(tx, SqlTransaction):
        raise StorageError("copying needs two SQL stores (sqlite://, postgresql://)")
    return tx


def _placeholder(tx: SqlTransaction) -> str:
    return tx.dialect.placeholder


def _columns(tx: SqlTransaction, table: str) -> list[str]:
    cur = tx.cursor.execute(f"SELECT * FROM {table} WHERE 1 = 0")  # noqa: S608 - fixed names
    description: Sequence[Sequence[Any]] = cur.description
    return [str(d[0]) for d in description if str(d[0]) not in _GENERATED]


def _rows(
    tx: SqlTransaction,
    table: str,
    columns: Sequence[str],
    order: str,
    *,
    where: str = "",
    params: Sequence[Any] = (),
) -> list[tuple[Any, ...]]:
    query = f"SELECT {', '.join(columns)} FROM {table} {where} ORDER BY {order}"  # noqa: S608
    return [
        tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
        for r in tx.cursor.execute(query, params).fetchall()
    ]


def _insert(
    tx: SqlTransaction, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    marks = ", ".join([_placeholder(tx)] * len(columns))
    query = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
    for row in rows:
        tx.cursor.execute(query, row)


def _count(tx: SqlTransaction, table: str) -> int:
    return int(tx.cursor.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608


def _common_columns(src: SqlTransaction, dst: SqlTransaction, table: str) -> list[str]:
    theirs = set(_columns(dst, table))
    mine = _columns(src, table)
    missing = [c for c in mine if c not in theirs]
    if missing:
        raise StorageError(f"the destination's {table} lacks columns {missing}")
    return mine


def copy_store(
    source: StorageBackend,
    target: StorageBackend,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> CopyReport:
    """Copy every row of *source* into *target*, patient by patient; resumable.

    :param progress: called with (patients done, patients in all) after each patient.
    :raises StorageError: when the schema versions differ, when the destination holds a
        different space (rows the source does not have), or on a driver error.
    """
    if source.schema_version != target.schema_version:
        raise StorageError(
            f"the stores are at schema versions {source.schema_version} and "
            f"{target.schema_version}: open both with this version of monespace first"
        )
    rows = 0
    for table in SHARED_TABLES:
        rows += _copy_whole(source, target, table, "1")
    with source.read() as r:
        ids = [
            str(i[0])
            for i in _sql(r).cursor.execute("SELECT id FROM patients ORDER BY id").fetchall()
        ]
    with target.read() as r:
        present = {str(i[0]) for i in _sql(r).cursor.execute("SELECT id FROM patients").fetchall()}
    copied = skipped = 0
    for n, patient_id in enumerate(ids, 1):
        if patient_id in present:
            skipped += 1
        else:
            rows += _copy_patient(source, target, patient_id)
            copied += 1
        if progress is not None:
            progress(n, len(ids))
    for table, order in FINAL_TABLES:
        rows += _copy_whole(source, target, table, order)
    _copy_shards(source, target)
    return CopyReport(copied, skipped, rows)


def _copy_whole(source: StorageBackend, target: StorageBackend, table: str, order: str) -> int:
    with source.read() as r, target.write() as w:
        src, dst = _sql(r), _sql(w)
        if _count(dst, table):
            return 0  # written by an earlier run, in one transaction: complete
        columns = _common_columns(src, dst, table)
        data = _rows(src, table, columns, order)
        _insert(dst, table, columns, data)
        return len(data)


def _copy_patient(source: StorageBackend, target: StorageBackend, patient_id: str) -> int:
    written = 0
    with source.read() as r, target.write() as w:
        src, dst = _sql(r), _sql(w)
        mark = _placeholder(src)
        for table, key, order in PATIENT_TABLES:
            columns = _common_columns(src, dst, table)
            data = _rows(
                src, table, columns, order, where=f"WHERE {key} = {mark}", params=(patient_id,)
            )
            _insert(dst, table, columns, data)
            written += len(data)
    return written


def _copy_shards(source: StorageBackend, target: StorageBackend) -> None:
    # The shards are the source's (their count is part of the trail); the destination's
    # migration made its own, still empty, rows.
    with source.read() as r, target.write() as w:
        src, dst = _sql(r), _sql(w)
        columns = _common_columns(src, dst, "audit_shards")
        data = _rows(src, "audit_shards", columns, "shard")
        dst.cursor.execute("DELETE FROM audit_shards")
        _insert(dst, "audit_shards", columns, data)


def _table_digests(store: StorageBackend) -> Iterator[tuple[str, int, bytes]]:
    tables = [
        ("professionals", "rpps"),
        ("data_keys", "patient_id"),
        ("catalogue_applications", "id"),
        ("catalogue_apps", "client_id"),
    ]
    tables += [(t, f"{key}, {order}") for t, key, order in PATIENT_TABLES]
    tables += [*FINAL_TABLES, ("audit_shards", "shard")]
    with store.read() as r:
        tx = _sql(r)
        for table, order in tables:
            columns = sorted(_columns(tx, table))
            digest = hashlib.sha256()
            count = 0
            for row in _rows(tx, table, columns, order):
                digest.update(repr(row).encode())
                count += 1
            yield table, count, digest.digest()


def compare_stores(source: StorageBackend, target: StorageBackend) -> list[str]:
    """The tables whose rows differ between the two stores (empty when every row, every
    ciphertext and its content hash, every wrapped key and audit event, is the same)."""
    return [
        table
        for (table, n, a), (_, m, b) in zip(
            _table_digests(source), _table_digests(target), strict=True
        )
        if (n, a) != (m, b)
    ]
