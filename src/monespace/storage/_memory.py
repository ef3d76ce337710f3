"""The in-memory backend: the reference behaviour, and fast storage for tests.

State lives in plain dicts behind one lock. A write transaction records an undo action for
every change and replays them backwards if the block raises, so a failed operation leaves
nothing behind, exactly as a rolled-back SQL transaction would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar, Self

import attrs

from ..access._model import AccessSettings, EmergencySession, Grant, Professional
from ..accounts import Account, CodeRecord, ProofRecord, Representation
from ..audit import AuditEvent
from ..errors import ConflictError, NotFoundError, StorageError
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
    MessageRepository,
    OutboxRepository,
    PatientRepository,
    ProofRepository,
    RepresentationRepository,
    StorageBackend,
    Transaction,
)
from ._rows import (
    AttachmentRow,
    BlobRow,
    DataKeyRow,
    DocumentRow,
    EntryRow,
    LedgerRow,
    MessageRow,
    OutboxRow,
    OutboxStatus,
    PatientRow,
    ThreadRow,
)
from ._sqlite import LATEST_SCHEMA_VERSION

__all__ = ["MemoryStorage"]

_Undo = Callable[[], object]


class _State:
    def __init__(self) -> None:
        self.patients: dict[str, PatientRow] = {}
        self.nir_index: dict[bytes, str] = {}
        self.keys: dict[str, DataKeyRow] = {}
        self.blobs: dict[str, BlobRow] = {}
        self.audit: list[AuditEvent] = []
        self.outbox: dict[str, OutboxRow] = {}
        self.outbox_keys: dict[str, str] = {}
        self.accounts: dict[str, tuple[Account, datetime | None]] = {}
        self.codes: dict[str, CodeRecord] = {}
        self.proofs: dict[str, ProofRecord] = {}
        self.representations: dict[tuple[str, str], Representation] = {}
        self.documents: dict[str, DocumentRow] = {}
        self.profile: dict[str, EntryRow] = {}
        self.measures: dict[str, EntryRow] = {}
        self.ledger: list[LedgerRow] = []
        self.professionals: dict[str, Professional] = {}
        self.grants: dict[tuple[str, str, str], Grant] = {}
        self.blocks: dict[tuple[str, str], datetime] = {}
        self.access_settings: dict[str, AccessSettings] = {}
        self.emergencies: dict[str, tuple[EmergencySession, bytes]] = {}
        self.seen: dict[tuple[str, str], datetime] = {}
        self.threads: dict[str, ThreadRow] = {}
        self.messages: dict[str, MessageRow] = {}
        self.attachments: dict[str, AttachmentRow] = {}


class _Repo:
    def __init__(self, tx: _MemoryTransaction) -> None:
        self._tx = tx
        self._s = tx.state

    def _changed(self, undo: _Undo) -> None:
        self._tx.record(undo)

    def _set(self, mapping: dict[Any, Any], key: object, value: object) -> None:
        """Set ``mapping[key]``, recording how to put back what was there (or nothing)."""
        if key in mapping:
            old = mapping[key]
            self._changed(lambda: mapping.__setitem__(key, old))
        else:
            self._changed(lambda: mapping.pop(key))
        mapping[key] = value


class _Patients(_Repo, PatientRepository):
    def add(self, row: PatientRow) -> None:
        if row.id in self._s.patients or row.nir_index in self._s.nir_index:
            raise ConflictError("a person with this id or NIR is already registered")
        self._changed(lambda: (self._s.patients.pop(row.id), self._s.nir_index.pop(row.nir_index)))
        self._s.patients[row.id] = row
        self._s.nir_index[row.nir_index] = row.id

    def get(self, patient_id: str) -> PatientRow | None:
        return self._s.patients.get(patient_id)

    def find_by_nir_index(self, nir_index: bytes) -> PatientRow | None:
        patient_id = self._s.nir_index.get(nir_index)
        return None if patient_id is None else self._s.patients[patient_id]

    def replace_identity(self, patient_id: str, sealed_identity: bytes) -> None:
        old = self._s.patients.get(patient_id)
        if old is None:
            raise NotFoundError("no such person")
        self._changed(lambda: self._s.patients.__setitem__(patient_id, old))
        self._s.patients[patient_id] = attrs.evolve(old, sealed_identity=sealed_identity)

    def replace_nir_index(self, patient_id: str, nir_index: bytes) -> None:
        old = self._s.patients.get(patient_id)
        if old is None:
            raise NotFoundError("no such person")
        self._set(self._s.patients, patient_id, attrs.evolve(old, nir_index=nir_index))
        self._changed(lambda: self._s.nir_index.pop(nir_index))
        self._s.nir_index[nir_index] = patient_id
        self._changed(lambda: self._s.nir_index.__setitem__(old.nir_index, patient_id))
        del self._s.nir_index[old.nir_index]

    def count(self) -> int:
        return len(self._s.patients)

    def ids(self, *, after: str | None = None, limit: int = 1000) -> list[str]:
        return sorted(i for i in self._s.patients if after is None or i > after)[:limit]


class _Keys(_Repo, KeyRepository):
    def add(self, row: DataKeyRow) -> None:
        if row.patient_id in self._s.keys:
            raise ConflictError("this owner already has a data key")
        self._changed(lambda: self._s.keys.pop(row.patient_id))
        self._s.keys[row.patient_id] = row

    def get(self, owner_id: str) -> DataKeyRow | None:
        return self._s.keys.get(owner_id)

    def _replace(self, old: DataKeyRow, new: DataKeyRow) -> None:
        self._changed(lambda: self._s.keys.__setitem__(old.patient_id, old))
        self._s.keys[old.patient_id] = new

    def rewrap(
        self, owner_id: str, *, expected_master_key_id: str, master_key_id: str, wrapped: bytes
    ) -> bool:
        old = self._s.keys.get(owner_id)
        if old is None or old.wrapped is None or old.master_key_id != expected_master_key_id:
            return False
        self._replace(old, attrs.evolve(old, master_key_id=master_key_id, wrapped=wrapped))
        return True

    def destroy(self, owner_id: str, at: datetime) -> bool:
        old = self._s.keys.get(owner_id)
        if old is None or old.wrapped is None:
            return False
        self._replace(old, attrs.evolve(old, wrapped=None, master_key_id=None, destroyed_at=at))
        return True

    def master_key_ids(self) -> set[str]:
        return {r.master_key_id for r in self._s.keys.values() if r.master_key_id is not None}

    def wrapped_by_other_than(self, master_key_id: str, *, limit: int) -> list[DataKeyRow]:
        rows = (
            r
            for r in sorted(self._s.keys.values(), key=lambda r: r.patient_id)
            if r.wrapped is not None and r.master_key_id != master_key_id
        )
        return [row for _, row in zip(range(limit), rows, strict=False)]


class _Blobs(_Repo, BlobRepository):
    def add(self, row: BlobRow) -> None:
        if row.id in self._s.blobs:
            raise ConflictError("a blob with this id already exists")
        self._changed(lambda: self._s.blobs.pop(row.id))
        self._s.blobs[row.id] = row

    def get(self, blob_id: str) -> BlobRow | None:
        return self._s.blobs.get(blob_id)

    def list_for_patient(self, patient_id: str) -> list[BlobRow]:
        rows = [b for b in self._s.blobs.values() if b.patient_id == patient_id]
        return sorted(rows, key=lambda b: (b.created_at, b.id))

    def delete(self, blob_id: str) -> bool:
        old = self._s.blobs.pop(blob_id, None)
        if old is None:
            return False
        self._changed(lambda: self._s.blobs.__setitem__(blob_id, old))
        return True

    def delete_for_patient(self, patient_id: str) -> int:
        doomed = {k: b for k, b in self._s.blobs.items() if b.patient_id == patient_id}
        self._changed(lambda: self._s.blobs.update(doomed))
        for key in doomed:
            del self._s.blobs[key]
        return len(doomed)


class _Audit(_Repo, AuditRepository):
    def last(self) -> AuditEvent | None:
        return self._s.audit[-1] if self._s.audit else None

    def append(self, event: AuditEvent) -> None:
        if event.seq != len(self._s.audit) + 1:
            raise ConflictError(
                f"audit event {event.seq} does not follow event {len(self._s.audit)}"
            )
        self._changed(self._s.audit.pop)
        self._s.audit.append(event)

    def scan(self, *, after_seq: int = 0, limit: int = 1000) -> list[AuditEvent]:
        return self._s.audit[max(after_seq, 0) : max(after_seq, 0) + limit]

    def for_patient(
        self, patient_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[AuditEvent]:
        events = (e for e in self._s.audit[max(after_seq, 0) :] if e.patient_id == patient_id)
        return [event for _, event in zip(range(limit), events, strict=False)]

    def count(self) -> int:
        return len(self._s.audit)


class _Outbox(_Repo, OutboxRepository):
    def add(self, row: OutboxRow) -> None:
        if row.id in self._s.outbox or row.idempotency_key in self._s.outbox_keys:
            raise ConflictError("this notification is already queued")
        self._changed(
            lambda: (self._s.outbox.pop(row.id), self._s.outbox_keys.pop(row.idempotency_key))
        )
        self._s.outbox[row.id] = row
        self._s.outbox_keys[row.idempotency_key] = row.id

    def get(self, message_id: str) -> OutboxRow | None:
        return self._s.outbox.get(message_id)

    def due(self, now: datetime, *, limit: int) -> list[OutboxRow]:
        rows = [
            r
            for r in self._s.outbox.values()
            if r.status is OutboxStatus.PENDING and r.next_attempt_at <= now
        ]
        return sorted(rows, key=lambda r: (r.next_attempt_at, r.created_at, r.id))[:limit]

    def update(self, row: OutboxRow) -> None:
        old = self._s.outbox.get(row.id)
        if old is None:
            raise NotFoundError("no such notification")
        self._changed(lambda: self._s.outbox.__setitem__(row.id, old))
        self._s.outbox[row.id] = row

    def count(self, status: OutboxStatus | None = None) -> int:
        return sum(1 for r in self._s.outbox.values() if status is None or r.status is status)

    def cancel_for_patient(self, patient_id: str, reason: str) -> int:
        pending = [
            r
            for r in self._s.outbox.values()
            if r.patient_id == patient_id and r.status is OutboxStatus.PENDING
        ]
        for row in pending:
            cancelled = attrs.evolve(row, status=OutboxStatus.DEAD, sealed=None, last_error=reason)
            self._set(self._s.outbox, row.id, cancelled)
        return len(pending)


class _Accounts(_Repo, AccountRepository):
    def add(self, account: Account, deadline_at: datetime | None) -> None:
        if account.patient_id in self._s.accounts:
            raise ConflictError("this person already has an account")
        self._set(self._s.accounts, account.patient_id, (account, deadline_at))

    def get(self, patient_id: str) -> Account | None:
        entry = self._s.accounts.get(patient_id)
        return None if entry is None else entry[0]

    def update(self, account: Account, deadline_at: datetime | None) -> None:
        if account.patient_id not in self._s.accounts:
            raise NotFoundError("no such account")
        self._set(self._s.accounts, account.patient_id, (account, deadline_at))

    def due(self, now: datetime, *, limit: int) -> list[Account]:
        entries = sorted(
            (deadline, account.patient_id, account)
            for account, deadline in self._s.accounts.values()
            if deadline is not None and deadline <= now
        )
        return [account for _, _, account in entries[:limit]]

    def in_state(self, state: str, *, after: str | None = None, limit: int = 1000) -> list[str]:
        ids = sorted(
            pid
            for pid, (account, _) in self._s.accounts.items()
            if account.state == state and (after is None or pid > after)
        )
        return ids[:limit]

    def count_by_state(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for account, _ in self._s.accounts.values():
            counts[str(account.state)] = counts.get(str(account.state), 0) + 1
        return counts


class _Codes(_Repo, CodeRepository):
    def put(self, record: CodeRecord) -> None:
        self._set(self._s.codes, record.patient_id, record)

    def get(self, patient_id: str) -> CodeRecord | None:
        return self._s.codes.get(patient_id)


class _Proofs(_Repo, ProofRepository):
    def put(self, record: ProofRecord) -> None:
        self._set(self._s.proofs, record.patient_id, record)

    def get(self, patient_id: str) -> ProofRecord | None:
        return self._s.proofs.get(patient_id)


class _Representations(_Repo, RepresentationRepository):
    def put(self, link: Representation) -> None:
        self._set(self._s.representations, (link.patient_id, link.representative_id), link)

    def get(self, patient_id: str, representative_id: str) -> Representation | None:
        return self._s.representations.get((patient_id, representative_id))

    def of_patient(self, patient_id: str) -> list[Representation]:
        links = self._s.representations.values()
        return sorted(
            (r for r in links if r.patient_id == patient_id), key=lambda r: r.representative_id
        )

    def by_representative(self, representative_id: str) -> list[Representation]:
        links = self._s.representations.values()
        return sorted(
            (r for r in links if r.representative_id == representative_id),
            key=lambda r: r.patient_id,
        )

    def ending(self, now: datetime, *, limit: int) -> list[Representation]:
        links = [
            r
            for r in self._s.representations.values()
            if r.ended_at is None and r.ends_at is not None and r.ends_at <= now
        ]
        links.sort(key=lambda r: (r.ends_at or now, r.patient_id, r.representative_id))
        return links[:limit]


class _Documents(_Repo, DocumentRepository):
    def add(self, row: DocumentRow) -> None:
        if row.id in self._s.documents or self.by_unique_id(row.patient_id, row.unique_id):
            raise ConflictError("a document with this id or unique id is already stored")
        self._set(self._s.documents, row.id, row)

    def get(self, document_id: str) -> DocumentRow | None:
        return self._s.documents.get(document_id)

    def by_unique_id(self, patient_id: str, unique_id: str) -> DocumentRow | None:
        for row in self._s.documents.values():
            if row.patient_id == patient_id and row.unique_id == unique_id:
                return row
        return None

    def update(self, row: DocumentRow) -> None:
        if row.id not in self._s.documents:
            raise NotFoundError("no such document")
        self._set(self._s.documents, row.id, row)

    def for_patient(self, patient_id: str) -> list[DocumentRow]:
        rows = [r for r in self._s.documents.values() if r.patient_id == patient_id]
        return sorted(rows, key=lambda r: (r.created_at, r.id))

    def _due(self, now: datetime, limit: int, when: str) -> list[DocumentRow]:
        dated = [(getattr(r, when), r.id, r) for r in self._s.documents.values()]
        due = sorted((at, i, r) for at, i, r in dated if at is not None and at <= now)
        return [r for _, _, r in due[:limit]]

    def releasing(self, now: datetime, *, limit: int) -> list[DocumentRow]:
        return self._due(now, limit, "release_at")

    def to_notify(self, now: datetime, *, limit: int) -> list[DocumentRow]:
        return self._due(now, limit, "notify_at")

    def delete(self, document_id: str) -> bool:
        old = self._s.documents.pop(document_id, None)
        if old is None:
            return False
        self._changed(lambda: self._s.documents.__setitem__(document_id, old))
        return True

    def delete_for_patient(self, patient_id: str) -> int:
        doomed = {k: r for k, r in self._s.documents.items() if r.patient_id == patient_id}
        self._changed(lambda: self._s.documents.update(doomed))
        for key in doomed:
            del self._s.documents[key]
        return len(doomed)


class _Entries(_Repo, EntryRepository):
    def __init__(self, tx: _MemoryTransaction, table: dict[str, EntryRow]) -> None:
        super().__init__(tx)
        self._rows = table

    def add(self, row: EntryRow) -> None:
        if row.id in self._rows:
            raise ConflictError("an entry with this id already exists")
        self._set(self._rows, row.id, row)

    def get(self, entry_id: str) -> EntryRow | None:
        return self._rows.get(entry_id)

    def update(self, row: EntryRow) -> None:
        if row.id not in self._rows:
            raise NotFoundError("no such entry")
        self._set(self._rows, row.id, row)

    def delete(self, entry_id: str) -> bool:
        old = self._rows.pop(entry_id, None)
        if old is None:
            return False
        self._changed(lambda: self._rows.__setitem__(entry_id, old))
        return True

    def for_patient(
        self,
        patient_id: str,
        *,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[EntryRow]:
        rows = [
            r
            for r in self._rows.values()
            if r.patient_id == patient_id
            and (kind is None or r.kind == kind)
            and (since is None or r.at >= since)
            and (until is None or r.at < until)
        ]
        return sorted(rows, key=lambda r: (r.at, r.id))

    def delete_for_patient(self, patient_id: str) -> int:
        doomed = {k: r for k, r in self._rows.items() if r.patient_id == patient_id}
        self._changed(lambda: self._rows.update(doomed))
        for key in doomed:
            del self._rows[key]
        return len(doomed)


class _Ledger(_Repo, LedgerRepository):
    def add(self, row: LedgerRow) -> None:
        self._changed(self._s.ledger.pop)
        self._s.ledger.append(row)

    def for_run(self, run_id: str) -> list[LedgerRow]:
        return [r for r in self._s.ledger if r.run_id == run_id]

    def imported(self, sha256: bytes) -> LedgerRow | None:
        return next(
            (r for r in self._s.ledger if r.sha256 == sha256 and r.outcome == "imported"), None
        )

    def imported_for_patient(self, patient_id: str) -> list[LedgerRow]:
        return [r for r in self._s.ledger if r.patient_id == patient_id and r.outcome == "imported"]


class _Access(_Repo, AccessRepository):
    def put_professional(self, professional: Professional) -> None:
        self._set(self._s.professionals, professional.rpps, professional)

    def professional(self, rpps: str) -> Professional | None:
        return self._s.professionals.get(rpps)

    def put_grant(self, grant: Grant) -> None:
        key = (grant.patient_id, grant.professional_id, str(grant.kind))
        self._set(self._s.grants, key, grant)

    def grants(self, patient_id: str, professional_id: str | None = None) -> list[Grant]:
        found = [
            g
            for (pid, pro, _), g in self._s.grants.items()
            if pid == patient_id and (professional_id is None or pro == professional_id)
        ]
        return sorted(found, key=lambda g: (g.professional_id, g.kind, g.since))

    def block(self, patient_id: str, professional_id: str, at: datetime) -> None:
        if (patient_id, professional_id) not in self._s.blocks:
            self._set(self._s.blocks, (patient_id, professional_id), at)

    def unblock(self, patient_id: str, professional_id: str) -> bool:
        key = (patient_id, professional_id)
        old = self._s.blocks.pop(key, None)
        if old is None:
            return False
        self._changed(lambda: self._s.blocks.__setitem__(key, old))
        return True

    def blocked(self, patient_id: str) -> list[str]:
        return sorted(pro for pid, pro in self._s.blocks if pid == patient_id)

    def settings(self, patient_id: str) -> AccessSettings | None:
        return self._s.access_settings.get(patient_id)

    def put_settings(self, settings: AccessSettings) -> None:
        self._set(self._s.access_settings, settings.patient_id, settings)

    def add_emergency(self, session: EmergencySession, justification: bytes) -> None:
        if session.id in self._s.emergencies:
            raise ConflictError("this emergency session already exists")
        self._set(self._s.emergencies, session.id, (session, justification))

    def emergencies(self, patient_id: str, professional_id: str) -> list[EmergencySession]:
        found = [
            s
            for s, _ in self._s.emergencies.values()
            if s.patient_id == patient_id and s.professional_id == professional_id
        ]
        return sorted(found, key=lambda s: (s.started_at, s.id))

    def mark_seen(self, patient_id: str, professional_id: str, at: datetime) -> bool:
        if (patient_id, professional_id) in self._s.seen:
            return False
        self._set(self._s.seen, (patient_id, professional_id), at)
        return True

    def professional_by_mssante(self, address: str) -> Professional | None:
        wanted = _ascii_lower(address)
        found = [
            p
            for p in self._s.professionals.values()
            if p.mssante is not None and _ascii_lower(p.mssante) == wanted
        ]
        return min(found, key=lambda p: p.rpps, default=None)


def _ascii_lower(text: str) -> str:
    # SQL lower() folds ASCII only; the memory backend must compare exactly the same way.
    return "".join(c.lower() if c.isascii() else c for c in text)


class _Messages(_Repo, MessageRepository):
    @staticmethod
    def _recent_first(rows: list[ThreadRow]) -> list[ThreadRow]:
        rows.sort(key=lambda r: r.id, reverse=True)
        rows.sort(key=lambda r: r.last_message_at, reverse=True)
        return rows

    def add_thread(self, row: ThreadRow) -> None:
        if row.id in self._s.threads:
            raise ConflictError("a thread with this id already exists")
        self._set(self._s.threads, row.id, row)

    def get_thread(self, thread_id: str) -> ThreadRow | None:
        return self._s.threads.get(thread_id)

    def update_thread(self, row: ThreadRow) -> None:
        if row.id not in self._s.threads:
            raise NotFoundError("no such thread")
        self._set(self._s.threads, row.id, row)

    def threads_for_patient(self, patient_id: str) -> list[ThreadRow]:
        return self._recent_first(
            [t for t in self._s.threads.values() if t.patient_id == patient_id]
        )

    def threads_for_professional(self, professional_id: str) -> list[ThreadRow]:
        return self._recent_first(
            [t for t in self._s.threads.values() if t.professional_id == professional_id]
        )

    def add_message(self, row: MessageRow) -> None:
        if (
            row.id in self._s.messages
            or self.by_rfc_message_id(row.patient_id, row.rfc_message_id)
            or any(
                m.thread_id == row.thread_id and m.position == row.position
                for m in self._s.messages.values()
            )
        ):
            raise ConflictError("a message with this id, Message-ID or position is stored")
        self._set(self._s.messages, row.id, row)

    def get_message(self, message_id: str) -> MessageRow | None:
        return self._s.messages.get(message_id)

    def update_message(self, row: MessageRow) -> None:
        if row.id not in self._s.messages:
            raise NotFoundError("no such message")
        self._set(self._s.messages, row.id, row)

    def messages_in_thread(self, thread_id: str) -> list[MessageRow]:
        rows = [m for m in self._s.messages.values() if m.thread_id == thread_id]
        return sorted(rows, key=lambda m: (m.position, m.id))

    def by_rfc_message_id(self, patient_id: str, rfc_message_id: str) -> MessageRow | None:
        for row in self._s.messages.values():
            if row.patient_id == patient_id and row.rfc_message_id == rfc_message_id:
                return row
        return None

    def _unread(self, threads: set[str], from_professional: bool) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self._s.messages.values():
            if (
                m.thread_id in threads
                and m.read_at is None
                and (m.sender_kind == "professional") is from_professional
            ):
                counts[m.thread_id] = counts.get(m.thread_id, 0) + 1
        return counts

    def unread_for_patient(self, patient_id: str) -> dict[str, int]:
        threads = {t.id for t in self._s.threads.values() if t.patient_id == patient_id}
        return self._unread(threads, from_professional=True)

    def unread_for_professional(self, professional_id: str) -> dict[str, int]:
        threads = {t.id for t in self._s.threads.values() if t.professional_id == professional_id}
        return self._unread(threads, from_professional=False)

    def add_attachment(self, row: AttachmentRow) -> None:
        if row.id in self._s.attachments:
            raise ConflictError("an attachment with this id already exists")
        self._set(self._s.attachments, row.id, row)

    def get_attachment(self, attachment_id: str) -> AttachmentRow | None:
        return self._s.attachments.get(attachment_id)

    def attachments_in_thread(self, thread_id: str) -> list[AttachmentRow]:
        rows = [a for a in self._s.attachments.values() if a.thread_id == thread_id]
        return sorted(rows, key=lambda a: (a.message_id, a.position))

    def sent_before(self, before: datetime, *, limit: int) -> list[MessageRow]:
        rows = sorted(
            (m for m in self._s.messages.values() if m.sent_at < before),
            key=lambda m: (m.sent_at, m.id),
        )
        return rows[:limit]

    def _drop(self, table: dict[str, Any], key: str) -> None:
        old = table.pop(key)
        self._changed(lambda: table.__setitem__(key, old))

    def delete_message(self, message_id: str) -> bool:
        if message_id not in self._s.messages:
            return False
        for attachment in [a for a in self._s.attachments.values() if a.message_id == message_id]:
            self._drop(self._s.attachments, attachment.id)
        self._drop(self._s.messages, message_id)
        return True

    def delete_thread(self, thread_id: str) -> bool:
        if thread_id not in self._s.threads:
            return False
        for message in self.messages_in_thread(thread_id):
            self.delete_message(message.id)
        self._drop(self._s.threads, thread_id)
        return True

    def delete_for_patient(self, patient_id: str) -> int:
        deleted = sum(1 for m in self._s.messages.values() if m.patient_id == patient_id)
        for thread in self.threads_for_patient(patient_id):
            self.delete_thread(thread.id)
        return deleted


class _MemoryTransaction(Transaction):
    def __init__(self, state: _State, *, writable: bool) -> None:
        self.state = state
        self._writable = writable
        self.undo: list[_Undo] = []
        self.patients = _Patients(self)
        self.keys = _Keys(self)
        self.blobs = _Blobs(self)
        self.audit = _Audit(self)
        self.outbox = _Outbox(self)
        self.accounts = _Accounts(self)
        self.codes = _Codes(self)
        self.proofs = _Proofs(self)
        self.representations = _Representations(self)
        self.documents = _Documents(self)
        self.profile = _Entries(self, state.profile)
        self.measures = _Entries(self, state.measures)
        self.ledger = _Ledger(self)
        self.access = _Access(self)
        self.messages = _Messages(self)

    def record(self, undo: _Undo) -> None:
        if not self._writable:
            raise StorageError("cannot write in a read-only transaction")
        self.undo.append(undo)


class MemoryStorage(StorageBackend):
    """Storage in process memory, lost when the process ends. URL: ``memory://``.

    Each ``memory://`` URL opens a new, empty store.
    """

    name: ClassVar[str] = "memory"
    schemes: ClassVar[tuple[str, ...]] = ("memory",)

    def __init__(self) -> None:
        self._state = _State()
        self._lock = threading.RLock()
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls()

    @property
    def schema_version(self) -> int:
        # The memory store has no migrations; it always has the newest shape.
        return LATEST_SCHEMA_VERSION

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        with self._lock:
            self._check_open()
            tx = _MemoryTransaction(self._state, writable=True)
            try:
                yield tx
            except BaseException:
                for undo in reversed(tx.undo):
                    undo()
                raise

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        with self._lock:
            self._check_open()
            yield _MemoryTransaction(self._state, writable=False)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the storage is closed")

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return "MemoryStorage()"
