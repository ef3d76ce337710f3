"""Properties of the medical record, with hypothesis, on the memory and the SQLite backend.

- Visibility: whatever documents are added, with whatever flags, and whatever then happens
  to them (masking, release, deletion, replacement, time passing, deadlines run), each
  reader sees exactly what the rules say (R1111-49, R1111-50, R1111-53), through every
  reading path: ``get_document``, ``read_content``, ``search`` and ``documents_of``.
- Round trip: any valid document metadata added is read back equal (attrs equality), after
  reopening the database.

Each example opens a fresh space (a fresh SQLite file for the SQLite backend).
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import monespace
from monespace import Actor, ActorKind, ManualClock
from monespace.accounts import RepresentationKind
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.errors import AccessDeniedError
from monespace.record import LOINC, TRE_A05_TYPE, Author, AuthorKind, Code, DocumentStatus

from .helpers import (
    holder_identity,
    identity,
    open_patient,
    open_space,
    register_physicians,
    rpps,
)
from .strategies import clean_text

#: Among the longest tests: run first (tests/conftest.py), so short ones fill the end of a run.
pytestmark = pytest.mark.slow

BACKENDS = ["memory", "sqlite"]
START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
#: add_months(START, 1): when a result hidden at START is released (R1111-53).
RELEASE = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
OPERATOR = Actor.system("test")
PROS = tuple(Actor(ActorKind.PROFESSIONAL, rpps(n)) for n in (1, 2))
PDF = b"%PDF-1.7\n"
PROFESSIONAL_TYPES = [
    Code("11502-2", LOINC, "CR d'examens biologiques"),
    Code("18748-4", LOINC, "CR d'imagerie médicale"),
    Code("57833-6", LOINC, "Prescription de produits de santé"),
    Code("87273-9", LOINC, "Note de vaccination"),
    Code("34112-3", LOINC),
    Code("CERT_DECL", TRE_A05_TYPE, "Certificat, déclaration"),
    Code("PROT_ALD", TRE_A05_TYPE),  # REMB is the insurer's to deposit, no professional's
]


@contextlib.contextmanager
def fresh_space(backend: str, keys: StaticKeyProvider | None = None) -> Iterator:
    clock = ManualClock(START)
    keys = keys or StaticKeyProvider(MasterKey.generate())
    with tempfile.TemporaryDirectory() as folder:
        url = "memory://" if backend == "memory" else f"sqlite:///{folder}/space.db"
        with open_space(url, clock, keys=keys, transports=["email"]) as space:
            register_physicians(space, count=len(PROS))
            yield space, clock, url, keys


def _denial(call, *args) -> str | None:
    """The denial message, or ``None`` when the call was allowed."""
    try:
        call(*args)
    except AccessDeniedError as denied:
        return str(denied)
    return None


# --- visibility ----------------------------------------------------------------------------------

document_specs = st.fixed_dictionaries(
    {
        "author": st.sampled_from([0, 1]),
        "masked_at_deposit": st.booleans(),
        "masked_by_patient": st.booleans(),
        "hidden_from_patient": st.booleans(),
        "hidden_from_representatives": st.booleans(),
        "fate": st.sampled_from(["kept", "deleted", "released", "replaced"]),
    }
)


@attrs.define
class Version:
    """What the model knows of one stored version of a document."""

    id: str
    title: str
    content: bytes
    spec: dict
    author: Actor
    masked: bool
    current: bool = True
    deleted: bool = False


def _expected(version: Version, reader: str, now: datetime, team: frozenset[str]) -> bool:
    """Whether *reader* may read *version* at *now*. *team*: the professionals who joined
    the care team (deemed authorised, R1111-46); none is the médecin traitant, so masking
    holds for all but the author (R1111-49)."""
    spec = version.spec
    if version.deleted:
        return False
    if reader == version.author.id:
        return True
    if reader in team:
        return not version.masked
    if reader in ("stranger", "operator") or reader.isdigit():
        return False
    released = spec["fate"] == "released" or now >= RELEASE
    if spec["hidden_from_patient"] and not released:
        return False
    if reader == "representative":
        return not spec["hidden_from_representatives"]
    return True  # the patient


def _deposit(space, holder_id: str, spec: dict, n: int) -> list[Version]:
    author = PROS[spec["author"]]
    title = f"Résultat n°{n} confidentiel"
    content = PDF + f"contenu {n}".encode()
    document = space.record.add_document(
        author,
        holder_id,
        content,
        media_type="application/pdf",
        type_code=PROFESSIONAL_TYPES[n % len(PROFESSIONAL_TYPES)],
        title=title,
        masked=spec["masked_at_deposit"],
        hidden_from_patient=spec["hidden_from_patient"],
        hidden_from_representatives=spec["hidden_from_representatives"],
    )
    version = Version(document.id, title, content, spec, author, spec["masked_at_deposit"])
    patient = Actor.patient(holder_id)
    if spec["masked_by_patient"]:
        # The patient masks what they can see; a result hidden from them cannot be masked.
        refused = _denial(space.record.mask, patient, document.id)
        assert (refused is not None) == spec["hidden_from_patient"]
        version.masked = version.masked or refused is None
    fate = spec["fate"]
    if fate == "deleted":
        space.record.delete(author, document.id)
        version.deleted = True
    elif fate == "released":
        space.record.release(author, document.id)
    elif fate == "replaced":
        newer = space.record.replace(
            author, document.id, content + b" v2", media_type="application/pdf"
        )
        assert (newer.lineage_id, newer.version, newer.replaces) == (document.id, 2, document.id)
        assert newer.masked == version.masked
        version.current = False
        return [
            version,
            Version(newer.id, title, content + b" v2", spec, author, version.masked),
        ]
    return [version]


@pytest.mark.parametrize("backend", BACKENDS)
@given(
    specs=st.lists(document_specs, min_size=1, max_size=4),
    days=st.sampled_from([0, 1, 13, 14, 15, 30, 31, 45]),
    run_deadlines=st.booleans(),
    care_team=st.sets(st.sampled_from([p.id for p in PROS])),
)
def test_each_reader_sees_exactly_what_the_rules_allow(
    backend, specs, days, run_deadlines, care_team
):
    team = frozenset(care_team)
    with fresh_space(backend) as (space, clock, _, _):
        holder = open_patient(space, holder_identity())
        for rpps in sorted(team):
            space.access.join_care_team(Actor(ActorKind.PROFESSIONAL, rpps), holder.id)
        relative = open_patient(space, identity(7, email=None))
        space.accounts.add_representative(
            OPERATOR, holder.id, relative.id, RepresentationKind.PROTECTED_ADULT
        )
        stranger = open_patient(space, identity(8, email=None))
        # Feeding needs the right to (L1111-17 III): the authors outside *team* deposit as
        # care-team members, then the patient withdraws it and they keep an author's access.
        outside = [p for p in PROS if p.id not in team]
        for author in outside:
            space.access.join_care_team(author, holder.id)
        versions = [v for n, spec in enumerate(specs) for v in _deposit(space, holder.id, spec, n)]
        for author in outside:
            space.access.revoke(Actor.patient(holder.id), holder.id, author.id)
        space.dispatch()
        email = space.transports["email"]
        sent_at_deposit = len(email.sent)
        clock.advance(days=days)
        counts = space.record.tick() if run_deadlines else None
        now = clock.now()

        readers = {
            "patient": Actor.patient(holder.id),
            "representative": Actor(ActorKind.REPRESENTATIVE, relative.id, on_behalf_of=holder.id),
            "stranger": Actor.patient(stranger.id),
            "operator": OPERATOR,
            **{pro.id: pro for pro in PROS},
        }
        nowhere = {
            name: _denial(space.record.get_document, actor, "no-such-document")
            for name, actor in readers.items()
        }
        for version in versions:
            for name, actor in readers.items():
                expected = _expected(version, name, now, team)
                got = _denial(space.record.get_document, actor, version.id)
                content = _denial(space.record.read_content, actor, version.id)
                assert (got is None) == (content is None), (name, version.spec)
                assert (got is None) == expected, (name, version.spec, days, run_deadlines)
                if expected:
                    document = space.record.get_document(actor, version.id)
                    assert document.title == version.title
                    assert document.masked == version.masked
                    assert document.status is (
                        DocumentStatus.APPROVED if version.current else DocumentStatus.DEPRECATED
                    )
                    assert space.record.read_content(actor, version.id) == version.content
                else:
                    # The same answer as for a document that does not exist.
                    assert got == content == nowhere[name]

        # Listing agrees with reading, version by version.
        for name in ("patient", "representative", *team):
            actor = readers[name]
            listed = {d.id for d in space.record.documents_of(actor, holder.id)}
            everything = space.record.search(actor, holder.id, include_replaced=True, limit=500)
            readable = {v.id for v in versions if _expected(v, name, now, team)}
            assert listed == {v.id for v in versions if v.current and v.id in readable}
            assert {d.id for d in everything.documents} == readable
            assert everything.total == len(readable)
            # Small keyset pages list the same, and every page says the same total.
            page = space.record.search(actor, holder.id, include_replaced=True, limit=2)
            walked, totals = [d.id for d in page.documents], {page.total}
            while page.next is not None:
                page = space.record.search(
                    actor, holder.id, include_replaced=True, limit=2, after=page.next
                )
                walked += [d.id for d in page.documents]
                totals.add(page.total)
            assert walked == [d.id for d in everything.documents]
            assert totals == {len(readable)}
        outsiders = [p for p in PROS if p.id not in team]
        for actor in (readers["stranger"], OPERATOR, *outsiders):
            assert _denial(space.record.search, actor, holder.id) is not None

        # R1111-53: one notice per current result still hidden after two weeks, saying
        # nothing of it; deleted, released and replaced versions are not announced.
        space.dispatch()
        deadline_kinds = ("announcement-pending", "new-document")
        later = [e for e in email.sent[sent_at_deposit:] if e.kind in deadline_kinds]
        waiting = [
            v
            for v in versions
            if v.current
            and not v.deleted
            and v.spec["hidden_from_patient"]
            and v.spec["fate"] != "released"
        ]
        notices = [e for e in later if e.kind == "announcement-pending"]
        if run_deadlines:
            assert counts is not None
            assert counts["announcement_notices"] == len(notices)
            assert len(notices) == (len(waiting) if days >= 14 else 0)
            assert counts["released"] == (len(waiting) if days >= 31 else 0)
        else:
            assert later == []
        for envelope in email.sent:
            text = (envelope.subject + envelope.body).casefold()
            for version in versions:
                assert version.title.casefold() not in text
                assert version.id.casefold() not in text
            for code in PROFESSIONAL_TYPES:
                assert code.code.casefold() not in text


# --- round trip ----------------------------------------------------------------------------------

ACCENTED = "aàâäbcçdeéèêëfgiîïjklmnoôöœpqrstuùûüvwxyzAÀÉÈÇŒ '\u2019-()/°0123456789"
# Valid metadata: what the one text check accepts unchanged (no control characters, NFC).
titles = st.one_of(
    st.text(alphabet=ACCENTED, min_size=1, max_size=80),
    clean_text(min_size=1, max_size=80),
).filter(lambda t: t and t == t.strip())
free_text = st.one_of(st.none(), clean_text(max_size=200), st.text(alphabet=ACCENTED, max_size=200))
comments = st.one_of(
    st.none(), clean_text(max_size=200, multiline=True), st.text(alphabet=ACCENTED, max_size=200)
)
offsets = st.sampled_from([0, 60, -300, 345, 120, -600, 840]).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(9998, 12, 30), timezones=offsets
)
specialties = st.one_of(
    st.none(),
    st.builds(
        Code,
        st.sampled_from(["G15_10/SM26", "G15_10/SM54", "G15_60"]),
        st.just("1.2.250.1.213.1.1.4.5"),
        st.one_of(st.none(), st.text(alphabet=ACCENTED, max_size=40)),
    ),
)
authors = st.one_of(
    st.builds(
        Author,
        st.just(AuthorKind.PROFESSIONAL),
        st.just(PROS[0].id),
        free_text,
        specialties,
        free_text,
    ),
    st.builds(
        Author,
        st.just(AuthorKind.ESTABLISHMENT),
        st.sampled_from(["750712184", "130783236"]),  # FINESS numbers
        free_text,
        st.none(),
        free_text,
    ),
)
metadata = st.fixed_dictionaries(
    {
        "type_code": st.sampled_from(PROFESSIONAL_TYPES),
        "title": titles,
        "comments": comments,
        "author": authors,
        "created_at": moments,
        "service_start": st.one_of(st.none(), moments),
        "service_stop": st.one_of(st.none(), moments),
        "format_code": st.sampled_from([None, "urn:ihe:iti:xds-sd:pdf:2008"]),
        "confidentiality": st.sampled_from(["N", "R", "V"]),
        "masked": st.booleans(),
        "hidden_from_patient": st.booleans(),
        "hidden_from_representatives": st.booleans(),
        "unique_id": st.one_of(
            st.none(),
            st.text(alphabet="0123456789.^ABCDEFabcdef-", min_size=1, max_size=64),
        ),
    }
)


@pytest.mark.parametrize("backend", BACKENDS)
@given(meta=metadata, body=st.binary(max_size=2048))
def test_any_valid_metadata_is_read_back_equal(backend, meta, body):
    content = PDF + body
    with fresh_space(backend) as (space, clock, url, keys):
        holder = open_patient(space, holder_identity())
        patient = Actor.patient(holder.id)
        # The médecin traitant reads everything, masked or hidden from the patient: the one
        # reader of a document deposited in an establishment's name (see test_record.py).
        space.access.declare_treating_doctor(patient, holder.id, PROS[1].id)
        space.access.join_care_team(PROS[0], holder.id)  # the right to feed (L1111-17 III)
        added = space.record.add_document(
            PROS[0], holder.id, content, media_type="application/pdf", **meta
        )
        space.access.revoke(patient, holder.id, PROS[0].id)
        author = meta["author"]
        readers = [PROS[1]]
        if author.kind is AuthorKind.PROFESSIONAL:
            readers.append(PROS[0])
        if not meta["hidden_from_patient"]:
            readers.append(patient)
        expected = {
            name: value for name, value in meta.items() if name not in ("unique_id", "masked")
        }
        # Without a formatCode, the PDF's comes from ASS_A12.
        expected["format_code"] = meta["format_code"] or "urn:ihe:iti:xds-sd:pdf:2008"
        assert {name: getattr(added, name) for name in expected} == expected
        assert added.masked == meta["masked"]
        assert added.unique_id == (meta["unique_id"] or added.id)
        assert (added.size, added.sha256) == (len(content), hashlib.sha256(content).hexdigest())
        reading = space
        if backend == "sqlite":  # read back from the file, not from anything kept in memory
            space.close()
            reading = monespace.open(url, key_provider=keys, clock=clock, load_entrypoints=False)
        try:
            for actor in readers:
                stored = reading.record.get_document(actor, added.id)
                assert stored == added
                # attrs equality leaves display names out of Code: compare them too.
                assert stored.type_code.display == added.type_code.display
                assert stored.author.specialty == author.specialty
                if author.specialty is not None:
                    assert stored.author.specialty.display == author.specialty.display
                assert stored.created_at.utcoffset() is not None
                assert reading.record.read_content(actor, added.id) == content
            if not meta["hidden_from_patient"]:
                found = reading.record.search(patient, holder.id, text=meta["title"])
                assert [d.id for d in found.documents] == [added.id]
        finally:
            if reading is not space:
                reading.close()
