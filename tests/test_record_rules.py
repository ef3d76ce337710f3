"""The record's pure rules (monespace.record._rules) and its rows <-> model mapping
(monespace.record._mapping), without storage or a space."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monespace.actors import ActorKind
from monespace.errors import ValidationError
from monespace.identities import names_person
from monespace.record import (
    LOINC,
    TRE_A05_TYPE,
    Author,
    AuthorKind,
    Code,
    Document,
    DocumentStatus,
    Measure,
    MeasureKind,
    ProfileEntry,
    ProfileSection,
    RecordSettings,
)
from monespace.record._mapping import (
    document_from_row,
    document_meta,
    document_row,
    entry_from_row,
    entry_payload,
    entry_row,
    measure_from_row,
    measure_payload,
    measure_row,
)
from monespace.record._rules import (
    INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS,
    MASQUE_PS,
    announcement,
    check_codes,
    check_may_hide,
    check_time,
    document_author,
    hidden_from_patient_at,
    visibility,
)

from .helpers import identity

NOW = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)
RPPS_ID = "10003436645"


def document(**changes: object) -> Document:
    base = Document(
        id="d1",
        patient_id="p1",
        lineage_id="d1",
        version=1,
        unique_id="1.2.3^d1",
        class_code="11",
        type_code=Code("11490-0", LOINC, "Lettre de sortie"),
        format_code=None,
        media_type="application/pdf",
        author=Author(
            AuthorKind.PROFESSIONAL,
            RPPS_ID,
            "Dr Lune",
            Code("SM26", "1.2.250.1.71.4.2.5", "Qualifié en médecine générale"),
            "Clinique des Lilas",
        ),
        title="Compte rendu d'hospitalisation, été",
        created_at=NOW - timedelta(days=3),
        submitted_at=NOW,
        content_id="c1",
        size=1234,
        sha256="ab" * 32,
    )
    return attrs.evolve(base, **changes)


# --- rules ----------------------------------------------------------------------------------


def test_a_hidden_result_is_released_a_calendar_month_later_and_announced_in_two_weeks():
    """The month is a calendar month, clamped to the month's last day (31 January -> 28
    February), and a document not hidden has no deadline."""
    release_at, notify_at = announcement(NOW, INVISIBLE_PATIENT, RecordSettings())
    assert release_at == datetime(2026, 2, 28, 10, 0, tzinfo=UTC)
    assert notify_at == NOW + timedelta(days=14)
    assert announcement(NOW, MASQUE_PS | INVISIBLE_REPRESENTANTS, RecordSettings()) == (
        None,
        None,
    )


def test_a_hidden_result_is_hidden_until_its_release():
    release = NOW + timedelta(days=1)
    assert hidden_from_patient_at(INVISIBLE_PATIENT, release, NOW)
    assert not hidden_from_patient_at(INVISIBLE_PATIENT, release, release)
    assert hidden_from_patient_at(INVISIBLE_PATIENT, None, NOW)  # no automatic release
    assert not hidden_from_patient_at(MASQUE_PS, release, NOW)


def test_confidentiality_codes_carried_by_the_document_set_flags_and_the_highest_level():
    flags, level = visibility(["INVISIBLE_PATIENT", "R", "V", "N", "UNKNOWN"], "N", MASQUE_PS)
    assert flags == MASQUE_PS | INVISIBLE_PATIENT
    assert level == "V"
    # A level the caller chose wins over the document's.
    assert visibility(["V"], "R", 0) == (0, "R")
    with pytest.raises(ValidationError, match="N, R or V"):
        visibility([], "X", 0)


@pytest.mark.parametrize(
    ("kind", "given", "expected"),
    [
        (ActorKind.PATIENT, None, Author(AuthorKind.PATIENT, "a1")),
        (ActorKind.SYSTEM, None, Author(AuthorKind.INSURER, "a1")),
        (ActorKind.APP, None, Author(AuthorKind.APP, "a1")),
        (
            ActorKind.PROFESSIONAL,
            Author(AuthorKind.ESTABLISHMENT, "750712184"),
            Author(AuthorKind.ESTABLISHMENT, "750712184"),
        ),
    ],
)
def test_a_documents_author_derives_from_the_actor(kind, given, expected):
    assert document_author(kind, "a1", given) == expected


@pytest.mark.parametrize(
    ("kind", "given"),
    [
        (ActorKind.PROFESSIONAL, Author(AuthorKind.PROFESSIONAL, "someone-else")),
        (ActorKind.PATIENT, Author(AuthorKind.ESTABLISHMENT, "750712184")),
        (ActorKind.PATIENT, Author(AuthorKind.PROFESSIONAL, "a1")),
    ],
)
def test_nobody_writes_in_someone_elses_name(kind, given):
    with pytest.raises(ValidationError, match="author must be the actor"):
        document_author(kind, "a1", given)


@pytest.mark.parametrize("flag", [INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS])
def test_only_a_professional_or_their_establishment_hides_a_document(flag):
    for kind in (AuthorKind.PROFESSIONAL, AuthorKind.ESTABLISHMENT):
        check_may_hide(flag, Author(kind, "x"))
    for kind in (AuthorKind.PATIENT, AuthorKind.REPRESENTATIVE, AuthorKind.APP):
        with pytest.raises(ValidationError, match="only a professional"):
            check_may_hide(flag, Author(kind, "x"))
    check_may_hide(MASQUE_PS, Author(AuthorKind.PATIENT, "x"))  # masking is the patient's


@pytest.mark.parametrize(
    "moment",
    [datetime(2026, 1, 1), datetime(999, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)],
    ids=["naive", "year-999", "year-9999"],
)
def test_naive_or_absurd_dates_are_refused_by_name(moment):
    with pytest.raises(ValidationError, match="'created_at'"):
        check_time("created_at", moment)


def test_a_document_names_the_holder_by_matricule_and_oid():
    holder = identity()
    matricule = holder.ins.matricule.value
    assert names_person(holder, f" {matricule.lower()} ", None)
    assert names_person(holder, matricule, f"urn:oid:{holder.ins.oid}")
    assert not names_person(holder, matricule, "1.2.250.1.213.1.4.8")  # the real INS OID
    assert not names_person(holder, identity(2).ins.matricule.value, None)
    assert not names_person(None, matricule, None)


# --- mapping --------------------------------------------------------------------------------


@given(
    title=st.text(min_size=1, max_size=40),
    comments=st.none() | st.text(max_size=40),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    service=st.none() | st.datetimes(timezones=st.just(UTC)),
    author=st.sampled_from(
        [
            Author(AuthorKind.PATIENT, "p1"),
            Author(AuthorKind.PROFESSIONAL, RPPS_ID, "Dr Lune", Code("SM26", "1.2.3", None)),
            Author(AuthorKind.ESTABLISHMENT, "750712184", organisation="Clinique"),
        ]
    ),
)
def test_a_document_survives_its_row_and_sealed_meta(title, comments, flags, service, author):
    """Every field of a document comes back from its row and its meta payload, the type's
    display name included (it does not take part in equality)."""
    masked, hidden, hidden_reps = flags
    original = document(
        title=title,
        comments=comments,
        author=author,
        masked=masked,
        hidden_from_patient=hidden,
        hidden_from_representatives=hidden_reps,
        service_start=service,
        service_stop=service,
        release_at=NOW if hidden else None,
        status=DocumentStatus.DEPRECATED,
        replaces="d0",
    )
    meta = document_meta(original)
    back = document_from_row(document_row(original, b"sealed"), meta)
    assert back == original
    assert back.type_code.display == original.type_code.display


def test_document_meta_written_before_the_codec_still_reads():
    """A payload as the record wrote it by hand (json.dumps of a dict, the author through
    attrs.asdict) reads back the same document: stored records need no migration."""
    original = document(comments="Sortie le 3", service_start=NOW, service_stop=None)
    legacy = json.dumps(
        {
            "title": original.title,
            "comments": original.comments,
            "type_display": original.type_code.display,
            "author": attrs.asdict(original.author, recurse=True),
            "service_start": NOW.isoformat(),
            "service_stop": None,
        }
    ).encode()
    assert document_from_row(document_row(original, b"sealed"), legacy) == original
    assert json.loads(document_meta(original)) == json.loads(legacy)


def test_profile_entries_and_measures_survive_their_rows_and_read_former_payloads():
    entry = ProfileEntry(
        "e1",
        "p1",
        ProfileSection.ALLERGY,
        "Pénicilline",
        "urticaire",
        Code("Z88.0", "2.16.840.1.113883.6.3"),
        date(2001, 5, 1),
        None,
    )
    row = entry_row(entry, b"sealed", NOW)
    assert entry_from_row(row, entry_payload(entry)) == attrs.evolve(entry, recorded_at=NOW)
    legacy_entry = json.dumps(
        {
            "label": "Pénicilline",
            "details": "urticaire",
            "code": {"code": "Z88.0", "system": "2.16.840.1.113883.6.3", "display": None},
            "started": "2001-05-01",
            "ended": None,
        }
    ).encode()
    assert entry_from_row(row, legacy_entry) == attrs.evolve(entry, recorded_at=NOW)

    measure = Measure("m1", "p1", MeasureKind.BLOOD_PRESSURE, 120.0, "mm[Hg]", NOW, 80.0, "app")
    row = measure_row(measure, b"sealed")
    assert measure_from_row(row, measure_payload(measure), "mm[Hg]") == measure
    legacy_measure = json.dumps({"value": 120, "second": 80, "source": "app"}).encode()
    assert measure_from_row(row, legacy_measure, "mm[Hg]") == measure


def test_a_patients_own_type_is_refused_to_nobody_but_a_type_outside_the_value_sets_is():
    holder = Author(AuthorKind.PATIENT, "p1")
    assert check_codes(Code("DOCPAT01", TRE_A05_TYPE), None, holder) == (
        Code("DOCPAT01", TRE_A05_TYPE),
        "11",
    )
    with pytest.raises(ValidationError, match="DOCPAT or EXPPAT"):
        check_codes(Code("11490-0", LOINC), None, holder)
    with pytest.raises(ValidationError, match="JDV_J66"):
        check_codes(Code("not-a-type", LOINC), None, Author(AuthorKind.PROFESSIONAL, RPPS_ID))
