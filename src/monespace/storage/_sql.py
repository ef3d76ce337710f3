"""Repositories over a DB-API connection, shared by every SQL backend.

Queries are written once with ``?`` placeholders; a :class:`Dialect` adapts them to the
driver (``%s`` for psycopg) and names the driver's integrity error. SQL lives here and in the
migration files only: services never build SQL.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs

from ..errors import AuditIntegrityError, ConflictError, NotFoundError, StorageError
from ._base import (
    AccessRepository,
    AccountRepository,
    AgendaRepository,
    AuditRepository,
    BlobRepository,
    CatalogueRepository,
    CodeRepository,
    DocumentRepository,
    EntryRepository,
    KeyRepository,
    LedgerRepository,
    MessageRepository,
    OAuthRepository,
    OutboxRepository,
    PatientRepository,
    ProofRepository,
    RateLimitRepository,
    RepresentationRepository,
    SessionRepository,
    Transaction,
)
from ._rows import (
    DOCUMENT_KIND_COLUMNS,
    AccessSettingsRow,
    AccountRow,
    AgendaEventRow,
    ApplicationRow,
    AppRow,
    AttachmentRow,
    AuditRow,
    AuditSealRow,
    BlobRow,
    CheckpointRow,
    CodeRow,
    ConsentRow,
    DataKeyRow,
    DocumentRow,
    EmergencyRow,
    EntryRow,
    GrantRow,
    LedgerRow,
    MessageRow,
    OAuthCodeRow,
    OAuthTokenRow,
    OutboxRow,
    OutboxStatus,
    PatientRow,
    ProfessionalRow,
    ProofRow,
    ReminderOptOutRow,
    ReminderSentRow,
    RepresentationRow,
    SubjectRow,
    ThreadRow,
    WebSessionRow,
)
from ._slices import Slice

__all__ = ["Cursor", "Dialect", "SqlTransaction", "from_db_time", "to_db_time"]


class Cursor(Protocol):
    """The part of a DB-API cursor the repositories use."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...
    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...

    @property
    def rowcount(self) -> int: ...


@attrs.frozen
class Dialect:
    """What differs between SQL drivers.

    The repositories below are written once for SQLite (a file, or in memory) and PostgreSQL
    (psycopg, through its plugin). What differs, and where it is handled:

    - placeholders: ``?`` for ``sqlite3``, ``%s`` for psycopg; :meth:`sql` rewrites them (the
      queries hold no literal ``%``, which psycopg would read as a marker);
    - ``RETURNING``: both accept ``INSERT/UPDATE ... RETURNING`` (SQLite since 3.35), but
      the repositories read ``rowcount`` instead, so older SQLite builds work too;
    - upserts: ``ON CONFLICT (...) DO UPDATE SET col = excluded.col`` and ``DO NOTHING`` are
      the same in both (SQLite since 3.24);
    - blob types: ``BLOB`` in SQLite, ``BYTEA`` in PostgreSQL (declared in each dialect's
      migrations, ``migrations/<dialect>/``); a driver may return ``memoryview``, so every
      blob column is read through ``bytes()``;
    - booleans are stored as integers 0/1 and read through ``bool()``; instants as
      fixed-width UTC text (:func:`to_db_time`), which sorts the same in both;
    - ``rowid``: the DMP ledger is ordered by SQLite's implicit ``rowid``; the PostgreSQL
      migration must give ``dmp_ledger`` a column of that name (an identity column);
    - errors: the driver's integrity and base exception classes (the fields below);
    - transactions (``BEGIN IMMEDIATE``, snapshot reads) belong to the backend class, not to
      these repositories;
    - claims by concurrent workers (the outbox's dispatchers): PostgreSQL locks the rows it
      selects and skips those another transaction holds (:attr:`lock_skipping`); SQLite
      has one writer at a time, so a plain ``SELECT`` in the write transaction is enough.

    :param placeholder: the driver's parameter marker (``"?"`` or ``"%s"``).
    :param integrity_errors: exception classes the driver raises on a constraint violation.
    :param driver_errors: the driver's base exception classes, translated to
        :class:`~monespace.errors.StorageError` so callers never see a driver exception.
    :param lock_skipping: appended to a ``SELECT`` that claims rows for one worker
        (``" FOR UPDATE SKIP LOCKED"`` on PostgreSQL; empty where writers are serialised).
    """

    placeholder: str
    integrity_errors: tuple[type[BaseException], ...]
    driver_errors: tuple[type[BaseException], ...] = ()
    lock_skipping: str = ""

    def sql(self, query: str) -> str:
        """Rewrite a ``?``-style query for this driver."""
        return _rewrite(query, self.placeholder)


@functools.lru_cache(maxsize=256)
def _rewrite(query: str, placeholder: str) -> str:
    return query if placeholder == "?" else re.sub(r"\?", placeholder, query)


def to_db_time(moment: datetime) -> str:
    """Fixed-width UTC text: sorts like the instants it names."""
    return _db_time(moment)


# A batch stores the same few instants on every row (its moment, its deadlines): each is
# formatted once. Equal datetimes name the same instant, so they share their text.
@functools.lru_cache(maxsize=1024)
def _db_time(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    # %Y is not zero-padded for years before 1000 on every platform: pad it ourselves.
    return f"{utc.year:04d}-" + utc.strftime("%m-%dT%H:%M:%S.%fZ")


#: Ids per ``IN (...)`` list of a batch read: under every driver's limit on parameters
#: (SQLite's was 999 before 3.32).
_IN_CHUNK = 500

_DB_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def from_db_time(text: str) -> datetime:
    """Inverse of :func:`to_db_time`; anything but that exact form is refused.

    Strictness matters for the audit trail: a timestamp rewritten in an equivalent but
    different form (a comma for the dot) is still an edit of the stored trail.

    :raises ValueError: when *text* is not in the form :func:`to_db_time` writes.
    """
    if not isinstance(text, str) or not _DB_TIME.fullmatch(text):
        raise ValueError("a stored timestamp is not in the canonical form")
    return datetime.fromisoformat(text)


def _opt_time(text: str | None) -> datetime | None:
    return None if text is None else from_db_time(text)


def _text(value: Any) -> str:
    """A column that must hold text (an enum value): anything else is a foreign edit."""
    if not isinstance(value, str):
        raise TypeError("a stored code is not text")
    return value


class _Repo:
    def __init__(self, cursor: Cursor, dialect: Dialect) -> None:
        self._cur = cursor
        self._dialect = dialect

    def _exec(self, query: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            self._cur.execute(self._dialect.sql(query), params)
        except self._dialect.integrity_errors:
            raise  # _insert turns these into ConflictError with a precise message
        except self._dialect.driver_errors as exc:
            # Name the failure, not the parameters: they may be sealed health data.
            raise StorageError(f"the database refused the operation: {exc}") from exc
        return self._cur

    def _exec_many(self, query: str, params: Sequence[Sequence[Any]]) -> Cursor:
        """Run *query* once per parameter tuple of *params*, in one call to the driver (a
        batch's rows: one round trip, however many rows)."""
        try:
            self._cur.executemany(self._dialect.sql(query), params)
        except self._dialect.integrity_errors:
            raise
        except self._dialect.driver_errors as exc:
            raise StorageError(f"the database refused the operation: {exc}") from exc
        return self._cur

    def _select_in(
        self, query: str, ids: Sequence[str], *, column: str = "patient_id"
    ) -> list[Any]:
        """The rows of ``query + " WHERE <column> IN (...)"`` for *ids*, in chunks small
        enough for any driver's limit on parameters."""
        rows: list[Any] = []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows += self._exec(f"{query} WHERE {column} IN ({marks})", chunk).fetchall()
        return rows

    @staticmethod
    def _in_slice(part: Slice | None, column: str = "patient_id") -> tuple[str, tuple[int, ...]]:
        """A condition keeping one slice of the patients (nothing without *part*)."""
        if part is None:
            return "", ()
        return f" AND monespace_slice({column}, ?) = ?", (part.count, part.index)

    def _insert(self, query: str, params: Sequence[Any], conflict: str) -> None:
        try:
            self._exec(query, params)
        except self._dialect.integrity_errors as exc:
            raise ConflictError(conflict) from exc


class SqlPatients(_Repo, PatientRepository):
    _COLS = "id, nir_index, sealed_identity, created_at"

    def __init__(self, cursor: Cursor, dialect: Dialect) -> None:
        super().__init__(cursor, dialect)
        # Rows this transaction already read (by :meth:`SqlTransaction.subject`), dropped
        # when this transaction changes them.
        self.seen: dict[str, PatientRow | None] = {}

    @staticmethod
    def _row(r: Sequence[Any]) -> PatientRow:
        return PatientRow(r[0], bytes(r[1]), bytes(r[2]), from_db_time(r[3]))

    def add(self, row: PatientRow) -> None:
        self.seen.pop(row.id, None)
        self._insert(
            f"INSERT INTO patients ({self._COLS}) VALUES (?, ?, ?, ?)",
            (row.id, row.nir_index, row.sealed_identity, to_db_time(row.created_at)),
            "a person with this id or NIR is already registered",
        )

    def get(self, patient_id: str) -> PatientRow | None:
        if patient_id in self.seen:
            return self.seen[patient_id]
        r = self._exec(f"SELECT {self._COLS} FROM patients WHERE id = ?", (patient_id,)).fetchone()
        return None if r is None else self._row(r)

    def get_many(self, patient_ids: Sequence[str]) -> dict[str, PatientRow]:
        # Kept for the rest of the transaction, as subject() keeps them: the batch then
        # opens each identity without reading its row again.
        wanted = [pid for pid in patient_ids if pid not in self.seen]
        for r in self._select_in(f"SELECT {self._COLS} FROM patients", wanted, column="id"):
            row = self._row(r)
            self.seen[row.id] = row
        for pid in wanted:
            self.seen.setdefault(pid, None)
        return {pid: found for pid in patient_ids if (found := self.seen[pid]) is not None}

    def find_by_nir_index(self, nir_index: bytes) -> PatientRow | None:
        r = self._exec(
            f"SELECT {self._COLS} FROM patients WHERE nir_index = ?", (nir_index,)
        ).fetchone()
        return None if r is None else self._row(r)

    def replace_identity(self, patient_id: str, sealed_identity: bytes) -> None:
        self.seen.pop(patient_id, None)
        cur = self._exec(
            "UPDATE patients SET sealed_identity = ? WHERE id = ?", (sealed_identity, patient_id)
        )
        if cur.rowcount != 1:
            raise NotFoundError("no such person")

    def replace_nir_index(self, patient_id: str, nir_index: bytes) -> None:
        self.seen.pop(patient_id, None)
        cur = self._exec("UPDATE patients SET nir_index = ? WHERE id = ?", (nir_index, patient_id))
        if cur.rowcount != 1:
            raise NotFoundError("no such person")

    def count(self) -> int:
        return int(self._exec("SELECT count(*) FROM patients").fetchone()[0])

    def ids(self, *, after: str | None = None, limit: int = 1000) -> list[str]:
        rows = self._exec(
            "SELECT id FROM patients WHERE id > ? ORDER BY id LIMIT ?", (after or "", limit)
        ).fetchall()
        return [r[0] for r in rows]


class SqlKeys(_Repo, KeyRepository):
    _COLS = "patient_id, master_key_id, wrapped, created_at, destroyed_at"

    def __init__(self, cursor: Cursor, dialect: Dialect) -> None:
        super().__init__(cursor, dialect)
        # Key rows this transaction already read: an operation seals and opens several
        # objects with the same key, and reads its row once. Every change of a row through
        # this repository drops it, so the transaction never sees a stale one.
        self.seen: dict[str, DataKeyRow | None] = {}

    @staticmethod
    def _row(r: Sequence[Any]) -> DataKeyRow:
        return DataKeyRow(
            r[0], r[1], None if r[2] is None else bytes(r[2]), from_db_time(r[3]), _opt_time(r[4])
        )

    def add(self, row: DataKeyRow) -> None:
        self.seen.pop(row.patient_id, None)
        self._insert(
            f"INSERT INTO data_keys ({self._COLS}) VALUES (?, ?, ?, ?, ?)",
            (
                row.patient_id,
                row.master_key_id,
                row.wrapped,
                to_db_time(row.created_at),
                None if row.destroyed_at is None else to_db_time(row.destroyed_at),
            ),
            "this owner already has a data key",
        )

    def get(self, owner_id: str) -> DataKeyRow | None:
        if owner_id in self.seen:
            return self.seen[owner_id]
        r = self._exec(
            f"SELECT {self._COLS} FROM data_keys WHERE patient_id = ?", (owner_id,)
        ).fetchone()
        row = None if r is None else self._row(r)
        self.seen[owner_id] = row
        return row

    def get_many(self, owner_ids: Sequence[str]) -> dict[str, DataKeyRow]:
        wanted = [owner for owner in owner_ids if owner not in self.seen]
        for r in self._select_in(f"SELECT {self._COLS} FROM data_keys", wanted):
            row = self._row(r)
            self.seen[row.patient_id] = row
        for owner in wanted:
            self.seen.setdefault(owner, None)
        return {owner: found for owner in owner_ids if (found := self.seen[owner]) is not None}

    def rewrap(
        self, owner_id: str, *, expected_master_key_id: str, master_key_id: str, wrapped: bytes
    ) -> bool:
        self.seen.pop(owner_id, None)
        cur = self._exec(
            "UPDATE data_keys SET master_key_id = ?, wrapped = ? "
            "WHERE patient_id = ? AND master_key_id = ? AND wrapped IS NOT NULL",
            (master_key_id, wrapped, owner_id, expected_master_key_id),
        )
        return cur.rowcount == 1

    def destroy(self, owner_id: str, at: datetime) -> bool:
        self.seen.pop(owner_id, None)
        cur = self._exec(
            "UPDATE data_keys SET wrapped = NULL, master_key_id = NULL, destroyed_at = ? "
            "WHERE patient_id = ? AND wrapped IS NOT NULL",
            (to_db_time(at), owner_id),
        )
        return cur.rowcount == 1

    def master_key_ids(self) -> set[str]:
        rows = self._exec(
            "SELECT DISTINCT master_key_id FROM data_keys WHERE master_key_id IS NOT NULL"
        ).fetchall()
        return {r[0] for r in rows}

    def count_wrapped_by_other_than(self, master_key_id: str) -> int:
        row = self._exec(
            "SELECT count(*) FROM data_keys WHERE wrapped IS NOT NULL AND master_key_id <> ?",
            (master_key_id,),
        ).fetchone()
        return int(row[0])

    def wrapped_by_other_than(self, master_key_id: str, *, limit: int) -> list[DataKeyRow]:
        rows = self._exec(
            f"SELECT {self._COLS} FROM data_keys "
            "WHERE wrapped IS NOT NULL AND master_key_id <> ? ORDER BY patient_id LIMIT ?",
            (master_key_id, limit),
        ).fetchall()
        return [self._row(r) for r in rows]


class SqlBlobs(_Repo, BlobRepository):
    _COLS = "id, patient_id, kind, media_type, size, sha256, sealed, created_at"

    @staticmethod
    def _row(r: Sequence[Any]) -> BlobRow:
        return BlobRow(
            r[0], r[1], r[2], r[3], int(r[4]), bytes(r[5]), bytes(r[6]), from_db_time(r[7])
        )

    def add(self, row: BlobRow) -> None:
        self._insert(
            f"INSERT INTO blobs ({self._COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                row.patient_id,
                row.kind,
                row.media_type,
                row.size,
                row.sha256,
                row.sealed,
                to_db_time(row.created_at),
            ),
            "a blob with this id already exists, or its patient does not",
        )

    def get(self, blob_id: str) -> BlobRow | None:
        r = self._exec(f"SELECT {self._COLS} FROM blobs WHERE id = ?", (blob_id,)).fetchone()
        return None if r is None else self._row(r)

    def list_for_patient(self, patient_id: str) -> list[BlobRow]:
        rows = self._exec(
            f"SELECT {self._COLS} FROM blobs WHERE patient_id = ? ORDER BY created_at, id",
            (patient_id,),
        ).fetchall()
        return [self._row(r) for r in rows]

    def delete_for_patient(self, patient_id: str) -> int:
        return self._exec("DELETE FROM blobs WHERE patient_id = ?", (patient_id,)).rowcount

    def delete(self, blob_id: str) -> bool:
        return self._exec("DELETE FROM blobs WHERE id = ?", (blob_id,)).rowcount == 1


class SqlAudit(_Repo, AuditRepository):
    _COLS = (
        "seq, at, actor_kind, actor_id, action, outcome, patient_id, target_kind, target_id, "
        "mode, purpose, rule, prev_hash, hash, key_id, shard, chain"
    )
    _CHECKPOINT = "number, shard, seq, head_hash, event_count, at, root, key_id, signature"

    @staticmethod
    def _row(r: Sequence[Any]) -> AuditRow:
        try:
            return AuditRow(
                seq=int(r[0]),
                at=from_db_time(r[1]),
                actor_kind=_text(r[2]),
                actor_id=r[3],
                action=r[4],
                outcome=_text(r[5]),
                patient_id=r[6],
                target_kind=r[7],
                target_id=r[8],
                mode=_text(r[9]),
                purpose=r[10],
                rule=r[11],
                prev_hash=bytes(r[12]),
                hash=bytes(r[13]),
                key_id=r[14],
                shard=_text(r[15]),
                chain=int(r[16]),
            )
        except (ValueError, TypeError) as exc:
            # Only an edit outside monespace produces a row that does not parse.
            raise AuditIntegrityError(f"audit event {r[0]} is malformed", seq=r[0]) from exc

    def last(self, shard: str = "0") -> AuditRow | None:
        r = self._exec(
            f"SELECT {self._COLS} FROM audit_events WHERE shard = ? ORDER BY seq DESC LIMIT 1",
            (shard,),
        ).fetchone()
        return None if r is None else self._row(r)

    def append(self, event: AuditRow) -> None:
        # Insert only if the event directly follows the newest one of its shard: the chain
        # has no gaps even if a caller computed seq from a stale read.
        try:
            cur = self._exec(
                f"INSERT INTO audit_events ({self._COLS}) "
                "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
                "WHERE (SELECT coalesce(max(seq), 0) FROM audit_events WHERE shard = ?) = ?",
                self._append_params(event),
            )
        except self._dialect.integrity_errors as exc:
            raise ConflictError(f"audit event {event.seq} already exists") from exc
        if cur.rowcount != 1:
            raise ConflictError(f"audit event {event.seq} does not follow the newest event")

    def append_many(self, events: Sequence[AuditRow]) -> None:
        if not events:
            return
        # The same guarded insert as append(), once per event: each row sees the ones
        # inserted before it, so a batch may extend a shard's chain several times.
        try:
            cur = self._exec_many(
                f"INSERT INTO audit_events ({self._COLS}) "
                "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
                "WHERE (SELECT coalesce(max(seq), 0) FROM audit_events WHERE shard = ?) = ?",
                [self._append_params(event) for event in events],
            )
        except self._dialect.integrity_errors as exc:
            raise ConflictError("an audit event of the batch already exists") from exc
        if cur.rowcount != len(events):
            raise ConflictError("an audit event of the batch does not follow the newest event")

    @staticmethod
    def _append_params(event: AuditRow) -> tuple[Any, ...]:
        return (
            event.seq,
            to_db_time(event.at),
            event.actor_kind,
            event.actor_id,
            event.action,
            event.outcome,
            event.patient_id,
            event.target_kind,
            event.target_id,
            event.mode,
            event.purpose,
            event.rule,
            event.prev_hash,
            event.hash,
            event.key_id,
            event.shard,
            event.chain,
            event.shard,
            event.seq - 1,
        )

    def scan(self, *, after_seq: int = 0, limit: int = 1000, shard: str = "0") -> list[AuditRow]:
        rows = self._exec(
            f"SELECT {self._COLS} FROM audit_events WHERE shard = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (shard, after_seq, limit),
        ).fetchall()
        return [self._row(r) for r in rows]

    def for_patient(
        self, patient_id: str, *, after_seq: int = 0, limit: int = 1000, after_shard: str = "0"
    ) -> list[AuditRow]:
        rows = self._exec(
            f"SELECT {self._COLS} FROM audit_events WHERE patient_id = ? "
            "AND (shard > ? OR (shard = ? AND seq > ?)) ORDER BY shard, seq LIMIT ?",
            (patient_id, after_shard, after_shard, after_seq, limit),
        ).fetchall()
        return [self._row(r) for r in rows]

    def scan_stored(
        self, *, after_seq: int = 0, limit: int = 1000, shard: str = "0"
    ) -> list[tuple[Any, ...]]:
        rows = self._exec(
            f"SELECT {self._COLS} FROM audit_events WHERE shard = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (shard, after_seq, limit),
        ).fetchall()
        return [tuple(r) for r in rows]

    def shards(self) -> list[str]:
        rows = self._exec("SELECT shard FROM audit_shards").fetchall()
        # '0' first, then the patient shards by number ('2' before '10').
        return sorted((str(r[0]) for r in rows), key=lambda s: (len(s), s))

    def head_seals(self) -> list[AuditSealRow]:
        rows = self._exec(
            "SELECT shard, head_seq, head_hash, key_id, head_mac FROM audit_shards "
            "WHERE head_mac IS NOT NULL ORDER BY shard"
        ).fetchall()
        try:
            return [
                AuditSealRow(r[0], int(r[1]), bytes(r[2]), _text(r[3]), bytes(r[4])) for r in rows
            ]
        except (ValueError, TypeError) as exc:
            raise AuditIntegrityError("a head seal of the trail is malformed") from exc

    def count(self) -> int:
        return int(self._exec("SELECT count(*) FROM audit_events").fetchone()[0])

    def legacy_until(self, shard: str) -> int:
        r = self._exec("SELECT legacy_until FROM audit_shards WHERE shard = ?", (shard,)).fetchone()
        return 0 if r is None else int(r[0])

    def seal(self, row: AuditSealRow) -> None:
        # The shard's row exists from its migration, or from its first seal (legacy_until 0:
        # a shard created keyed).
        self._exec(
            "INSERT INTO audit_shards (shard, legacy_until, head_seq, head_hash, key_id, head_mac) "
            "VALUES (?, 0, ?, ?, ?, ?) ON CONFLICT (shard) DO UPDATE SET "
            "head_seq = excluded.head_seq, head_hash = excluded.head_hash, "
            "key_id = excluded.key_id, head_mac = excluded.head_mac",
            (row.shard, row.seq, row.hash, row.key_id, row.mac),
        )

    def head_seal(self, shard: str) -> AuditSealRow | None:
        r = self._exec(
            "SELECT shard, head_seq, head_hash, key_id, head_mac FROM audit_shards "
            "WHERE shard = ? AND head_mac IS NOT NULL",
            (shard,),
        ).fetchone()
        if r is None:
            return None
        try:
            return AuditSealRow(r[0], int(r[1]), bytes(r[2]), _text(r[3]), bytes(r[4]))
        except (ValueError, TypeError) as exc:
            raise AuditIntegrityError(f"the head seal of shard {shard} is malformed") from exc

    def add_checkpoint(self, rows: Sequence[CheckpointRow]) -> None:
        for row in rows:
            self._insert(
                f"INSERT INTO audit_checkpoints ({self._CHECKPOINT}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.number,
                    row.shard,
                    row.seq,
                    row.hash,
                    row.count,
                    to_db_time(row.at),
                    row.root,
                    row.key_id,
                    row.signature,
                ),
                f"audit checkpoint {row.number} already exists",
            )

    @staticmethod
    def _checkpoint(r: Sequence[Any]) -> CheckpointRow:
        try:
            return CheckpointRow(
                number=int(r[0]),
                shard=_text(r[1]),
                seq=int(r[2]),
                hash=bytes(r[3]),
                count=int(r[4]),
                at=from_db_time(r[5]),
                root=bytes(r[6]),
                key_id=_text(r[7]),
                signature=bytes(r[8]),
            )
        except (ValueError, TypeError) as exc:
            raise AuditIntegrityError(f"audit checkpoint {r[0]} is malformed") from exc

    def checkpoints(self, *, after_number: int = 0) -> list[CheckpointRow]:
        rows = self._exec(
            f"SELECT {self._CHECKPOINT} FROM audit_checkpoints WHERE number > ? "
            "ORDER BY number, shard",
            (after_number,),
        ).fetchall()
        return [self._checkpoint(r) for r in rows]

    def last_checkpoint(self) -> list[CheckpointRow]:
        rows = self._exec(
            f"SELECT {self._CHECKPOINT} FROM audit_checkpoints WHERE number = "
            "(SELECT max(number) FROM audit_checkpoints) ORDER BY shard"
        ).fetchall()
        return [self._checkpoint(r) for r in rows]


class SqlOutbox(_Repo, OutboxRepository):
    _COLS = (
        "id, patient_id, channel, kind, created_at, next_attempt_at, idempotency_key, sealed, "
        "status, attempts, last_error, sent_at, claimed_by, lease_until"
    )

    @staticmethod
    def _row(r: Sequence[Any]) -> OutboxRow:
        return OutboxRow(
            id=r[0],
            patient_id=r[1],
            channel=r[2],
            kind=r[3],
            created_at=from_db_time(r[4]),
            next_attempt_at=from_db_time(r[5]),
            idempotency_key=r[6],
            sealed=None if r[7] is None else bytes(r[7]),
            status=OutboxStatus(r[8]),
            attempts=int(r[9]),
            last_error=r[10],
            sent_at=_opt_time(r[11]),
            claimed_by=r[12],
            lease_until=_opt_time(r[13]),
        )

    @staticmethod
    def _params(row: OutboxRow) -> tuple[Any, ...]:
        return (
            row.id,
            row.patient_id,
            row.channel,
            row.kind,
            to_db_time(row.created_at),
            to_db_time(row.next_attempt_at),
            row.idempotency_key,
            row.sealed,
            str(row.status),
            row.attempts,
            row.last_error,
            None if row.sent_at is None else to_db_time(row.sent_at),
            row.claimed_by,
            None if row.lease_until is None else to_db_time(row.lease_until),
        )

    def add(self, row: OutboxRow) -> None:
        self._insert(
            f"INSERT INTO outbox ({self._COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self._params(row),
            "this notification is already queued",
        )

    def add_many(self, rows: Sequence[OutboxRow]) -> None:
        if not rows:
            return
        try:
            self._exec_many(
                f"INSERT INTO outbox ({self._COLS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [self._params(row) for row in rows],
            )
        except self._dialect.integrity_errors as exc:
            raise ConflictError("a notification of the batch is already queued") from exc

    def get(self, message_id: str) -> OutboxRow | None:
        r = self._exec(f"SELECT {self._COLS} FROM outbox WHERE id = ?", (message_id,)).fetchone()
        return None if r is None else self._row(r)

    def due(self, now: datetime, *, limit: int) -> list[OutboxRow]:
        rows = self._exec(
            f"SELECT {self._COLS} FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at, created_at, id LIMIT ?",
            (to_db_time(now), limit),
        ).fetchall()
        return [self._row(r) for r in rows]

    def update(self, row: OutboxRow) -> None:
        cur = self._exec(
            "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, "
            "sent_at = ?, sealed = ?, claimed_by = ?, lease_until = ? WHERE id = ?",
            (
                str(row.status),
                row.attempts,
                to_db_time(row.next_attempt_at),
                row.last_error,
                None if row.sent_at is None else to_db_time(row.sent_at),
                row.sealed,
                row.claimed_by,
                None if row.lease_until is None else to_db_time(row.lease_until),
                row.id,
            ),
        )
        if cur.rowcount != 1:
            raise NotFoundError("no such notification")

    def count(self, status: OutboxStatus | None = None) -> int:
        if status is None:
            return int(self._exec("SELECT count(*) FROM outbox").fetchone()[0])
        query = "SELECT count(*) FROM outbox WHERE status = ?"
        return int(self._exec(query, (str(status),)).fetchone()[0])

    def claim(
        self, now: datetime, *, dispatcher: str, lease_until: datetime, limit: int
    ) -> list[OutboxRow]:
        at = to_db_time(now)
        ids = [
            r[0]
            for r in self._exec(
                "SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? "
                "AND (lease_until IS NULL OR lease_until <= ?) "
                "ORDER BY next_attempt_at, created_at, id LIMIT ?" + self._dialect.lock_skipping,
                (at, at, limit),
            ).fetchall()
        ]
        claimed = []
        for message_id in ids:
            self._exec(
                "UPDATE outbox SET claimed_by = ?, lease_until = ? WHERE id = ?",
                (dispatcher, to_db_time(lease_until), message_id),
            )
            row = self.get(message_id)
            if row is not None:
                claimed.append(row)
        return claimed

    def cancel_for_patient(self, patient_id: str, reason: str) -> int:
        return self._exec(
            "UPDATE outbox SET status = 'dead', sealed = NULL, last_error = ? "
            "WHERE patient_id = ? AND status = 'pending'",
            (reason, patient_id),
        ).rowcount


def _opt_db_time(moment: datetime | None) -> str | None:
    return None if moment is None else to_db_time(moment)


class SqlAccounts(_Repo, AccountRepository):
    _FIELDS = tuple(a.name for a in attrs.fields(AccountRow))
    _TIMES = frozenset(_FIELDS[3:14])
    _COLS = ", ".join(_FIELDS)

    def __init__(self, cursor: Cursor, dialect: Dialect) -> None:
        super().__init__(cursor, dialect)
        # Rows a batch read (get_many) in this transaction, which the decisions of the
        # batch (SqlTransaction.subject) then read without a statement each. Every change
        # of a row through this repository drops it.
        self.seen: dict[str, AccountRow | None] = {}

    @classmethod
    def _row(cls, r: Sequence[Any]) -> AccountRow:
        values = dict(zip(cls._FIELDS, r, strict=True))
        for name in cls._TIMES:
            values[name] = _opt_time(values[name])
        return AccountRow(**values)

    @classmethod
    def _params(cls, account: AccountRow) -> list[Any]:
        return [
            _opt_db_time(getattr(account, name)) if name in cls._TIMES else getattr(account, name)
            for name in cls._FIELDS
        ]

    def add(self, account: AccountRow, deadline_at: datetime | None) -> None:
        self.seen.pop(account.patient_id, None)
        marks = ", ".join("?" * (len(self._FIELDS) + 1))
        self._insert(
            f"INSERT INTO accounts ({self._COLS}, deadline_at) VALUES ({marks})",
            [*self._params(account), _opt_db_time(deadline_at)],
            "this person already has an account, or is not registered",
        )

    def get(self, patient_id: str) -> AccountRow | None:
        if patient_id in self.seen:
            return self.seen[patient_id]
        r = self._exec(
            f"SELECT {self._COLS} FROM accounts WHERE patient_id = ?", (patient_id,)
        ).fetchone()
        return None if r is None else self._row(r)

    def get_many(self, patient_ids: Sequence[str]) -> dict[str, AccountRow]:
        # Always read again (a batch checks what changed since it prepared), then kept.
        for pid in patient_ids:
            self.seen[pid] = None
        for r in self._select_in(f"SELECT {self._COLS} FROM accounts", patient_ids):
            row = self._row(r)
            self.seen[row.patient_id] = row
        return {pid: found for pid in patient_ids if (found := self.seen[pid]) is not None}

    _UPDATE = (
        f"UPDATE accounts SET {', '.join(f'{name} = ?' for name in _FIELDS[1:])}, "
        "deadline_at = ? WHERE patient_id = ?"
    )

    def _update_params(self, account: AccountRow, deadline_at: datetime | None) -> list[Any]:
        self.seen.pop(account.patient_id, None)
        params = self._params(account)
        return [*params[1:], _opt_db_time(deadline_at), params[0]]

    def update(self, account: AccountRow, deadline_at: datetime | None) -> None:
        cur = self._exec(self._UPDATE, self._update_params(account, deadline_at))
        if cur.rowcount != 1:
            raise NotFoundError("no such account")

    def update_many(self, accounts: Sequence[tuple[AccountRow, datetime | None]]) -> None:
        if not accounts:
            return
        cur = self._exec_many(
            self._UPDATE, [self._update_params(row, deadline) for row, deadline in accounts]
        )
        if cur.rowcount != len(accounts):
            raise NotFoundError("no such account")

    def due(self, now: datetime, *, limit: int, part: Slice | None = None) -> list[AccountRow]:
        where, args = self._in_slice(part)
        rows = self._exec(
            f"SELECT {self._COLS} FROM accounts WHERE deadline_at <= ?{where} "
            "ORDER BY deadline_at, patient_id LIMIT ?",
            (to_db_time(now), *args, limit),
        ).fetchall()
        return [self._row(r) for r in rows]

    def in_state(
        self,
        state: str,
        *,
        after: str | None = None,
        limit: int = 1000,
        part: Slice | None = None,
    ) -> list[str]:
        where, args = self._in_slice(part)
        rows = self._exec(
            f"SELECT patient_id FROM accounts WHERE state = ? AND patient_id > ?{where} "
            "ORDER BY patient_id LIMIT ?",
            (str(state), after or "", *args, limit),
        ).fetchall()
        return [r[0] for r in rows]

    def count_by_state(self) -> dict[str, int]:
        rows = self._exec("SELECT state, count(*) FROM accounts GROUP BY state").fetchall()
        return {r[0]: int(r[1]) for r in rows}


class SqlCodes(_Repo, CodeRepository):
    _COLS = "patient_id, code_hash, issued_at, expires_at, attempts, used_at, revoked_at"
    _PUT = (
        f"INSERT INTO provisional_codes ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (patient_id) DO UPDATE SET code_hash = excluded.code_hash, "
        "issued_at = excluded.issued_at, expires_at = excluded.expires_at, "
        "attempts = excluded.attempts, used_at = excluded.used_at, "
        "revoked_at = excluded.revoked_at"
    )

    @staticmethod
    def _params(record: CodeRow) -> tuple[Any, ...]:
        return (
            record.patient_id,
            record.code_hash,
            to_db_time(record.issued_at),
            to_db_time(record.expires_at),
            record.attempts,
            _opt_db_time(record.used_at),
            _opt_db_time(record.revoked_at),
        )

    def put(self, record: CodeRow) -> None:
        self._exec(self._PUT, self._params(record))

    def put_many(self, records: Sequence[CodeRow]) -> None:
        if records:
            self._exec_many(self._PUT, [self._params(record) for record in records])

    def get(self, patient_id: str) -> CodeRow | None:
        r = self._exec(
            f"SELECT {self._COLS} FROM provisional_codes WHERE patient_id = ?", (patient_id,)
        ).fetchone()
        if r is None:
            return None
        return CodeRow(
            r[0],
            bytes(r[1]),
            from_db_time(r[2]),
            from_db_time(r[3]),
            int(r[4]),
            _opt_time(r[5]),
            _opt_time(r[6]),
        )


class SqlProofs(_Repo, ProofRepository):
    _COLS = "patient_id, vitale_index, birth_index, failures, failures_since"

    def put(self, record: ProofRow) -> None:
        self._exec(
            f"INSERT INTO identity_proofs ({self._COLS}) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (patient_id) DO UPDATE SET vitale_index = excluded.vitale_index, "
            "birth_index = excluded.birth_index, failures = excluded.failures, "
            "failures_since = excluded.failures_since",
            (
                record.patient_id,
                record.vitale_index,
                record.birth_index,
                record.failures,
                _opt_db_time(record.failures_since),
            ),
        )

    def get(self, patient_id: str) -> ProofRow | None:
        r = self._exec(
            f"SELECT {self._COLS} FROM identity_proofs WHERE patient_id = ?", (patient_id,)
        ).fetchone()
        if r is None:
            return None
        return ProofRow(r[0], bytes(r[1]), bytes(r[2]), int(r[3]), _opt_time(r[4]))


class SqlRepresentations(_Repo, RepresentationRepository):
    _COLS = "patient_id, representative_id, kind, since, ends_at, ended_at, end_reason"

    @staticmethod
    def _row(r: Sequence[Any]) -> RepresentationRow:
        return RepresentationRow(
            r[0], r[1], r[2], from_db_time(r[3]), _opt_time(r[4]), _opt_time(r[5]), r[6]
        )

    def put(self, link: RepresentationRow) -> None:
        self._exec(
            f"INSERT INTO representations ({self._COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (patient_id, representative_id) DO UPDATE SET kind = excluded.kind, "
            "since = excluded.since, ends_at = excluded.ends_at, ended_at = excluded.ended_at, "
            "end_reason = excluded.end_reason",
            (
                link.patient_id,
                link.representative_id,
                link.kind,
                to_db_time(link.since),
                _opt_db_time(link.ends_at),
                _opt_db_time(link.ended_at),
                link.end_reason,
            ),
        )

    def get(self, patient_id: str, representative_id: str) -> RepresentationRow | None:
        r = self._exec(
            f"SELECT {self._COLS} FROM representations "
            "WHERE patient_id = ? AND representative_id = ?",
            (patient_id, representative_id),
        ).fetchone()
        return None if r is None else self._row(r)

    def of_patient(self, patient_id: str) -> list[RepresentationRow]:
        rows = self._exec(
            f"SELECT {self._COLS} FROM representations WHERE patient_id = ? "
            "ORDER BY representative_id",
            (patient_id,),
        ).fetchall()
        return [self._row(r) for r in rows]

    def of_patients(self, patient_ids: Sequence[str]) -> list[RepresentationRow]:
        rows = [
            self._row(r)
            for r in self._select_in(f"SELECT {self._COLS} FROM representations", patient_ids)
        ]
        return sorted(rows, key=lambda link: (link.patient_id, link.representative_id))

    def by_representative(self, representative_id: str) -> list[RepresentationRow]:
        rows = self._exec(
            f"SELECT {self._COLS} FROM representations WHERE representative_id = ? "
            "ORDER BY patient_id",
            (representative_id,),
        ).fetchall()
        return [self._row(r) for r in rows]

    def ending(
        self, now: datetime, *, limit: int, part: Slice | None = None
    ) -> list[RepresentationRow]:
        where, args = self._in_slice(part)
        rows = self._exec(
            f"SELECT {self._COLS} FROM representations WHERE ended_at IS NULL "
            f"AND ends_at IS NOT NULL AND ends_at <= ?{where} "
            "ORDER BY ends_at, patient_id, representative_id LIMIT ?",
            (to_db_time(now), *args, limit),
        ).fetchall()
        return [self._row(r) for r in rows]


class SqlDocuments(_Repo, DocumentRepository):
    _FIELDS = tuple(a.name for a in attrs.fields(DocumentRow))
    _COLS = ", ".join(_FIELDS)
    _TIMES = frozenset({"created_at", "submitted_at", "release_at", "notify_at"})

    @classmethod
    def _row(cls, r: Sequence[Any]) -> DocumentRow:
        values = dict(zip(cls._FIELDS, r, strict=True))
        for name in cls._TIMES:
            values[name] = _opt_time(values[name])
        values["sha256"] = bytes(values["sha256"])
        values["sealed_meta"] = bytes(values["sealed_meta"])
        return DocumentRow(**values)

    @classmethod
    def _params(cls, row: DocumentRow) -> list[Any]:
        return [
            _opt_db_time(getattr(row, name)) if name in cls._TIMES else getattr(row, name)
            for name in cls._FIELDS
        ]

    def add(self, row: DocumentRow) -> None:
        marks = ", ".join("?" * len(self._FIELDS))
        self._insert(
            f"INSERT INTO documents ({self._COLS}) VALUES ({marks})",
            self._params(row),
            "a document with this id or unique id is already stored",
        )

    def get(self, document_id: str) -> DocumentRow | None:
        r = self._exec(
            f"SELECT {self._COLS} FROM documents WHERE id = ?", (document_id,)
        ).fetchone()
        return None if r is None else self._row(r)

    def by_unique_id(self, patient_id: str, unique_id: str) -> DocumentRow | None:
        r = self._exec(
            f"SELECT {self._COLS} FROM documents WHERE patient_id = ? AND unique_id = ?",
            (patient_id, unique_id),
        ).fetchone()
        return None if r is None else self._row(r)

    def update(self, row: DocumentRow) -> None:
        assignments = ", ".join(f"{name} = ?" for name in self._FIELDS[1:])
        params = self._params(row)
        cur = self._exec(
            f"UPDATE documents SET {assignments} WHERE id = ?", [*params[1:], params[0]]
        )
        if cur.rowcount != 1:
            raise NotFoundError("no such document")

    def for_patient(self, patient_id: str) -> list[DocumentRow]:
        rows = self._exec(
            f"SELECT {self._COLS} FROM documents WHERE patient_id = ? ORDER BY created_at, id",
            (patient_id,),
        ).fetchall()
        return [self._row(r) for r in rows]

    def newest_for_patient(
        self, patient_id: str, *, before: tuple[datetime, str] | None = None, limit: int
    ) -> list[DocumentRow]:
        # Walks the (patient_id, created_at, id) index backwards from the cursor.
        if before is None:
            query = (
                f"SELECT {self._COLS} FROM documents WHERE patient_id = ? "
                "ORDER BY created_at DESC, id DESC LIMIT ?"
            )
            params: tuple[Any, ...] = (patient_id, limit)
        else:
            at = to_db_time(before[0])
            query = (
                f"SELECT {self._COLS} FROM documents WHERE patient_id = ? "
                "AND (created_at < ? OR (created_at = ? AND id < ?)) "
                "ORDER BY created_at DESC, id DESC LIMIT ?"
            )
            params = (patient_id, at, at, before[1], limit)
        return [self._row(r) for r in self._exec(query, params).fetchall()]

    def kinds_for_patient(
        self,
        patient_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[tuple[DocumentRow, int]]:
        # The database groups the record's rows (only the grouped columns travel); each group
        # is then represented by its first version by id, one real row to derive facts from.
        where, params = "patient_id = ?", [patient_id]
        if since is not None:
            where, params = f"{where} AND created_at >= ?", [*params, to_db_time(since)]
        if until is not None:
            where, params = f"{where} AND created_at < ?", [*params, to_db_time(until)]
        groups = self._exec(
            f"SELECT min(id), count(*) FROM documents WHERE {where} "
            f"GROUP BY {', '.join(DOCUMENT_KIND_COLUMNS)}",
            params,
        ).fetchall()
        sizes = {str(first): int(size) for first, size in groups}
        found: list[tuple[DocumentRow, int]] = []
        ids = list(sizes)
        for start in range(0, len(ids), 500):  # bounded IN lists
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._exec(
                f"SELECT {self._COLS} FROM documents WHERE id IN ({marks})", chunk
            ).fetchall()
            found.extend((row, sizes[row.id]) for row in map(self._row, rows))
        return found

    def releasing(
        self, now: datetime, *, limit: int, part: Slice | None = None
    ) -> list[DocumentRow]:
        where, args = self._in_slice(part)
        rows = self._exec(
            f"SELECT {self._COLS} FROM documents WHERE release_at <= ?{where} "
            "ORDER BY release_at, id LIMIT ?",
            (to_db_time(now), *args, limit),
        ).fetchall()
        return [self._row(r) for r in rows]

    def to_notify(
        self, now: datetime, *, limit: int, part: Slice | None = None
    ) -> list[DocumentRow]:
        where, args = self._in_slice(part)
        rows = self._exec(
            f"SELECT {self._COLS} FROM documents WHERE notify_at <= ?{where} "
            "ORDER BY notify_at, id LIMIT ?",
            (to_db_time(now), *args, limit),
        ).fetchall()
        return [self._row(r) for r in rows]

    def delete(self, document_id: str) -> bool:
        return self._exec("DELETE FROM documents WHERE id = ?", (document_id,)).rowcount == 1

    def delete_for_patient(self, patient_id: str) -> int:
        # Newest versions first: a version's "replaces" points at an older one.
        rows = self._exec(
            "SELECT id FROM documents WHERE patient_id = ? ORDER BY version DESC", (patient_id,)
        ).fetchall()
        for (document_id,) in rows:
            self._exec("DELETE FROM documents WHERE id = ?", (document_id,))
        return len(rows)


class SqlEntries(_Repo, EntryRepository):
    _COLS = "id, patient_id, kind, at, sealed"

    def __init__(self, cursor: Cursor, dialect: Dialect, table: str) -> None:
        super().__init__(cursor, dialect)
        if table not in ("profile_entries", "measures", "devices"):
            raise ValueError(f"not an entry table: {table}")
        self._table = table

    @staticmethod
    def _row(r: Sequence[Any]) -> EntryRow:
        return EntryRow(r[0], r[1], r[2], from_db_time(r[3]), bytes(r[4]))

    def add(self, row: EntryRow) -> None:
        self._insert(
            f"INSERT INTO {self._table} ({self._COLS}) VALUES (?, ?, ?, ?, ?)",
            (row.id, row.patient_id, row.kind, to_db_time(row.at), row.sealed),
            "an entry with this id already exists",
        )

    def get(self, entry_id: str) -> EntryRow | None:
        r = self._exec(
            f"SELECT {self._COLS} FROM {self._table} WHERE id = ?", (entry_id,)
        ).fetchone()
        return None if r is None else self._row(r)

    def update(self, row: EntryRow) -> None:
        cur = self._exec(
            f"UPDATE {self._table} SET kind = ?, at = ?, sealed = ? WHERE id = ?",
            (row.kind, to_db_time(row.at), row.sealed, row.id),
        )
        if cur.rowcount != 1:
            raise NotFoundError("no such entry")

    def delete(self, entry_id: str) -> bool:
        return self._exec(f"DELETE FROM {self._table} WHERE id = ?", (entry_id,)).rowcount == 1

    def for_patient(
        self,
        patient_id: str,
        *,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[EntryRow]:
        query = f"SELECT {self._COLS} FROM {self._table} WHERE patient_id = ?"
        params: list[Any] = [patient_id]
        if kind is not None:
            query += " AND kind = ?"
            params.append(kind)
        if since is not None:
            query += " AND at >= ?"
            params.append(to_db_time(since))
        if until is not None:
            query += " AND at < ?"
            params.append(to_db_time(until))
        rows = self._exec(query + " ORDER BY at, id", params).fetchall()
        return [self._row(r) for r in rows]

    def delete_for_patient(self, patient_id: str) -> int:
        return self._exec(f"DELETE FROM {self._table} WHERE patient_id = ?", (patient_id,)).rowcount


class SqlLedger(_Repo, LedgerRepository):
    _COLS = "id, run_id, at, source, sha256, outcome, reason, patient_id, document_id"

    @staticmethod
    def _row(r: Sequence[Any]) -> LedgerRow:
        return LedgerRow(r[0], r[1], from_db_time(r[2]), r[3], bytes(r[4]), r[5], r[6], r[7], r[8])

    def add(self, row: LedgerRow) -> None:
        self._insert(
            f"INSERT INTO dmp_ledger ({self._COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                row.run_id,
                to_db_time(row.at),
                row.source,
                row.sha256,
                row.outcome,
                row.reason,
                row.patient_id,
                row.document_id,
            ),
            "this ledger line already exists",
        )

    def for_run(self, run_id: str) -> list[LedgerRow]:
        rows = self._exec(
            f"SELECT {self._COLS} FROM dmp_ledger WHERE run_id = ? ORDER BY at, rowid",
            (run_id,),
        ).fetchall()
        return [self._row(r) for r in rows]

    def imported(self, sha256: bytes) -> LedgerRow | None:
        r = self._exec(
            f"SELECT {self._COLS} FROM dmp_ledger WHERE sha256 = ? AND outcome = 'imported' "
            "LIMIT 1",
            (sha256,),
        ).fetchone()
        return None if r is None else self._row(r)

    def imported_for_patient(self, patient_id: str) -> list[LedgerRow]:
        rows = self._exec(
            f"SELECT {self._COLS} FROM dmp_ledger WHERE patient_id = ? AND outcome = 'imported' "
            "ORDER BY at, rowid",
            (patient_id,),
        ).fetchall()
        return [self._row(r) for r in rows]


class SqlAccess(_Repo, AccessRepository):
    _PRO = "rpps, profession, name, specialty, mssante, finess, establishment, assurance"
    _GRANT = "patient_id, professional_id, kind, since, until, ended_at, granted_by"
    _SESSION = "id, patient_id, professional_id, mode, started_at, expires_at"

    def __init__(self, cursor: Cursor, dialect: Dialect) -> None:
        super().__init__(cursor, dialect)
        # (patient, professional) pairs this transaction read as already seen (by
        # :meth:`SqlTransaction.subject`): marking them again would change nothing (rows of
        # ``access_seen`` are never deleted).
        self.seen: set[tuple[str, str]] = set()

    def put_professional(self, professional: ProfessionalRow) -> None:
        self._exec(
            f"INSERT INTO professionals ({self._PRO}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (rpps) DO UPDATE SET profession = excluded.profession, "
            "name = excluded.name, specialty = excluded.specialty, mssante = excluded.mssante, "
            "finess = excluded.finess, establishment = excluded.establishment, "
            "assurance = excluded.assurance",
            attrs.astuple(professional),
        )

    def professional(self, rpps: str) -> ProfessionalRow | None:
        r = self._exec(f"SELECT {self._PRO} FROM professionals WHERE rpps = ?", (rpps,)).fetchone()
        return None if r is None else ProfessionalRow(*r)

    def put_grant(self, grant: GrantRow) -> None:
        self._exec(
            f"INSERT INTO access_grants ({self._GRANT}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (patient_id, professional_id, kind) DO UPDATE SET "
            "since = excluded.since, until = excluded.until, ended_at = excluded.ended_at, "
            "granted_by = excluded.granted_by",
            (
                grant.patient_id,
                grant.professional_id,
                grant.kind,
                to_db_time(grant.since),
                _opt_db_time(grant.until),
                _opt_db_time(grant.ended_at),
                grant.granted_by,
            ),
        )

    def grants(self, patient_id: str, professional_id: str | None = None) -> list[GrantRow]:
        query = f"SELECT {self._GRANT} FROM access_grants WHERE patient_id = ?"
        params: list[Any] = [patient_id]
        if professional_id is not None:
            query += " AND professional_id = ?"
            params.append(professional_id)
        rows = self._exec(query + " ORDER BY professional_id, kind, since", params).fetchall()
        return [
            GrantRow(r[0], r[1], r[2], from_db_time(r[3]), _opt_time(r[4]), _opt_time(r[5]), r[6])
            for r in rows
        ]

    def block(self, patient_id: str, professional_id: str, at: datetime) -> None:
        self._exec(
            "INSERT INTO access_blocks (patient_id, professional_id, since) VALUES (?, ?, ?) "
            "ON CONFLICT (patient_id, professional_id) DO NOTHING",
            (patient_id, professional_id, to_db_time(at)),
        )

    def unblock(self, patient_id: str, professional_id: str) -> bool:
        cur = self._exec(
            "DELETE FROM access_blocks WHERE patient_id = ? AND professional_id = ?",
            (patient_id, professional_id),
        )
        return cur.rowcount == 1

    def blocked(self, patient_id: str) -> list[str]:
        rows = self._exec(
            "SELECT professional_id FROM access_blocks WHERE patient_id = ? "
            "ORDER BY professional_id",
            (patient_id,),
        ).fetchall()
        return [r[0] for r in rows]

    def settings(self, patient_id: str) -> AccessSettingsRow | None:
        r = self._exec(
            "SELECT patient_id, object_all, object_emergency, mask_all, notify_first_access, "
            "object_research FROM access_settings WHERE patient_id = ?",
            (patient_id,),
        ).fetchone()
        if r is None:
            return None
        return AccessSettingsRow(r[0], bool(r[1]), bool(r[2]), bool(r[3]), bool(r[4]), bool(r[5]))

    def put_settings(self, settings: AccessSettingsRow) -> None:
        self._exec(
            "INSERT INTO access_settings (patient_id, object_all, object_emergency, mask_all, "
            "notify_first_access, object_research) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (patient_id) DO UPDATE SET "
            "object_all = excluded.object_all, object_emergency = excluded.object_emergency, "
            "mask_all = excluded.mask_all, notify_first_access = excluded.notify_first_access, "
            "object_research = excluded.object_research",
            (
                settings.patient_id,
                int(settings.object_all),
                int(settings.object_emergency),
                int(settings.mask_all),
                int(settings.notify_first_access),
                int(settings.object_research),
            ),
        )

    def add_emergency(self, session: EmergencyRow, justification: bytes) -> None:
        self._insert(
            f"INSERT INTO emergency_sessions ({self._SESSION}, justification) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                session.id,
                session.patient_id,
                session.professional_id,
                session.mode,
                to_db_time(session.started_at),
                to_db_time(session.expires_at),
                justification,
            ),
            "this emergency session already exists",
        )

    def emergencies(self, patient_id: str, professional_id: str) -> list[EmergencyRow]:
        rows = self._exec(
            f"SELECT {self._SESSION} FROM emergency_sessions "
            "WHERE patient_id = ? AND professional_id = ? ORDER BY started_at, id",
            (patient_id, professional_id),
        ).fetchall()
        return [
            EmergencyRow(r[0], r[1], r[2], r[3], from_db_time(r[4]), from_db_time(r[5]))
            for r in rows
        ]

    def mark_seen(self, patient_id: str, professional_id: str, at: datetime) -> bool:
        if (patient_id, professional_id) in self.seen:
            return False
        cur = self._exec(
            "INSERT INTO access_seen (patient_id, professional_id, first_at) VALUES (?, ?, ?) "
            "ON CONFLICT (patient_id, professional_id) DO NOTHING",
            (patient_id, professional_id, to_db_time(at)),
        )
        return cur.rowcount == 1

    def professional_by_mssante(self, address: str) -> ProfessionalRow | None:
        r = self._exec(
            f"SELECT {self._PRO} FROM professionals WHERE mssante IS NOT NULL "
            "AND lower(mssante) = lower(?) ORDER BY rpps LIMIT 1",
            (address,),
        ).fetchone()
        return None if r is None else ProfessionalRow(*r)


def _opt_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


class SqlMessages(_Repo, MessageRepository):
    _THREAD = (
        "id, patient_id, professional_id, status, created_at, last_message_at, sealed_subject, "
        "patient_archived, professional_archived, closed_at"
    )
    _MESSAGE = (
        "id, thread_id, patient_id, sender_kind, sender_id, sent_at, rfc_message_id, origin, "
        "sealed, closes_thread, ins_qualified, read_at, position"
    )
    _ATTACHMENT = (
        "id, message_id, thread_id, patient_id, content_id, media_type, size, sha256, "
        "sealed_meta, position"
    )

    @staticmethod
    def _thread(r: Sequence[Any]) -> ThreadRow:
        return ThreadRow(
            r[0],
            r[1],
            r[2],
            r[3],
            from_db_time(r[4]),
            from_db_time(r[5]),
            bytes(r[6]),
            bool(r[7]),
            bool(r[8]),
            _opt_time(r[9]),
        )

    @staticmethod
    def _thread_params(row: ThreadRow) -> tuple[Any, ...]:
        return (
            row.id,
            row.patient_id,
            row.professional_id,
            row.status,
            to_db_time(row.created_at),
            to_db_time(row.last_message_at),
            row.sealed_subject,
            int(row.patient_archived),
            int(row.professional_archived),
            _opt_db_time(row.closed_at),
        )

    @staticmethod
    def _message(r: Sequence[Any]) -> MessageRow:
        return MessageRow(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            from_db_time(r[5]),
            r[6],
            r[7],
            bytes(r[8]),
            bool(r[9]),
            _opt_bool(r[10]),
            _opt_time(r[11]),
            int(r[12]),
        )

    @staticmethod
    def _message_params(row: MessageRow) -> tuple[Any, ...]:
        return (
            row.id,
            row.thread_id,
            row.patient_id,
            row.sender_kind,
            row.sender_id,
            to_db_time(row.sent_at),
            row.rfc_message_id,
            row.origin,
            row.sealed,
            int(row.closes_thread),
            None if row.ins_qualified is None else int(row.ins_qualified),
            _opt_db_time(row.read_at),
            row.position,
        )

    @staticmethod
    def _attachment(r: Sequence[Any]) -> AttachmentRow:
        return AttachmentRow(
            r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), bytes(r[7]), bytes(r[8]), int(r[9])
        )

    def add_thread(self, row: ThreadRow) -> None:
        self._insert(
            f"INSERT INTO message_threads ({self._THREAD}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self._thread_params(row),
            "a thread with this id already exists, or its patient does not",
        )

    def get_thread(self, thread_id: str) -> ThreadRow | None:
        r = self._exec(
            f"SELECT {self._THREAD} FROM message_threads WHERE id = ?", (thread_id,)
        ).fetchone()
        return None if r is None else self._thread(r)

    def update_thread(self, row: ThreadRow) -> None:
        params = self._thread_params(row)
        cur = self._exec(
            "UPDATE message_threads SET patient_id = ?, professional_id = ?, status = ?, "
            "created_at = ?, last_message_at = ?, sealed_subject = ?, patient_archived = ?, "
            "professional_archived = ?, closed_at = ? WHERE id = ?",
            (*params[1:], params[0]),
        )
        if cur.rowcount != 1:
            raise NotFoundError("no such thread")

    def _threads(self, column: str, value: str) -> list[ThreadRow]:
        # column is one of two constants below, never caller input.
        rows = self._exec(
            f"SELECT {self._THREAD} FROM message_threads WHERE {column} = ? "
            "ORDER BY last_message_at DESC, id DESC",
            (value,),
        ).fetchall()
        return [self._thread(r) for r in rows]

    def threads_for_patient(self, patient_id: str) -> list[ThreadRow]:
        return self._threads("patient_id", patient_id)

    def threads_for_professional(self, professional_id: str) -> list[ThreadRow]:
        return self._threads("professional_id", professional_id)

    def add_message(self, row: MessageRow) -> None:
        self._insert(
            f"INSERT INTO messages ({self._MESSAGE}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self._message_params(row),
            "a message with this id, Message-ID or position is stored",
        )

    def get_message(self, message_id: str) -> MessageRow | None:
        r = self._exec(
            f"SELECT {self._MESSAGE} FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        return None if r is None else self._message(r)

    def update_message(self, row: MessageRow) -> None:
        params = self._message_params(row)
        cur = self._exec(
            "UPDATE messages SET thread_id = ?, patient_id = ?, sender_kind = ?, sender_id = ?, "
            "sent_at = ?, rfc_message_id = ?, origin = ?, sealed = ?, closes_thread = ?, "
            "ins_qualified = ?, read_at = ?, position = ? WHERE id = ?",
            (*params[1:], params[0]),
        )
        if cur.rowcount != 1:
            raise NotFoundError("no such message")

    def messages_in_thread(self, thread_id: str) -> list[MessageRow]:
        rows = self._exec(
            f"SELECT {self._MESSAGE} FROM messages WHERE thread_id = ? ORDER BY position, id",
            (thread_id,),
        ).fetchall()
        return [self._message(r) for r in rows]

    def by_rfc_message_id(self, patient_id: str, rfc_message_id: str) -> MessageRow | None:
        r = self._exec(
            f"SELECT {self._MESSAGE} FROM messages WHERE patient_id = ? AND rfc_message_id = ?",
            (patient_id, rfc_message_id),
        ).fetchone()
        return None if r is None else self._message(r)

    def unread_for_patient(self, patient_id: str) -> dict[str, int]:
        rows = self._exec(
            "SELECT m.thread_id, count(*) FROM messages m "
            "JOIN message_threads t ON t.id = m.thread_id "
            "WHERE t.patient_id = ? AND m.read_at IS NULL AND m.sender_kind = 'professional' "
            "GROUP BY m.thread_id",
            (patient_id,),
        ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def unread_for_professional(self, professional_id: str) -> dict[str, int]:
        rows = self._exec(
            "SELECT m.thread_id, count(*) FROM messages m "
            "JOIN message_threads t ON t.id = m.thread_id "
            "WHERE t.professional_id = ? AND m.read_at IS NULL "
            "AND m.sender_kind <> 'professional' GROUP BY m.thread_id",
            (professional_id,),
        ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def add_attachment(self, row: AttachmentRow) -> None:
        self._insert(
            f"INSERT INTO message_attachments ({self._ATTACHMENT}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                row.message_id,
                row.thread_id,
                row.patient_id,
                row.content_id,
                row.media_type,
                row.size,
                row.sha256,
                row.sealed_meta,
                row.position,
            ),
            "an attachment with this id or position already exists",
        )

    def get_attachment(self, attachment_id: str) -> AttachmentRow | None:
        r = self._exec(
            f"SELECT {self._ATTACHMENT} FROM message_attachments WHERE id = ?", (attachment_id,)
        ).fetchone()
        return None if r is None else self._attachment(r)

    def attachments_in_thread(self, thread_id: str) -> list[AttachmentRow]:
        rows = self._exec(
            f"SELECT {self._ATTACHMENT} FROM message_attachments WHERE thread_id = ? "
            "ORDER BY message_id, position",
            (thread_id,),
        ).fetchall()
        return [self._attachment(r) for r in rows]

    def sent_before(
        self, before: datetime, *, limit: int, part: Slice | None = None
    ) -> list[MessageRow]:
        where, args = self._in_slice(part)
        rows = self._exec(
            f"SELECT {self._MESSAGE} FROM messages WHERE sent_at < ?{where} "
            "ORDER BY sent_at, id LIMIT ?",
            (to_db_time(before), *args, limit),
        ).fetchall()
        return [self._message(r) for r in rows]

    def delete_message(self, message_id: str) -> bool:
        self._exec("DELETE FROM message_attachments WHERE message_id = ?", (message_id,))
        return self._exec("DELETE FROM messages WHERE id = ?", (message_id,)).rowcount == 1

    def delete_thread(self, thread_id: str) -> bool:
        self._exec("DELETE FROM message_attachments WHERE thread_id = ?", (thread_id,))
        self._exec("DELETE FROM messages WHERE thread_id = ?", (thread_id,))
        return self._exec("DELETE FROM message_threads WHERE id = ?", (thread_id,)).rowcount == 1

    def delete_for_patient(self, patient_id: str) -> int:
        self._exec("DELETE FROM message_attachments WHERE patient_id = ?", (patient_id,))
        deleted = self._exec("DELETE FROM messages WHERE patient_id = ?", (patient_id,)).rowcount
        self._exec("DELETE FROM message_threads WHERE patient_id = ?", (patient_id,))
        return deleted


class SqlAgenda(_Repo, AgendaRepository):
    _COLS = (
        "patient_id, id, version, kind, status, starts_at, ends_at, reminder_id, uid, sequence,"
        " changed_at, actor_kind, actor_id, change, sealed"
    )
    _MARKS = ", ".join("?" * 15)

    @staticmethod
    def _row(r: Sequence[Any]) -> AgendaEventRow:
        return AgendaEventRow(
            patient_id=r[0],
            id=r[1],
            version=int(r[2]),
            kind=_text(r[3]),
            status=_text(r[4]),
            starts_at=from_db_time(r[5]),
            ends_at=_opt_time(r[6]),
            reminder_id=r[7],
            uid=r[8],
            sequence=int(r[9]),
            changed_at=from_db_time(r[10]),
            actor_kind=r[11],
            actor_id=r[12],
            change=r[13],
            sealed=bytes(r[14]),
        )

    @staticmethod
    def _params(row: AgendaEventRow) -> tuple[Any, ...]:
        return (
            row.patient_id,
            row.id,
            row.version,
            row.kind,
            row.status,
            to_db_time(row.starts_at),
            None if row.ends_at is None else to_db_time(row.ends_at),
            row.reminder_id,
            row.uid,
            row.sequence,
            to_db_time(row.changed_at),
            row.actor_kind,
            row.actor_id,
            row.change,
            row.sealed,
        )

    def _history(self, row: AgendaEventRow) -> None:
        self._insert(
            f"INSERT INTO agenda_history ({self._COLS}) VALUES ({self._MARKS})",
            self._params(row),
            "this version of the event already exists",
        )

    def add(self, row: AgendaEventRow) -> None:
        self._insert(
            f"INSERT INTO agenda_events ({self._COLS}) VALUES ({self._MARKS})",
            self._params(row),
            "an event with this id or UID already exists in this agenda",
        )
        self._history(row)

    def update(self, row: AgendaEventRow) -> None:
        params = self._params(row)
        cur = self._exec(
            "UPDATE agenda_events SET version = ?, kind = ?, status = ?, starts_at = ?,"
            " ends_at = ?, reminder_id = ?, uid = ?, sequence = ?, changed_at = ?,"
            " actor_kind = ?, actor_id = ?, change = ?, sealed = ?"
            " WHERE patient_id = ? AND id = ? AND version = ?",
            (*params[2:], row.patient_id, row.id, row.version - 1),
        )
        if cur.rowcount != 1:
            raise NotFoundError("no such event at the version before this one")
        self._history(row)

    def get(self, patient_id: str, event_id: str) -> AgendaEventRow | None:
        r = self._exec(
            f"SELECT {self._COLS} FROM agenda_events WHERE patient_id = ? AND id = ?",
            (patient_id, event_id),
        ).fetchone()
        return None if r is None else self._row(r)

    def by_uid(self, patient_id: str, uid: str) -> AgendaEventRow | None:
        r = self._exec(
            f"SELECT {self._COLS} FROM agenda_events WHERE patient_id = ? AND uid = ?",
            (patient_id, uid),
        ).fetchone()
        return None if r is None else self._row(r)

    def for_patient(
        self,
        patient_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
    ) -> list[AgendaEventRow]:
        query = f"SELECT {self._COLS} FROM agenda_events WHERE patient_id = ?"
        params: list[Any] = [patient_id]
        if since is not None:
            query += " AND starts_at >= ?"
            params.append(to_db_time(since))
        if until is not None:
            query += " AND starts_at < ?"
            params.append(to_db_time(until))
        if status is not None:
            query += " AND status = ?"
            params.append(status)
        rows = self._exec(query + " ORDER BY starts_at, id", params).fetchall()
        return [self._row(r) for r in rows]

    def history(self, patient_id: str, event_id: str) -> list[AgendaEventRow]:
        rows = self._exec(
            f"SELECT {self._COLS} FROM agenda_history WHERE patient_id = ? AND id = ?"
            " ORDER BY version",
            (patient_id, event_id),
        ).fetchall()
        return [self._row(r) for r in rows]

    def delete_for_patient(self, patient_id: str) -> int:
        for table in ("agenda_history", "reminder_opt_outs", "reminders_sent"):
            self._exec(f"DELETE FROM {table} WHERE patient_id = ?", (patient_id,))
        return self._exec("DELETE FROM agenda_events WHERE patient_id = ?", (patient_id,)).rowcount

    def opt_outs(self, patient_id: str) -> list[ReminderOptOutRow]:
        rows = self._exec(
            "SELECT patient_id, family, at FROM reminder_opt_outs WHERE patient_id = ?"
            " ORDER BY family",
            (patient_id,),
        ).fetchall()
        return [ReminderOptOutRow(r[0], _text(r[1]), from_db_time(r[2])) for r in rows]

    def set_opt_out(self, row: ReminderOptOutRow) -> bool:
        cur = self._exec(
            "INSERT INTO reminder_opt_outs (patient_id, family, at) VALUES (?, ?, ?)"
            " ON CONFLICT (patient_id, family) DO NOTHING",
            (row.patient_id, row.family, to_db_time(row.at)),
        )
        return cur.rowcount == 1

    def clear_opt_out(self, patient_id: str, family: str) -> bool:
        cur = self._exec(
            "DELETE FROM reminder_opt_outs WHERE patient_id = ? AND family = ?",
            (patient_id, family),
        )
        return cur.rowcount == 1

    def mark_sent(self, row: ReminderSentRow) -> bool:
        cur = self._exec(
            "INSERT INTO reminders_sent"
            " (patient_id, reminder_id, cycle, recipient_id, sent_at, sealed)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (patient_id, reminder_id, cycle, recipient_id) DO NOTHING",
            (
                row.patient_id,
                row.reminder_id,
                row.cycle,
                row.recipient_id,
                to_db_time(row.sent_at),
                row.sealed,
            ),
        )
        return cur.rowcount == 1

    def sent(self, patient_id: str, reminder_id: str | None = None) -> list[ReminderSentRow]:
        query = (
            "SELECT patient_id, reminder_id, cycle, recipient_id, sent_at, sealed"
            " FROM reminders_sent WHERE patient_id = ?"
        )
        params: list[Any] = [patient_id]
        if reminder_id is not None:
            query += " AND reminder_id = ?"
            params.append(reminder_id)
        rows = self._exec(query + " ORDER BY sent_at, reminder_id, recipient_id", params)
        return [
            ReminderSentRow(r[0], r[1], r[2], r[3], from_db_time(r[4]), bytes(r[5]))
            for r in rows.fetchall()
        ]


class SqlOAuth(_Repo, OAuthRepository):
    _CODE_COLS = (
        "patient_id, code_hash, family_id, client_id, redirect_uri, challenge, scopes,"
        " issued_at, expires_at, used_at"
    )
    _ISSUED_COLS = (
        "patient_id, token_hash, kind, client_id, family_id, scopes, issued_at, expires_at,"
        " rotated_at, revoked_at"
    )

    def add_code(self, row: OAuthCodeRow) -> None:
        self._insert(
            f"INSERT INTO oauth_codes ({self._CODE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.patient_id,
                row.code_hash,
                row.family_id,
                row.client_id,
                row.redirect_uri,
                row.challenge,
                row.scopes,
                to_db_time(row.issued_at),
                to_db_time(row.expires_at),
                _opt_db_time(row.used_at),
            ),
            "an authorization code with this hash exists",
        )

    def code(self, code_hash: bytes) -> OAuthCodeRow | None:
        r = self._exec(
            f"SELECT {self._CODE_COLS} FROM oauth_codes WHERE code_hash = ?", (code_hash,)
        ).fetchone()
        if r is None:
            return None
        return OAuthCodeRow(
            patient_id=r[0],
            code_hash=bytes(r[1]),
            family_id=r[2],
            client_id=r[3],
            redirect_uri=r[4],
            challenge=r[5],
            scopes=r[6],
            issued_at=from_db_time(r[7]),
            expires_at=from_db_time(r[8]),
            used_at=_opt_time(r[9]),
        )

    def use_code(self, patient_id: str, code_hash: bytes, at: datetime) -> bool:
        cur = self._exec(
            "UPDATE oauth_codes SET used_at = ?"
            " WHERE patient_id = ? AND code_hash = ? AND used_at IS NULL",
            (to_db_time(at), patient_id, code_hash),
        )
        return cur.rowcount == 1

    def add_token(self, row: OAuthTokenRow) -> None:
        self._insert(
            f"INSERT INTO oauth_tokens ({self._ISSUED_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.patient_id,
                row.token_hash,
                row.kind,
                row.client_id,
                row.family_id,
                row.scopes,
                to_db_time(row.issued_at),
                to_db_time(row.expires_at),
                _opt_db_time(row.rotated_at),
                _opt_db_time(row.revoked_at),
            ),
            "a token with this hash exists",
        )

    def token(self, token_hash: bytes) -> OAuthTokenRow | None:
        r = self._exec(
            f"SELECT {self._ISSUED_COLS} FROM oauth_tokens WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        if r is None:
            return None
        return OAuthTokenRow(
            patient_id=r[0],
            token_hash=bytes(r[1]),
            kind=_text(r[2]),
            client_id=r[3],
            family_id=r[4],
            scopes=r[5],
            issued_at=from_db_time(r[6]),
            expires_at=from_db_time(r[7]),
            rotated_at=_opt_time(r[8]),
            revoked_at=_opt_time(r[9]),
        )

    def rotate(self, patient_id: str, token_hash: bytes, at: datetime) -> bool:
        cur = self._exec(
            "UPDATE oauth_tokens SET rotated_at = ? WHERE patient_id = ? AND token_hash = ?"
            " AND rotated_at IS NULL AND revoked_at IS NULL",
            (to_db_time(at), patient_id, token_hash),
        )
        return cur.rowcount == 1

    def revoke(self, patient_id: str, token_hash: bytes, at: datetime) -> bool:
        cur = self._exec(
            "UPDATE oauth_tokens SET revoked_at = ?"
            " WHERE patient_id = ? AND token_hash = ? AND revoked_at IS NULL",
            (to_db_time(at), patient_id, token_hash),
        )
        return cur.rowcount == 1

    def revoke_family(self, patient_id: str, family_id: str, at: datetime) -> int:
        cur = self._exec(
            "UPDATE oauth_tokens SET revoked_at = ?"
            " WHERE patient_id = ? AND family_id = ? AND revoked_at IS NULL",
            (to_db_time(at), patient_id, family_id),
        )
        return int(cur.rowcount)

    def purge(self, before: datetime, *, limit: int, part: Slice | None = None) -> int:
        moment = to_db_time(before)
        where, args = self._in_slice(part)
        deleted = 0
        for table, key in (("oauth_codes", "code_hash"), ("oauth_tokens", "token_hash")):
            rows = self._exec(
                f"SELECT patient_id, {key} FROM {table} WHERE expires_at < ?{where}"
                " ORDER BY expires_at LIMIT ?",
                (moment, *args, limit),
            ).fetchall()
            for r in rows:
                deleted += self._exec(
                    f"DELETE FROM {table} WHERE patient_id = ? AND {key} = ?", (r[0], r[1])
                ).rowcount
        return deleted

    def delete_for_patient(self, patient_id: str) -> int:
        self._exec("DELETE FROM oauth_codes WHERE patient_id = ?", (patient_id,))
        return int(
            self._exec("DELETE FROM oauth_tokens WHERE patient_id = ?", (patient_id,)).rowcount
        )


class SqlCatalogue(_Repo, CatalogueRepository):
    _APPLICATION = "id, client_id, vendor_id, status, changed_at, payload"
    _APP = (
        "client_id, application_id, name, publisher, category, exchange_tier, status,"
        " convention_until, payload"
    )
    _CONSENT = "patient_id, client_id, scopes, granted_at, granted_by, revoked_at"

    @staticmethod
    def _application(r: Sequence[Any]) -> ApplicationRow:
        return ApplicationRow(r[0], r[1], r[2], _text(r[3]), from_db_time(r[4]), _text(r[5]))

    @staticmethod
    def _app(r: Sequence[Any]) -> AppRow:
        return AppRow(
            r[0], r[1], r[2], r[3], r[4], _text(r[5]), _text(r[6]), _opt_time(r[7]), _text(r[8])
        )

    @staticmethod
    def _consent(r: Sequence[Any]) -> ConsentRow:
        return ConsentRow(r[0], r[1], _text(r[2]), from_db_time(r[3]), r[4], _opt_time(r[5]))

    def add_application(self, row: ApplicationRow) -> None:
        self._insert(
            f"INSERT INTO catalogue_applications ({self._APPLICATION}) VALUES (?, ?, ?, ?, ?, ?)",
            (
                row.id,
                row.client_id,
                row.vendor_id,
                row.status,
                to_db_time(row.changed_at),
                row.payload,
            ),
            "an application with this id or client id already exists",
        )

    def update_application(self, row: ApplicationRow) -> None:
        cur = self._exec(
            "UPDATE catalogue_applications SET status = ?, changed_at = ?, payload = ?"
            " WHERE id = ?",
            (row.status, to_db_time(row.changed_at), row.payload, row.id),
        )
        if cur.rowcount != 1:
            raise NotFoundError("no such application")

    def application(self, application_id: str) -> ApplicationRow | None:
        r = self._exec(
            f"SELECT {self._APPLICATION} FROM catalogue_applications WHERE id = ?",
            (application_id,),
        ).fetchone()
        return None if r is None else self._application(r)

    def applications(
        self, *, status: str | None = None, vendor_id: str | None = None
    ) -> list[ApplicationRow]:
        query = f"SELECT {self._APPLICATION} FROM catalogue_applications WHERE 1 = 1"
        params: list[Any] = []
        if status is not None:
            query += " AND status = ?"
            params.append(status)
        if vendor_id is not None:
            query += " AND vendor_id = ?"
            params.append(vendor_id)
        rows = self._exec(query + " ORDER BY id", params).fetchall()
        return [self._application(r) for r in rows]

    def put_app(self, row: AppRow) -> None:
        self._exec(
            f"INSERT INTO catalogue_apps ({self._APP}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (client_id) DO UPDATE SET application_id = excluded.application_id,"
            " name = excluded.name, publisher = excluded.publisher,"
            " category = excluded.category, exchange_tier = excluded.exchange_tier,"
            " status = excluded.status, convention_until = excluded.convention_until,"
            " payload = excluded.payload",
            (
                row.client_id,
                row.application_id,
                row.name,
                row.publisher,
                row.category,
                row.exchange_tier,
                row.status,
                _opt_db_time(row.convention_until),
                row.payload,
            ),
        )

    def app(self, client_id: str) -> AppRow | None:
        r = self._exec(
            f"SELECT {self._APP} FROM catalogue_apps WHERE client_id = ?", (client_id,)
        ).fetchone()
        return None if r is None else self._app(r)

    def apps(self, *, status: str | None = None) -> list[AppRow]:
        query = f"SELECT {self._APP} FROM catalogue_apps"
        params: list[Any] = []
        if status is not None:
            query += " WHERE status = ?"
            params.append(status)
        rows = self._exec(query + " ORDER BY name, client_id", params).fetchall()
        return [self._app(r) for r in rows]

    def put_consent(self, row: ConsentRow) -> None:
        self._exec(
            f"INSERT INTO app_consents ({self._CONSENT}) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (patient_id, client_id) DO UPDATE SET scopes = excluded.scopes,"
            " granted_at = excluded.granted_at, granted_by = excluded.granted_by,"
            " revoked_at = excluded.revoked_at",
            (
                row.patient_id,
                row.client_id,
                row.scopes,
                to_db_time(row.granted_at),
                row.by,
                _opt_db_time(row.revoked_at),
            ),
        )

    def consent(self, patient_id: str, client_id: str) -> ConsentRow | None:
        r = self._exec(
            f"SELECT {self._CONSENT} FROM app_consents WHERE patient_id = ? AND client_id = ?",
            (patient_id, client_id),
        ).fetchone()
        return None if r is None else self._consent(r)

    def consents(self, patient_id: str) -> list[ConsentRow]:
        rows = self._exec(
            f"SELECT {self._CONSENT} FROM app_consents WHERE patient_id = ? ORDER BY client_id",
            (patient_id,),
        ).fetchall()
        return [self._consent(r) for r in rows]

    def delete_consents(self, patient_id: str) -> int:
        return self._exec("DELETE FROM app_consents WHERE patient_id = ?", (patient_id,)).rowcount


class SqlSessions(_Repo, SessionRepository):
    _COLS = "token_hash, kind, person_id, created_at, last_seen, ends_at, csrf_token, emergencies"

    @staticmethod
    def _row(r: Sequence[Any]) -> WebSessionRow:
        return WebSessionRow(
            token_hash=bytes(r[0]),
            kind=r[1],
            person_id=r[2],
            created_at=from_db_time(r[3]),
            last_seen=from_db_time(r[4]),
            ends_at=from_db_time(r[5]),
            csrf_token=r[6],
            emergencies=r[7],
        )

    def add(self, row: WebSessionRow) -> None:
        self._insert(
            f"INSERT INTO web_sessions ({self._COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.token_hash,
                row.kind,
                row.person_id,
                to_db_time(row.created_at),
                to_db_time(row.last_seen),
                to_db_time(row.ends_at),
                row.csrf_token,
                row.emergencies,
            ),
            "a session with this token exists already",
        )

    def get(self, token_hash: bytes) -> WebSessionRow | None:
        query = f"SELECT {self._COLS} FROM web_sessions WHERE token_hash = ?"
        r = self._exec(query, (token_hash,)).fetchone()
        return None if r is None else self._row(r)

    def touch(self, token_hash: bytes, at: datetime) -> bool:
        when = to_db_time(at)
        # Two workers may serve one session at once: last_seen only moves forwards.
        self._exec(
            "UPDATE web_sessions SET last_seen = ? WHERE token_hash = ? AND last_seen < ?",
            (when, token_hash, when),
        )
        return self.get(token_hash) is not None

    def set_emergencies(self, token_hash: bytes, emergencies: str) -> bool:
        return (
            self._exec(
                "UPDATE web_sessions SET emergencies = ? WHERE token_hash = ?",
                (emergencies, token_hash),
            ).rowcount
            == 1
        )

    def delete(self, token_hash: bytes) -> bool:
        query = "DELETE FROM web_sessions WHERE token_hash = ?"
        return self._exec(query, (token_hash,)).rowcount == 1

    def delete_person(self, kind: str, person_id: str) -> int:
        query = "DELETE FROM web_sessions WHERE kind = ? AND person_id = ?"
        return self._exec(query, (kind, person_id)).rowcount

    def purge(self, *, ended_before: datetime, idle_before: datetime, limit: int) -> int:
        return self._exec(
            "DELETE FROM web_sessions WHERE token_hash IN (SELECT token_hash FROM web_sessions "
            "WHERE ends_at <= ? OR last_seen <= ? LIMIT ?)",
            (to_db_time(ended_before), to_db_time(idle_before), limit),
        ).rowcount

    def count(self) -> int:
        return int(self._exec("SELECT count(*) FROM web_sessions").fetchone()[0])


class SqlRateLimits(_Repo, RateLimitRepository):
    def hit(self, bucket: str, key_hash: bytes, window_start: datetime) -> int:
        start = to_db_time(window_start)
        # One statement: two workers counting the same key at once both count.
        self._exec(
            "INSERT INTO rate_limits (bucket, key_hash, window_start, hits) VALUES (?, ?, ?, 1) "
            "ON CONFLICT (bucket, key_hash, window_start) "
            "DO UPDATE SET hits = rate_limits.hits + 1",
            (bucket, key_hash, start),
        )
        return self.hits(bucket, key_hash, window_start)

    def hits(self, bucket: str, key_hash: bytes, window_start: datetime) -> int:
        r = self._exec(
            "SELECT hits FROM rate_limits WHERE bucket = ? AND key_hash = ? AND window_start = ?",
            (bucket, key_hash, to_db_time(window_start)),
        ).fetchone()
        return 0 if r is None else int(r[0])

    def purge(self, before: datetime, *, limit: int, bucket: str | None = None) -> int:
        where, args = ("", ()) if bucket is None else (" AND bucket = ?", (bucket,))
        return self._exec(
            "DELETE FROM rate_limits WHERE (bucket, key_hash, window_start) IN ("
            f"SELECT bucket, key_hash, window_start FROM rate_limits WHERE window_start < ?{where} "
            "LIMIT ?)",
            (to_db_time(before), *args, limit),
        ).rowcount


class SqlTransaction(Transaction):
    """A transaction whose repositories all run on one cursor."""

    def __init__(self, cursor: Cursor, dialect: Dialect) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self._patients = SqlPatients(cursor, dialect)
        self._keys = SqlKeys(cursor, dialect)
        self._access = SqlAccess(cursor, dialect)
        self.patients = self._patients
        self.keys = self._keys
        self.blobs = SqlBlobs(cursor, dialect)
        self.audit = SqlAudit(cursor, dialect)
        self.outbox = SqlOutbox(cursor, dialect)
        self._accounts = SqlAccounts(cursor, dialect)
        self.accounts = self._accounts
        self.codes = SqlCodes(cursor, dialect)
        self.proofs = SqlProofs(cursor, dialect)
        self.representations = SqlRepresentations(cursor, dialect)
        self.documents = SqlDocuments(cursor, dialect)
        self.profile = SqlEntries(cursor, dialect, "profile_entries")
        self.measures = SqlEntries(cursor, dialect, "measures")
        self.devices = SqlEntries(cursor, dialect, "devices")
        self.ledger = SqlLedger(cursor, dialect)
        self.access = self._access
        self.messages = SqlMessages(cursor, dialect)
        self.agenda = SqlAgenda(cursor, dialect)
        self.oauth = SqlOAuth(cursor, dialect)
        self.catalogue = SqlCatalogue(cursor, dialect)
        self.sessions = SqlSessions(cursor, dialect)
        self.rate_limits = SqlRateLimits(cursor, dialect)

    def subject(self, patient_id: str, professional_id: str | None = None) -> SubjectRow:
        """Everything :meth:`Transaction.subject` returns, in one statement, which also reads
        the patient's row and data key and keeps them for the rest of the transaction (an
        operation that decides, then seals or opens with the patient's key and writes to
        their address, reads each once and in the same round trip)."""
        if professional_id is None and patient_id in self._accounts.seen:
            # A batch read this account (get_many) and nothing changed it since.
            return SubjectRow(self._accounts.seen[patient_id])
        accounts = SqlAccounts._FIELDS
        head = (
            f"SELECT {', '.join('a.' + c for c in accounts)}, "
            f"{', '.join('pt.' + c.strip() for c in SqlPatients._COLS.split(','))}, "
            f"{', '.join('k.' + c.strip() for c in SqlKeys._COLS.split(','))}"
        )
        joins = (
            " FROM (SELECT CAST(? AS TEXT) AS pid) q"
            " LEFT JOIN accounts a ON a.patient_id = q.pid"
            " LEFT JOIN patients pt ON pt.id = q.pid"
            " LEFT JOIN data_keys k ON k.patient_id = q.pid"
        )
        params: list[Any] = [patient_id]
        if professional_id is not None:
            head += (
                f", {', '.join('p.' + c.strip() for c in SqlAccess._PRO.split(','))}"
                ", s.object_all, s.object_emergency, s.mask_all, s.notify_first_access,"
                " s.object_research, s.patient_id"
                f", {', '.join('g.' + c.strip() for c in SqlAccess._GRANT.split(','))}"
                ", CASE WHEN EXISTS (SELECT 1 FROM access_blocks b WHERE b.patient_id = q.pid"
                " AND b.professional_id = CAST(? AS TEXT)) THEN 1 ELSE 0 END"
                ", CASE WHEN EXISTS (SELECT 1 FROM access_seen v WHERE v.patient_id = q.pid"
                " AND v.professional_id = CAST(? AS TEXT)) THEN 1 ELSE 0 END"
            )
            joins += (
                " LEFT JOIN professionals p ON p.rpps = CAST(? AS TEXT)"
                " LEFT JOIN access_settings s ON s.patient_id = q.pid"
                " LEFT JOIN access_grants g ON p.rpps IS NOT NULL AND g.patient_id = q.pid"
                " AND g.professional_id = p.rpps"
            )
            # The EXISTS of the select list come before the FROM clause's placeholders.
            params = [professional_id, professional_id, patient_id, professional_id]
        order = " ORDER BY g.kind, g.since" if professional_id is not None else ""
        rows = self._access._exec(head + joins + order, params).fetchall()
        first = rows[0]
        n = len(accounts)
        account = None if first[0] is None else SqlAccounts._row(first[:n])
        patient = None if first[n] is None else SqlPatients._row(first[n : n + 4])
        key = None if first[n + 4] is None else SqlKeys._row(first[n + 4 : n + 9])
        self._patients.seen[patient_id] = patient
        self._keys.seen[patient_id] = key
        if professional_id is None or first[n + 9] is None:
            return SubjectRow(account)
        i = n + 9
        settings = None
        if first[i + 13] is not None:
            flags = [bool(v) for v in first[i + 8 : i + 13]]
            settings = AccessSettingsRow(patient_id, *flags)
        grants = tuple(
            GrantRow(
                r[i + 14],
                r[i + 15],
                r[i + 16],
                from_db_time(r[i + 17]),
                _opt_time(r[i + 18]),
                _opt_time(r[i + 19]),
                r[i + 20],
            )
            for r in rows
            if r[i + 14] is not None
        )
        if first[i + 22]:
            # Already seen: the first-access mark of this transaction's read has nothing to do.
            self._access.seen.add((patient_id, professional_id))
        return SubjectRow(
            account, ProfessionalRow(*first[i : i + 8]), grants, settings, bool(first[i + 21])
        )
