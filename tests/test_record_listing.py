"""How a listing decides on the documents of a record without deciding on each one.

A search counts what it may list over groups of versions that share every column the
policy and the filters read (``DocumentRepository.kinds_for_patient``), and, with the
built-in rules, decides once per distinct set of document facts. These tests check the
three things that makes rely on: the groups are what the default implementation says, two
versions of a group get the same facts at any time, and an embedder's rules that look at
the document's id are still asked about every document.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
from hypothesis import given
from hypothesis import strategies as st

import monespace._unit as unit_module
from monespace import Actor, ActorKind
from monespace.access import Action, default_rules
from monespace.access._facts import document_facts, document_facts_key
from monespace.policy import Decision, Facts, Resource
from monespace.record import LOINC, Code, DocumentStatus
from monespace.storage import DOCUMENT_KIND_COLUMNS, DocumentRepository, DocumentRow
from monespace.testing import storage_of

from .helpers import feeder, identity, open_patient, open_space, register_physicians

OPERATOR = Actor.system("test")
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def _pro(number: str) -> Actor:
    return Actor(ActorKind.PROFESSIONAL, number)


def _row(**changes: object) -> DocumentRow:
    row = DocumentRow(
        id="d1",
        patient_id="p1",
        lineage_id="l1",
        version=1,
        unique_id="u1",
        class_code="10",
        type_code="11502-2",
        type_system=LOINC,
        format_code=None,
        media_type="application/pdf",
        confidentiality="N",
        flags=0,
        author_kind="professional",
        author_id="10000000001",
        created_at=BASE,
        submitted_at=BASE,
        status="approved",
        replaces=None,
        content_id="c1",
        size=1,
        sha256=bytes(32),
        sealed_meta=b"",
    )
    return attrs.evolve(row, **changes)


#: Two or three values for each column, so that drawn rows often agree on some of them.
_COLUMNS = {
    "id": st.sampled_from(["d1", "d2"]),
    "class_code": st.sampled_from(["10", "11"]),
    "type_code": st.sampled_from(["11502-2", "18748-4"]),
    "type_system": st.sampled_from([LOINC, "1.2.250.1.213.1.1.4.12"]),
    "confidentiality": st.sampled_from(["N", "R"]),
    "flags": st.integers(0, 7),
    "author_kind": st.sampled_from(["professional", "patient"]),
    "author_id": st.sampled_from(["10000000001", "10000000002"]),
    "created_at": st.sampled_from([BASE, BASE + timedelta(days=1)]),
    "status": st.sampled_from(["approved", "deprecated", "deleted"]),
    "release_at": st.sampled_from([None, BASE + timedelta(days=2), BASE + timedelta(days=40)]),
    "submitted_by": st.sampled_from([None, "10000000002"]),
}
_rows = st.fixed_dictionaries(_COLUMNS).map(lambda values: _row(**values))
_nows = st.sampled_from([BASE, BASE + timedelta(days=2), BASE + timedelta(days=60)])


@given(_rows, _rows, _nows)
def test_versions_of_one_kind_have_the_same_facts(a, b, now):
    """What ``kinds_for_patient`` groups, the policy cannot tell apart: one decision for a
    group holds for each of its versions."""
    same_kind = all(getattr(a, c) == getattr(b, c) for c in DOCUMENT_KIND_COLUMNS)
    if same_kind:
        assert document_facts(a, now) == document_facts(b, now)
    if document_facts_key(a, now) == document_facts_key(b, now):
        assert document_facts(a, now) == document_facts(b, now)


def _record(space, count: int = 12) -> tuple[str, list[str]]:
    """A patient whose record holds versions of several kinds (authors, types, masked,
    hidden, replaced, deleted), and the professionals who wrote them."""
    pros = register_physicians(space, 3)
    patient = open_patient(space, identity())
    actors = [_pro(p) for p in pros]
    for actor in actors:
        feeder(space, actor, patient.id)
    types = (Code("11502-2", LOINC), Code("18748-4", LOINC), Code("57833-6", LOINC))
    added = []
    for i in range(count):
        added.append(
            space.record.add_document(
                actors[i % 2],
                patient.id,
                b"%PDF-1.7\n" + bytes([i]),
                media_type="application/pdf",
                type_code=types[i % 3],
                title=f"Document {i}",
                created_at=BASE + timedelta(hours=i),
                masked=i % 4 == 1,
                hidden_from_patient=i % 5 == 2,
            )
        )
    space.record.mask(Actor.patient(patient.id), added[3].id)
    space.record.delete(actors[0], added[4].id)
    space.record.replace(
        actors[0],
        added[6].id,
        b"%PDF-1.7\nnew",
        media_type="application/pdf",
        title="Nouvelle version",
    )
    return patient.id, pros


def _kind(row: DocumentRow) -> tuple[object, ...]:
    return tuple(getattr(row, c) for c in DOCUMENT_KIND_COLUMNS)


def _kinds(groups: list[tuple[DocumentRow, int]]) -> list[tuple[str, int]]:
    """The groups as comparable values (each group's row is any one of its versions)."""
    return sorted((repr(_kind(row)), size) for row, size in groups)


def test_the_database_groups_versions_as_the_default_does(url):
    space = open_space(url)
    patient_id, _ = _record(space)
    with storage_of(space).write() as tx:
        for since, until in ((None, None), (BASE + timedelta(hours=2), BASE + timedelta(hours=9))):
            got = tx.documents.kinds_for_patient(patient_id, since=since, until=until)
            expected = DocumentRepository.kinds_for_patient(
                tx.documents, patient_id, since=since, until=until
            )
            assert _kinds(got) == _kinds(expected)
            assert len({_kind(row) for row, _ in got}) == len(got)  # one row per group
            assert sum(size for _, size in got) == len(
                [
                    r
                    for r in tx.documents.for_patient(patient_id)
                    if (since is None or r.created_at >= since)
                    and (until is None or r.created_at < until)
                ]
            )
    space.close()


def test_every_reader_counts_what_it_lists(url):
    space = open_space(url)
    patient_id, pros = _record(space, count=20)
    readers = [Actor.patient(patient_id), *(_pro(p) for p in pros[:2])]
    for actor in readers:
        for filters in ({}, {"include_replaced": True}, {"type_code": "18748-4"},
                        {"since": BASE + timedelta(hours=5)}, {"author_id": pros[1]}):  # fmt: skip
            everything = [
                d.id for d in space.record.search(actor, patient_id, limit=500, **filters).documents
            ]
            page = space.record.search(actor, patient_id, limit=3, **filters)
            assert page.total == len(everything)
            walked = [d.id for d in page.documents]
            while page.next is not None:
                page = space.record.search(actor, patient_id, limit=3, after=page.next, **filters)
                walked += [d.id for d in page.documents]
            assert walked == everything
    space.close()


def test_rules_that_look_at_the_document_id_are_asked_about_each_document(url):
    """An embedder's rule may refuse one document by its id: a listing may not decide once
    for every document that shares its facts with it."""
    refused: set[str] = set()
    asked: list[str | None] = []

    def one_document_is_off_limits(actor, action, resource: Resource, facts: Facts):
        if action is Action.DOCUMENT_READ:
            asked.append(resource.id)
            if resource.id in refused:
                return Decision(False, "off_limits")
        return None

    space = open_space(url, rules=(one_document_is_off_limits, *default_rules()))
    pros = register_physicians(space, 1)
    patient = open_patient(space, identity())
    author = _pro(pros[0])
    feeder(space, author, patient.id)
    ids = [
        space.record.add_document(
            author,
            patient.id,
            b"%PDF-1.7\n" + bytes([i]),
            media_type="application/pdf",
            type_code=Code("11502-2", LOINC),
            title=f"Compte rendu {i}",
            created_at=BASE + timedelta(hours=i),
        ).id
        for i in range(6)
    ]
    refused.add(ids[2])
    asked.clear()
    page = space.record.search(author, patient.id, limit=2)
    listed = [d.id for d in page.documents]
    while page.next is not None:
        page = space.record.search(author, patient.id, limit=2, after=page.next)
        listed += [d.id for d in page.documents]
    assert listed == [i for i in reversed(ids) if i != ids[2]]
    assert space.record.search(author, patient.id).total == 5
    assert ids[2] in asked
    assert [d.id for d in space.record.documents_of(author, patient.id)] == listed
    space.close()


def test_a_listing_by_the_built_in_rules_decides_once_per_kind(url, monkeypatch):
    """Twenty versions of one kind: the first page asks the policy about one of them, not
    twenty (the saving that makes the total cheap)."""
    calls: list[Action] = []
    real = unit_module.decide

    def counting(actor, action, resource, facts=None, rules=None):
        calls.append(action)
        return real(actor, action, resource, facts, rules)

    space = open_space(url)
    pros = register_physicians(space, 1)
    patient = open_patient(space, identity())
    author = _pro(pros[0])
    feeder(space, author, patient.id)
    for i in range(20):
        space.record.add_document(
            author,
            patient.id,
            b"%PDF-1.7\n" + bytes([i]),
            media_type="application/pdf",
            type_code=Code("11502-2", LOINC),
            title=f"Compte rendu {i}",
            created_at=BASE + timedelta(hours=i),
        )
    monkeypatch.setattr(unit_module, "decide", counting)
    page = space.record.search(author, patient.id, limit=5)
    assert page.total == 20
    assert calls.count(Action.DOCUMENT_READ) == 1
    assert calls.count(Action.DOCUMENT_SEARCH) == 1
    assert all(d.status is DocumentStatus.APPROVED for d in page.documents)
    space.close()
