"""The Space facade end to end, on the memory and the SQLite backend."""

from __future__ import annotations

import sqlite3

import pytest

import monespace
from monespace import Actor
from monespace._ids import new_id
from monespace.audit import Outcome, event_from_row
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.errors import (
    AccessDeniedError,
    ConflictError,
    DataShreddedError,
    DecryptionError,
    MasterKeyError,
    NotFoundError,
    SchemaVersionError,
    UnknownSchemeError,
    ValidationError,
)
from monespace.storage import SQLiteStorage
from monespace.testing import storage_of

from .helpers import MARKER, add_note, identity, open_patient, open_space

OPERATOR = Actor.system("test")


@pytest.fixture
def space(url, keys, monespace_clock):
    with open_space(url, monespace_clock, keys=keys, transports=["email"]) as opened:
        yield opened


def snapshot(space):
    """Counts that must not move when an operation fails."""
    with storage_of(space).read() as tx:
        return (
            tx.patients.count(),
            tx.audit.count(),
            tx.outbox.count(),
            len(tx.keys.master_key_ids()),
        )


def test_a_patient_reads_their_identity_and_the_operator_finds_them_by_nir(space):
    patient = open_patient(space, identity())
    mine = space.accounts.get_patient(Actor.patient(patient.id), patient.id)
    assert mine.identity == identity()
    found = space.accounts.find_by_nir(OPERATOR, identity().ins.matricule)
    assert found.id == patient.id
    with pytest.raises(NotFoundError):
        space.accounts.find_by_nir(OPERATOR, identity(2).ins.matricule)


def test_registering_the_same_nir_twice_changes_nothing(space):
    open_patient(space, identity())
    before = snapshot(space)
    with pytest.raises(ConflictError):
        open_patient(space, identity(email="other@example.org"))
    patients, audit, outbox, masters = before
    assert snapshot(space) == (patients, audit + 1, outbox, masters)  # + the failure event
    with storage_of(space).read() as tx:
        assert event_from_row(tx.audit.last()).outcome is Outcome.FAILURE


def test_only_the_operator_registers_patients(space):
    with pytest.raises(AccessDeniedError):
        space.accounts.register_patient(Actor.patient("someone"), identity())
    assert space.accounts.count() == 0


def test_contents_are_stored_encrypted_and_read_back_by_their_patient(space):
    patient = open_patient(space, identity())
    me = Actor.patient(patient.id)
    document = add_note(space, me, patient.id, b"%PDF-1.7 hello", media_type="Application/PDF")
    assert document.media_type == "application/pdf"
    assert document.size == 14
    assert space.record.read_content(me, document.id) == b"%PDF-1.7 hello"
    assert [d.id for d in space.record.search(me, patient.id).documents] == [document.id]
    with storage_of(space).read() as tx:
        (blob,) = tx.blobs.list_for_patient(patient.id)
    assert b"hello" not in blob.sealed


def test_a_denial_looks_the_same_whether_or_not_the_content_exists(space):
    alice = open_patient(space, identity(1))
    bob = open_patient(space, identity(2))
    document = add_note(space, Actor.patient(alice.id), alice.id, b"secret")
    errors = []
    for document_id in (document.id, "does-not-exist"):
        with pytest.raises(AccessDeniedError) as info:
            space.record.read_content(Actor.patient(bob.id), document_id)
        errors.append(str(info.value))
    assert errors[0] == errors[1] == "access denied"


def test_every_decision_is_audited_including_denials(space):
    alice = open_patient(space, identity(1))
    document = add_note(space, Actor.patient(alice.id), alice.id, b"x")
    with pytest.raises(AccessDeniedError):
        space.record.read_content(Actor.patient("intruder"), document.id)
    with pytest.raises(AccessDeniedError):
        # the operator feeds records but never reads them
        space.record.read_content(OPERATOR, document.id)
    events = space.audit.events(OPERATOR)
    assert [(e.action, e.outcome, e.actor_id) for e in events] == [
        ("patient.register", Outcome.SUCCESS, "test"),
        ("account.create", Outcome.SUCCESS, "test"),
        ("document.add", Outcome.SUCCESS, alice.id),
        ("document.read", Outcome.DENIED, "intruder"),
        ("document.read", Outcome.DENIED, "test"),
    ]
    assert space.audit.verify().ok


def test_bad_contents_are_refused_and_nothing_is_stored(space):
    patient = open_patient(space, identity())
    me = Actor.patient(patient.id)
    before = snapshot(space)
    limit = space.settings.max_content_bytes
    for data, media in [
        (b"", "text/plain"),
        (b"x" * (limit + 1), "text/plain"),
        (b"x", "not a media type"),
        (b"x", "text/plain\r\nX-Evil: 1"),
    ]:
        with pytest.raises(ValidationError) as info:
            add_note(space, me, patient.id, data, media_type=media)
        assert "x" * 10 not in str(info.value)
    assert snapshot(space) == before
    assert space.record.search(me, patient.id).total == 0


def test_a_notification_is_queued_with_the_change_and_carries_no_health_content(space):
    patient = open_patient(space, identity())
    add_note(space, OPERATOR, patient.id, MARKER.encode(), title=MARKER)
    with storage_of(space).read() as tx:
        assert tx.outbox.count() == 1
    report = space.dispatch()
    assert report.sent == 1
    (sent,) = space.transports["email"].sent
    assert sent.recipient == "patient@example.org"
    assert MARKER not in sent.subject + sent.body
    assert space.dispatch().sent == 0


def test_a_patient_adding_their_own_content_is_not_notified(space):
    patient = open_patient(space, identity())
    add_note(space, Actor.patient(patient.id), patient.id, b"mine")
    assert space.dispatch().sent == 0


def test_crypto_shredding_makes_identity_and_contents_unrecoverable(space):
    patient = open_patient(space, identity())
    me = Actor.patient(patient.id)
    document = add_note(space, me, patient.id, b"x")
    assert space.accounts.shred(OPERATOR, patient.id) == 1
    with pytest.raises(DataShreddedError):
        space.accounts.get_patient(OPERATOR, patient.id)
    with pytest.raises(AccessDeniedError):  # the space is gone for its holder
        space.accounts.get_patient(me, patient.id)
    with pytest.raises(AccessDeniedError):
        space.record.read_content(me, document.id)
    with pytest.raises(AccessDeniedError):
        space.accounts.shred(me, patient.id)
    assert space.audit.verify().ok


def test_master_key_rotation_keeps_everything_readable(space, keys):
    patient = open_patient(space, identity())
    me = Actor.patient(patient.id)
    document = add_note(space, me, patient.id, b"before rotation")
    old = keys.current()
    report = space.rotate_master_key(OPERATOR, batch=1)
    # the patient's key and the three index keys (NIR, card serial, birth date)
    assert report.rewrapped == 4
    with storage_of(space).read() as tx:
        assert tx.keys.master_key_ids() == {report.master_key_id}
    # Retire the old key entirely: nothing depends on it any more.
    retired = StaticKeyProvider(keys.current())
    assert retired.get(old.id) is None
    with monespace.open(space.url, key_provider=retired, load_entrypoints=False) as again:
        if space.url != "memory://":
            assert again.record.read_content(me, document.id) == b"before rotation"
    assert space.record.read_content(me, document.id) == b"before rotation"
    with pytest.raises(AccessDeniedError):
        space.rotate_master_key(me)


def test_operations_fail_closed_without_the_right_master_key(tmp_path):
    url = f"sqlite:///{tmp_path}/space.db"
    with monespace.open(url, key_provider=StaticKeyProvider(MasterKey.generate())) as first:
        first.accounts.register_patient(OPERATOR, identity())
    with monespace.open(url, key_provider=StaticKeyProvider(MasterKey.generate())) as wrong:
        with pytest.raises(MasterKeyError, match="does not hold"):
            wrong.accounts.register_patient(OPERATOR, identity(2))
        assert wrong.accounts.count() == 1
        with pytest.raises(MasterKeyError):  # the chain is keyed: verifying needs the key
            wrong.audit.verify()


def test_a_tampered_ciphertext_is_detected_and_the_attempt_traced(tmp_path, keys):
    path = tmp_path / "space.db"
    with monespace.open(f"sqlite:///{path}", key_provider=keys) as space:
        patient = open_patient(space, identity())
        document = add_note(space, Actor.patient(patient.id), patient.id, b"resultat")
    with sqlite3.connect(path) as conn:
        sealed = conn.execute("SELECT sealed FROM blobs").fetchone()[0]
        flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
        conn.execute("UPDATE blobs SET sealed = ?", (flipped,))
    with monespace.open(f"sqlite:///{path}", key_provider=keys) as space:
        with pytest.raises(DecryptionError):
            space.record.read_content(Actor.patient(patient.id), document.id)
        last = space.audit.events(OPERATOR)[-1]
        assert (last.action, last.outcome) == ("document.read", Outcome.FAILURE)
        assert last.target_id == document.id


def test_a_sealed_content_moved_to_another_document_does_not_open(tmp_path, keys):
    """The associated data binds a sealed content to its document: a ciphertext copied over
    another document's, in the database, opens to an error, never to the other content."""
    path = tmp_path / "space.db"
    with monespace.open(f"sqlite:///{path}", key_provider=keys) as space:
        patient = open_patient(space, identity())
        me = Actor.patient(patient.id)
        first = add_note(space, me, patient.id, b"premier")
        second = add_note(space, me, patient.id, b"second")
    with sqlite3.connect(path) as conn:
        sealed = dict(conn.execute("SELECT id, sealed FROM blobs").fetchall())
        conn.execute(
            "UPDATE blobs SET sealed = ? WHERE id = ?",
            (sealed[second.content_id], first.content_id),
        )
    with monespace.open(f"sqlite:///{path}", key_provider=keys) as space:
        with pytest.raises(DecryptionError):
            space.record.read_content(me, first.id)
        assert space.record.read_content(me, second.id) == b"second"


def test_no_marker_reaches_the_database_files_in_clear(tmp_path, keys):
    path = tmp_path / "space.db"
    with monespace.open(f"sqlite:///{path}", key_provider=keys) as space:
        patient = open_patient(space, identity(birth_name=MARKER.upper()))
        for _ in range(3):
            add_note(
                space, Actor.patient(patient.id), patient.id, MARKER.encode() * 50, title=MARKER
            )
        add_note(space, OPERATOR, patient.id, b"x")  # queues an e-mail notification
        files = list(tmp_path.iterdir())
        assert any(f.name.endswith("-wal") for f in files)
        raw_open = b"".join(f.read_bytes() for f in files)
    raw_closed = b"".join(f.read_bytes() for f in tmp_path.iterdir())
    for raw in (raw_open, raw_closed):
        needles = (MARKER, MARKER.upper(), identity().ins.matricule.value, "patient@example.org")
        for needle in needles:
            assert needle.encode() not in raw
            assert needle.encode("utf-16-le") not in raw


def test_a_database_from_a_newer_monespace_is_refused_untouched(tmp_path):
    path = tmp_path / "space.db"
    SQLiteStorage(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'x')")
    before = path.read_bytes()
    with pytest.raises(SchemaVersionError) as info:
        monespace.open(f"sqlite:///{path}")
    assert info.value.found == 999
    assert path.read_bytes() == before


def test_unknown_url_schemes_name_the_registered_ones():
    with pytest.raises(UnknownSchemeError) as info:
        monespace.open("mongodb://localhost/x", load_entrypoints=False)
    assert info.value.scheme == "mongodb"
    assert {"memory", "sqlite"} <= set(info.value.known)


def test_a_sqlite_file_is_created_private(tmp_path):
    path = tmp_path / "space.db"
    SQLiteStorage(path).close()
    assert path.stat().st_mode & 0o077 == 0


def test_ids_never_start_with_a_dash():
    """Ids are passed on command lines, where a leading dash reads as an option."""
    ids = [new_id() for _ in range(5000)]
    assert not any(i.startswith("-") for i in ids)
    assert len(set(ids)) == 5000
    assert all(len(i) == 22 for i in ids)
