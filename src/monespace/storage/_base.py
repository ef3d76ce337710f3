"""The storage port: what a backend must offer.

A backend is a :class:`StorageBackend` that hands out :class:`Transaction` objects; a
transaction exposes one typed repository per kind of row. Services build every change inside
one write transaction, with its audit events and its notifications, so that a change, its
trace and its notifications are committed together or not at all.

Backends store and return rows; they never decide who may see them. Access is decided in
:mod:`monespace.access`, above this layer.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, ClassVar, Self

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

__all__ = [
    "AccessRepository",
    "AccountRepository",
    "AgendaRepository",
    "AuditRepository",
    "BlobRepository",
    "CatalogueRepository",
    "CodeRepository",
    "DocumentRepository",
    "EntryRepository",
    "KeyRepository",
    "LedgerRepository",
    "MessageRepository",
    "OAuthRepository",
    "OutboxRepository",
    "PatientRepository",
    "ProofRepository",
    "RateLimitRepository",
    "RepresentationRepository",
    "SessionRepository",
    "StorageBackend",
    "Transaction",
    "paged",
]


class PatientRepository(abc.ABC):
    """Registered persons."""

    @abc.abstractmethod
    def add(self, row: PatientRow) -> None:
        """Store a new person.

        :raises ConflictError: when the id or the NIR index is already stored.
        """

    @abc.abstractmethod
    def get(self, patient_id: str) -> PatientRow | None:
        """The person with this id, or ``None``."""

    def get_many(self, patient_ids: Sequence[str]) -> dict[str, PatientRow]:
        """The stored persons among *patient_ids*, by id (ids with none are left out), for
        batch jobs. This default asks :meth:`get` for each; a backend overrides it to read
        them in a few round trips.

        .. versionadded:: 0.3
        """
        found = {pid: self.get(pid) for pid in dict.fromkeys(patient_ids)}
        return {pid: row for pid, row in found.items() if row is not None}

    @abc.abstractmethod
    def find_by_nir_index(self, nir_index: bytes) -> PatientRow | None:
        """The person whose NIR has this blind index, or ``None``."""

    @abc.abstractmethod
    def replace_identity(self, patient_id: str, sealed_identity: bytes) -> None:
        """Replace the sealed identity of a stored person.

        :raises NotFoundError: when there is no such person.
        """

    @abc.abstractmethod
    def replace_nir_index(self, patient_id: str, nir_index: bytes) -> None:
        """Replace a person's NIR index (after a purge, with a random value, so that the NIR
        can be registered again).

        :raises NotFoundError: when there is no such person.
        """

    @abc.abstractmethod
    def count(self) -> int:
        """How many persons are stored."""

    @abc.abstractmethod
    def ids(self, *, after: str | None = None, limit: int = 1000) -> list[str]:
        """Patient ids in ascending order, after *after*: for batch jobs that must page."""


class KeyRepository(abc.ABC):
    """Wrapped data keys, one per patient, plus space-wide keys."""

    @abc.abstractmethod
    def add(self, row: DataKeyRow) -> None:
        """Store a patient's first data key.

        :raises ConflictError: when the patient already has one (even a destroyed one).
        """

    @abc.abstractmethod
    def get(self, owner_id: str) -> DataKeyRow | None:
        """The data-key row of *owner_id*, destroyed or not, or ``None``."""

    def get_many(self, owner_ids: Sequence[str]) -> dict[str, DataKeyRow]:
        """The data-key rows of *owner_ids* (destroyed or not), by owner (owners with none
        are left out), for batch jobs. This default asks :meth:`get` for each; a backend
        overrides it to read them in a few round trips.

        .. versionadded:: 0.3
        """
        found = {owner: self.get(owner) for owner in dict.fromkeys(owner_ids)}
        return {owner: row for owner, row in found.items() if row is not None}

    @abc.abstractmethod
    def rewrap(
        self, owner_id: str, *, expected_master_key_id: str, master_key_id: str, wrapped: bytes
    ) -> bool:
        """Replace a wrapped key if it is still wrapped by *expected_master_key_id*.

        :return: ``False`` when the row changed meanwhile (destroyed or already re-wrapped).
        """

    @abc.abstractmethod
    def destroy(self, owner_id: str, at: datetime) -> bool:
        """Erase the wrapped key, keeping a tombstone. ``False`` if there was none to erase."""

    @abc.abstractmethod
    def master_key_ids(self) -> set[str]:
        """The fingerprints of every master key that wraps at least one stored key."""

    @abc.abstractmethod
    def wrapped_by_other_than(self, master_key_id: str, *, limit: int) -> list[DataKeyRow]:
        """Up to *limit* live rows not wrapped by *master_key_id* (for rotation)."""

    def count_wrapped_by_other_than(self, master_key_id: str) -> int:
        """How many live rows are not wrapped by *master_key_id* (a rotation's length).

        This default pages through :meth:`wrapped_by_other_than`; backends with a query
        language count in one statement.
        """
        return len(self.wrapped_by_other_than(master_key_id, limit=2**62))


class BlobRepository(abc.ABC):
    """Encrypted contents."""

    @abc.abstractmethod
    def add(self, row: BlobRow) -> None:
        """Store a new blob.

        :raises ConflictError: when the id is taken.
        """

    @abc.abstractmethod
    def get(self, blob_id: str) -> BlobRow | None:
        """The blob with this id, or ``None``."""

    @abc.abstractmethod
    def list_for_patient(self, patient_id: str) -> list[BlobRow]:
        """Every blob of a patient, oldest first."""

    @abc.abstractmethod
    def delete_for_patient(self, patient_id: str) -> int:
        """Delete every blob of a patient; return how many were deleted."""

    @abc.abstractmethod
    def delete(self, blob_id: str) -> bool:
        """Delete one blob; ``False`` if there was none."""


class AuditRepository(abc.ABC):
    """The append-only audit trail. There is deliberately no update and no delete."""

    @abc.abstractmethod
    def last(self, shard: str = "0") -> AuditRow | None:
        """The newest event of *shard*, or ``None`` when it has none.

        .. versionchanged:: 0.3
           *shard*: each shard is a chain of its own (decision 0015).
        """

    @abc.abstractmethod
    def append(self, event: AuditRow) -> None:
        """Store *event*, whose ``seq`` must be one more than the last one's of its shard.

        :raises ConflictError: when ``seq`` is taken (another writer got there first).
        """

    def append_many(self, events: Sequence[AuditRow]) -> None:
        """:meth:`append` each of *events*, in order (several shards may be mixed; each
        event must follow the newest one of its shard, which may be an earlier one of
        *events*). This default appends them one by one; a backend overrides it to send
        them in one round trip.

        :raises ConflictError: when one does not follow (the caller rolls back: the others
            may be stored).

        .. versionadded:: 0.3
        """
        for event in events:
            self.append(event)

    @abc.abstractmethod
    def scan(self, *, after_seq: int = 0, limit: int = 1000, shard: str = "0") -> list[AuditRow]:
        """Events of *shard* with ``seq > after_seq`` in ascending order, at most *limit*.

        .. versionchanged:: 0.3
           *shard*.
        """

    @abc.abstractmethod
    def for_patient(
        self, patient_id: str, *, after_seq: int = 0, limit: int = 1000, after_shard: str = "0"
    ) -> list[AuditRow]:
        """A patient's events after the position ``(after_shard, after_seq)``, ordered by
        shard then ``seq``, at most *limit* (the events written before the trail was
        sharded are in shard ``0``, the later ones in the patient's shard).

        .. versionchanged:: 0.3
           *after_shard*: page with the last event's ``(shard, seq)``.
        """

    @abc.abstractmethod
    def scan_stored(
        self, *, after_seq: int = 0, limit: int = 1000, shard: str = "0"
    ) -> list[tuple[Any, ...]]:
        """As :meth:`scan`, but each event as the tuple of its stored values, timestamps as
        their stored text, in the column order of :class:`AuditRow`'s fields: what the
        chain's verification hashes, without building rows.

        .. versionadded:: 0.3
        """

    @abc.abstractmethod
    def shards(self) -> list[str]:
        """The shards of the trail (``"0"`` first, then the patient shards in order).

        .. versionadded:: 0.3
        """

    @abc.abstractmethod
    def head_seals(self) -> list[AuditSealRow]:
        """The head seal of every shard that has one, by shard.

        .. versionadded:: 0.3
        """

    @abc.abstractmethod
    def count(self) -> int:
        """How many events are stored."""

    @abc.abstractmethod
    def legacy_until(self, shard: str) -> int:
        """The last ``seq`` of *shard* written unkeyed, before the trail was keyed (0 when
        the shard was keyed from its first event).

        .. versionadded:: 0.2
        """

    @abc.abstractmethod
    def seal(self, row: AuditSealRow) -> None:
        """Store the head seal of ``row.shard``, replacing the previous one.

        .. versionadded:: 0.2
        """

    @abc.abstractmethod
    def head_seal(self, shard: str) -> AuditSealRow | None:
        """The head seal of *shard*, or ``None`` if it has none.

        .. versionadded:: 0.2
        """

    @abc.abstractmethod
    def add_checkpoint(self, rows: Sequence[CheckpointRow]) -> None:
        """Store the rows (one per shard) of a signed checkpoint.

        :raises ConflictError: when its number is taken.

        .. versionadded:: 0.2
        """

    @abc.abstractmethod
    def checkpoints(self, *, after_number: int = 0) -> list[CheckpointRow]:
        """Checkpoint rows numbered above *after_number*, by number then shard.

        .. versionadded:: 0.2
        """

    @abc.abstractmethod
    def last_checkpoint(self) -> list[CheckpointRow]:
        """The rows of the newest checkpoint (empty when there is none).

        .. versionadded:: 0.2
        """


class OutboxRepository(abc.ABC):
    """Notifications waiting for delivery."""

    @abc.abstractmethod
    def add(self, row: OutboxRow) -> None:
        """Queue a notification.

        :raises ConflictError: when its id or idempotency key is already queued.
        """

    def add_many(self, rows: Sequence[OutboxRow]) -> None:
        """Queue each of *rows*. This default adds them one by one; a backend overrides it
        to send them in one round trip.

        :raises ConflictError: when an id or idempotency key is already queued (the caller
            rolls back: the others may be stored).

        .. versionadded:: 0.3
        """
        for row in rows:
            self.add(row)

    @abc.abstractmethod
    def get(self, message_id: str) -> OutboxRow | None:
        """The notification with this id, or ``None``."""

    @abc.abstractmethod
    def due(self, now: datetime, *, limit: int) -> list[OutboxRow]:
        """Pending notifications whose next attempt is due, oldest first."""

    @abc.abstractmethod
    def update(self, row: OutboxRow) -> None:
        """Store the new delivery state of a queued notification (matched by id)."""

    @abc.abstractmethod
    def count(self, status: OutboxStatus | None = None) -> int:
        """How many notifications there are, in *status* or in all."""

    @abc.abstractmethod
    def claim(
        self, now: datetime, *, dispatcher: str, lease_until: datetime, limit: int
    ) -> list[OutboxRow]:
        """Claim up to *limit* due notifications for *dispatcher* until *lease_until*.

        A notification is due when pending, its next attempt has come, and it is unclaimed
        or its claim's lease ended before *now*. Claims made by concurrent dispatchers never
        overlap (PostgreSQL skips the rows another transaction has locked; SQLite serialises
        writers). Returns the claimed rows, with their new claim.

        .. versionadded:: 0.3
        """

    @abc.abstractmethod
    def cancel_for_patient(self, patient_id: str, reason: str) -> int:
        """Mark every pending notification about *patient_id* dead and erase its payload;
        return how many."""


class AccountRepository(abc.ABC):
    """The lifecycle record of each person's space."""

    @abc.abstractmethod
    def add(self, account: AccountRow, deadline_at: datetime | None) -> None:
        """Store the account of a registered person.

        :raises ConflictError: when the person already has one.
        """

    @abc.abstractmethod
    def get(self, patient_id: str) -> AccountRow | None:
        """The account of *patient_id*, or ``None``."""

    def get_many(self, patient_ids: Sequence[str]) -> dict[str, AccountRow]:
        """The accounts among *patient_ids*, by patient id (ids with none are left out),
        for batch jobs. This default asks :meth:`get` for each; a backend overrides it to
        read them in a few round trips, and may keep them for the rest of the transaction
        (:meth:`Transaction.subject` then serves them without reading again).

        .. versionadded:: 0.3
        """
        found = {pid: self.get(pid) for pid in dict.fromkeys(patient_ids)}
        return {pid: row for pid, row in found.items() if row is not None}

    @abc.abstractmethod
    def update(self, account: AccountRow, deadline_at: datetime | None) -> None:
        """Replace the stored account (matched by patient id).

        :raises NotFoundError: when there is none.
        """

    def update_many(self, accounts: Sequence[tuple[AccountRow, datetime | None]]) -> None:
        """:meth:`update` each ``(account, deadline_at)`` of *accounts*. This default
        updates them one by one; a backend overrides it to send them in one round trip.

        :raises NotFoundError: when one of them has no stored account (the caller rolls
            back: the others may be updated).

        .. versionadded:: 0.3
        """
        for account, deadline_at in accounts:
            self.update(account, deadline_at)

    @abc.abstractmethod
    def due(self, now: datetime, *, limit: int, part: Slice | None = None) -> list[AccountRow]:
        """Accounts whose deadline is at or before *now*, earliest deadline first.

        With *part*, only the rows of that slice of the patients (:class:`Slice`).

        .. versionchanged:: 0.3 *part*.
        """

    @abc.abstractmethod
    def in_state(
        self,
        state: str,
        *,
        after: str | None = None,
        limit: int = 1000,
        part: Slice | None = None,
    ) -> list[str]:
        """Patient ids of accounts in *state*, ascending, after *after* (for batch jobs).

        With *part*, only the ids of that slice of the patients (:class:`Slice`).

        .. versionchanged:: 0.3 *part*.
        """

    @abc.abstractmethod
    def count_by_state(self) -> dict[str, int]:
        """How many accounts are in each state (states with none are left out)."""


class CodeRepository(abc.ABC):
    """Provisional codes, one live code per person."""

    @abc.abstractmethod
    def put(self, record: CodeRow) -> None:
        """Store *record*, replacing the person's previous code if any."""

    def put_many(self, records: Sequence[CodeRow]) -> None:
        """:meth:`put` each of *records* (at most one per person). This default stores them
        one by one; a backend overrides it to send them in one round trip.

        .. versionadded:: 0.3
        """
        for record in records:
            self.put(record)

    @abc.abstractmethod
    def get(self, patient_id: str) -> CodeRow | None:
        """The person's current code record, or ``None``."""


class ProofRepository(abc.ABC):
    """Keyed hashes of what a person proves their identity with, and their failed attempts."""

    @abc.abstractmethod
    def put(self, record: ProofRow) -> None:
        """Store or replace the person's proof record."""

    @abc.abstractmethod
    def get(self, patient_id: str) -> ProofRow | None:
        """The person's proof record, or ``None``."""


class RepresentationRepository(abc.ABC):
    """Who represents whom."""

    @abc.abstractmethod
    def put(self, link: RepresentationRow) -> None:
        """Store or replace the link (matched by patient and representative)."""

    @abc.abstractmethod
    def get(self, patient_id: str, representative_id: str) -> RepresentationRow | None:
        """The link between the two, or ``None``."""

    @abc.abstractmethod
    def of_patient(self, patient_id: str) -> list[RepresentationRow]:
        """Every link (ended or not) in which *patient_id* is represented."""

    def of_patients(self, patient_ids: Sequence[str]) -> list[RepresentationRow]:
        """Every link (ended or not) in which one of *patient_ids* is represented, for
        batch jobs. This default asks :meth:`of_patient` for each; a backend overrides it
        to read them in a few round trips.

        .. versionadded:: 0.3
        """
        return [link for pid in dict.fromkeys(patient_ids) for link in self.of_patient(pid)]

    @abc.abstractmethod
    def by_representative(self, representative_id: str) -> list[RepresentationRow]:
        """Every link (ended or not) in which *representative_id* represents someone."""

    @abc.abstractmethod
    def ending(
        self, now: datetime, *, limit: int, part: Slice | None = None
    ) -> list[RepresentationRow]:
        """Links not yet ended whose ``ends_at`` is at or before *now*, earliest first.

        With *part*, only the rows of that slice of the patients (:class:`Slice`).

        .. versionchanged:: 0.3 *part*.
        """


class DocumentRepository(abc.ABC):
    """Document versions of the records."""

    @abc.abstractmethod
    def add(self, row: DocumentRow) -> None:
        """Store a new document version.

        :raises ConflictError: when its id, or its unique id within the patient's record, is
            taken.
        """

    @abc.abstractmethod
    def get(self, document_id: str) -> DocumentRow | None:
        """The document version with this id, or ``None``."""

    @abc.abstractmethod
    def by_unique_id(self, patient_id: str, unique_id: str) -> DocumentRow | None:
        """The version of *patient_id*'s record with this XDS unique id, or ``None``."""

    @abc.abstractmethod
    def update(self, row: DocumentRow) -> None:
        """Replace a stored version (matched by id).

        :raises NotFoundError: when there is none.
        """

    @abc.abstractmethod
    def for_patient(self, patient_id: str) -> list[DocumentRow]:
        """Every version in a record, oldest creation time first."""

    def newest_for_patient(
        self, patient_id: str, *, before: tuple[datetime, str] | None = None, limit: int
    ) -> list[DocumentRow]:
        """At most *limit* versions of a record, newest first (by creation time, then id),
        only those strictly before *before* (a ``(created_at, id)`` pair) when given: a
        keyset page, whose cost does not grow with how deep into the record it is.

        This default filters :meth:`for_patient`; SQL backends read only the page.

        .. versionadded:: 0.2
        """
        rows = self.for_patient(patient_id)
        rows.reverse()
        if before is not None:
            rows = [r for r in rows if (r.created_at, r.id) < before]
        return rows[:limit]

    def kinds_for_patient(
        self,
        patient_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[tuple[DocumentRow, int]]:
        """The versions of a record created in ``[since, until)``, grouped by every column
        the access policy and the search filters read (:data:`DOCUMENT_KIND_COLUMNS`): one
        version of each group, and how many versions the group holds. Counting what a
        search may list then takes one decision per group, not one per version.

        This default groups :meth:`for_patient`; SQL backends group in the database.

        .. versionadded:: 0.2
        """
        first: dict[tuple[object, ...], DocumentRow] = {}
        counts: dict[tuple[object, ...], int] = {}
        for row in self.for_patient(patient_id):
            if (since is not None and row.created_at < since) or (
                until is not None and row.created_at >= until
            ):
                continue
            key = tuple(getattr(row, name) for name in DOCUMENT_KIND_COLUMNS)
            first.setdefault(key, row)
            counts[key] = counts.get(key, 0) + 1
        return [(row, counts[key]) for key, row in first.items()]

    @abc.abstractmethod
    def releasing(
        self, now: datetime, *, limit: int, part: Slice | None = None
    ) -> list[DocumentRow]:
        """Versions whose ``release_at`` is at or before *now*, earliest first.

        With *part*, only the rows of that slice of the patients (:class:`Slice`).

        .. versionchanged:: 0.3 *part*.
        """

    @abc.abstractmethod
    def to_notify(
        self, now: datetime, *, limit: int, part: Slice | None = None
    ) -> list[DocumentRow]:
        """Versions whose ``notify_at`` is at or before *now*, earliest first.

        With *part*, only the rows of that slice of the patients (:class:`Slice`).

        .. versionchanged:: 0.3 *part*.
        """

    @abc.abstractmethod
    def delete_for_patient(self, patient_id: str) -> int:
        """Delete every version of a record; return how many were deleted."""

    @abc.abstractmethod
    def delete(self, document_id: str) -> bool:
        """Delete one version (none may replace it); ``False`` if there was none."""


class EntryRepository(abc.ABC):
    """Small sealed records of a space (profil médical entries, measures, the devices of
    measures)."""

    @abc.abstractmethod
    def add(self, row: EntryRow) -> None:
        """Store a new entry.

        :raises ConflictError: when its id is taken.
        """

    @abc.abstractmethod
    def get(self, entry_id: str) -> EntryRow | None:
        """The entry with this id, or ``None``."""

    @abc.abstractmethod
    def update(self, row: EntryRow) -> None:
        """Replace an entry (matched by id).

        :raises NotFoundError: when there is none.
        """

    @abc.abstractmethod
    def delete(self, entry_id: str) -> bool:
        """Delete an entry; ``False`` if there was none."""

    @abc.abstractmethod
    def for_patient(
        self,
        patient_id: str,
        *,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[EntryRow]:
        """A patient's entries, optionally of one *kind* and with ``since <= at < until``,
        in ascending ``at`` order."""

    @abc.abstractmethod
    def delete_for_patient(self, patient_id: str) -> int:
        """Delete every entry of a patient; return how many."""


class LedgerRepository(abc.ABC):
    """The reconciliation ledger of legacy DMP imports (append-only)."""

    @abc.abstractmethod
    def add(self, row: LedgerRow) -> None:
        """Append a line."""

    @abc.abstractmethod
    def for_run(self, run_id: str) -> list[LedgerRow]:
        """The lines of one run, in the order they were written."""

    @abc.abstractmethod
    def imported(self, sha256: bytes) -> LedgerRow | None:
        """The line of an earlier import of a document with these bytes, if any."""

    @abc.abstractmethod
    def imported_for_patient(self, patient_id: str) -> list[LedgerRow]:
        """The ``imported`` lines of a patient, oldest first."""


class AccessRepository(abc.ABC):
    """Professionals, grants, blocks, settings and emergency sessions."""

    @abc.abstractmethod
    def put_professional(self, professional: ProfessionalRow) -> None:
        """Store or replace a directory entry."""

    @abc.abstractmethod
    def professional(self, rpps: str) -> ProfessionalRow | None:
        """The directory entry of *rpps*, or ``None``."""

    @abc.abstractmethod
    def put_grant(self, grant: GrantRow) -> None:
        """Store or replace a grant (matched by patient, professional and kind)."""

    @abc.abstractmethod
    def grants(self, patient_id: str, professional_id: str | None = None) -> list[GrantRow]:
        """A patient's grants (ended ones too), optionally for one professional."""

    @abc.abstractmethod
    def block(self, patient_id: str, professional_id: str, at: datetime) -> None:
        """Record that the patient blocked the professional (idempotent)."""

    @abc.abstractmethod
    def unblock(self, patient_id: str, professional_id: str) -> bool:
        """Lift a block; ``False`` if there was none."""

    @abc.abstractmethod
    def blocked(self, patient_id: str) -> list[str]:
        """The professionals a patient blocked, in RPPS order."""

    @abc.abstractmethod
    def settings(self, patient_id: str) -> AccessSettingsRow | None:
        """A patient's settings, or ``None`` when never changed (defaults apply)."""

    @abc.abstractmethod
    def put_settings(self, settings: AccessSettingsRow) -> None:
        """Store or replace a patient's settings."""

    @abc.abstractmethod
    def add_emergency(self, session: EmergencyRow, justification: bytes) -> None:
        """Store an emergency session and its sealed justification."""

    @abc.abstractmethod
    def emergencies(self, patient_id: str, professional_id: str) -> list[EmergencyRow]:
        """The emergency sessions of a professional on a record, oldest first."""

    @abc.abstractmethod
    def mark_seen(self, patient_id: str, professional_id: str, at: datetime) -> bool:
        """Remember that the professional read the record; ``True`` the first time."""

    @abc.abstractmethod
    def professional_by_mssante(self, address: str) -> ProfessionalRow | None:
        """The directory entry whose MSSanté address is *address*, compared without regard
        to ASCII case, or ``None``. When several share it (an organisational mailbox), the
        lowest RPPS number wins."""


class MessageRepository(abc.ABC):
    """Secure-messaging threads, their messages and the messages' attachments."""

    @abc.abstractmethod
    def add_thread(self, row: ThreadRow) -> None:
        """Store a new thread.

        :raises ConflictError: when its id is taken.
        """

    @abc.abstractmethod
    def get_thread(self, thread_id: str) -> ThreadRow | None:
        """The thread with this id, or ``None``."""

    @abc.abstractmethod
    def update_thread(self, row: ThreadRow) -> None:
        """Replace a stored thread (matched by id).

        :raises NotFoundError: when there is none.
        """

    @abc.abstractmethod
    def threads_for_patient(self, patient_id: str) -> list[ThreadRow]:
        """A patient's threads, most recent message first (then by id)."""

    @abc.abstractmethod
    def threads_for_professional(self, professional_id: str) -> list[ThreadRow]:
        """A professional's threads with every patient, most recent message first."""

    @abc.abstractmethod
    def add_message(self, row: MessageRow) -> None:
        """Store a new message.

        :raises ConflictError: when its id, its ``rfc_message_id`` for the same patient, or
            its position in the thread is taken.
        """

    @abc.abstractmethod
    def get_message(self, message_id: str) -> MessageRow | None:
        """The message with this id, or ``None``."""

    @abc.abstractmethod
    def update_message(self, row: MessageRow) -> None:
        """Replace a stored message (matched by id).

        :raises NotFoundError: when there is none.
        """

    @abc.abstractmethod
    def messages_in_thread(self, thread_id: str) -> list[MessageRow]:
        """A thread's messages in conversation order (``position``, then id)."""

    @abc.abstractmethod
    def by_rfc_message_id(self, patient_id: str, rfc_message_id: str) -> MessageRow | None:
        """The message of *patient_id* with this ``Message-ID``, or ``None``."""

    @abc.abstractmethod
    def unread_for_patient(self, patient_id: str) -> dict[str, int]:
        """Thread id → messages from professionals the patient's side has not read (threads
        with none are left out)."""

    @abc.abstractmethod
    def unread_for_professional(self, professional_id: str) -> dict[str, int]:
        """Thread id → messages from the patient's side the professional has not read."""

    @abc.abstractmethod
    def add_attachment(self, row: AttachmentRow) -> None:
        """Store a new attachment.

        :raises ConflictError: when its id is taken.
        """

    @abc.abstractmethod
    def get_attachment(self, attachment_id: str) -> AttachmentRow | None:
        """The attachment with this id, or ``None``."""

    @abc.abstractmethod
    def attachments_in_thread(self, thread_id: str) -> list[AttachmentRow]:
        """Every attachment of a thread's messages, by message id then position."""

    @abc.abstractmethod
    def sent_before(
        self, before: datetime, *, limit: int, part: Slice | None = None
    ) -> list[MessageRow]:
        """Messages with ``sent_at < before``, oldest first, at most *limit* (retention).

        With *part*, only the rows of that slice of the patients (:class:`Slice`).

        .. versionchanged:: 0.3 *part*.
        """

    @abc.abstractmethod
    def delete_message(self, message_id: str) -> bool:
        """Delete a message and its attachment rows (not their blobs); ``False`` if there
        was none."""

    @abc.abstractmethod
    def delete_thread(self, thread_id: str) -> bool:
        """Delete a thread with its messages and attachment rows (not their blobs);
        ``False`` if there was none."""

    @abc.abstractmethod
    def delete_for_patient(self, patient_id: str) -> int:
        """Delete every thread, message and attachment row of a patient; return how many
        messages were deleted."""


class AgendaRepository(abc.ABC):
    """Agenda events with their history, reminder opt-outs and the reminders already sent.

    Every method names the patient: every key of these tables starts with the patient id.
    """

    @abc.abstractmethod
    def add(self, row: AgendaEventRow) -> None:
        """Store a new event (version 1) and its first history line.

        :raises ConflictError: when its id or its UID is taken in this patient's agenda.
        """

    @abc.abstractmethod
    def update(self, row: AgendaEventRow) -> None:
        """Store a new version of an event: *row* replaces version ``row.version - 1``, and
        is appended to the history.

        :raises NotFoundError: when there is no such event at the version before.
        """

    @abc.abstractmethod
    def get(self, patient_id: str, event_id: str) -> AgendaEventRow | None:
        """The current version of an event, or ``None``."""

    @abc.abstractmethod
    def by_uid(self, patient_id: str, uid: str) -> AgendaEventRow | None:
        """The current version of the event with this iCalendar UID, or ``None``."""

    @abc.abstractmethod
    def for_patient(
        self,
        patient_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
    ) -> list[AgendaEventRow]:
        """A patient's events with ``since <= starts_at < until``, optionally of one status,
        in ascending ``starts_at`` order."""

    @abc.abstractmethod
    def history(self, patient_id: str, event_id: str) -> list[AgendaEventRow]:
        """Every version of an event, oldest first."""

    @abc.abstractmethod
    def delete_for_patient(self, patient_id: str) -> int:
        """Delete a patient's events, history, opt-outs and sent lines; return how many
        events."""

    @abc.abstractmethod
    def opt_outs(self, patient_id: str) -> list[ReminderOptOutRow]:
        """The reminder families a patient opted out of, by family name."""

    @abc.abstractmethod
    def set_opt_out(self, row: ReminderOptOutRow) -> bool:
        """Opt out of a family; ``False`` if the patient had already."""

    @abc.abstractmethod
    def clear_opt_out(self, patient_id: str, family: str) -> bool:
        """Opt back in; ``False`` if the patient had not opted out."""

    @abc.abstractmethod
    def mark_sent(self, row: ReminderSentRow) -> bool:
        """Record that a reminder was queued for a recipient in a cycle; ``False`` (and
        nothing written) if it already was."""

    @abc.abstractmethod
    def sent(self, patient_id: str, reminder_id: str | None = None) -> list[ReminderSentRow]:
        """The reminders queued about a patient (optionally one reminder), oldest first."""


class OAuthRepository(abc.ABC):
    """OAuth 2 authorization codes and tokens, found by the keyed hash of their secret.

    Every key starts with the patient id (tokens are patient data); the lookups by hash use
    an index of their own.
    """

    @abc.abstractmethod
    def add_code(self, row: OAuthCodeRow) -> None:
        """Store a new authorization code.

        :raises ConflictError: when a code with this hash exists.
        """

    @abc.abstractmethod
    def code(self, code_hash: bytes) -> OAuthCodeRow | None:
        """The code with this hash, used or not, or ``None``."""

    @abc.abstractmethod
    def use_code(self, patient_id: str, code_hash: bytes, at: datetime) -> bool:
        """Mark a code used; ``False`` (nothing written) if it already was."""

    @abc.abstractmethod
    def add_token(self, row: OAuthTokenRow) -> None:
        """Store a new token.

        :raises ConflictError: when a token with this hash exists.
        """

    @abc.abstractmethod
    def token(self, token_hash: bytes) -> OAuthTokenRow | None:
        """The token with this hash, whatever its state, or ``None``."""

    @abc.abstractmethod
    def rotate(self, patient_id: str, token_hash: bytes, at: datetime) -> bool:
        """Mark a refresh token exchanged; ``False`` (nothing written) if it already was, or
        was revoked."""

    @abc.abstractmethod
    def revoke(self, patient_id: str, token_hash: bytes, at: datetime) -> bool:
        """Revoke one token; ``False`` if it already was."""

    @abc.abstractmethod
    def revoke_family(self, patient_id: str, family_id: str, at: datetime) -> int:
        """Revoke every token of a family not revoked yet; return how many."""

    @abc.abstractmethod
    def purge(self, before: datetime, *, limit: int, part: Slice | None = None) -> int:
        """Delete up to *limit* codes and up to *limit* tokens that expired before *before*;
        return how many rows in all.

        With *part*, only the rows of that slice of the patients (:class:`Slice`).

        .. versionchanged:: 0.3 *part*.
        """

    @abc.abstractmethod
    def delete_for_patient(self, patient_id: str) -> int:
        """Delete a patient's codes and tokens; return how many tokens."""


class CatalogueRepository(abc.ABC):
    """The référencement's applications, the catalogue's apps (shared reference data, no
    patient key) and patients' consents to apps (keyed by patient id first).

    .. versionadded:: 0.2
    """

    @abc.abstractmethod
    def add_application(self, row: ApplicationRow) -> None:
        """Store a new application.

        :raises ConflictError: when its id or client id is taken.
        """

    @abc.abstractmethod
    def update_application(self, row: ApplicationRow) -> None:
        """Replace an application's status, time and payload.

        :raises NotFoundError: when there is no application with this id.
        """

    @abc.abstractmethod
    def application(self, application_id: str) -> ApplicationRow | None:
        """The application with this id, or ``None``."""

    @abc.abstractmethod
    def applications(
        self, *, status: str | None = None, vendor_id: str | None = None
    ) -> list[ApplicationRow]:
        """Applications (optionally of one status, or of one vendor), by id."""

    @abc.abstractmethod
    def put_app(self, row: AppRow) -> None:
        """Store or replace the catalogue's entry of an app."""

    @abc.abstractmethod
    def app(self, client_id: str) -> AppRow | None:
        """The catalogue's entry with this client id, or ``None``."""

    @abc.abstractmethod
    def apps(self, *, status: str | None = None) -> list[AppRow]:
        """The catalogue's entries (optionally of one status), by name then client id."""

    @abc.abstractmethod
    def put_consent(self, row: ConsentRow) -> None:
        """Store or replace a patient's consent to an app."""

    @abc.abstractmethod
    def consent(self, patient_id: str, client_id: str) -> ConsentRow | None:
        """A patient's consent to an app (in force or revoked), or ``None``."""

    @abc.abstractmethod
    def consents(self, patient_id: str) -> list[ConsentRow]:
        """Every consent a patient gave (in force or revoked), by client id."""

    @abc.abstractmethod
    def delete_consents(self, patient_id: str) -> int:
        """Delete a patient's consents (purge); return how many."""


class SessionRepository(abc.ABC):
    """The demo server's logged-in sessions, shared by its worker processes.

    .. versionadded:: 0.3
    """

    @abc.abstractmethod
    def add(self, row: WebSessionRow) -> None:
        """Store a new session.

        :raises ConflictError: when a session has the same token hash.
        """

    @abc.abstractmethod
    def get(self, token_hash: bytes) -> WebSessionRow | None:
        """The session of *token_hash*, whether or not it has ended, or ``None``."""

    @abc.abstractmethod
    def touch(self, token_hash: bytes, at: datetime) -> bool:
        """Record that the session was used at *at* (never moves ``last_seen`` backwards).
        Returns whether the session exists."""

    @abc.abstractmethod
    def set_emergencies(self, token_hash: bytes, emergencies: str) -> bool:
        """Replace the session's emergencies (JSON text). Returns whether it exists."""

    @abc.abstractmethod
    def delete(self, token_hash: bytes) -> bool:
        """End one session. Returns whether there was one."""

    @abc.abstractmethod
    def delete_person(self, kind: str, person_id: str) -> int:
        """End every session of one person; return how many."""

    @abc.abstractmethod
    def purge(self, *, ended_before: datetime, idle_before: datetime, limit: int) -> int:
        """Delete up to *limit* sessions that ended before *ended_before* or were last used
        before *idle_before*; return how many."""

    @abc.abstractmethod
    def count(self) -> int:
        """How many sessions are stored (ended ones not yet purged included)."""


class RateLimitRepository(abc.ABC):
    """Attempt counters per fixed window, shared by every server process.

    .. versionadded:: 0.3
    """

    @abc.abstractmethod
    def hit(self, bucket: str, key_hash: bytes, window_start: datetime) -> int:
        """Add one attempt to the counter of (*bucket*, *key_hash*, *window_start*) in one
        atomic statement, and return the counter's new value."""

    @abc.abstractmethod
    def hits(self, bucket: str, key_hash: bytes, window_start: datetime) -> int:
        """The counter's value (0 when absent); counts nothing."""

    @abc.abstractmethod
    def purge(self, before: datetime, *, limit: int, bucket: str | None = None) -> int:
        """Delete up to *limit* counters of windows that started before *before* (of one
        *bucket*, or of any); return how many."""


class Transaction(abc.ABC):
    """One unit of work against a backend: commit together or not at all."""

    patients: PatientRepository
    keys: KeyRepository
    blobs: BlobRepository
    audit: AuditRepository
    outbox: OutboxRepository
    accounts: AccountRepository
    codes: CodeRepository
    proofs: ProofRepository
    representations: RepresentationRepository
    documents: DocumentRepository
    profile: EntryRepository
    measures: EntryRepository
    devices: EntryRepository
    ledger: LedgerRepository
    access: AccessRepository
    messages: MessageRepository
    agenda: AgendaRepository
    oauth: OAuthRepository
    catalogue: CatalogueRepository
    sessions: SessionRepository
    rate_limits: RateLimitRepository

    def subject(self, patient_id: str, professional_id: str | None = None) -> SubjectRow:
        """What an access decision on *patient_id*'s record needs: the account and, when
        *professional_id* is given, the professional's directory entry, grants on the
        record, the patient's access settings and whether the patient blocked them.

        This default asks each repository in turn; a backend overrides it to read all of it
        in one round trip (:class:`~monespace.storage.SqlTransaction` does), and may keep
        what it read for the rest of the transaction (the patient's row and data key).

        .. versionadded:: 0.2
        """
        account = self.accounts.get(patient_id)
        if professional_id is None:
            return SubjectRow(account)
        professional = self.access.professional(professional_id)
        if professional is None:
            return SubjectRow(account)
        return SubjectRow(
            account,
            professional,
            tuple(self.access.grants(patient_id, professional_id)),
            self.access.settings(patient_id),
            professional_id in self.access.blocked(patient_id),
        )


class StorageBackend(abc.ABC):
    """A storage backend, registered by URL scheme.

    Subclasses set ``name`` and ``schemes`` and implement the methods below. The contract
    suite in :mod:`monespace.testing` checks a backend against the reference behaviour.

    .. versionadded:: 0.1
    """

    name: ClassVar[str]
    schemes: ClassVar[Sequence[str]]
    #: Whether several processes may open this store at once and each write to it (a
    #: database server). ``monespace serve --workers N`` with N > 1 needs it.
    #:
    #: .. versionadded:: 0.3
    shared_by_processes: ClassVar[bool] = False

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str) -> Self:
        """Open (and migrate, when needed) the store at *url*.

        :raises SchemaVersionError: when the store was written by a newer monespace.
        """

    @abc.abstractmethod
    def write(self) -> AbstractContextManager[Transaction]:
        """A write transaction; writers are serialised. Commits when the block exits normally,
        rolls back when it raises."""

    @abc.abstractmethod
    def read(self) -> AbstractContextManager[Transaction]:
        """A read-only transaction seeing one consistent snapshot."""

    @property
    @abc.abstractmethod
    def schema_version(self) -> int:
        """The schema version of the open store."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections and files. Idempotent."""

    def scrub(self) -> None:  # noqa: B027 - optional: most backends keep no stale copies
        """Make deleted data unrecoverable from the store's own files, now.

        Called after a purge (crypto-shredding): a backend whose journal keeps copies of
        deleted pages (SQLite's write-ahead log) flushes and truncates it here. The default
        does nothing.
        """

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def paged(fetch: Callable[[int, int], list[AuditRow]], page: int = 1000) -> Iterator[AuditRow]:
    """Iterate over an audit scan ``fetch(after_seq, limit)`` page by page, in constant memory."""
    after = 0
    while True:
        batch = fetch(after, page)
        if not batch:
            return
        yield from batch
        after = batch[-1].seq
