"""The storage contract suite: the behaviour every storage backend must have.

A backend's test module subclasses :class:`StorageContract` and provides a ``storage``
fixture that yields a fresh, empty backend::

    import pytest

    from monespace.testing import StorageContract

    class TestMyBackend(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path):
            backend = MyBackend.from_url(...)
            yield backend
            backend.close()

The built-in memory and SQLite backends run exactly these tests, as must any plugin.
"""

from __future__ import annotations

import operator
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..actors import AccessMode, ActorKind
from ..audit import (
    DEFAULT_SHARD,
    AuditEvent,
    Outcome,
    PendingEvent,
    ShardHead,
    chain,
    checkpoint_rows,
    checkpoints_from_rows,
    event_from_row,
    event_row,
    events_from_rows,
    seal,
    seal_row,
    sign_checkpoint,
    verify,
)
from ..crypto import AuditKey, MasterKey
from ..errors import ConflictError, NotFoundError, StorageError
from ..storage import (
    DOCUMENT_KIND_COLUMNS,
    AccessSettingsRow,
    AccountRow,
    AgendaEventRow,
    ApplicationRow,
    AppRow,
    AttachmentRow,
    BlobRow,
    CodeRow,
    ConsentRow,
    DataKeyRow,
    DocumentRepository,
    DocumentRow,
    EmergencyRow,
    EntryRow,
    GrantRow,
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
    Slice,
    StorageBackend,
    ThreadRow,
    Transaction,
    WebSessionRow,
    slice_of,
    to_db_time,
)

__all__ = [
    "TEST_AUDIT_KEY",
    "StorageContract",
    "make_document_row",
    "make_event",
    "make_outbox_row",
    "make_patient_row",
]

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


class _Abort(Exception):
    """Raised inside a transaction to make it roll back."""


def make_patient_row(n: int, at: datetime = T0) -> PatientRow:
    """A patient row with recognisable, distinct values."""
    return PatientRow(f"p{n:06d}", f"index-{n}".encode(), f"sealed-{n}".encode(), at)


#: The audit key of events made by :func:`make_event` (a fixed key: for tests only).
TEST_AUDIT_KEY = AuditKey.derive(MasterKey(bytes(range(32))))


def make_event(
    prev: AuditEvent | None,
    patient_id: str | None = None,
    *,
    key: AuditKey = TEST_AUDIT_KEY,
    shard: str = DEFAULT_SHARD,
) -> AuditEvent:
    """The event that follows *prev* on the chain of *shard*, keyed with *key*."""
    seq = 1 if prev is None else prev.seq + 1
    return chain(
        prev,
        PendingEvent(
            at=T0 + timedelta(seconds=seq),
            actor_kind=ActorKind.PATIENT,
            actor_id="p000001",
            action="content.read",
            outcome=Outcome.SUCCESS,
            patient_id=patient_id,
            target_kind="content",
            target_id=f"c{seq}",
            mode=AccessMode.NORMAL,
            rule="patient_owns_space",
        ),
        key,
        shard=shard,
    )


def _chain_verifies(events: list[AuditEvent]) -> bool:
    """Whether *events*, keyed with the test key and sealed at their head, verify."""
    head_seal = seal(TEST_AUDIT_KEY, events[-1]) if events else None
    lookup = {TEST_AUDIT_KEY.id: TEST_AUDIT_KEY}.get
    return verify(events, lookup, head_seal=head_seal).ok


def make_outbox_row(n: int, *, due: datetime = T0, patient_id: str | None = None) -> OutboxRow:
    """A pending notification."""
    return OutboxRow(
        id=f"m{n:06d}",
        channel="email",
        sealed=f"sealed notification {n}".encode(),
        kind="new-content",
        created_at=T0,
        next_attempt_at=due,
        idempotency_key=f"key-{n}",
        patient_id=patient_id,
    )


def make_document_row(
    document_id: str, content_id: str, unique_id: str, **changes: Any
) -> DocumentRow:
    """A stored document version of patient ``p000001``."""
    row = DocumentRow(
        id=document_id,
        patient_id="p000001",
        lineage_id=document_id,
        version=1,
        unique_id=unique_id,
        class_code="10",
        type_code="11502-2",
        type_system="2.16.840.1.113883.6.1",
        format_code=None,
        media_type="text/plain",
        confidentiality="N",
        flags=0,
        author_kind="professional",
        author_id="10001234567",
        created_at=T0,
        submitted_at=T0,
        status="approved",
        replaces=None,
        content_id=content_id,
        size=1,
        sha256=b"h" * 32,
        sealed_meta=b"sealed",
    )
    return attrs.evolve(row, **changes)


def _thread_row(thread_id: str, patient_id: str = "p000001", **changes: Any) -> ThreadRow:
    row = ThreadRow(
        id=thread_id,
        patient_id=patient_id,
        professional_id="10000000017",
        status="open",
        created_at=T0,
        last_message_at=T0,
        sealed_subject=b"sealed subject",
    )
    return attrs.evolve(row, **changes)


def _message_row(
    message_id: str, thread_id: str, patient_id: str = "p000001", **changes: Any
) -> MessageRow:
    row = MessageRow(
        id=message_id,
        thread_id=thread_id,
        patient_id=patient_id,
        sender_kind="professional",
        sender_id="10000000017",
        sent_at=T0,
        rfc_message_id=f"<{message_id}@example.mssante.fr>",
        origin="space",
        sealed=b"sealed message",
    )
    return attrs.evolve(row, **changes)


def _attachment_row(attachment_id: str, message: MessageRow, position: int) -> AttachmentRow:
    return AttachmentRow(
        attachment_id,
        message.id,
        message.thread_id,
        message.patient_id,
        f"blob-{attachment_id}",
        "application/pdf",
        3,
        b"h" * 32,
        b"sealed meta",
        position,
    )


def _append_events(tx: Transaction, count: int, patient_id: str | None = None) -> AuditEvent:
    stored = tx.audit.last()
    last = None if stored is None else event_from_row(stored)
    for _ in range(count):
        last = make_event(last, patient_id)
        tx.audit.append(event_row(last))
    assert last is not None
    return last


class StorageContract:
    """Subclass with a ``storage`` fixture yielding a fresh backend. See the module docs."""

    # --- transactions --------------------------------------------------------------------

    def test_committed_writes_are_visible_to_later_reads(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
        with storage.read() as tx:
            assert tx.patients.get("p000001") == make_patient_row(1)

    def test_a_raising_block_rolls_back_every_repository(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.keys.add(DataKeyRow("p000001", "k1", b"wrapped", T0))
        with pytest.raises(_Abort), storage.write() as tx:
            tx.patients.add(make_patient_row(2))
            tx.patients.replace_identity("p000001", b"changed")
            tx.keys.add(DataKeyRow("p000002", "k1", b"wrapped2", T0))
            tx.keys.destroy("p000001", T0)
            tx.blobs.add(BlobRow("b1", "p000001", "content", "text/plain", 1, b"h", b"s", T0))
            _append_events(tx, 3)
            tx.outbox.add(make_outbox_row(1))
            raise _Abort
        with storage.read() as tx:
            assert tx.patients.count() == 1
            assert tx.patients.get("p000001") == make_patient_row(1)
            assert tx.keys.get("p000002") is None
            assert tx.keys.get("p000001") == DataKeyRow("p000001", "k1", b"wrapped", T0)
            assert tx.blobs.get("b1") is None
            assert tx.audit.count() == 0
            assert tx.outbox.count() == 0

    def test_a_conflict_inside_a_transaction_leaves_earlier_rows_intact(
        self, storage: StorageBackend
    ) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.patients.add(make_patient_row(2))
            tx.patients.add(make_patient_row(1))
        with storage.read() as tx:
            assert tx.patients.ids() == ["p000001"]

    def test_read_transactions_cannot_write(self, storage: StorageBackend) -> None:
        with pytest.raises(StorageError), storage.read() as tx:
            tx.patients.add(make_patient_row(1))
        with storage.read() as tx:
            assert tx.patients.count() == 0

    def test_concurrent_writers_are_serialised(self, storage: StorageBackend) -> None:
        """Eight threads appending to the audit chain never break it."""

        def work() -> None:
            for _ in range(25):
                with storage.write() as tx:
                    _append_events(tx, 1)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with storage.read() as tx:
            events = tx.audit.scan(limit=1000)
        assert len(events) == 200
        assert _chain_verifies(events_from_rows(events))

    def test_reads_nest_in_reads_and_in_writes(self, storage: StorageBackend) -> None:
        """Services read inside their own transactions (a key lookup while reading)."""
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
        with storage.read() as outer, storage.read() as inner:
            assert outer.patients.count() == inner.patients.count() == 1
        with storage.write() as tx:
            tx.patients.add(make_patient_row(2))
            with storage.read() as inner:
                assert inner.patients.count() >= 1

    def test_closing_twice_is_harmless_and_closed_storage_refuses_work(
        self, storage: StorageBackend
    ) -> None:
        storage.close()
        storage.close()
        with pytest.raises(StorageError), storage.write():
            pass

    # --- patients ------------------------------------------------------------------------

    def test_patients_are_found_by_id_and_by_nir_index(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            for n in range(1, 4):
                tx.patients.add(make_patient_row(n))
        with storage.read() as tx:
            assert tx.patients.find_by_nir_index(b"index-2") == make_patient_row(2)
            assert tx.patients.find_by_nir_index(b"index-9") is None
            assert tx.patients.get("nobody") is None
            assert tx.patients.count() == 3

    def test_patient_id_and_nir_index_are_unique(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
        clash_id = PatientRow("p000001", b"other-index", b"s", T0)
        clash_index = PatientRow("other", b"index-1", b"s", T0)
        for row in (clash_id, clash_index):
            with pytest.raises(ConflictError), storage.write() as tx:
                tx.patients.add(row)

    def test_patient_ids_page_in_order(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            for n in (5, 3, 9, 1, 7):
                tx.patients.add(make_patient_row(n))
        with storage.read() as tx:
            assert tx.patients.ids(limit=2) == ["p000001", "p000003"]
            assert tx.patients.ids(after="p000003", limit=10) == ["p000005", "p000007", "p000009"]

    def test_replacing_the_identity_of_nobody_is_not_found(self, storage: StorageBackend) -> None:
        with pytest.raises(NotFoundError), storage.write() as tx:
            tx.patients.replace_identity("nobody", b"x")

    # --- keys ----------------------------------------------------------------------------

    def test_destroying_a_key_leaves_a_tombstone(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.keys.add(DataKeyRow("p1", "k1", b"wrapped", T0))
            assert tx.keys.destroy("p1", T0 + timedelta(days=1))
            assert not tx.keys.destroy("p1", T0 + timedelta(days=2))
            assert not tx.keys.destroy("nobody", T0)
        with storage.read() as tx:
            row = tx.keys.get("p1")
        assert row == DataKeyRow("p1", None, None, T0, T0 + timedelta(days=1))
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.keys.add(DataKeyRow("p1", "k1", b"again", T0))

    def test_rewrap_only_replaces_the_expected_wrapping(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.keys.add(DataKeyRow("p1", "k1", b"w1", T0))
            tx.keys.add(DataKeyRow("p2", "k2", b"w2", T0))
            tx.keys.add(DataKeyRow("p3", "k1", b"w3", T0))
            tx.keys.destroy("p3", T0)
            assert tx.keys.master_key_ids() == {"k1", "k2"}
            stale = tx.keys.wrapped_by_other_than("k2", limit=10)
            assert [r.patient_id for r in stale] == ["p1"]
            assert tx.keys.rewrap(
                "p1", expected_master_key_id="k1", master_key_id="k2", wrapped=b"n"
            )
            assert not tx.keys.rewrap(
                "p1", expected_master_key_id="k1", master_key_id="k2", wrapped=b"x"
            )
            assert not tx.keys.rewrap(
                "p3", expected_master_key_id="k1", master_key_id="k2", wrapped=b"x"
            )
        with storage.read() as tx:
            assert tx.keys.get("p1") == DataKeyRow("p1", "k2", b"n", T0)
            assert tx.keys.master_key_ids() == {"k2"}
            assert tx.keys.wrapped_by_other_than("k2", limit=10) == []

    # --- blobs ---------------------------------------------------------------------------

    def test_blobs_round_trip_and_list_oldest_first(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.patients.add(make_patient_row(2))
            rows = [
                BlobRow(
                    f"b{n}",
                    "p000001" if n != 2 else "p000002",
                    "content",
                    "application/pdf",
                    n * 10,
                    bytes([n]) * 32,
                    bytes(range(256)) * n,
                    T0 - timedelta(hours=n),
                )
                for n in (1, 2, 3)
            ]
            for row in rows:
                tx.blobs.add(row)
        with storage.read() as tx:
            assert tx.blobs.get("b2") == rows[1]
            assert tx.blobs.list_for_patient("p000001") == [rows[2], rows[0]]
        with storage.write() as tx:
            assert tx.blobs.delete_for_patient("p000001") == 2
        with storage.read() as tx:
            assert tx.blobs.list_for_patient("p000001") == []
            assert tx.blobs.get("b2") == rows[1]

    def test_blob_ids_are_unique(self, storage: StorageBackend) -> None:
        blob = BlobRow("b1", "p000001", "content", "text/plain", 1, b"h", b"s", T0)
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.blobs.add(blob)
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.blobs.add(blob)

    # --- audit ---------------------------------------------------------------------------

    def test_audit_events_round_trip_exactly(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            last = _append_events(tx, 5, patient_id="p1")
        with storage.read() as tx:
            assert tx.audit.last() == event_row(last)
            events = tx.audit.scan()
        assert [e.seq for e in events] == [1, 2, 3, 4, 5]
        assert _chain_verifies(events_from_rows(events))

    def test_audit_head_seal_is_replaced_and_read_back(self, storage: StorageBackend) -> None:
        with storage.read() as tx:
            assert tx.audit.head_seal("0") is None
            assert tx.audit.legacy_until("0") == 0
        with storage.write() as tx:
            first = _append_events(tx, 1)
            tx.audit.seal(seal_row(seal(TEST_AUDIT_KEY, first)))
            last = _append_events(tx, 2)
            tx.audit.seal(seal_row(seal(TEST_AUDIT_KEY, last)))
        with storage.read() as tx:
            assert tx.audit.head_seal("0") == seal_row(seal(TEST_AUDIT_KEY, last))
            assert tx.audit.legacy_until("0") == 0

    def test_audit_checkpoints_round_trip_and_are_numbered(self, storage: StorageBackend) -> None:
        with storage.read() as tx:
            assert tx.audit.last_checkpoint() == []
        heads = [ShardHead("0", 3, b"h" * 32, 3), ShardHead("1", 7, b"i" * 32, 7)]
        checkpoints = [sign_checkpoint(TEST_AUDIT_KEY, n, T0, heads) for n in (1, 2)]
        with storage.write() as tx:
            for checkpoint in checkpoints:
                tx.audit.add_checkpoint(checkpoint_rows(checkpoint))
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.audit.add_checkpoint(checkpoint_rows(checkpoints[0]))
        with storage.read() as tx:
            assert checkpoints_from_rows(tx.audit.checkpoints()) == checkpoints
            assert checkpoints_from_rows(tx.audit.checkpoints(after_number=1)) == checkpoints[1:]
            assert checkpoints_from_rows(tx.audit.last_checkpoint()) == checkpoints[1:]

    def test_audit_sequence_cannot_skip_or_repeat(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            first = _append_events(tx, 1)
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.audit.append(event_row(first))
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.audit.append(event_row(make_event(make_event(first))))
        with storage.read() as tx:
            assert tx.audit.count() == 1

    def test_audit_scans_page_and_filter_by_patient(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            last = None
            for n in range(1, 11):
                last = make_event(last, "p1" if n % 2 else "p2")
                tx.audit.append(event_row(last))
        with storage.read() as tx:
            assert [e.seq for e in tx.audit.scan(after_seq=3, limit=4)] == [4, 5, 6, 7]
            assert [e.seq for e in tx.audit.for_patient("p2")] == [2, 4, 6, 8, 10]
            assert [e.seq for e in tx.audit.for_patient("p1", after_seq=5, limit=2)] == [7, 9]
            assert tx.audit.count() == 10

    def test_audit_shards_are_chains_of_their_own(self, storage: StorageBackend) -> None:
        """Each shard numbers its events from 1 (decision 0015): appends, heads, scans,
        seals and a patient's events paged by (shard, seq)."""
        with storage.write() as tx:
            zero = one = None
            for n in range(1, 4):
                zero = make_event(zero, "p1" if n == 1 else None)
                tx.audit.append(event_row(zero))
                one = make_event(one, "p1", shard="1")
                tx.audit.append(event_row(one))
            with pytest.raises(ConflictError):
                tx.audit.append(event_row(make_event(make_event(one, shard="1"), shard="1")))
            assert one is not None
            assert zero is not None
            tx.audit.seal(seal_row(seal(TEST_AUDIT_KEY, one)))
            tx.audit.seal(seal_row(seal(TEST_AUDIT_KEY, zero)))
        with storage.read() as tx:
            assert tx.audit.last("1") == event_row(one)
            assert tx.audit.last("0") == event_row(zero)
            assert tx.audit.last("2") is None
            assert [(e.shard, e.seq) for e in tx.audit.scan(shard="1", after_seq=1)] == [
                ("1", 2),
                ("1", 3),
            ]
            stored = tx.audit.scan_stored(shard="1")
            assert [
                tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in stored
            ] == [
                (*attrs.astuple(row)[:1], to_db_time(row.at), *attrs.astuple(row)[2:])
                for row in tx.audit.scan(shard="1")
            ]
            mine = tx.audit.for_patient("p1")
            assert [(e.shard, e.seq) for e in mine] == [("0", 1), ("1", 1), ("1", 2), ("1", 3)]
            page = tx.audit.for_patient("p1", after_shard="1", after_seq=1, limit=1)
            assert [(e.shard, e.seq) for e in page] == [("1", 2)]
            # "0" first; a store may have created its patient shards with its schema.
            assert tx.audit.shards()[:2] == ["0", "1"]
            assert [(r.shard, r.seq) for r in tx.audit.head_seals()] == [("0", 3), ("1", 3)]
            assert tx.audit.count() == 6

    # --- outbox --------------------------------------------------------------------------

    def test_outbox_due_is_pending_and_due_oldest_first(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.outbox.add(make_outbox_row(1, due=T0 + timedelta(minutes=5)))
            tx.outbox.add(make_outbox_row(2, due=T0))
            tx.outbox.add(make_outbox_row(3, due=T0 + timedelta(hours=1)))
            sent = make_outbox_row(4, due=T0)
            tx.outbox.add(sent)
            tx.outbox.update(attrs.evolve(sent, status=OutboxStatus.SENT, sent_at=T0, sealed=None))
        with storage.read() as tx:
            due = tx.outbox.due(T0 + timedelta(minutes=10), limit=10)
            assert [r.id for r in due] == ["m000002", "m000001"]
            assert tx.outbox.count() == 4
            assert tx.outbox.count(OutboxStatus.SENT) == 1
            delivered, waiting = tx.outbox.get("m000004"), tx.outbox.get("m000001")
            assert delivered is not None
            assert delivered.sealed is None
            assert waiting is not None
            assert waiting.sealed == b"sealed notification 1"

    def test_outbox_idempotency_keys_are_unique(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.outbox.add(make_outbox_row(1))
        again = attrs.evolve(make_outbox_row(1), id="other")
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.outbox.add(again)
        with pytest.raises(NotFoundError), storage.write() as tx:
            tx.outbox.update(make_outbox_row(99))

    def test_outbox_claims_never_overlap_and_end_with_their_lease(
        self, storage: StorageBackend
    ) -> None:
        lease = T0 + timedelta(minutes=5)
        with storage.write() as tx:
            for n in (1, 2, 3):
                tx.outbox.add(make_outbox_row(n))
        with storage.write() as tx:
            first = tx.outbox.claim(T0, dispatcher="a", lease_until=lease, limit=2)
        with storage.write() as tx:
            second = tx.outbox.claim(T0, dispatcher="b", lease_until=lease, limit=10)
            assert tx.outbox.claim(T0, dispatcher="c", lease_until=lease, limit=10) == []
            # a claim is not a delivery: the rows stay pending and due
            assert len(tx.outbox.due(T0, limit=10)) == 3
        assert [r.id for r in first] == ["m000001", "m000002"]
        assert [r.id for r in second] == ["m000003"]
        assert {r.claimed_by for r in first} == {"a"}
        assert second[0].lease_until == lease
        # "a" crashed: once its lease ends, "c" takes its claims over
        with storage.write() as tx:
            taken = tx.outbox.claim(lease, dispatcher="c", lease_until=lease, limit=10)
        assert sorted(r.id for r in taken) == ["m000001", "m000002", "m000003"]
        done = attrs.evolve(taken[0], status=OutboxStatus.SENT, claimed_by=None, lease_until=None)
        with storage.write() as tx:
            tx.outbox.update(done)
            assert tx.outbox.get(done.id) == done
            later = lease + timedelta(hours=1)
            again = tx.outbox.claim(later, dispatcher="d", lease_until=later, limit=10)
        assert sorted(r.id for r in again) == ["m000002", "m000003"]

    # --- sessions and rate limits of the server -------------------------------------------

    def test_sessions_round_trip_touch_and_end(self, storage: StorageBackend) -> None:
        row = WebSessionRow(
            token_hash=b"\x01" * 32,
            kind="professional",
            person_id="10003112348",
            created_at=T0,
            last_seen=T0,
            ends_at=T0 + timedelta(hours=12),
            csrf_token="csrf",
        )
        other = attrs.evolve(row, token_hash=b"\x02" * 32, last_seen=T0 + timedelta(hours=1))
        patient = attrs.evolve(row, token_hash=b"\x03" * 32, kind="patient", person_id="p1")
        with storage.write() as tx:
            for r in (row, other, patient):
                tx.sessions.add(r)
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.sessions.add(row)
        with storage.write() as tx:
            assert tx.sessions.get(row.token_hash) == row
            assert tx.sessions.touch(row.token_hash, T0 + timedelta(minutes=3))
            # last_seen never moves backwards (two workers touching out of order)
            assert tx.sessions.touch(row.token_hash, T0 + timedelta(minutes=1))
            assert tx.sessions.set_emergencies(row.token_hash, '{"p1": ["emergency"]}')
            assert not tx.sessions.touch(b"\x09" * 32, T0)
            stored = tx.sessions.get(row.token_hash)
            assert stored is not None
            assert stored.last_seen == T0 + timedelta(minutes=3)
            assert stored.emergencies == '{"p1": ["emergency"]}'
            assert tx.sessions.count() == 3
        with storage.write() as tx:
            # idle since before T0 + 2 min: row (touched at +3 min) and other stay
            assert (
                tx.sessions.purge(ended_before=T0, idle_before=T0 + timedelta(minutes=2), limit=10)
                == 1
            )
            assert tx.sessions.get(patient.token_hash) is None
            assert tx.sessions.delete_person("professional", "10003112348") == 2
            assert not tx.sessions.delete(row.token_hash)
            assert tx.sessions.count() == 0

    def test_rate_limit_counters_are_per_bucket_key_and_window(
        self, storage: StorageBackend
    ) -> None:
        later = T0 + timedelta(minutes=15)
        with storage.write() as tx:
            assert [tx.rate_limits.hit("login-ip", b"k1", T0) for _ in range(3)] == [1, 2, 3]
            assert tx.rate_limits.hit("login-ip", b"k2", T0) == 1
            assert tx.rate_limits.hit("login-person", b"k1", T0) == 1
            assert tx.rate_limits.hit("login-ip", b"k1", later) == 1
        with storage.write() as tx:
            assert tx.rate_limits.hits("login-ip", b"k1", T0) == 3
            assert tx.rate_limits.hits("login-ip", b"k3", T0) == 0
            assert tx.rate_limits.purge(later, limit=10, bucket="login-person") == 1
            assert tx.rate_limits.purge(later, limit=10) == 2
            assert tx.rate_limits.hits("login-ip", b"k1", T0) == 0
            assert tx.rate_limits.hits("login-ip", b"k1", later) == 1

    # --- accounts, codes, proofs, representations ------------------------------------------

    def test_accounts_round_trip_and_come_due_in_deadline_order(
        self, storage: StorageBackend
    ) -> None:
        with storage.write() as tx:
            for n in (1, 2, 3):
                tx.patients.add(make_patient_row(n))
            invited = AccountRow(
                "p000001", "invited", "letter", invited_at=T0, died_on="2020-01-01"
            )
            tx.accounts.add(invited, T0 + timedelta(days=42))
            tx.accounts.add(AccountRow("p000002", "invited", "email", T0), T0)
            tx.accounts.add(AccountRow("p000003", "registered"), None)
            with pytest.raises(ConflictError):
                tx.accounts.add(AccountRow("p000003", "registered"), None)
        with storage.read() as tx:
            assert tx.accounts.get("p000001") == invited
            assert [a.patient_id for a in tx.accounts.due(T0 + timedelta(days=50), limit=9)] == [
                "p000002",
                "p000001",
            ]
            assert tx.accounts.in_state("invited", limit=9) == ["p000001", "p000002"]
            assert tx.accounts.in_state("invited", after="p000001") == ["p000002"]
            assert tx.accounts.count_by_state() == {"invited": 2, "registered": 1}
        with storage.write() as tx:
            tx.accounts.update(attrs.evolve(invited, state="created"), None)
            with pytest.raises(NotFoundError):
                tx.accounts.update(AccountRow("nobody", "registered"), None)
        with storage.read() as tx:
            assert tx.accounts.due(T0 + timedelta(days=50), limit=9)[0].patient_id == "p000002"

    def test_due_and_listed_rows_of_a_slice_are_the_patients_of_that_slice(
        self, storage: StorageBackend
    ) -> None:
        # The backend's SQL (monespace_slice) must agree with slice_of, or a slice run
        # would apply a deadline another slice also applies, or one no slice applies.
        count = 40
        with storage.write() as tx:
            for n in range(1, count + 1):
                tx.patients.add(make_patient_row(n))
                tx.accounts.add(AccountRow(f"p{n:06d}", "invited", "email", T0), T0)
        later = T0 + timedelta(days=1)
        everyone = [f"p{n:06d}" for n in range(1, count + 1)]
        for slices in (1, 3, 7):
            seen: list[str] = []
            listed: list[str] = []
            with storage.read() as tx:
                for index in range(slices):
                    part = Slice(index, slices)
                    due = [a.patient_id for a in tx.accounts.due(later, limit=99, part=part)]
                    assert all(slice_of(pid, slices) == index for pid in due)
                    seen += due
                    # The batch jobs' listing, one page of 5 after the other.
                    after: str | None = None
                    while page := tx.accounts.in_state("invited", after=after, limit=5, part=part):
                        assert page == sorted(page)
                        assert all(slice_of(pid, slices) == index for pid in page)
                        listed += page
                        after = page[-1]
            assert sorted(seen) == everyone
            assert sorted(listed) == everyone

    def test_codes_and_proofs_are_replaced_not_duplicated(self, storage: StorageBackend) -> None:
        first = CodeRow("p000001", b"h1", T0, T0 + timedelta(days=42))
        second = CodeRow("p000001", b"h2", T0, T0 + timedelta(days=42), attempts=2)
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.codes.put(first)
            tx.codes.put(second)
            tx.proofs.put(ProofRow("p000001", b"v", b"b"))
            tx.proofs.put(ProofRow("p000001", b"v", b"b", 3, T0))
        with storage.read() as tx:
            assert tx.codes.get("p000001") == second
            assert tx.proofs.get("p000001") == ProofRow("p000001", b"v", b"b", 3, T0)
            assert tx.codes.get("nobody") is None

    def test_batch_reads_find_what_single_reads_find(self, storage: StorageBackend) -> None:
        """``get_many`` and ``of_patients`` (a batch job's reads) agree with ``get`` and
        ``of_patient``, leave out ids with nothing stored, and take ids more than once."""
        with storage.write() as tx:
            for n in (1, 2, 3):
                tx.patients.add(make_patient_row(n))
                tx.keys.add(DataKeyRow(f"p{n:06d}", "k1", f"wrapped-{n}".encode(), T0))
                tx.accounts.add(AccountRow(f"p{n:06d}", "registered"), None)
            tx.keys.destroy("p000002", T0)
            kind = "legal_guardian"
            tx.representations.put(RepresentationRow("p000002", "p000003", kind, T0))
            tx.representations.put(RepresentationRow("p000002", "p000001", kind, T0, T0, T0))
            tx.representations.put(RepresentationRow("p000003", "p000001", kind, T0))
        ids = ["p000003", "nobody", "p000001", "p000002", "p000003"]
        with storage.read() as tx:
            for repo in (tx.patients, tx.keys, tx.accounts):
                expected = {pid: repo.get(pid) for pid in ids if pid != "nobody"}
                assert repo.get_many(ids) == expected
                assert repo.get_many([]) == {}
            links = tx.representations.of_patients(["p000002", "nobody", "p000003"])
            by_pair = operator.attrgetter("patient_id", "representative_id")
            assert sorted(links, key=by_pair) == sorted(
                tx.representations.of_patient("p000002") + tx.representations.of_patient("p000003"),
                key=by_pair,
            )
            assert tx.representations.of_patients([]) == []
        with storage.write() as tx:
            # Read for a batch, then changed: the transaction sees the change.
            tx.accounts.get_many(["p000001", "p000002"])
            tx.accounts.update(AccountRow("p000001", "created"), None)
            assert tx.subject("p000001").account == AccountRow("p000001", "created")
            assert tx.accounts.get("p000001") == AccountRow("p000001", "created")
            assert tx.subject("p000002").account == AccountRow("p000002", "registered")
        with storage.read() as tx:
            assert tx.subject("p000001").account == AccountRow("p000001", "created")

    def test_batch_writes_store_what_single_writes_store(self, storage: StorageBackend) -> None:
        """``update_many``, ``put_many``, ``add_many`` and ``append_many`` (a batch job's
        writes) store what the one-row methods store, and refuse what they refuse."""
        with storage.write() as tx:
            for n in (1, 2, 3):
                tx.patients.add(make_patient_row(n))
                tx.accounts.add(AccountRow(f"p{n:06d}", "registered"), None)
            tx.codes.put(CodeRow("p000001", b"old", T0, T0))
        deadline = T0 + timedelta(days=42)
        invited = [
            (AccountRow(f"p{n:06d}", "invited", "email", invited_at=T0), deadline) for n in (1, 2)
        ]
        codes = [CodeRow(f"p{n:06d}", f"h{n}".encode(), T0, deadline) for n in (1, 2)]
        notices = [make_outbox_row(n, patient_id=f"p{n:06d}") for n in (1, 2)]
        with storage.write() as tx:
            tx.accounts.update_many(invited)
            tx.accounts.update_many([])
            tx.codes.put_many(codes)
            tx.codes.put_many([])
            tx.outbox.add_many(notices)
            tx.outbox.add_many([])
            zero = make_event(None, "p000001")
            one = make_event(None, "p000002", shard="1")
            events = [zero, one, make_event(zero, "p000001"), make_event(one, shard="1")]
            tx.audit.append_many([event_row(e) for e in events])
            tx.audit.append_many([])
        with storage.read() as tx:
            assert [tx.accounts.get(f"p{n:06d}") for n in (1, 2, 3)] == [
                *(row for row, _ in invited),
                AccountRow("p000003", "registered"),
            ]
            assert [a.patient_id for a in tx.accounts.due(deadline, limit=9)] == [
                "p000001",
                "p000002",
            ]
            assert [tx.codes.get(f"p{n:06d}") for n in (1, 2)] == codes
            assert [tx.outbox.get(row.id) for row in notices] == notices
            assert tx.audit.scan(shard="0") == [event_row(events[0]), event_row(events[2])]
            assert tx.audit.scan(shard="1") == [event_row(events[1]), event_row(events[3])]
        with pytest.raises(NotFoundError), storage.write() as tx:
            tx.accounts.update_many([(AccountRow("nobody", "invited"), None), invited[0]])
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.outbox.add_many([make_outbox_row(3), make_outbox_row(1)])
        with pytest.raises(ConflictError), storage.write() as tx:
            gap = make_event(make_event(events[2]))
            tx.audit.append_many([event_row(gap)])
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.audit.append_many([event_row(events[2])])
        with storage.read() as tx:
            assert tx.outbox.count() == 2
            assert tx.audit.count() == 4

    def test_representations_end_in_order(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            for n in (1, 2, 3):
                tx.patients.add(make_patient_row(n))
            kind = "legal_guardian"
            tx.representations.put(
                RepresentationRow("p000001", "p000003", kind, T0, T0 + timedelta(days=9))
            )
            tx.representations.put(
                RepresentationRow("p000002", "p000003", kind, T0, T0 + timedelta(days=5))
            )
            tx.representations.put(RepresentationRow("p000002", "p000001", "protected_adult", T0))
        with storage.read() as tx:
            ending = tx.representations.ending(T0 + timedelta(days=10), limit=9)
            assert [(r.patient_id, r.representative_id) for r in ending] == [
                ("p000002", "p000003"),
                ("p000001", "p000003"),
            ]
            assert [r.patient_id for r in tx.representations.by_representative("p000003")] == [
                "p000001",
                "p000002",
            ]
            assert len(tx.representations.of_patient("p000002")) == 2
        with storage.write() as tx:
            link = tx.representations.get("p000002", "p000003")
            assert link is not None
            tx.representations.put(attrs.evolve(link, ended_at=T0, end_reason="majority"))
        with storage.read() as tx:
            assert len(tx.representations.ending(T0 + timedelta(days=10), limit=9)) == 1

    # --- documents and entries -------------------------------------------------------------

    def test_documents_round_trip_and_are_unique_per_record(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.blobs.add(BlobRow("b1", "p000001", "document", "text/plain", 1, b"h", b"s", T0))
            tx.blobs.add(BlobRow("b2", "p000001", "document", "text/plain", 1, b"h", b"s", T0))
            first = make_document_row("d1", "b1", "uid-1", release_at=T0 + timedelta(days=30))
            tx.documents.add(first)
            with pytest.raises(ConflictError):
                tx.documents.add(make_document_row("d2", "b2", "uid-1"))
            second = make_document_row("d2", "b2", "uid-2", notify_at=T0 + timedelta(days=14))
            tx.documents.add(attrs.evolve(second, created_at=T0 - timedelta(days=1)))
        with storage.read() as tx:
            assert tx.documents.get("d1") == first
            assert tx.documents.by_unique_id("p000001", "uid-1") == first
            assert [d.id for d in tx.documents.for_patient("p000001")] == ["d2", "d1"]
            assert [d.id for d in tx.documents.releasing(T0 + timedelta(days=31), limit=9)] == [
                "d1"
            ]
            assert [d.id for d in tx.documents.to_notify(T0 + timedelta(days=31), limit=9)] == [
                "d2"
            ]
        with storage.write() as tx:
            tx.documents.update(attrs.evolve(first, status="deleted", release_at=None))
            assert tx.documents.delete_for_patient("p000001") == 2
        with storage.read() as tx:
            assert tx.documents.for_patient("p000001") == []

    def test_entries_filter_by_kind_and_period(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            for n in range(6):
                kind = "weight" if n % 2 else "steps"
                row = EntryRow(f"e{n}", "p000001", kind, T0 + timedelta(days=n), b"sealed")
                tx.measures.add(row)
                tx.profile.add(attrs.evolve(row, kind="allergy"))
        with storage.read() as tx:
            weights = tx.measures.for_patient("p000001", kind="weight")
            assert [r.id for r in weights] == ["e1", "e3", "e5"]
            window = tx.measures.for_patient(
                "p000001", since=T0 + timedelta(days=2), until=T0 + timedelta(days=4)
            )
            assert [r.id for r in window] == ["e2", "e3"]
            assert len(tx.profile.for_patient("p000001", kind="allergy")) == 6
        with storage.write() as tx:
            tx.measures.update(EntryRow("e1", "p000001", "weight", T0, b"changed"))
            assert tx.measures.delete("e0")
            assert not tx.measures.delete("e0")
            assert tx.profile.delete_for_patient("p000001") == 6
        with storage.read() as tx:
            assert tx.measures.get("e1") == EntryRow("e1", "p000001", "weight", T0, b"changed")
            assert tx.profile.for_patient("p000001") == []

    def test_devices_are_one_per_identifier_index_and_patient(
        self, storage: StorageBackend
    ) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.patients.add(make_patient_row(2))
            tx.devices.add(EntryRow("v1", "p000001", "device:ab", T0, b"sealed"))
            # Another person's device of the same index is theirs.
            tx.devices.add(EntryRow("v2", "p000002", "device:ab", T0, b"sealed"))
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.devices.add(EntryRow("v3", "p000001", "device:ab", T0, b"again"))
        with storage.read() as tx:
            assert [r.id for r in tx.devices.for_patient("p000001", kind="device:ab")] == ["v1"]
        with storage.write() as tx:
            assert tx.devices.delete_for_patient("p000001") == 1
        with storage.read() as tx:
            assert tx.devices.for_patient("p000001") == []
            assert [r.id for r in tx.devices.for_patient("p000002")] == ["v2"]

    # --- agenda ----------------------------------------------------------------------------

    def test_agenda_events_keep_their_history_and_are_unique_per_agenda(
        self, storage: StorageBackend
    ) -> None:
        def event(n: int, patient: str = "p000001", **changes: Any) -> AgendaEventRow:
            row = AgendaEventRow(
                patient_id=patient,
                id=f"ev{n}",
                version=1,
                kind="appointment",
                status="planned",
                starts_at=T0 + timedelta(days=n),
                ends_at=None if n % 2 else T0 + timedelta(days=n, hours=1),
                reminder_id=None,
                uid=f"uid{n}",
                sequence=0,
                changed_at=T0,
                actor_kind="patient",
                actor_id=patient,
                change="created",
                sealed=b"sealed",
            )
            return attrs.evolve(row, **changes)

        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.patients.add(make_patient_row(2))
            for n in (3, 1, 2):
                tx.agenda.add(event(n))
            tx.agenda.add(event(1, "p000002"))  # ids and UIDs are unique per agenda only
        with storage.write() as tx, pytest.raises(ConflictError):
            tx.agenda.add(event(9, uid="uid1"))
        with storage.write() as tx:
            done = event(2, version=2, status="done", change="done", reminder_id="child_exam.2")
            tx.agenda.update(done)
            with pytest.raises(NotFoundError):
                tx.agenda.update(done)  # version 1 is no longer the current one
        with storage.read() as tx:
            assert [r.id for r in tx.agenda.for_patient("p000001")] == ["ev1", "ev2", "ev3"]
            window = tx.agenda.for_patient(
                "p000001", since=T0 + timedelta(days=2), until=T0 + timedelta(days=3)
            )
            assert window == [done]
            assert tx.agenda.for_patient("p000001", status="done") == [done]
            assert tx.agenda.get("p000001", "ev2") == done
            assert tx.agenda.get("p000002", "ev2") is None
            assert tx.agenda.by_uid("p000001", "uid3") == event(3)
            assert [r.version for r in tx.agenda.history("p000001", "ev2")] == [1, 2]
            assert tx.agenda.history("p000001", "ev2")[0] == event(2)

    def test_reminder_opt_outs_and_sent_lines_are_once_only(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            assert tx.agenda.set_opt_out(ReminderOptOutRow("p000001", "vaccination", T0))
            assert not tx.agenda.set_opt_out(ReminderOptOutRow("p000001", "vaccination", T0))
            assert tx.agenda.set_opt_out(ReminderOptOutRow("p000001", "screening", T0))
            line = ReminderSentRow("p000001", "screening.breast", "2026-01-01", "p000001", T0, b"w")
            assert tx.agenda.mark_sent(line)
            assert not tx.agenda.mark_sent(attrs.evolve(line, sent_at=T0 + timedelta(days=1)))
            assert tx.agenda.mark_sent(attrs.evolve(line, cycle="2028-01-01"))
            assert tx.agenda.mark_sent(attrs.evolve(line, recipient_id="p000002"))
        with storage.read() as tx:
            assert [r.family for r in tx.agenda.opt_outs("p000001")] == ["screening", "vaccination"]
            assert len(tx.agenda.sent("p000001")) == 3
            assert tx.agenda.sent("p000001", "screening.breast")[0] == line
            assert tx.agenda.sent("p000001", "vaccination.hpv") == []
        with storage.write() as tx:
            assert tx.agenda.clear_opt_out("p000001", "screening")
            assert not tx.agenda.clear_opt_out("p000001", "screening")
            assert tx.agenda.delete_for_patient("p000001") == 0
        with storage.read() as tx:
            assert tx.agenda.opt_outs("p000001") == []
            assert tx.agenda.sent("p000001") == []

    # --- catalogue -------------------------------------------------------------------------

    def test_applications_are_unique_and_filter_by_status_and_vendor(
        self, storage: StorageBackend
    ) -> None:
        first = ApplicationRow("a1", "suivi-poids", "v1", "applied", T0, '{"k": "é"}')
        second = ApplicationRow("a2", "agenda-plus", "v2", "under_review", T0, "{}")
        with storage.write() as tx:
            tx.catalogue.add_application(first)
            tx.catalogue.add_application(second)
            with pytest.raises(ConflictError):
                tx.catalogue.add_application(attrs.evolve(first, id="a3"))
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.catalogue.add_application(attrs.evolve(second, client_id="other"))
        moved = attrs.evolve(first, status="under_review", changed_at=T0 + timedelta(days=1))
        with storage.write() as tx:
            tx.catalogue.update_application(moved)
            with pytest.raises(NotFoundError):
                tx.catalogue.update_application(attrs.evolve(first, id="nobody"))
        with storage.read() as tx:
            assert tx.catalogue.application("a1") == moved
            assert tx.catalogue.application("nobody") is None
            assert [r.id for r in tx.catalogue.applications()] == ["a1", "a2"]
            assert tx.catalogue.applications(status="under_review") == [moved, second]
            assert tx.catalogue.applications(vendor_id="v2") == [second]
            assert tx.catalogue.applications(status="applied") == []

    def test_apps_are_replaced_and_consents_are_per_patient(self, storage: StorageBackend) -> None:
        app = AppRow(
            "suivi-poids", "a1", "Suivi Poids", "Balance", "Poids", "mesures", "referenced",
            T0 + timedelta(days=365), '{"scopes": []}',
        )  # fmt: skip
        other = attrs.evolve(app, client_id="agenda-plus", application_id="a2", name="Agenda")
        consent = ConsentRow("p000001", "suivi-poids", "mesures.read", T0, "patient:p000001")
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.patients.add(make_patient_row(2))
            for n, row in enumerate((app, other), 1):
                tx.catalogue.add_application(
                    ApplicationRow(f"a{n}", row.client_id, "v1", "referenced", T0, "{}")
                )
                tx.catalogue.put_app(row)
            tx.catalogue.put_app(attrs.evolve(app, status="suspended", convention_until=None))
            tx.catalogue.put_consent(consent)
            tx.catalogue.put_consent(attrs.evolve(consent, client_id="agenda-plus"))
            tx.catalogue.put_consent(attrs.evolve(consent, patient_id="p000002"))
        revoked = attrs.evolve(consent, revoked_at=T0 + timedelta(hours=1))
        with storage.write() as tx:
            tx.catalogue.put_consent(revoked)
        with storage.read() as tx:
            assert tx.catalogue.app("suivi-poids") == attrs.evolve(
                app, status="suspended", convention_until=None
            )
            assert tx.catalogue.app("nobody") is None
            assert [r.name for r in tx.catalogue.apps()] == ["Agenda", "Suivi Poids"]
            assert tx.catalogue.apps(status="referenced") == [other]
            assert tx.catalogue.consent("p000001", "suivi-poids") == revoked
            assert tx.catalogue.consent("p000001", "nobody") is None
            assert [c.client_id for c in tx.catalogue.consents("p000001")] == [
                "agenda-plus",
                "suivi-poids",
            ]
        with storage.write() as tx:
            assert tx.catalogue.delete_consents("p000001") == 2
        with storage.read() as tx:
            assert tx.catalogue.consents("p000001") == []
            assert len(tx.catalogue.consents("p000002")) == 1

    # --- OAuth codes and tokens --------------------------------------------------------------

    def test_oauth_codes_are_used_once_and_tokens_rotate_and_revoke_by_family(
        self, storage: StorageBackend
    ) -> None:
        code = OAuthCodeRow(
            "p000001", b"c" * 32, "f1", "suivi-poids", "https://poids.example/cb",
            "x" * 43, "mesures.read", T0, T0 + timedelta(seconds=60),
        )  # fmt: skip
        access = OAuthTokenRow(
            "p000001", b"a" * 32, "access", "suivi-poids", "f1", "mesures.read", T0,
            T0 + timedelta(minutes=10),
        )  # fmt: skip
        refresh = attrs.evolve(
            access, token_hash=b"r" * 32, kind="refresh", expires_at=T0 + timedelta(days=30)
        )
        other = attrs.evolve(access, token_hash=b"o" * 32, family_id="f2")
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.oauth.add_code(code)
            for row in (access, refresh, other):
                tx.oauth.add_token(row)
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.oauth.add_token(access)
        later = T0 + timedelta(seconds=5)
        with storage.write() as tx:
            assert tx.oauth.code(b"c" * 32) == code
            assert tx.oauth.code(b"z" * 32) is None
            assert tx.oauth.use_code("p000001", b"c" * 32, later)
            assert not tx.oauth.use_code("p000001", b"c" * 32, later)
            assert tx.oauth.rotate("p000001", b"r" * 32, later)
            assert not tx.oauth.rotate("p000001", b"r" * 32, later)
        with storage.write() as tx:
            assert tx.oauth.code(b"c" * 32) == attrs.evolve(code, used_at=later)
            assert tx.oauth.token(b"r" * 32) == attrs.evolve(refresh, rotated_at=later)
            assert tx.oauth.revoke_family("p000001", "f1", later) == 2
            assert tx.oauth.revoke_family("p000001", "f1", later) == 0
            assert tx.oauth.revoke("p000001", b"o" * 32, later)
            assert not tx.oauth.revoke("p000001", b"o" * 32, later)
        with storage.read() as tx:
            assert tx.oauth.token(b"a" * 32) == attrs.evolve(access, revoked_at=later)
            assert tx.oauth.token(b"nothing") is None
        with storage.write() as tx:
            # The code and the two access tokens expired; the refresh token has not.
            assert tx.oauth.purge(T0 + timedelta(hours=1), limit=1) == 2
            assert tx.oauth.purge(T0 + timedelta(hours=1), limit=1) == 1
            assert tx.oauth.purge(T0 + timedelta(hours=1), limit=1) == 0
            assert tx.oauth.token(b"r" * 32) is not None
            assert tx.oauth.delete_for_patient("p000001") == 1
        with storage.read() as tx:
            assert tx.oauth.token(b"r" * 32) is None

    # --- access ----------------------------------------------------------------------------

    def test_access_directory_grants_blocks_settings_sessions(
        self, storage: StorageBackend
    ) -> None:
        doctor = ProfessionalRow("10000000017", "10", "Dr Martin", mssante="m@medecin.mssante.fr")
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.access.put_professional(doctor)
            tx.access.put_professional(attrs.evolve(doctor, name="Dr Martin-Durand"))
            grant = GrantRow("p000001", doctor.rpps, "authorised", T0, T0 + timedelta(days=1))
            tx.access.put_grant(grant)
            tx.access.put_grant(attrs.evolve(grant, ended_at=T0 + timedelta(hours=1)))
            tx.access.put_grant(GrantRow("p000001", doctor.rpps, "treating_doctor", T0))
            tx.access.block("p000001", doctor.rpps, T0)
            tx.access.block("p000001", doctor.rpps, T0 + timedelta(days=1))
            tx.access.put_settings(AccessSettingsRow("p000001", object_emergency=True))
            session = EmergencyRow(
                "e1", "p000001", doctor.rpps, "emergency", T0, T0 + timedelta(hours=24)
            )
            tx.access.add_emergency(session, b"sealed")
            assert tx.access.mark_seen("p000001", doctor.rpps, T0)
            assert not tx.access.mark_seen("p000001", doctor.rpps, T0)
        with storage.read() as tx:
            stored = tx.access.professional(doctor.rpps)
            assert stored is not None
            assert stored.name == "Dr Martin-Durand"
            assert tx.access.professional("nobody") is None
            grants = tx.access.grants("p000001", doctor.rpps)
            assert [(g.kind, g.ended_at) for g in grants] == [
                ("authorised", T0 + timedelta(hours=1)),
                ("treating_doctor", None),
            ]
            assert tx.access.blocked("p000001") == [doctor.rpps]
            assert tx.access.settings("p000001") == AccessSettingsRow(
                "p000001", object_emergency=True
            )
            assert tx.access.settings("p000002") is None
            assert tx.access.emergencies("p000001", doctor.rpps) == [session]
        with storage.write() as tx:
            assert tx.access.unblock("p000001", doctor.rpps)
            assert not tx.access.unblock("p000001", doctor.rpps)
        with storage.read() as tx:
            assert tx.access.blocked("p000001") == []

    def test_the_subject_of_a_decision_is_read_as_the_repositories_say(
        self, storage: StorageBackend
    ) -> None:
        """``Transaction.subject`` (one round trip where a backend overrides it) answers as
        the repositories asked one by one (the base class's definition)."""
        doctor = ProfessionalRow("10000000017", "10", "Dr Martin")
        other = ProfessionalRow("10000000025", "10", "Dr Durand")
        with storage.write() as tx:
            for n in (1, 2):
                tx.patients.add(make_patient_row(n))
            tx.accounts.add(AccountRow("p000001", "created", "email", T0, opened_at=T0), None)
            tx.access.put_professional(doctor)
            tx.access.put_professional(other)
            tx.access.put_grant(GrantRow("p000001", doctor.rpps, "care_team", T0))
            tx.access.put_grant(GrantRow("p000001", doctor.rpps, "authorised", T0, T0))
            tx.access.block("p000001", other.rpps, T0)
            tx.access.put_settings(AccessSettingsRow("p000001", mask_all=True))
            tx.keys.add(DataKeyRow("p000001", "k1", b"wrapped", T0))
        cases = [
            (p, r) for p in ("p000001", "p000002", "p000003")
            for r in (None, doctor.rpps, other.rpps, "10000000033")
        ]  # fmt: skip
        with storage.read() as tx:
            for patient_id, rpps in cases:
                assert tx.subject(patient_id, rpps) == Transaction.subject(tx, patient_id, rpps)
        with storage.write() as tx:
            # What the subject read is not served stale after a change in the same transaction.
            tx.subject("p000001", doctor.rpps)
            assert tx.keys.destroy("p000001", T0)
            key = tx.keys.get("p000001")
            assert key is not None
            assert key.wrapped is None
            tx.patients.replace_identity("p000001", b"new")
            patient = tx.patients.get("p000001")
            assert patient is not None
            assert patient.sealed_identity == b"new"

    def test_newest_documents_page_backwards_from_a_cursor(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            for n in range(7):
                tx.blobs.add(
                    BlobRow(f"b{n}", "p000001", "document", "text/plain", 1, b"h", b"s", T0)
                )
                row = make_document_row(f"d{n}", f"b{n}", f"uid-{n}")
                # Two share a creation time: the id breaks the tie.
                tx.documents.add(attrs.evolve(row, created_at=T0 + timedelta(days=n // 2)))
        with storage.read() as tx:
            newest = list(reversed(tx.documents.for_patient("p000001")))
            assert tx.documents.newest_for_patient("p000001", limit=100) == newest
            walked: list[DocumentRow] = []
            cursor = None
            while page := tx.documents.newest_for_patient("p000001", before=cursor, limit=3):
                walked.extend(page)
                cursor = (page[-1].created_at, page[-1].id)
            assert walked == newest
            assert tx.documents.newest_for_patient("p000002", limit=3) == []

    def test_documents_are_grouped_by_kind_as_the_default_does(
        self, storage: StorageBackend
    ) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            for n in range(9):
                tx.blobs.add(
                    BlobRow(f"b{n}", "p000001", "document", "text/plain", 1, b"h", b"s", T0)
                )
                row = make_document_row(
                    f"d{n}",
                    f"b{n}",
                    f"uid-{n}",
                    created_at=T0 + timedelta(days=n),
                    flags=n % 2,
                    release_at=None if n % 3 else T0 + timedelta(days=40),
                    submitted_by=None if n < 6 else "10000000025",
                )
                tx.documents.add(row)
        with storage.read() as tx:
            for since, until in ((None, None), (T0 + timedelta(days=2), T0 + timedelta(days=7))):
                got = tx.documents.kinds_for_patient("p000001", since=since, until=until)
                expected = DocumentRepository.kinds_for_patient(
                    tx.documents, "p000001", since=since, until=until
                )

                def kind(row: DocumentRow) -> tuple[object, ...]:
                    return tuple(getattr(row, c) for c in DOCUMENT_KIND_COLUMNS)

                assert sorted((repr(kind(r)), n) for r, n in got) == sorted(
                    (repr(kind(r)), n) for r, n in expected
                )
                assert len({kind(r) for r, _ in got}) == len(got)
            assert tx.documents.kinds_for_patient("p000002") == []

    def test_professionals_are_found_by_mssante_address_ignoring_case(
        self, storage: StorageBackend
    ) -> None:
        with storage.write() as tx:
            tx.access.put_professional(
                ProfessionalRow(
                    "10000000025", "10", "Cardiologie", mssante="Cardio@CH-X.mssante.fr"
                )
            )
            tx.access.put_professional(
                ProfessionalRow("10000000017", "10", "Dr Martin", mssante="cardio@ch-x.mssante.fr")
            )
            tx.access.put_professional(ProfessionalRow("10000000033", "10", "Dr Sans Adresse"))
        with storage.read() as tx:
            found = tx.access.professional_by_mssante("CARDIO@ch-x.mssante.fr")
            assert found is not None
            assert found.rpps == "10000000017"  # the lowest RPPS of those sharing the box
            assert tx.access.professional_by_mssante("other@ch-x.mssante.fr") is None

    # --- messaging -------------------------------------------------------------------------

    def test_threads_round_trip_and_list_most_recent_first(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.patients.add(make_patient_row(2))
            first = _thread_row("t1", closed_at=T0 + timedelta(hours=1), status="closed")
            tx.messages.add_thread(first)
            tx.messages.add_thread(_thread_row("t2", last_message_at=T0 + timedelta(days=1)))
            tx.messages.add_thread(_thread_row("t3", "p000002", professional_id="10000000025"))
            with pytest.raises(ConflictError):
                tx.messages.add_thread(_thread_row("t1"))
        with storage.read() as tx:
            assert tx.messages.get_thread("t1") == first
            assert tx.messages.get_thread("nope") is None
            assert [t.id for t in tx.messages.threads_for_patient("p000001")] == ["t2", "t1"]
            assert [t.id for t in tx.messages.threads_for_professional("10000000017")] == [
                "t2",
                "t1",
            ]
            assert [t.id for t in tx.messages.threads_for_professional("10000000025")] == ["t3"]
        with storage.write() as tx:
            archived = attrs.evolve(first, patient_archived=True, status="open", closed_at=None)
            tx.messages.update_thread(archived)
            with pytest.raises(NotFoundError):
                tx.messages.update_thread(_thread_row("nope"))
        with storage.read() as tx:
            assert tx.messages.get_thread("t1") == archived

    def test_messages_round_trip_unread_and_message_ids(self, storage: StorageBackend) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.patients.add(make_patient_row(2))
            tx.messages.add_thread(_thread_row("t1"))
            tx.messages.add_thread(_thread_row("t2", "p000002"))
            opening = _message_row("m1", "t1", closes_thread=True, ins_qualified=True)
            reply = _message_row(
                "m2",
                "t1",
                sender_kind="patient",
                sender_id="p000001",
                sent_at=T0 + timedelta(minutes=5),
                ins_qualified=False,
                position=1,
            )
            tx.messages.add_message(reply)
            tx.messages.add_message(opening)
            # Conversation order is the position, even when a clock stepped back.
            tx.messages.add_message(_message_row("m3", "t1", sent_at=T0, position=2))
            # The same Message-ID for another patient is another message (two recipients).
            tx.messages.add_message(
                _message_row("m4", "t2", "p000002", rfc_message_id=opening.rfc_message_id)
            )
            tx.messages.add_message(
                _message_row("m5", "t1", rfc_message_id="<m1@x.fr>", position=3)
            )
            with pytest.raises(ConflictError):
                tx.messages.add_message(
                    _message_row("m6", "t1", rfc_message_id="<m1@x.fr>", position=4)
                )
            with pytest.raises(ConflictError):
                tx.messages.add_message(_message_row("m5", "t1", position=5))
            with pytest.raises(ConflictError):
                tx.messages.add_message(_message_row("m7", "t1", position=3))
        with storage.read() as tx:
            assert tx.messages.get_message("m1") == opening
            assert tx.messages.get_message("m2") == reply
            assert tx.messages.get_message("m6") is None
            assert [m.id for m in tx.messages.messages_in_thread("t1")] == ["m1", "m2", "m3", "m5"]
            assert tx.messages.by_rfc_message_id("p000001", opening.rfc_message_id) == opening
            assert tx.messages.by_rfc_message_id("p000001", "<none@x.fr>") is None
            assert tx.messages.unread_for_patient("p000001") == {"t1": 3}
            assert tx.messages.unread_for_professional("10000000017") == {"t1": 1}
        with storage.write() as tx:
            tx.messages.update_message(attrs.evolve(opening, read_at=T0 + timedelta(days=1)))
            tx.messages.update_message(attrs.evolve(reply, read_at=T0 + timedelta(days=1)))
            with pytest.raises(NotFoundError):
                tx.messages.update_message(_message_row("nope", "t1"))
        with storage.read() as tx:
            assert tx.messages.unread_for_patient("p000001") == {"t1": 2}
            assert tx.messages.unread_for_professional("10000000017") == {}
            assert tx.messages.get_message("m1") == attrs.evolve(
                opening, read_at=T0 + timedelta(days=1)
            )

    def test_attachments_list_in_order_and_go_with_their_message(
        self, storage: StorageBackend
    ) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.messages.add_thread(_thread_row("t1"))
            first = _message_row("m1", "t1")
            second = _message_row("m2", "t1", sent_at=T0 + timedelta(days=3), position=1)
            tx.messages.add_message(first)
            tx.messages.add_message(second)
            rows = [
                _attachment_row("a2", first, 1),
                _attachment_row("a1", first, 0),
                _attachment_row("a3", second, 0),
            ]
            for row in rows:
                tx.messages.add_attachment(row)
            with pytest.raises(ConflictError):
                tx.messages.add_attachment(rows[0])
        with storage.read() as tx:
            assert tx.messages.get_attachment("a2") == rows[0]
            assert tx.messages.get_attachment("nope") is None
            assert [a.id for a in tx.messages.attachments_in_thread("t1")] == ["a1", "a2", "a3"]
            old = tx.messages.sent_before(T0 + timedelta(days=1), limit=10)
            assert [m.id for m in old] == ["m1"]
            assert tx.messages.sent_before(T0, limit=10) == []
        with storage.write() as tx:
            assert tx.messages.delete_message("m1")
            assert not tx.messages.delete_message("m1")
        with storage.read() as tx:
            assert [a.id for a in tx.messages.attachments_in_thread("t1")] == ["a3"]
            assert [m.id for m in tx.messages.messages_in_thread("t1")] == ["m2"]
        with storage.write() as tx:
            assert tx.messages.delete_thread("t1")
            assert not tx.messages.delete_thread("t1")
        with storage.read() as tx:
            assert tx.messages.get_message("m2") is None
            assert tx.messages.get_attachment("a3") is None

    def test_messaging_rows_roll_back_and_are_deleted_per_patient(
        self, storage: StorageBackend
    ) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(1))
            tx.patients.add(make_patient_row(2))
            tx.messages.add_thread(_thread_row("t1"))
            tx.messages.add_thread(_thread_row("t2", "p000002"))
            kept = _message_row("m9", "t2", "p000002")
            tx.messages.add_message(kept)
        with pytest.raises(_Abort), storage.write() as tx:
            message = _message_row("m1", "t1")
            tx.messages.add_message(message)
            tx.messages.add_attachment(_attachment_row("a1", message, 0))
            tx.messages.update_thread(_thread_row("t1", status="closed"))
            tx.messages.delete_thread("t2")
            raise _Abort
        with storage.read() as tx:
            assert tx.messages.messages_in_thread("t1") == []
            assert tx.messages.get_attachment("a1") is None
            assert tx.messages.get_thread("t1") == _thread_row("t1")
            assert tx.messages.messages_in_thread("t2") == [kept]
        with storage.write() as tx:
            message = _message_row("m1", "t1")
            tx.messages.add_message(message)
            tx.messages.add_message(_message_row("m2", "t1", position=1))
            tx.messages.add_attachment(_attachment_row("a1", message, 0))
            assert tx.messages.delete_for_patient("p000001") == 2
        with storage.read() as tx:
            assert tx.messages.threads_for_patient("p000001") == []
            assert tx.messages.get_attachment("a1") is None
            assert tx.messages.threads_for_patient("p000002") != []

    # --- properties ----------------------------------------------------------------------

    @settings(
        max_examples=40,
        deadline=None,
        # One fresh backend per test, examples share it (ids stay distinct); and the same
        # method runs from each backend's subclass by design of a contract suite.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        sealed=st.binary(min_size=1, max_size=2048),
        moment=st.datetimes(
            min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
        ),
        media=st.sampled_from(["application/pdf", "text/xml", "image/jpeg"]),
    )
    def test_any_blob_survives_storage_unchanged(
        self, storage: StorageBackend, sealed: bytes, moment: datetime, media: str
    ) -> None:
        with storage.write() as tx:
            if tx.patients.get("p000001") is None:
                tx.patients.add(make_patient_row(1))
            blob_id = f"b{len(tx.blobs.list_for_patient('p000001'))}"
            row = BlobRow(
                blob_id, "p000001", "content", media, len(sealed), b"h" * 32, sealed, moment
            )
            tx.blobs.add(row)
        with storage.read() as tx:
            assert tx.blobs.get(blob_id) == row
