"""The medical record end to end (``space.record``), on the memory and the SQLite backend.

The official CI-SIS examples are driven by their MANIFEST.tsv (shared/data/README.md §2), so
this module can be pointed at another example set with ``MONESPACE_CDA_EXAMPLES=/folder``.
The visibility and round-trip properties (hypothesis) are in ``test_record_properties.py``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from monespace import Actor, ActorKind, Settings
from monespace.access import AccessPolicy, Action
from monespace.accounts import Contact, PatientIdentity, RepresentationKind
from monespace.audit import Outcome, event_from_row
from monespace.errors import AccessDeniedError, ConflictError, ValidationError
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.record import (
    LOINC,
    TRE_A05_TYPE,
    Author,
    AuthorKind,
    Category,
    Code,
    DocumentStatus,
)
from monespace.record._codes import class_code_for
from monespace.storage import DocumentRow
from monespace.testing import storage_of

from .conftest import SHARED_DATA
from .helpers import (
    HOLDER_NIR,
    HOLDER_OID,
    MARKER,
    feeder,
    holder_identity,
    identity,
    open_patient,
    open_space,
    register_physicians,
    rpps,
)

EXAMPLES = Path(os.environ.get("MONESPACE_CDA_EXAMPLES", SHARED_DATA / "cisis" / "cda"))
MANIFEST = EXAMPLES / "MANIFEST.tsv"

OPERATOR = Actor.system("test")
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17)
BIOLOGY = Code("11502-2", LOINC)

#: typeCode -> classCode of the codes met in the official examples, copied by hand from
#: ASS_X16_CorrespondanceType_Classe_DMP (docs/domain-rules.md §3.3): an independent oracle
#: for monespace's own table. Codes of another example set fall back to that table.
EXPECTED_CLASS = {
    ("11502-2", LOINC): "10",
    ("11490-0", LOINC): "10",
    ("60591-5", LOINC): "11",
    ("SYNTH", TRE_A05_TYPE): "11",
    ("18748-4", LOINC): "31",
    ("57833-6", LOINC): "42",
    ("18776-5", LOINC): "44",
    ("87273-9", LOINC): "52",
    ("96173-0", LOINC): "52",
    ("CERT_DECL", TRE_A05_TYPE): "52",
    ("REMB", TRE_A05_TYPE): "60",
}


def _rows() -> list[dict[str, str]]:
    if not MANIFEST.is_file():
        return []
    with MANIFEST.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream, delimiter="\t"))


ROWS = _rows()
needs_examples = pytest.mark.skipif(not ROWS, reason=f"no MANIFEST.tsv at {MANIFEST}")


def _instant(raw: str) -> dt.datetime:
    """An independent reading of the manifest's HL7 TS, with strptime."""
    fmt = {19: "%Y%m%d%H%M%S%z", 17: "%Y%m%d%H%M%z"}[len(raw)]
    return dt.datetime.strptime(raw, fmt)


def professional(n: int = 1) -> Actor:
    return Actor(ActorKind.PROFESSIONAL, rpps(n))


@pytest.fixture
def space(url, monespace_clock):
    with open_space(url, monespace_clock, transports=["email"]) as opened:
        register_physicians(opened, specialty="SM26")
        yield opened


@pytest.fixture
def holder(space):
    patient = open_patient(space, holder_identity())
    feeder(space, professional(), patient.id)  # the depositor of most tests: care team
    return patient


def add_pdf(space, actor, patient_id, **kwargs):
    kwargs.setdefault("type_code", BIOLOGY)
    kwargs.setdefault("title", "Bilan sanguin")
    return space.record.add_document(
        actor, patient_id, kwargs.pop("content", PDF), media_type="application/pdf", **kwargs
    )


def state(space, patient_id):
    """What a refused write must not change: documents, contents, audit events, outbox."""
    with storage_of(space).read() as tx:
        return (
            len(tx.documents.for_patient(patient_id)),
            len(tx.blobs.list_for_patient(patient_id)),
            tx.audit.count(),
            tx.outbox.count(),
        )


def last_event(space):
    with storage_of(space).read() as tx:
        last = tx.audit.last()
    return None if last is None else event_from_row(last)


def assert_refused_cleanly(space, patient_id, before, *, failure_event, actor=None):
    """Nothing stored; the trail grew by exactly one failure event, or not at all."""
    documents, blobs, audit, outbox = before
    after = state(space, patient_id)
    assert after == (documents, blobs, audit + (1 if failure_event else 0), outbox)
    if failure_event:
        event = last_event(space)
        assert event.outcome is Outcome.FAILURE
        assert event.action == str(Action.DOCUMENT_ADD)
        assert event.patient_id == patient_id
        if actor is not None:
            assert event.actor_id == actor.id


# --- 1. the official CDA examples ----------------------------------------------------------------


@needs_examples
@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_official_cda_examples_are_added_with_their_header(space, holder, row):
    data = (EXAMPLES / row["file"]).read_bytes()
    pro = professional()
    before = state(space, holder.id)
    if (row["ins_root"], row["ins_extension"]) != (HOLDER_OID, HOLDER_NIR):
        # CSE-CS8 names a newborn: a document about someone else never enters this record.
        with pytest.raises(ValidationError, match="another patient"):
            space.record.add_document(pro, holder.id, data, media_type="text/xml")
        assert_refused_cleanly(space, holder.id, before, failure_event=True, actor=pro)
        return
    if row["code"] == "REMB":
        # Reimbursement data: the health insurer's to deposit, and no professional's.
        added = space.record.add_document(OPERATOR, holder.id, data, media_type="text/xml")
        stored = space.record.get_document(Actor.patient(holder.id), added.id)
        assert (stored.author.kind, stored.class_code) == (AuthorKind.INSURER, "60")
        return
    added = space.record.add_document(pro, holder.id, data, media_type="text/xml")
    stored = space.record.get_document(pro, added.id)
    assert stored == added
    code = (row["code"], row["codeSystem"])
    assert stored.type_code == Code(*code)  # display names are not compared
    assert stored.class_code == EXPECTED_CLASS.get(code, class_code_for(*code))
    assert stored.created_at == _instant(row["effectiveTime"])
    assert stored.title == row["title"]
    assert stored.media_type == "text/xml"
    assert stored.author == Author(AuthorKind.PROFESSIONAL, pro.id)
    assert stored.size == int(row["size_bytes"]) == len(data)
    assert stored.sha256 == row["sha256"]
    assert stored.confidentiality == row["confidentialityCode"]
    assert not stored.masked
    assert not stored.hidden_from_patient
    assert not stored.hidden_from_representatives
    content = space.record.read_content(pro, added.id)
    assert content == data
    assert hashlib.sha256(content).hexdigest() == row["sha256"]
    # The holder sees it too, byte for byte.
    assert space.record.read_content(Actor.patient(holder.id), added.id) == data


@needs_examples
def test_the_same_cda_twice_is_a_conflict_and_stores_nothing(space, holder):
    row = next(r for r in ROWS if r["ins_extension"] == HOLDER_NIR)
    data = (EXAMPLES / row["file"]).read_bytes()
    pro = professional()
    space.record.add_document(pro, holder.id, data, media_type="text/xml")
    before = state(space, holder.id)
    with pytest.raises(ConflictError):  # same ClinicalDocument/id: the XDS uniqueId
        space.record.add_document(pro, holder.id, data, media_type="text/xml")
    assert_refused_cleanly(space, holder.id, before, failure_event=True)


@needs_examples
def test_a_cda_about_the_holder_with_a_real_ins_oid_is_refused(space):
    """Same matricule, but the record's INS is a real INS-NIR (.8) and the CDA's a test one."""
    traits = holder_identity().ins.traits
    real = PatientIdentity(INS(HOLDER_NIR, "1.2.250.1.213.1.4.8", traits), Contact())
    patient = open_patient(space, real)
    row = next(r for r in ROWS if r["ins_root"] == HOLDER_OID)
    feeder(space, professional(), patient.id)
    before = state(space, patient.id)
    with pytest.raises(ValidationError, match="another patient"):
        space.record.add_document(
            professional(), patient.id, (EXAMPLES / row["file"]).read_bytes(), media_type="text/xml"
        )
    assert_refused_cleanly(space, patient.id, before, failure_event=True)


# --- 2. codes, categories and hostile inputs -----------------------------------------------------

MAIN_FAMILIES = [
    (Code("11502-2", LOINC), "10", Category.RESULTS),
    (Code("11526-1", LOINC), "10", Category.RESULTS),  # in the DMP's J66, not in J07 any more
    (Code("18748-4", LOINC), "31", Category.IMAGING),
    (Code("57833-6", LOINC), "42", Category.PRESCRIPTIONS),
    (Code("87273-9", LOINC), "52", Category.VACCINATION),
    (Code("11369-6", LOINC), "52", Category.VACCINATION),
    (Code("34112-3", LOINC), "10", Category.HOSPITAL_REPORTS),
    (Code("11490-0", LOINC), "10", Category.HOSPITAL_REPORTS),
    (Code("REMB", TRE_A05_TYPE), "60", Category.REIMBURSEMENTS),
    (Code("CERT_DECL", TRE_A05_TYPE), "52", Category.CERTIFICATES),
    (Code("18776-5", LOINC), "44", Category.TREATMENTS),
    (Code("60591-5", LOINC), "11", Category.REPORTS),
    (Code("11488-4", LOINC), "10", Category.REPORTS),
    (Code("86531-1", LOINC), "95", Category.OTHERS),
]


@pytest.mark.parametrize(("type_code", "class_code", "category"), MAIN_FAMILIES)
def test_categories_are_derived_from_the_codes(space, holder, me, type_code, class_code, category):
    author = OPERATOR if type_code.code == "REMB" else professional()  # the insurer's type
    document = add_pdf(space, author, holder.id, type_code=type_code)
    assert (document.class_code, document.category) == (class_code, category)
    assert space.record.get_document(me, document.id).category is category
    page = space.record.search(me, holder.id, category=category)
    assert [d.id for d in page.documents] == [document.id]
    assert space.record.search(me, holder.id, category=str(category)).total == 1


def test_the_category_is_not_stored():
    assert "category" not in {a.name for a in attrs.fields(DocumentRow)}


@pytest.mark.parametrize(
    ("type_code", "category"),
    [
        (Code("DOCPAT03", TRE_A05_TYPE), Category.PATIENT_DOCUMENTS),
        (Code("DOCPAT05", TRE_A05_TYPE), Category.RESULTS),  # lab results the patient adds
        (Code("DOCPAT07", TRE_A05_TYPE), Category.PATIENT_DOCUMENTS),
        (Code("EXPPAT_3", TRE_A05_TYPE), Category.PATIENT_DOCUMENTS),
    ],
)
def test_the_patient_uploads_docpat_and_exppat_types(space, holder, me, type_code, category):
    document = add_pdf(space, me, holder.id, type_code=type_code)
    assert document.author == Author(AuthorKind.PATIENT, holder.id)
    assert document.category is category
    assert space.dispatch().sent == 0  # the holder is not told about their own upload


def test_a_representative_uploads_for_the_holder(space, holder, representative):
    document = add_pdf(space, representative, holder.id, type_code=Code("EXPPAT_2", TRE_A05_TYPE))
    assert document.author == Author(AuthorKind.REPRESENTATIVE, representative.id)
    assert space.record.get_document(representative, document.id) == document


@pytest.mark.parametrize("kind", ["patient", "representative"])
def test_the_holder_may_not_upload_a_professional_type(space, holder, me, representative, kind):
    actor = me if kind == "patient" else representative
    before = state(space, holder.id)
    with pytest.raises(ValidationError, match="DOCPAT or EXPPAT"):
        add_pdf(space, actor, holder.id, type_code=BIOLOGY)
    assert_refused_cleanly(space, holder.id, before, failure_event=False, actor=actor)


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE ClinicalDocument [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b']>\n<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol9;</title></ClinicalDocument>'
)
XXE = (
    b'<?xml version="1.0"?>\n'
    b'<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"><code code="11502-2" '
    b'codeSystem="2.16.840.1.113883.6.1"/><title>&xxe;</title></ClinicalDocument>'
)
EXTERNAL_DTD = (
    b'<?xml version="1.0"?>\n<!DOCTYPE ClinicalDocument SYSTEM "http://127.0.0.1:9/x.dtd">\n'
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"/>'
)
NOT_WELL_FORMED = b'<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><title>'


def _cda(*, ins: str = HOLDER_NIR, oid: str = HOLDER_OID, when: str = "20240102030405+0100"):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ClinicalDocument xmlns="urn:hl7-org:v3">'
        '<code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>'
        f'<title>Bilan</title><effectiveTime value="{when}"/>'
        '<confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>'
        f'<recordTarget><patientRole><id root="{oid}" extension="{ins}"/>'
        "</patientRole></recordTarget>"
        "<component><structuredBody><component><section/></component></structuredBody>"
        "</component></ClinicalDocument>"
    ).encode()


OTHER_PATIENT_CDA = _cda(ins="223042545611404", oid="1.2.250.1.213.1.4.8")

#: (content, media type, keyword arguments, message, refused after the access decision?)
#: Checks on the input (bytes, codes, author, visibility) come before the decision, which
#: needs the document's class and type (the matrix bounds what a profession deposits), so
#: nothing is traced; the check that needs the record (its holder) comes after it, and the
#: failure is traced.
HOSTILE = {
    "unknown type code": (
        PDF,
        "application/pdf",
        {"type_code": Code("99999-9", LOINC)},
        "J66",
        False,
    ),
    "type code in the wrong system": (
        PDF,
        "application/pdf",
        {"type_code": Code("11502-2", TRE_A05_TYPE)},
        "J66",
        False,
    ),
    "no type code": (PDF, "application/pdf", {"type_code": None}, "type code", False),
    "inconsistent class code": (
        PDF,
        "application/pdf",
        {"class_code": "31"},
        "inconsistent",
        False,
    ),
    "PDF declared, PNG bytes": (PNG, "application/pdf", {}, "image/png", False),
    "PDF declared, text": (b"%PFD not a pdf", "application/pdf", {}, "text/plain", False),
    "text declared, binary": (b"\x00\x01\x02binary", "text/plain", {}, "unrecognised", False),
    "text declared, PDF": (PDF, "text/plain", {}, "application/pdf", False),
    "PNG declared, PDF": (PDF, "image/png", {}, "application/pdf", False),
    "unsupported type (HTML)": (b"<html></html>", "text/html", {}, "not accepted", False),
    "CDA declared PDF": (_cda(), "application/pdf", {}, "text/xml", False),
    "empty": (b"", "application/pdf", {}, "empty", False),
    "billion laughs CDA": (BILLION_LAUGHS, "text/xml", {"type_code": None}, "entities", False),
    "external entity CDA": (XXE, "text/xml", {"type_code": None}, "entities", False),
    "external DTD CDA": (EXTERNAL_DTD, "text/xml", {"type_code": None}, "external DTD", False),
    "malformed CDA": (NOT_WELL_FORMED, "text/xml", {"type_code": None}, "well-formed", False),
    "CDA for another patient": (OTHER_PATIENT_CDA, "text/xml", {}, "another patient", True),
    "CDA for another patient, declared text/plain": (
        OTHER_PATIENT_CDA,
        "text/plain",
        {},
        "another patient",
        True,
    ),
    "CDA for another patient, application/hl7-v3+xml": (
        OTHER_PATIENT_CDA,
        "application/hl7-v3+xml",
        {"type_code": None},
        "another patient",
        True,
    ),
    "CDA dated year 999": (_cda(when="09990101"), "text/xml", {"type_code": None}, "1900", False),
    "naive created_at": (
        PDF,
        "application/pdf",
        {"created_at": datetime(2025, 1, 1)},
        "aware",
        False,
    ),
    "created_at year 999": (
        PDF,
        "application/pdf",
        {"created_at": datetime(999, 1, 1, tzinfo=UTC)},
        "1900",
        False,
    ),
    "naive service_start": (
        PDF,
        "application/pdf",
        {"service_start": datetime(2025, 1, 1)},
        "aware",
        False,
    ),
    "author is someone else": (
        PDF,
        "application/pdf",
        {"author": Author(AuthorKind.PROFESSIONAL, rpps(99))},
        "author",
        False,
    ),
    "author claims to be the insurer": (
        PDF,
        "application/pdf",
        {"author": Author(AuthorKind.INSURER, rpps(1))},
        "author",
        False,
    ),
    "confidentiality level X": (
        PDF,
        "application/pdf",
        {"confidentiality": "X"},
        "N, R or V",
        False,
    ),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_inputs_are_refused_and_nothing_is_stored(space, holder, case):
    content, media_type, kwargs, message, traced = HOSTILE[case]
    pro = professional()
    kwargs = {"type_code": BIOLOGY, **kwargs}
    before = state(space, holder.id)
    with pytest.raises(ValidationError, match=message):
        space.record.add_document(pro, holder.id, content, media_type=media_type, **kwargs)
    assert_refused_cleanly(space, holder.id, before, failure_event=traced, actor=pro)
    assert space.record.search(Actor.patient(holder.id), holder.id).total == 0


def test_a_patient_may_not_hide_a_document_from_themselves(space, holder, me):
    before = state(space, holder.id)
    with pytest.raises(ValidationError, match="only a professional"):
        add_pdf(
            space, me, holder.id, type_code=Code("DOCPAT03", TRE_A05_TYPE), hidden_from_patient=True
        )
    assert_refused_cleanly(space, holder.id, before, failure_event=False, actor=me)


def test_the_size_limit_is_exact(url, monespace_clock):
    limit = 4096
    with open_space(url, monespace_clock, settings=Settings(max_content_bytes=limit)) as space:
        register_physicians(space, specialty="SM26")
        patient = open_patient(space, holder_identity())
        pro = professional()
        feeder(space, pro, patient.id)
        for size in (limit - 1, limit):
            document = add_pdf(space, pro, patient.id, content=PDF.ljust(size, b" "))
            assert document.size == size
        before = state(space, patient.id)
        for size in (limit + 1, 10 * limit):
            with pytest.raises(ValidationError, match="at most"):
                add_pdf(space, pro, patient.id, content=PDF.ljust(size, b" "))
        assert_refused_cleanly(space, patient.id, before, failure_event=False)


def test_adding_to_a_space_that_is_not_open_is_denied(space):
    patient = space.accounts.register_patient(OPERATOR, holder_identity())  # no space yet
    before = state(space, patient.id)
    with pytest.raises(AccessDeniedError):
        add_pdf(space, professional(), patient.id)
    documents, blobs, audit, outbox = before
    assert state(space, patient.id) == (documents, blobs, audit + 1, outbox)
    assert last_event(space).outcome is Outcome.DENIED


def test_a_new_document_is_announced_without_saying_what_it_is(space, holder):
    pro = professional()
    add_pdf(space, pro, holder.id, title=MARKER, comments=MARKER)
    assert space.dispatch().sent == 1
    (sent,) = space.transports["email"].sent
    assert sent.kind == "new-document"
    text = sent.subject + sent.body
    for secret in (MARKER, "11502-2", "biolog", pro.id):
        assert secret.casefold() not in text.casefold()


# --- 3. visibility (the properties are in test_record_properties.py) -----------------------------


def _denied(call, *args, **kwargs):
    with pytest.raises(AccessDeniedError) as info:
        call(*args, **kwargs)
    return str(info.value)


def _replace(space):
    """``space.record.replace`` with a fixed new content, shaped like the other changes."""
    return lambda actor, document_id: space.record.replace(
        actor, document_id, PDF + b"new", media_type="application/pdf"
    )


def test_a_masked_document_is_hidden_from_other_professionals_but_not_its_author(space, holder, me):
    author, other = professional(1), professional(2)
    space.access.join_care_team(other, holder.id)  # authorised: only the masking stops them
    document = add_pdf(space, author, holder.id)
    kept = add_pdf(space, author, holder.id, title="not masked")
    assert space.record.get_document(other, document.id) == document
    masked = space.record.mask(me, document.id)
    assert masked.masked
    assert space.record.get_document(author, document.id) == masked
    assert space.record.read_content(author, document.id) == PDF
    assert _denied(space.record.get_document, other, document.id) == "access denied"
    assert _denied(space.record.read_content, other, document.id) == "access denied"
    assert [d.id for d in space.record.documents_of(other, holder.id)] == [kept.id]
    # The patient still sees their masked document, and unmasks it.
    assert space.record.get_document(me, document.id).masked
    assert not space.record.unmask(me, document.id).masked
    assert space.record.read_content(other, document.id) == PDF


@pytest.mark.parametrize("treating_doctor_sees_masked", [True, False])
def test_the_treating_doctor_and_masked_documents(
    url, monespace_clock, treating_doctor_sees_masked
):
    """The one configured exception to masking: the médecin traitant (2016 DMP rule, only
    partly confirmed today: docs/domain-rules.md §3.4); with it off, masking holds for all."""
    settings = Settings(
        access=AccessPolicy(treating_doctor_sees_masked=treating_doctor_sees_masked)
    )
    with open_space(url, monespace_clock, settings=settings) as space:
        register_physicians(space, specialty="SM26")
        patient = open_patient(space, holder_identity())
        me = Actor.patient(patient.id)
        author, doctor, team = professional(1), professional(2), professional(3)
        space.access.declare_treating_doctor(me, patient.id, doctor.id)
        space.access.join_care_team(team, patient.id)
        feeder(space, author, patient.id)
        document = add_pdf(space, author, patient.id, title=MARKER)
        space.access.revoke(me, patient.id, author.id)  # the author reads as author alone
        space.record.mask(me, document.id)
        seen = _denial_or_title(space, doctor, document.id)
        assert seen == (MARKER if treating_doctor_sees_masked else None)
        assert _denial_or_title(space, team, document.id) is None
        assert _denial_or_title(space, author, document.id) == MARKER
        listed = [d.id for d in space.record.documents_of(doctor, patient.id)]
        assert listed == ([document.id] if treating_doctor_sees_masked else [])
        assert list(space.record.documents_of(team, patient.id)) == []


def _denial_or_title(space, actor, document_id):
    try:
        return space.record.get_document(actor, document_id).title
    except AccessDeniedError:
        return None


def test_a_hidden_result_waits_for_the_announcement(space, holder, me, representative):
    pro = professional()
    document = add_pdf(space, pro, holder.id, title=MARKER, hidden_from_patient=True)
    assert space.dispatch().sent == 0  # not even "something new" while it is hidden
    for reader in (me, representative):
        assert _denied(space.record.get_document, reader, document.id) == "access denied"
        assert _denied(space.record.read_content, reader, document.id) == "access denied"
        assert space.record.search(reader, holder.id).total == 0
        # What may not be seen may not be masked either (masking returned the metadata).
        assert _denied(space.record.mask, reader, document.id) == "access denied"
        assert _denied(space.record.unmask, reader, document.id) == "access denied"
    assert space.record.get_document(pro, document.id).hidden_from_patient
    released = space.record.release(pro, document.id)
    assert not released.hidden_from_patient
    assert space.record.get_document(me, document.id) == released
    assert space.record.read_content(representative, document.id) == PDF
    space.dispatch()
    kinds = [e.kind for e in space.transports["email"].sent]
    assert kinds.count("new-document") == 1  # on release, not on deposit


def test_the_deadlines_of_a_hidden_result(space, holder, me, monespace_clock):
    """R1111-53: a notice after two weeks (saying nothing of the result), release at one
    month; tick is idempotent and leaves documents that are not hidden alone."""
    pro = professional()
    start = monespace_clock.now()
    hidden = add_pdf(space, pro, holder.id, title=MARKER, hidden_from_patient=True)
    add_pdf(space, pro, holder.id, title="visible")
    space.dispatch()
    email = space.transports["email"]
    email.sent.clear()
    assert space.record.tick(start + timedelta(days=13, hours=23)) == {
        "announcement_notices": 0,
        "released": 0,
    }
    two_weeks = start + timedelta(days=14)
    monespace_clock.set(two_weeks)
    assert space.record.tick(two_weeks) == {"announcement_notices": 1, "released": 0}
    assert space.record.tick(two_weeks) == {"announcement_notices": 0, "released": 0}
    space.dispatch()
    (notice,) = email.sent
    assert notice.kind == "announcement-pending"
    assert notice.recipient == "patient@example.org"
    text = (notice.subject + notice.body).casefold()
    for secret in (MARKER, "11502-2", "biolog", "bilan", pro.id, hidden.id):
        assert secret.casefold() not in text
    assert _denied(space.record.get_document, me, hidden.id) == "access denied"
    one_month = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)  # add_months(2026-01-01 09:00, 1)
    assert space.record.tick(one_month - timedelta(seconds=1))["released"] == 0
    monespace_clock.set(one_month)
    assert space.record.tick(one_month) == {"announcement_notices": 0, "released": 1}
    assert space.record.tick(one_month) == {"announcement_notices": 0, "released": 0}
    assert not space.record.get_document(me, hidden.id).hidden_from_patient
    space.dispatch()
    assert [e.kind for e in email.sent] == ["announcement-pending", "new-document"]


def test_a_hidden_result_is_visible_at_the_deadline_even_before_tick(
    space, holder, me, monespace_clock
):
    document = add_pdf(space, professional(), holder.id, hidden_from_patient=True)
    monespace_clock.set(document.release_at)
    assert space.record.get_document(me, document.id).id == document.id


def test_deleted_and_replaced_versions_are_not_announced(space, holder, monespace_clock):
    """tick used to notify (and "release") every version that still had a deadline."""
    pro = professional()
    start = monespace_clock.now()
    deleted = add_pdf(space, pro, holder.id, hidden_from_patient=True)
    space.record.delete(pro, deleted.id)
    old = add_pdf(space, pro, holder.id, hidden_from_patient=True)
    new = space.record.replace(pro, old.id, PDF + b"v2", media_type="application/pdf")
    assert new.hidden_from_patient
    assert new.release_at == old.release_at
    assert space.record.tick(start + timedelta(days=14))["announcement_notices"] == 1
    monespace_clock.set(start + timedelta(days=31))
    assert space.record.tick()["released"] == 1
    space.dispatch()
    kinds = [e.kind for e in space.transports["email"].sent]
    assert kinds == ["announcement-pending", "new-document"]
    me = Actor.patient(holder.id)
    page = space.record.search(me, holder.id, include_replaced=True)
    assert {d.id for d in page.documents} == {old.id, new.id}


def test_releasing_a_visible_document_tells_the_patient_nothing(space, holder):
    pro = professional()
    document = add_pdf(space, pro, holder.id)
    space.dispatch()
    for _ in range(3):
        assert not space.record.release(pro, document.id).hidden_from_patient
    assert space.dispatch().sent == 0


def test_hidden_from_representatives_but_not_from_the_patient(space, holder, me, representative):
    document = add_pdf(space, professional(), holder.id, hidden_from_representatives=True)
    assert space.record.get_document(me, document.id) == document
    assert space.record.search(me, holder.id).total == 1
    assert _denied(space.record.get_document, representative, document.id) == "access denied"
    assert _denied(space.record.read_content, representative, document.id) == "access denied"
    assert _denied(space.record.mask, representative, document.id) == "access denied"
    assert space.record.search(representative, holder.id).total == 0


def test_a_denial_reads_the_same_whether_or_not_the_document_exists(
    space, holder, me, representative
):
    author, other = professional(1), professional(2)
    masked = add_pdf(space, author, holder.id)
    space.record.mask(me, masked.id)
    hidden = add_pdf(space, author, holder.id, hidden_from_patient=True)
    secret = add_pdf(space, author, holder.id, hidden_from_representatives=True)
    deleted = add_pdf(space, author, holder.id)
    space.record.delete(author, deleted.id)
    stranger = open_patient(space, identity(3))
    feeder(space, author, stranger.id)
    theirs = add_pdf(space, author, stranger.id)
    cases = [
        (other, masked.id),
        (me, hidden.id),
        (representative, hidden.id),
        (representative, secret.id),
        (author, deleted.id),
        (me, deleted.id),
        (me, theirs.id),
        (OPERATOR, masked.id),
    ]
    reads = (space.record.get_document, space.record.read_content)
    for actor, document_id in cases:
        for read in reads:
            assert _denied(read, actor, document_id) == _denied(read, actor, "no-such-document")
    for change in (space.record.mask, space.record.unmask, space.record.delete, _replace(space)):
        for actor, document_id in [(other, masked.id), (me, hidden.id), (me, deleted.id)]:
            assert _denied(change, actor, document_id) == _denied(change, actor, "nope")


def test_a_deleted_document_is_visible_to_nobody(space, holder, me, representative):
    author = professional()
    document = add_pdf(space, author, holder.id)
    deleted = space.record.delete(author, document.id)
    assert deleted.status is DocumentStatus.DELETED
    for actor in (author, me, representative, professional(2), OPERATOR):
        for read in (space.record.get_document, space.record.read_content):
            _denied(read, actor, document.id)
        for change in (space.record.mask, space.record.delete, space.record.release):
            _denied(change, actor, document.id)
    for actor in (me, representative):
        assert space.record.search(actor, holder.id, include_replaced=True).total == 0
    _denied(_replace(space), author, document.id)


# --- 4. replacement, deletion, masking: who may --------------------------------------------------


def test_replacement_keeps_the_chain(space, holder, me, monespace_clock):
    pro = professional()
    first = add_pdf(space, pro, holder.id, title="v1", comments="first")
    space.record.mask(me, first.id)
    monespace_clock.advance(hours=1)
    second = space.record.replace(
        pro, first.id, PDF + b"v2", media_type="application/pdf", title="v2"
    )
    monespace_clock.advance(hours=1)
    third = space.record.replace(pro, second.id, PDF + b"v3", media_type="application/pdf")
    assert (second.lineage_id, second.version, second.replaces) == (first.id, 2, first.id)
    assert (third.lineage_id, third.version, third.replaces) == (first.id, 3, second.id)
    assert (third.title, third.comments) == ("v2", "first")  # carried over unless given
    assert (third.masked, second.masked) == (True, True)  # the masking follows the document
    assert (third.type_code, third.class_code) == (first.type_code, first.class_code)
    assert len({first.unique_id, second.unique_id, third.unique_id}) == 3
    assert space.record.get_document(pro, first.id).status is DocumentStatus.DEPRECATED
    assert space.record.get_document(pro, second.id).status is DocumentStatus.DEPRECATED
    assert space.record.get_document(pro, third.id) == third
    assert space.record.read_content(pro, third.id) == PDF + b"v3"
    assert space.record.read_content(pro, first.id) == PDF  # old versions stay readable
    assert [d.id for d in space.record.search(me, holder.id).documents] == [third.id]
    everything = space.record.search(me, holder.id, include_replaced=True)
    assert [d.id for d in everything.documents] == [third.id, second.id, first.id]


def test_masking_releasing_and_deleting_apply_to_every_version(space, holder, me):
    """They used to change the current version only: the versions it replaced stayed
    readable by authorised professionals after a masking, and by all after a deletion."""
    author, reader = professional(1), professional(2)
    space.access.join_care_team(reader, holder.id)
    first = add_pdf(space, author, holder.id, hidden_from_patient=True)
    second = space.record.replace(author, first.id, PDF + b"2", media_type="application/pdf")
    _denied(space.record.get_document, me, first.id)
    space.record.release(author, second.id)
    assert space.record.read_content(me, first.id) == PDF
    space.record.mask(me, second.id)
    for version in (first, second):
        assert space.record.get_document(author, version.id).masked
        _denied(space.record.get_document, reader, version.id)
    space.record.unmask(me, second.id)
    assert space.record.read_content(reader, first.id) == PDF
    space.record.delete(author, second.id)
    for version in (first, second):
        for actor in (author, reader, me):
            _denied(space.record.get_document, actor, version.id)
    assert space.record.search(me, holder.id, include_replaced=True).total == 0


def test_a_deprecated_or_deleted_document_cannot_be_replaced(space, holder):
    pro = professional()
    first = add_pdf(space, pro, holder.id)
    space.record.replace(pro, first.id, PDF + b"2", media_type="application/pdf")
    before = state(space, holder.id)
    with pytest.raises(ValidationError, match="deprecated"):
        space.record.replace(pro, first.id, PDF + b"3", media_type="application/pdf")
    documents, blobs, audit, outbox = before
    assert state(space, holder.id) == (documents, blobs, audit + 1, outbox)
    assert last_event(space).outcome is Outcome.FAILURE
    gone = add_pdf(space, pro, holder.id)
    space.record.delete(pro, gone.id)
    before = state(space, holder.id)
    with pytest.raises(AccessDeniedError):  # a deleted document is gone, even for its author
        space.record.replace(pro, gone.id, PDF + b"3", media_type="application/pdf")
    documents, blobs, audit, outbox = before
    assert state(space, holder.id) == (documents, blobs, audit + 1, outbox)
    assert last_event(space).outcome is Outcome.DENIED


def test_a_replacement_is_checked_like_an_addition(space, holder):
    """replace() used to skip the CDA checks: a CDA about someone else replaced a document."""
    pro = professional()
    first = space.record.add_document(pro, holder.id, _cda(), media_type="text/xml")
    for bad in (OTHER_PATIENT_CDA, XXE, BILLION_LAUGHS):
        before = state(space, holder.id)
        with pytest.raises(ValidationError):
            space.record.replace(pro, first.id, bad, media_type="text/xml")
        documents, blobs, audit, outbox = before
        traced = 1 if bad is OTHER_PATIENT_CDA else 0
        assert state(space, holder.id) == (documents, blobs, audit + traced, outbox)
    for media_type, bad in [("application/pdf", PNG), ("text/plain", b"\x00"), ("text/xml", b"")]:
        with pytest.raises(ValidationError):
            space.record.replace(pro, first.id, bad, media_type=media_type)
    assert space.record.get_document(pro, first.id).status is DocumentStatus.APPROVED


def test_only_the_author_replaces_deletes_and_releases(space, holder, me, representative):
    author, other = professional(1), professional(2)
    document = add_pdf(space, author, holder.id, hidden_from_patient=True)
    others = (other, me, representative, OPERATOR, Actor(ActorKind.APP, author.id))
    for actor in others:
        _denied(_replace(space), actor, document.id)
        _denied(space.record.delete, actor, document.id)
        _denied(space.record.release, actor, document.id)
    current = space.record.get_document(author, document.id)
    assert current.status is DocumentStatus.APPROVED
    assert current.hidden_from_patient
    assert space.record.release(author, document.id).hidden_from_patient is False
    assert space.record.delete(author, document.id).status is DocumentStatus.DELETED


def test_the_patient_masks_and_unmasks_but_a_professional_cannot(space, holder, me, representative):
    author = professional()
    document = add_pdf(space, author, holder.id)
    for actor in (author, professional(2), OPERATOR):
        _denied(space.record.mask, actor, document.id)
    assert space.record.mask(me, document.id).masked
    for actor in (author, professional(2), OPERATOR):
        _denied(space.record.unmask, actor, document.id)
    assert not space.record.unmask(representative, document.id).masked
    assert space.record.mask(representative, document.id).masked
    # Patient uploads are theirs: masked from professionals like any other document.
    upload = add_pdf(space, me, holder.id, type_code=Code("DOCPAT03", TRE_A05_TYPE))
    assert space.record.mask(me, upload.id).masked
    _denied(space.record.get_document, author, upload.id)


def test_the_patient_deletes_and_replaces_their_own_uploads_only(space, holder, me):
    upload = add_pdf(space, me, holder.id, type_code=Code("DOCPAT03", TRE_A05_TYPE))
    again = space.record.replace(me, upload.id, PDF + b"2", media_type="application/pdf")
    assert again.author == Author(AuthorKind.PATIENT, holder.id)
    space.record.delete(me, again.id)
    theirs = add_pdf(space, professional(), holder.id)
    _denied(space.record.delete, me, theirs.id)
    _denied(_replace(space), me, theirs.id)


def test_changing_a_replaced_document_is_refused_and_traced(space, holder, me):
    pro = professional()
    first = add_pdf(space, pro, holder.id)
    space.record.replace(pro, first.id, PDF + b"2", media_type="application/pdf")
    for change, actor in ((space.record.mask, me), (space.record.delete, pro)):
        before = state(space, holder.id)
        with pytest.raises(ValidationError, match="deprecated"):
            change(actor, first.id)
        documents, blobs, audit, outbox = before
        assert state(space, holder.id) == (documents, blobs, audit + 1, outbox)
        assert last_event(space).outcome is Outcome.FAILURE


# --- 5. search -----------------------------------------------------------------------------------


@pytest.fixture
def library(space, holder, me):
    """Ten documents of several kinds, authors and dates (created one day apart)."""
    a, b = professional(1), professional(2)
    feeder(space, b, holder.id)
    start = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    specs = [
        (a, BIOLOGY, "Bilan sanguin préopératoire", "à jeun"),
        (a, Code("18748-4", LOINC), "Scanner thoracique", None),
        (b, Code("57833-6", LOINC), "Ordonnance de sortie", "amoxicilline"),
        (b, BIOLOGY, "Bilan lipidique", None),
        (a, Code("87273-9", LOINC), "Vaccin grippe", "lot 42"),
        (me, Code("DOCPAT03", TRE_A05_TYPE), "Compte rendu de kiné", None),
        (b, Code("34112-3", LOINC), "Séjour en cardiologie", "Hôpital Nord"),
        (a, BIOLOGY, "BILAN HÉPATIQUE", None),
        (me, Code("EXPPAT_3", TRE_A05_TYPE), "Mes directives anticipées", None),
        (OPERATOR, Code("REMB", TRE_A05_TYPE), "Remboursements 2024", None),
    ]
    documents = []
    for day, (actor, code, title, comments) in enumerate(specs):
        documents.append(
            add_pdf(
                space,
                actor,
                holder.id,
                type_code=code,
                title=title,
                comments=comments,
                created_at=start + timedelta(days=day),
            )
        )
    return documents


def _ids(page):
    return [d.id for d in page.documents]


def test_search_lists_newest_first(space, holder, me, library):
    page = space.record.search(me, holder.id)
    assert (page.total, page.offset, page.limit) == (10, 0, 50)
    assert _ids(page) == [d.id for d in reversed(library)]
    created = [d.created_at for d in page.documents]
    assert created == sorted(created, reverse=True)


def test_search_filters(space, holder, me, library):
    search = space.record.search
    by_id = {d.id: d for d in library}
    assert _ids(search(me, holder.id, category=Category.RESULTS)) == [
        library[7].id,
        library[3].id,
        library[0].id,
    ]
    assert _ids(search(me, holder.id, category="patient_documents")) == [
        library[8].id,
        library[5].id,
    ]
    assert _ids(search(me, holder.id, type_code="57833-6")) == [library[2].id]
    assert {by_id[i].author.id for i in _ids(search(me, holder.id, author_id=rpps(2)))} == {rpps(2)}
    assert search(me, holder.id, author_id=rpps(2)).total == 3  # the REMB is the insurer's
    assert search(me, holder.id, author_id=holder.id).total == 2
    since, until = library[2].created_at, library[5].created_at  # [since, until)
    assert _ids(search(me, holder.id, since=since, until=until)) == [
        library[4].id,
        library[3].id,
        library[2].id,
    ]
    paris = dt.timezone(timedelta(hours=1))
    assert search(me, holder.id, since=since.astimezone(paris)).total == 8
    assert search(me, holder.id, until=library[0].created_at).total == 0


def test_search_by_title_and_comment_words(space, holder, me, library):
    search = space.record.search
    # Every word must appear, in the title or the comments, whatever the case.
    assert _ids(search(me, holder.id, text="bilan")) == [
        library[7].id,
        library[3].id,
        library[0].id,
    ]
    assert _ids(search(me, holder.id, text="BILAN sanguin")) == [library[0].id]
    assert _ids(search(me, holder.id, text="hépatique")) == [library[7].id]
    assert _ids(search(me, holder.id, text="amoxicilline")) == [library[2].id]
    assert _ids(search(me, holder.id, text="hôpital séjour")) == [library[6].id]
    assert search(me, holder.id, text="bilan scanner").total == 0
    # Combined with the other filters.
    assert _ids(search(me, holder.id, text="bilan", author_id=rpps(2))) == [library[3].id]
    # Wildcards are plain characters, not patterns.
    assert search(me, holder.id, text="%").total == 0
    assert search(me, holder.id, text="_").total == 0


def test_search_pages(space, holder, me, library):
    search = space.record.search
    everything = _ids(search(me, holder.id))
    pages = [search(me, holder.id, offset=o, limit=3) for o in range(0, 12, 3)]
    assert [p.total for p in pages] == [10] * 4
    assert [len(p.documents) for p in pages] == [3, 3, 3, 1]
    assert [i for p in pages for i in _ids(p)] == everything
    assert search(me, holder.id, offset=10).documents == ()
    assert search(me, holder.id, offset=10).total == 10
    assert search(me, holder.id, limit=500).total == 10
    assert _ids(search(me, holder.id, category="results", offset=1, limit=1)) == [library[3].id]
    assert [d.id for d in space.record.documents_of(me, holder.id)] == everything


def test_documents_of_is_one_consistent_audited_read(space, holder, me):
    """documents_of paged through search() lazily, one transaction per 500: a document
    added meanwhile made it list one document twice and miss the new one."""
    pro = professional()
    for _ in range(501):
        add_pdf(space, pro, holder.id)
    before = state(space, holder.id)
    listing = space.record.documents_of(me, holder.id)
    documents, blobs, audit, outbox = before
    assert state(space, holder.id) == (documents, blobs, audit + 1, outbox)  # one search
    first = [next(listing) for _ in range(500)]
    add_pdf(space, pro, holder.id)
    ids = [d.id for d in [*first, *listing]]
    assert len(ids) == len(set(ids)) == 501


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"category": "bogus"},
        {"since": datetime(2025, 1, 1)},
        {"until": datetime(2025, 1, 1)},
    ],
)
def test_search_refuses_bad_arguments(space, holder, me, kwargs):
    before = state(space, holder.id)
    with pytest.raises(ValidationError):
        space.record.search(me, holder.id, **kwargs)
    assert state(space, holder.id) == before


def test_search_is_audited_once(space, holder, me, library):
    before = state(space, holder.id)
    page = space.record.search(me, holder.id, text="bilan", limit=2)
    assert page.total == 3
    documents, blobs, audit, outbox = before
    assert state(space, holder.id) == (documents, blobs, audit + 1, outbox)
    event = last_event(space)
    assert (event.action, event.outcome, event.actor_id) == (
        str(Action.DOCUMENT_SEARCH),
        Outcome.SUCCESS,
        holder.id,
    )
    assert (event.patient_id, event.target_kind) == (holder.id, "record")


def test_search_of_someone_elses_record_is_denied_and_traced(space, holder, library):
    stranger = open_patient(space, identity(4))
    before = state(space, holder.id)
    for actor in (Actor.patient(stranger.id), OPERATOR):
        with pytest.raises(AccessDeniedError):
            space.record.search(actor, holder.id)
    documents, blobs, audit, outbox = before
    assert state(space, holder.id) == (documents, blobs, audit + 2, outbox)


def test_a_professional_lists_what_they_may_read(space, holder, me, library):
    """Without an authorisation a professional reads their own deposits by id but lists
    nothing; a care-team member lists everything but what the patient masked, except their
    own deposits."""
    a, b, outsider = professional(1), professional(2), professional(3)
    space.record.mask(me, library[0].id)  # by a
    space.record.mask(me, library[2].id)  # by b
    space.access.revoke(me, holder.id, a.id)  # a fed the record as care team; no longer
    _denied(space.record.search, outsider, holder.id)
    _denied(space.record.search, a, holder.id)
    assert space.record.get_document(a, library[0].id).masked
    space.access.join_care_team(b, holder.id)
    listed = [d.id for d in space.record.documents_of(b, holder.id)]
    expected = [d.id for d in reversed(library) if d.id != library[0].id]
    assert listed == expected  # b's own masked deposit included, a's not
    page = space.record.search(b, holder.id, limit=3)
    assert page.total == 9
    assert _ids(page) == expected[:3]


# --- 7. nothing in clear on disk -----------------------------------------------------------------


def test_titles_and_contents_never_reach_the_sqlite_files_in_clear(tmp_path, monespace_clock):
    path = tmp_path / "space.db"
    marker = MARKER + "-Évêque"
    with open_space(f"sqlite:///{path}", monespace_clock) as space:
        register_physicians(space, specialty="SM26")
        patient = open_patient(space, holder_identity())
        pro = professional()
        feeder(space, pro, patient.id)
        author = Author(AuthorKind.PROFESSIONAL, pro.id, name=marker, organisation=marker)
        first = add_pdf(
            space,
            pro,
            patient.id,
            title=f"{marker} titre",
            comments=marker,
            author=author,
            content=PDF + marker.encode() * 100,
        )
        text = space.record.add_document(
            pro, patient.id, (marker * 50).encode(), media_type="text/plain",
            type_code=BIOLOGY, title=marker,
        )  # fmt: skip
        space.record.replace(
            pro, first.id, PDF + marker.encode(), media_type="application/pdf", title=marker
        )
        space.record.mask(Actor.patient(patient.id), text.id)
        assert space.record.search(Actor.patient(patient.id), patient.id, text=marker).total == 2
        files = list(tmp_path.iterdir())
        assert any(f.name.endswith("-wal") for f in files)
        raw_open = b"".join(f.read_bytes() for f in files)
    raw_closed = b"".join(f.read_bytes() for f in tmp_path.iterdir())
    needles = {
        s.encode(encoding)
        for s in (marker, marker.upper(), marker.casefold(), MARKER)
        for encoding in ("utf-8", "utf-16-le", "utf-16-be")
    }
    for raw in (raw_open, raw_closed):
        for needle in needles:
            assert needle not in raw


def test_a_document_deposited_in_an_establishments_name_stays_manageable(space, holder):
    pro = professional()
    establishment = Author(AuthorKind.ESTABLISHMENT, "750712184", name="CHU")
    document = add_pdf(space, pro, holder.id, author=establishment, hidden_from_patient=True)
    assert document.submitted_by == pro.id
    colleague = professional(2)  # in the directory, but not the one who deposited it
    with pytest.raises(AccessDeniedError):
        space.record.release(colleague, document.id)
    assert not space.record.release(pro, document.id).hidden_from_patient
    assert space.record.delete(pro, document.id).status is DocumentStatus.DELETED


# --- DMP document codes (issue 12) ---------------------------------------------------------------


def test_a_dmp_document_type_must_be_in_j66_with_its_x16_class(space, holder):
    """28617-9 is in the CI-SIS J07 but not in the DMP's J66: refused, whatever class is
    given; a J66 type takes the class ASS_X16 gives."""
    pro = professional()
    for klass in (None, "10"):
        with pytest.raises(ValidationError, match="J66"):
            add_pdf(space, pro, holder.id, type_code=Code("28617-9", LOINC), class_code=klass)
    assert add_pdf(space, pro, holder.id, type_code=Code("18748-4", LOINC)).class_code == "31"


@pytest.mark.parametrize("code", ["REMB", "DOCPAT01", "EXPPAT_3"])
def test_insurer_and_patient_types_are_refused_from_professionals(space, holder, code):
    with pytest.raises(ValidationError, match="only"):
        add_pdf(space, professional(), holder.id, type_code=Code(code, TRE_A05_TYPE))
    assert add_pdf(space, OPERATOR, holder.id, type_code=Code("REMB", TRE_A05_TYPE))


def test_the_format_code_is_checked_against_j60_and_derived_from_the_media_type(space, holder):
    pro = professional()
    with pytest.raises(ValidationError, match="J60"):
        add_pdf(space, pro, holder.id, format_code="urn:example:not-a-format")
    assert add_pdf(space, pro, holder.id).format_code == "urn:ihe:iti:xds-sd:pdf:2008"
    given = add_pdf(space, pro, holder.id, format_code="urn:ihe:lab:xd-lab:2008")
    assert given.format_code == "urn:ihe:lab:xd-lab:2008"


# --- minors' secrecy (R1111-33, issue 12) --------------------------------------------------------


def test_reimbursement_data_of_care_a_minor_kept_secret_stay_out_of_the_space(space):
    """R1111-33: when a minor objected, the insurer does not transfer the reimbursement data
    of the care they kept secret: nothing is stored, so neither the minor's representatives
    nor anyone else sees it; the other reimbursement data come in as usual."""
    born = dt.date(2012, 5, 1)
    nir = NIR.build("F", born.year % 100, born.month, "75", "056", 4)
    traits = INSTraits(birth_name="PETIT", first_given_name="LOU", birth_date=born, sex="F")
    minor = open_patient(space, PatientIdentity(INS(nir, INS_NIR_TEST_OID, traits), Contact()))
    parent = open_patient(space, identity(5))
    space.accounts.add_representative(
        OPERATOR, minor.id, parent.id, RepresentationKind.LEGAL_GUARDIAN
    )
    guardian = Actor(ActorKind.REPRESENTATIVE, parent.id, on_behalf_of=minor.id)
    remb = Code("REMB", TRE_A05_TYPE)
    before = state(space, minor.id)
    with pytest.raises(ValidationError, match="R1111-33"):
        add_pdf(space, OPERATOR, minor.id, type_code=remb, minor_secret=True)
    documents, blobs, _, outbox = before
    assert state(space, minor.id)[:2] == (documents, blobs)
    assert state(space, minor.id)[3] == outbox
    kept = add_pdf(space, OPERATOR, minor.id, type_code=remb)
    assert [d.id for d in space.record.documents_of(guardian, minor.id)] == [kept.id]
    with pytest.raises(ValidationError, match="reimbursement"):
        add_pdf(space, professional(), minor.id, minor_secret=True)
