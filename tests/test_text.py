"""The one text check (``monespace._text``) on every field where text enters the model, and
the command line's rendering of stored text for a terminal."""

from __future__ import annotations

import unicodedata
from datetime import date

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import monespace
from monespace import Actor, ActorKind
from monespace._text import LIMITS, check_text, is_refused, neutralise_text
from monespace.access import Professional
from monespace.accounts import Contact, PatientIdentity, PostalAddress
from monespace.cli import main
from monespace.cli._common import terminal_text
from monespace.errors import ValidationError
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.messaging import check_body, check_subject, safe_filename
from monespace.record import Author, AuthorKind, Code, ProfileEntry
from monespace.record._rules import check_comments, document_author, document_title

from .conftest import SHARED_DATA
from .helpers import (
    MARKER,
    feeder,
    holder_identity,
    open_patient,
    open_space,
    register_physicians,
    rpps,
)
from .strategies import HOSTILE_CHARACTERS, hostile_text

OPERATOR = Actor.system("test")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

#: Every one-line field, and how a caller's value reaches its check.
ONE_LINE = {
    "name": lambda v: Professional(rpps(1), "10", v),
    "establishment": lambda v: Professional(rpps(1), "10", "Dr X", establishment=v),
    "specialty": lambda v: Professional(rpps(1), "10", "Dr X", specialty=v),
    "finess": lambda v: Professional(rpps(1), "10", "Dr X", finess=v),
    "email": lambda v: Contact(email=v),
    "phone": lambda v: Contact(phone=v),
    "lines": lambda v: PostalAddress(lines=(v,), postal_code="75011", city="PARIS"),
    "postal_code": lambda v: PostalAddress(lines=("1 RUE",), postal_code=v, city="PARIS"),
    "city": lambda v: PostalAddress(lines=("1 RUE",), postal_code="75011", city=v),
    "used_name": lambda v: attrs.evolve(holder_identity(), used_name=v),
    "title": lambda v: document_title(v, None, "Document"),
    "label": lambda v: ProfileEntry("e", "p", "allergy", v),
    "subject": lambda v: check_subject(v, limit=LIMITS["subject"]),
    "filename": safe_filename,
    "author.name": lambda v: document_author(
        ActorKind.PROFESSIONAL, rpps(1), Author(AuthorKind.PROFESSIONAL, rpps(1), name=v)
    ),
    "author.organisation": lambda v: document_author(
        ActorKind.PROFESSIONAL,
        rpps(1),
        Author(AuthorKind.ESTABLISHMENT, "750712184", None, None, v),
    ),
}
#: Every field of several lines (LF allowed, CR LF read as LF).
MULTILINE = {
    "comments": check_comments,
    "details": lambda v: ProfileEntry("e", "p", "allergy", "Pénicilline", v),
    "body": lambda v: check_body(v, limit=100_000),
}


def assert_refused_without_echo(field: str, build, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        build(value)
    message = str(info.value)
    assert f"'{field}'" in message, message
    assert value not in message
    assert not any(is_refused(c) for c in message)


@pytest.mark.parametrize("field", sorted(ONE_LINE))
@given(data=st.data())
def test_every_one_line_field_refuses_hostile_text_naming_the_field(field, data):
    """NUL, CR/LF, ESC and OSC sequences, DEL, C1 controls, bidi overrides, lone surrogates
    and non-characters are refused with a ValidationError that names the field and never
    shows the value."""
    value = data.draw(hostile_text())
    assert_refused_without_echo(field, ONE_LINE[field], value)


@pytest.mark.parametrize("field", sorted(MULTILINE))
@given(data=st.data())
def test_every_multiline_field_refuses_hostile_text_naming_the_field(field, data):
    value = data.draw(hostile_text(multiline=True))
    assert_refused_without_echo(field, MULTILINE[field], value)


def test_multiline_fields_keep_line_feeds_and_read_cr_lf_as_lf():
    assert check_comments("un\r\ndeux\rtrois\n\tquatre") == "un\ndeux\ntrois\n\tquatre"
    assert check_body("Bonjour,\r\n\r\nà demain.", limit=100) == "Bonjour,\n\nà demain."
    entry = ProfileEntry("e", "p", "allergy", "Pénicilline", "urticaire\r\ngéante")
    assert entry.details == "urticaire\ngéante"
    with pytest.raises(ValidationError, match="'title'"):
        document_title("un\ndeux", None, "Document")


def test_text_is_stored_in_nfc():
    decomposed = "Ce\u0301line He\u0301ritier"
    assert unicodedata.normalize("NFC", decomposed) != decomposed
    assert Professional(rpps(1), "10", decomposed).name == "Céline Héritier"
    assert document_title(decomposed, None, "Document") == "Céline Héritier"
    assert Contact(phone="06\u00a012").phone == "06\u00a012"  # not NFKC: only NFC


def test_a_megabyte_title_is_refused_at_once():
    huge = "A" * 1_000_000
    with pytest.raises(ValidationError, match=r"'title' must be at most 500 characters"):
        document_title(huge, None, "Document")
    with pytest.raises(ValidationError, match="at most"):
        check_comments("é" * 1_000_000)
    # The cap counts characters after NFC, in one place for each kind of field.
    assert check_text("x", "e\u0301" * 500, max_length=500) == "é" * 500
    with pytest.raises(ValidationError):
        check_text("x", "e" * 501, max_length=500)


def test_hostile_text_is_refused_through_the_library_and_leaves_no_trace():
    with open_space() as space:
        patient = open_patient(space, holder_identity())
        me = Actor.patient(patient.id)
        [doctor] = register_physicians(space, 1)
        pro = Actor(ActorKind.PROFESSIONAL, doctor)
        hostile = f"{MARKER}\x1b]8;;https://evil.example/\x1b\\cliquez\x1b]8;;\x1b\\"
        attempts = {
            "title": lambda: space.record.add_document(
                pro,
                patient.id,
                PDF,
                media_type="application/pdf",
                type_code=Code("11488-4", "2.16.840.1.113883.6.1"),
                title=hostile,
            ),
            "comments": lambda: space.record.add_document(
                pro,
                patient.id,
                PDF,
                media_type="application/pdf",
                type_code=Code("11488-4", "2.16.840.1.113883.6.1"),
                comments=hostile,
            ),
            "label": lambda: space.profile.add(me, patient.id, "allergy", hostile),
            "subject": lambda: space.messaging.start_thread(
                pro, patient.id, subject=hostile, body="Bonjour"
            ),
            "title (1 MB)": lambda: space.record.add_document(
                pro,
                patient.id,
                PDF,
                media_type="application/pdf",
                type_code=Code("11488-4", "2.16.840.1.113883.6.1"),
                title="A" * 1_000_000,
            ),
        }
        for field, attempt in attempts.items():
            with pytest.raises(ValidationError) as info:
                attempt()
            assert f"'{field.split()[0]}'" in str(info.value)
            assert MARKER not in str(info.value)
        assert space.record.search(me, patient.id).total == 0
        assert MARKER not in repr(space.audit.events(OPERATOR))


# --- neutralising and rendering ------------------------------------------------------------


@given(value=st.one_of(hostile_text(), hostile_text(multiline=True), st.text()))
def test_neutralised_and_terminal_text_hold_nothing_a_terminal_acts_on(value):
    for rendered in (neutralise_text(value, max_length=10_000), terminal_text(value)):
        assert not any(is_refused(c) for c in rendered)
        assert not {"\x1b", "\r", "\n"} & set(rendered)
    assert not any(is_refused(c, multiline=True) for c in terminal_text(value, multiline=True))


def test_terminal_text_shows_what_it_escapes():
    assert terminal_text("\x1b[31mROUGE\x1b[0m") == "\\x1b[31mROUGE\\x1b[0m"
    assert terminal_text("facture\u202efdp.exe") == "facture\\u202efdp.exe"
    assert terminal_text("ok\rKO\tfin") == "ok\\x0dKO\tfin"
    assert terminal_text("un\ndeux", multiline=True) == "un\ndeux"
    assert neutralise_text("a\x00b\u2066c", max_length=100) == "a\\u0000b\\u2066c"
    assert set(HOSTILE_CHARACTERS) <= {c for c in HOSTILE_CHARACTERS if is_refused(c)}


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A space on disk with an active patient (carte Vitale login) and a physician."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "space.db"
    with monespace.open(f"sqlite:///{path}", load_entrypoints=False) as space:
        person = attrs.evolve(holder_identity(), vitale_serial="1234567890")
        patient = space.accounts.register_patient(OPERATOR, person)
        code = space.accounts.issue_code(OPERATOR, patient.id, send=False)
        space.accounts.activate(
            nir=person.ins.matricule.value,
            code=code,
            vitale_serial=person.vitale_serial,
            birth_date=person.ins.traits.birth_date,
        )
        register_physicians(space, 1)
    return path, patient.id


LOGIN = ["--nir", "279035121518989", "--vitale", "1234567890", "--birth-date", "1979-03-15"]
#: What must never reach a terminal from stored text: ESC (CSI, OSC), CR, BEL, C1 CSI,
#: the bidi override.
NEVER = ("\x1b", "\r", "\x07", "\x9b", "\u202e")


def test_the_cli_escapes_stored_text_that_predates_the_check(db, monkeypatch):
    """A title and a comment stored before the check existed (simulated by switching the
    check off) are printed with visible escapes by record list and record show."""
    path, patient_id = db
    hostile = "\x1b]0;pwned\x07\x1b[2J\x1b[31mROUGE\x9b\u202efdp.exe\rPDF"
    monkeypatch.setattr("monespace.record._service.document_title", lambda g, r, d: g)
    monkeypatch.setattr("monespace.record._service.check_comments", lambda c: c)
    with monespace.open(f"sqlite:///{path}", load_entrypoints=False) as space:
        feeder(space, Actor(ActorKind.PROFESSIONAL, rpps(1)), patient_id)
        document = space.record.add_document(
            Actor(ActorKind.PROFESSIONAL, rpps(1)),
            patient_id,
            PDF,
            media_type="application/pdf",
            type_code=Code("11488-4", "2.16.840.1.113883.6.1"),
            title=hostile,
            comments=hostile,
        )
    runner = CliRunner()
    listed = runner.invoke(main, ["record", "list", "--db", str(path), *LOGIN])
    shown = runner.invoke(main, ["record", "show", "--db", str(path), *LOGIN, document.id])
    for result in (listed, shown):
        assert result.exit_code == 0, result.output
        assert not any(c in result.output for c in NEVER), ascii(result.output)
        assert "\\x1b]0;pwned\\x07" in result.output
        assert "\\u202efdp.exe\\x0dPDF" in result.output


CDA = SHARED_DATA / "cisis" / "cda" / "DOC_NON_STRUCTURE_CDA-R2-N1.xml"


@pytest.mark.skipif(not CDA.is_file(), reason=f"shared CDA example missing: {CDA}")
def test_an_imported_title_and_file_name_are_kept_in_a_safe_rendering(tmp_path, monkeypatch):
    """A legacy document whose header title holds a C1 CSI and a bidi override, in a file whose
    name holds ESC and CR: the document is imported (not lost), its title and the ledger's
    source are stored with visible escapes, and the CLI prints nothing a terminal acts on."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "space.db"
    folder = tmp_path / "export"
    folder.mkdir()
    text = CDA.read_text(encoding="utf-8").replace(
        "<title>Compte rendu d'examens biologiques</title>",
        "<title>Compte rendu&#155;2J\u202eFDP.exe</title>",
    )
    assert "&#155;" in text
    (folder / "DOC\x1b[31m\rrouge.xml").write_text(text, encoding="utf-8")
    # The patient of the official examples, as tests/test_dmp.py registers them.
    traits = INSTraits(
        birth_name="Pat-Trois", first_given_name="Dominique", birth_date=date(1979, 3, 28), sex="F"
    )
    person = PatientIdentity(
        INS(NIR.parse("279035121518989"), INS_NIR_TEST_OID, traits),
        Contact(email="p@example.org"),
        vitale_serial="1234567890",
    )
    migration = Actor.system("migration")
    with monespace.open(f"sqlite:///{path}", load_entrypoints=False) as space:
        patient = space.accounts.register_patient(OPERATOR, person)
        code = space.accounts.issue_code(OPERATOR, patient.id, send=False)
        space.accounts.activate(
            nir="279035121518989",
            code=code,
            vitale_serial="1234567890",
            birth_date=traits.birth_date,
        )
        report = space.dmp.import_sources(migration, [folder])
        assert (report.imported, report.quarantined) == (1, 0)
        [line] = space.dmp.ledger(migration, report.run_id)
        [document] = space.record.search(Actor.patient(patient.id), patient.id).documents
    assert document.title == "Compte rendu\\u009b2J\\u202eFDP.exe"
    assert not any(is_refused(c) for c in line.source)
    assert line.source.endswith("DOC\\u001b[31m\\u000drouge.xml")
    login = ["--nir", "279035121518989", "--vitale", "1234567890", "--birth-date", "1979-03-28"]
    listed = CliRunner().invoke(main, ["record", "list", "--db", str(path), *login])
    assert listed.exit_code == 0, listed.output
    assert document.id in listed.output
    assert not any(c in listed.output for c in NEVER), ascii(listed.output)


def test_a_byte_order_mark_is_refused_like_the_other_invisible_controls():
    """U+FEFF is invisible and dropped by readers of files (an iCalendar title made of it
    came back empty): refused where text enters the model."""
    with pytest.raises(ValidationError, match="'title'"):
        check_text("title", "\ufeff", max_length=10)
    with pytest.raises(ValidationError):
        check_text("title", "Compte\ufeffrendu", max_length=20)
