"""``record.add_documents``: a batch in one transaction, the same rules as one addition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monespace import Actor, ActorKind
from monespace.crypto import Keyring
from monespace.errors import AccessDeniedError, ConflictError, DataShreddedError, ValidationError
from monespace.record import LOINC, Code, NewDocument
from monespace.testing import statements_of, storage_of

from .helpers import MARKER, feeder, identity, open_patient, open_space, register_physicians

CONSULTATION = Code("11488-4", LOINC)
PDF = b"%PDF-1.7\n" + bytes(4087)


@pytest.fixture
def world(url):
    space = open_space(url)
    rpps = register_physicians(space, 2)
    doctor, stranger = (Actor(ActorKind.PROFESSIONAL, r) for r in rpps)
    first = open_patient(space, identity(1, email="first@example.org"))
    second = open_patient(space, identity(2, email="second@example.org"))
    for patient in (first, second):
        feeder(space, doctor, patient.id)
    yield space, doctor, stranger, first.id, second.id
    space.close()


def _new(patient_id, **kwargs):
    return NewDocument(
        patient_id, kwargs.pop("content", PDF), kwargs.pop("media_type", "application/pdf"),
        type_code=kwargs.pop("type_code", CONSULTATION), **kwargs,
    )  # fmt: skip


def test_a_batch_adds_each_document_with_its_event_and_one_notice_per_patient(world):
    space, doctor, _, first, second = world
    with storage_of(space).read() as tx:
        events, notices = tx.audit.count(), tx.outbox.count()
    batch = [_new(first, title=f"CR {n}") for n in range(5)] + [_new(second) for _ in range(3)]
    result = space.record.add_documents(doctor, batch)
    assert result.rejected == ()
    assert [d.patient_id for d in result.added] == [first] * 5 + [second] * 3
    assert [d.title for d in result.added[:5]] == [f"CR {n}" for n in range(5)]
    with storage_of(space).read() as tx:
        assert tx.outbox.count() - notices == 2  # one per patient, not one per document
    for document in result.added:
        assert space.record.read_content(doctor, document.id) == PDF
    with storage_of(space).read() as tx:
        added = [e for e in tx.audit.scan(after_seq=events) if e.action == "document.add"]
    assert len(added) == 8
    assert space.audit.verify().ok


def test_a_refused_document_is_reported_and_the_others_are_added(world):
    space, doctor, stranger, first, second = world
    batch = [
        _new(first, unique_id="u-1"),
        _new(first, content=b"not a pdf"),  # the media type lies
        _new(first, unique_id="u-1"),  # already in the record (from this batch)
        _new(first, type_code=Code("nope", LOINC)),
        _new("no-such-patient"),
        _new(second, title=MARKER),
    ]
    result = space.record.add_documents(doctor, batch)
    assert [d.unique_id for d in result.added[:1]] == ["u-1"]
    assert len(result.added) == 2
    assert [(r.index, type(r.error)) for r in result.rejected] == [
        (1, ValidationError),
        (2, ConflictError),
        (3, ValidationError),
        (4, AccessDeniedError),
    ]
    # A denial says nothing, whatever the rule.
    assert str(result.rejected[-1].error) == "access denied"
    assert MARKER not in repr(batch)
    # The stranger (no standing) is denied, every denial audited, nothing else lost.
    denied = space.record.add_documents(stranger, [_new(first), _new(second)])
    assert denied.added == ()
    assert len(denied.rejected) == 2
    with storage_of(space).read() as tx:
        outcomes = [e.outcome for e in tx.audit.scan(limit=100_000) if e.actor_id == stranger.id]
    assert outcomes.count("denied") == 2
    assert space.audit.verify().ok


def test_a_batch_is_one_transaction(world, url):
    if url.startswith("postgresql"):
        pytest.skip("statements are counted on the built-in SQLite backends")
    space, doctor, _, first, _ = world
    space.record.add_documents(doctor, [_new(first)])  # keys and notification key exist
    with statements_of(space) as statements:
        space.record.add_documents(doctor, [_new(first) for _ in range(10)])
    assert [s for s in statements if s.startswith(("BEGIN", "COMMIT"))] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]


def test_batch_bounds(world):
    space, doctor, _, first, _ = world
    assert space.record.add_documents(doctor, []).added == ()
    with pytest.raises(ValidationError):
        space.record.add_documents(doctor, [_new(first)] * (space.record.MAX_BATCH + 1))


def test_a_shredded_record_in_a_batch_fails_alone(world):
    space, doctor, _, first, second = world
    keyring = Keyring(storage_of(space), lambda: space._core.keyring.provider)
    with storage_of(space).write() as tx:
        assert keyring.destroy(tx, second, datetime.now(UTC))
    result = space.record.add_documents(doctor, [_new(first), _new(second), _new(first)])
    assert len(result.added) == 2
    assert [(r.index, type(r.error)) for r in result.rejected] == [(1, DataShreddedError)]
    with storage_of(space).read() as tx:
        assert tx.blobs.list_for_patient(second) == []  # nothing half-written
    assert space.audit.verify().ok
