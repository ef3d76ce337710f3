"""Secure messaging end to end (``space.messaging``), on the memory and the SQLite backend.

The pure rules are in ``test_messaging_rules.py``, the stateful permission model in
``test_messaging_properties.py``, and the SMTP round trips in the plugin's own tests
(``plugins/monespace-smtp/tests``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import attrs
import pytest

import monespace
from monespace import Actor, ActorKind, Settings
from monespace.access import Action
from monespace.accounts import Contact
from monespace.audit import Outcome, event_from_row, events_from_rows
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.errors import (
    AccessDeniedError,
    ConflictError,
    InvalidMSSanteAddressError,
    UnknownProfessionalError,
    ValidationError,
)
from monespace.messaging import (
    MSSANTE_CHANNEL,
    OUTBOUND_KIND,
    InboundMessage,
    MessagingSettings,
    NewAttachment,
    RecordAttachment,
    ThreadStatus,
    UnknownRecipientError,
    UnknownSenderError,
    decode_outbound,
)
from monespace.record import LOINC, TRE_A05_TYPE, Code
from monespace.storage import OutboxStatus
from monespace.testing import storage_of
from monespace.transport import MemoryTransport

from .conftest import SHARED_DATA
from .helpers import (
    HOLDER_NIR,
    MARKER,
    feeder,
    holder_identity,
    identity,
    open_patient,
    register_physicians,
    rpps,
)

OPERATOR = Actor.system("test")
GATEWAY = Actor.system("smtp-gateway")
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
CDA_FILE = SHARED_DATA / "cisis" / "cda" / "BIO-CR-BIO_2024.01_DEP-CCU-tout-structure.xml"
needs_cda = pytest.mark.skipif(not CDA_FILE.is_file(), reason=f"no {CDA_FILE}")


def pro(n: int = 1) -> Actor:
    return Actor(ActorKind.PROFESSIONAL, rpps(n))


def pro_address(n: int) -> str:
    return f"dr.medecin{n}@ch-test.mssante.fr"


def make_space(url, clock, **settings):
    transports = {
        "email": MemoryTransport(),
        "sms": MemoryTransport(),
        MSSANTE_CHANNEL: MemoryTransport(),
    }
    space = monespace.open(
        url,
        key_provider=StaticKeyProvider(MasterKey.generate()),
        clock=clock,
        transports=transports,
        settings=Settings(**settings),
        load_entrypoints=False,
    )
    register_physicians(space, mssante=pro_address)
    return space


@pytest.fixture
def space(url, monespace_clock):
    with make_space(url, monespace_clock) as opened:
        yield opened


@pytest.fixture
def holder(space):
    return open_patient(space, holder_identity())


def start(space, holder, **kwargs):
    kwargs.setdefault("subject", "Résultats de votre bilan")
    kwargs.setdefault("body", "Bonjour,\nvos résultats sont normaux.\n")
    return space.messaging.start_thread(kwargs.pop("actor", pro(1)), holder.id, **kwargs)


def counts(space, patient_id):
    """What a refused write must not change: threads, messages, blobs, audit, outbox."""
    with storage_of(space).read() as tx:
        threads = tx.messages.threads_for_patient(patient_id)
        return (
            len(threads),
            sum(len(tx.messages.messages_in_thread(t.id)) for t in threads),
            len(tx.blobs.list_for_patient(patient_id)),
            tx.audit.count(),
            tx.outbox.count(),
        )


def last_event(space):
    with storage_of(space).read() as tx:
        last = tx.audit.last()
    return None if last is None else event_from_row(last)


def sent(space, channel="email"):
    space.dispatch()
    return space.transports[channel].sent


def cda_bytes() -> bytes:
    return CDA_FILE.read_bytes()


# --- the conversation ------------------------------------------------------------------------


def test_a_professional_writes_the_patient_reads_and_replies(space, holder, me):
    first = start(space, holder)
    page = space.messaging.inbox(me)
    assert page.total == 1
    assert page.unread == 1
    thread = page.threads[0]
    assert thread.subject == "Résultats de votre bilan"
    assert thread.professional.name == "Dr Médecin 1"
    assert thread.status is ThreadStatus.OPEN

    view = space.messaging.thread(me, first.thread_id)
    assert [m.body for m in view.messages] == ["Bonjour,\nvos résultats sont normaux.\n"]
    assert view.messages[0].read_at == space.clock.now()  # the read receipt
    assert space.messaging.inbox(me).unread == 0

    reply = space.messaging.reply(me, first.thread_id, body="Merci docteur.")
    assert reply.subject == "Re: Résultats de votre bilan"
    assert reply.in_reply_to == first.rfc_message_id
    assert reply.sender_kind == "patient"
    mailbox = space.messaging.inbox(pro(1))
    assert mailbox.unread == 1
    assert [t.id for t in mailbox.threads] == [first.thread_id]
    assert space.messaging.thread(pro(1), first.thread_id).messages[1].read_at is not None


def test_message_ids_are_stable_and_carry_the_configured_domain(space, holder):
    message = start(space, holder)
    assert message.rfc_message_id.startswith("<")
    assert message.rfc_message_id.endswith("@monespace.invalid>")


def test_a_closed_thread_takes_no_reply_from_the_patient(space, holder, me, representative):
    first = start(space, holder, close=True)
    assert space.messaging.thread(me, first.thread_id).thread.closed
    before = counts(space, holder.id)
    for actor in (me, representative):
        with pytest.raises(AccessDeniedError) as denied:
            space.messaging.reply(actor, first.thread_id, body="Une question ?")
        assert denied.value.rule == "thread_closed_to_replies"
        event = last_event(space)
        assert (event.outcome, event.action) == (Outcome.DENIED, "thread.reply")
    threads, messages, blobs, audit, outbox = before
    assert counts(space, holder.id) == (threads, messages, blobs, audit + 2, outbox)
    # The professional may still write; a message without FIN opens the thread again.
    space.messaging.reply(pro(1), first.thread_id, body="Finalement, rappelez-moi.")
    assert not space.messaging.thread(me, first.thread_id).thread.closed
    space.messaging.reply(me, first.thread_id, body="D'accord.")


def test_close_and_reopen_are_the_professionals(space, holder, me):
    first = start(space, holder)
    with pytest.raises(AccessDeniedError) as denied:
        space.messaging.close(me, first.thread_id)
    assert denied.value.rule == "professional_closes_thread"
    with pytest.raises(AccessDeniedError):
        space.messaging.reply(me, first.thread_id, body="Fin.", close=True)
    with pytest.raises(AccessDeniedError):
        space.messaging.close(pro(2), first.thread_id)
    assert space.messaging.close(pro(1), first.thread_id).closed
    assert not space.messaging.reopen(pro(1), first.thread_id).closed


def test_patients_and_representatives_never_start_a_thread(space, holder, me, representative):
    before = counts(space, holder.id)
    for actor in (me, representative, OPERATOR):
        with pytest.raises(AccessDeniedError) as denied:
            space.messaging.start_thread(actor, holder.id, subject="Bonjour", body="Question")
        assert denied.value.rule == "only_professionals_start_threads"
    threads, messages, blobs, audit, outbox = before
    assert counts(space, holder.id) == (threads, messages, blobs, audit + 3, outbox)


def test_a_representative_reads_and_replies_for_the_patient(space, holder, representative):
    first = start(space, holder)
    assert space.messaging.inbox(representative).total == 1
    reply = space.messaging.reply(representative, first.thread_id, body="Je réponds pour elle.")
    assert (reply.sender_kind, reply.sender_id) == ("representative", representative.id)


def test_only_participants_touch_a_thread(space, holder, me):
    first = start(space, holder)
    other = open_patient(space, identity(2))
    outsiders = [Actor.patient(other.id), pro(2), OPERATOR, Actor(ActorKind.APP, "app-1")]
    # Another professional with full access to the record still may not read the thread.
    space.access.declare_treating_doctor(me, holder.id, rpps(2))
    for actor in outsiders:
        for call in (
            lambda a: space.messaging.thread(a, first.thread_id),
            lambda a: space.messaging.reply(a, first.thread_id, body="Intrus"),
            lambda a: space.messaging.archive(a, first.thread_id),
        ):
            with pytest.raises(AccessDeniedError) as denied:
                call(actor)
            assert str(denied.value) == "access denied"
    with pytest.raises(AccessDeniedError):
        space.messaging.inbox(Actor.patient(other.id), holder.id)
    assert space.messaging.inbox(pro(2)).total == 0


def test_a_thread_that_does_not_exist_is_denied_like_a_foreign_one(space, holder, me):
    start(space, holder)
    with pytest.raises(AccessDeniedError) as missing:
        space.messaging.thread(me, "no-such-thread")
    assert str(missing.value) == "access denied"
    event = last_event(space)
    assert (event.outcome, event.patient_id) == (Outcome.DENIED, None)


def test_patient_of_names_the_space_of_a_thread_to_its_participants_only(
    space, holder, me, representative
):
    """The lookup an edge uses to bind a thread to the space it was named under: the policy
    decides, a stranger learns nothing, and it records nothing."""
    message = start(space, holder, attachments=[NewAttachment("bilan.pdf", "application/pdf", PDF)])
    attachment_id = message.attachments[0].id
    other = open_patient(space, identity(2))
    before = space.audit.count()
    for actor in (pro(1), me, representative):
        assert space.messaging.patient_of(actor, thread_id=message.thread_id) == holder.id
        assert space.messaging.patient_of(actor, attachment_id=attachment_id) == holder.id
    for actor in (pro(2), Actor.patient(other.id), OPERATOR):
        assert space.messaging.patient_of(actor, thread_id=message.thread_id) is None
        assert space.messaging.patient_of(actor, attachment_id=attachment_id) is None
    assert space.messaging.patient_of(pro(1), thread_id="no-such-thread") is None
    assert space.messaging.patient_of(pro(1), attachment_id="no-such-attachment") is None
    assert space.audit.count() == before
    with pytest.raises(ValidationError):
        space.messaging.patient_of(pro(1))


def test_a_blocked_professional_may_not_write(space, holder, me):
    first = start(space, holder)
    space.access.block(me, holder.id, rpps(1))
    with pytest.raises(AccessDeniedError) as denied:
        start(space, holder)
    assert denied.value.rule == "blocked_by_patient"
    with pytest.raises(AccessDeniedError):
        space.messaging.thread(pro(1), first.thread_id)
    assert space.messaging.inbox(pro(1)).total == 0  # the thread drops out of their mailbox
    assert space.messaging.inbox(me).total == 1  # the patient keeps it


def test_an_unknown_professional_may_not_write(space, holder):
    stranger = Actor(ActorKind.PROFESSIONAL, rpps(9))
    # The policy denies and the denial is audited; the error says the RPPS is not in the
    # directory, never "access denied".
    with pytest.raises(UnknownProfessionalError) as unknown:
        start(space, holder, actor=stranger)
    assert str(unknown.value) == UnknownProfessionalError.MESSAGE
    with storage_of(space).read() as tx:
        denial = event_from_row(tx.audit.last())
    assert (denial.rule, denial.outcome) == ("professional_must_be_known", Outcome.DENIED)


def test_no_messaging_in_a_space_that_is_not_open(space):
    patient = space.accounts.register_patient(OPERATOR, identity(3))
    with pytest.raises(AccessDeniedError) as denied:
        space.messaging.start_thread(pro(1), patient.id, subject="Bonjour", body="Test")
    assert denied.value.rule == "messaging_needs_open_space"


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "Résultats\r\nBcc: tous@example.org",
        "Résultats\nX-MSS-MES: FIN",
        "Ligne\x00nulle",
        "\x1b[31mrouge",
        "facture\u202efdp.exe",
        "",
        "   ",
        "x" * 251,
        "\udcff",
    ],
)
def test_hostile_subjects_are_refused_and_nothing_is_stored(space, holder, me, subject):
    first = start(space, holder)
    before = counts(space, holder.id)
    with pytest.raises(ValidationError) as refused:
        start(space, holder, subject=subject)
    assert MARKER not in str(refused.value)
    with pytest.raises(ValidationError):
        space.messaging.reply(me, first.thread_id, body="ok", subject=subject)
    assert counts(space, holder.id) == before


@pytest.mark.parametrize("body", ["", " \n ", "a\x00b", "\x1b[2Jeffacé", "\udcff", "x" * 100_001])
def test_hostile_bodies_are_refused(space, holder, body):
    before = counts(space, holder.id)
    with pytest.raises(ValidationError):
        start(space, holder, body=body)
    assert counts(space, holder.id) == before


def test_line_ends_are_normalised(space, holder):
    assert start(space, holder, body="un\r\ndeux\rtrois").body == "un\ndeux\ntrois"


# --- attachments -----------------------------------------------------------------------------


def test_attachments_are_sealed_checked_and_read_by_participants(space, holder, me):
    first = start(
        space,
        holder,
        attachments=[NewAttachment("../../etc/bilan.pdf", "application/pdf", PDF)],
    )
    (attachment,) = first.attachments
    assert (attachment.filename, attachment.media_type, attachment.size) == (
        "bilan.pdf",
        "application/pdf",
        len(PDF),
    )
    meta, data = space.messaging.read_attachment(me, attachment.id)
    assert (meta, data) == (attachment, PDF)
    assert space.messaging.read_attachment(pro(1), attachment.id)[1] == PDF
    for outsider in (pro(2), OPERATOR, Actor.patient(open_patient(space, identity(4)).id)):
        with pytest.raises(AccessDeniedError):
            space.messaging.read_attachment(outsider, attachment.id)
    event = last_event(space)
    assert (event.action, event.outcome) == ("attachment.read", Outcome.DENIED)
    with pytest.raises(AccessDeniedError):
        space.messaging.read_attachment(me, "no-such-attachment")


@pytest.mark.parametrize(
    ("name", "media_type", "content", "message"),
    [
        ("bilan.pdf", "application/pdf", b"<html><script>alert(1)</script></html>", "looks like"),
        ("photo.png", "image/png", PDF, "looks like"),
        ("page.html", "text/html", b"<html></html>", "not accepted"),
        ("vide.pdf", "application/pdf", b"", "empty"),
        ("a\r\nb.pdf", "application/pdf", PDF, "control"),
        ("facture\u202efdp.exe", "application/pdf", PDF, "bidirectional"),
        ("x" * 300 + ".pdf", "application/pdf", PDF, "255 bytes"),
    ],
)
def test_lying_or_hostile_attachments_are_refused(
    space, holder, name, media_type, content, message
):
    before = counts(space, holder.id)
    with pytest.raises(ValidationError, match=message):
        start(space, holder, attachments=[NewAttachment(name, media_type, content)])
    assert counts(space, holder.id) == before


def test_attachment_limits_are_exact(url, monespace_clock):
    limit = 1024
    with make_space(
        url, monespace_clock, messaging=MessagingSettings(max_attachment_bytes=limit)
    ) as space:
        holder = open_patient(space, holder_identity())
        at_limit = b"%PDF-" + b"x" * (limit - 5)
        start(space, holder, attachments=[NewAttachment("a.pdf", "application/pdf", at_limit)])
        before = counts(space, holder.id)
        for size in (limit + 1, 10 * limit):
            over = b"%PDF-" + b"x" * (size - 5)
            with pytest.raises(ValidationError, match="at most 1024 bytes"):
                start(space, holder, attachments=[NewAttachment("b.pdf", "application/pdf", over)])
        too_many = [NewAttachment(f"{n}.pdf", "application/pdf", PDF) for n in range(21)]
        with pytest.raises(ValidationError, match="at most 20 attachments"):
            start(space, holder, attachments=too_many)
        assert counts(space, holder.id) == before


@needs_cda
def test_a_cda_attachment_carries_its_codes_and_must_be_about_the_recipient(space, holder):
    message = start(space, holder, attachments=[NewAttachment("cr.xml", "text/xml", cda_bytes())])
    assert message.attachments[0].cda_codes == ("11502-2",)
    other = open_patient(space, identity(5))
    before = counts(space, other.id)
    with pytest.raises(ValidationError, match="about another patient"):
        space.messaging.start_thread(
            pro(1),
            other.id,
            subject="Résultats",
            body="Voici",
            attachments=[NewAttachment("cr.xml", "text/xml", cda_bytes())],
        )
    # Nothing stored; the authorised attempt is traced as a failure.
    threads, messages, blobs, audit, outbox = before
    assert counts(space, other.id) == (threads, messages, blobs, audit + 1, outbox)
    event = last_event(space)
    assert (event.action, event.outcome) == ("thread.start", Outcome.FAILURE)


@pytest.mark.parametrize(
    "content",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        b'<ClinicalDocument xmlns="urn:hl7-org:v3">&a;</ClinicalDocument>',
        b'<ClinicalDocument xmlns="urn:hl7-org:v3"><unclosed></ClinicalDocument>',
    ],
    ids=["entities", "not-well-formed"],
)
def test_hostile_cda_attachments_are_refused(space, holder, content):
    before = counts(space, holder.id)
    with pytest.raises(ValidationError):
        start(space, holder, attachments=[NewAttachment("cr.xml", "text/xml", content)])
    assert counts(space, holder.id) == before


@needs_cda
def test_the_patient_files_a_cda_attachment_into_the_record_with_its_codes(space, holder, me):
    message = start(space, holder, attachments=[NewAttachment("cr.xml", "text/xml", cda_bytes())])
    document = space.messaging.file_attachment(me, message.attachments[0].id)
    assert document.patient_id == holder.id
    assert document.type_code == Code("DOCPAT05", TRE_A05_TYPE)  # biology, filed by the patient
    assert document.title == "Compte rendu d'examens biologiques"  # read from the CDA header
    assert "11502-2" in (document.comments or "")
    assert rpps(1) in (document.comments or "")
    events = _events(space)
    assert [e.action for e in events[-2:]] == ["attachment.file", "document.add"]
    assert space.record.read_content(me, document.id) == cda_bytes()
    # Filing it again is a conflict (same CDA unique id); the attachment stays where it was.
    with pytest.raises(ConflictError):
        space.messaging.file_attachment(me, message.attachments[0].id)
    assert space.messaging.read_attachment(me, message.attachments[0].id)[1] == cda_bytes()


def test_the_patient_files_a_pdf_attachment(space, holder, me, representative):
    message = start(
        space, holder, attachments=[NewAttachment("Ordonnance.pdf", "application/pdf", PDF)]
    )
    attachment_id = message.attachments[0].id
    filed = space.messaging.file_attachment(me, attachment_id)
    assert (filed.type_code.code, filed.title) == ("EXPPAT_2", "Ordonnance")
    chosen = space.messaging.file_attachment(
        representative, attachment_id, type_code=Code("DOCPAT02", TRE_A05_TYPE), title="Ordo"
    )
    assert (chosen.type_code.code, chosen.title) == ("DOCPAT02", "Ordo")
    with pytest.raises(AccessDeniedError) as denied:
        space.messaging.file_attachment(pro(1), attachment_id)
    assert denied.value.rule == "holder_files_attachment"


def test_a_professional_sends_a_record_document_they_may_read(space, holder, me):
    feeder(space, pro(1), holder.id)
    document = space.record.add_document(
        pro(1),
        holder.id,
        PDF,
        media_type="application/pdf",
        type_code=Code("11502-2", LOINC),
        title="Bilan sanguin",
    )
    message = start(space, holder, attachments=[RecordAttachment(document.id)])
    (attachment,) = message.attachments
    assert (attachment.filename, attachment.media_type) == ("Bilan sanguin.pdf", "application/pdf")
    assert space.messaging.read_attachment(me, attachment.id)[1] == PDF
    # Professional 2 may not read the document: the record denies, nothing is sent.
    before = counts(space, holder.id)
    with pytest.raises(AccessDeniedError):
        start(space, holder, actor=pro(2), attachments=[RecordAttachment(document.id)])
    assert counts(space, holder.id)[:3] == before[:3]
    # A document of another record never goes to this patient.
    other = open_patient(space, identity(6))
    with pytest.raises(ValidationError, match="whose record holds it"):
        space.messaging.start_thread(
            pro(1),
            other.id,
            subject="Erreur",
            body="Mauvais dossier",
            attachments=[RecordAttachment(document.id)],
        )


# --- notifications ---------------------------------------------------------------------------


def test_a_new_message_is_announced_without_its_content(space, holder, me):
    first = start(
        space,
        holder,
        subject=f"Sujet {MARKER}",
        body=f"Corps {MARKER}",
        attachments=[NewAttachment(f"{MARKER}.pdf", "application/pdf", PDF)],
    )
    space.messaging.reply(pro(1), first.thread_id, body=f"Encore {MARKER}")
    notices = sent(space)
    assert len(notices) == 2
    for notice in notices:
        assert notice.recipient == "patient@example.org"
        assert notice.kind == "new-message"
        text = f"{notice.subject} {notice.body}"
        assert MARKER not in text
        for clue in ("Sujet", "Dr Médecin", rpps(1)):
            assert clue not in text
    # The patient's own reply is not announced to them.
    space.messaging.reply(me, first.thread_id, body="Merci")
    assert len(sent(space)) == 2


def test_without_an_email_the_notice_goes_by_sms(space):
    patient = attrs.evolve(identity(9, email=None), contact=Contact(phone="+33600000000"))
    holder = open_patient(space, patient)
    space.messaging.start_thread(pro(1), holder.id, subject="Bonjour", body=f"{MARKER}")
    (sms,) = sent(space, "sms")
    assert sms.recipient == "+33600000000"
    assert MARKER not in sms.body


# --- outbound delivery to the professional's mailbox ------------------------------------------


def test_a_patient_reply_is_queued_for_the_professionals_mssante_mailbox(space, holder, me):
    first = start(space, holder)
    reply = space.messaging.reply(
        me,
        first.thread_id,
        body="Voici ma photo.",
        attachments=[NewAttachment("photo.pdf", "application/pdf", PDF)],
    )
    (envelope,) = sent(space, MSSANTE_CHANNEL)
    assert (envelope.kind, envelope.recipient) == (OUTBOUND_KIND, pro_address(1))
    assert "Voici" not in envelope.subject
    outbound = decode_outbound(envelope.body)
    assert outbound.message_id == reply.id
    assert outbound.rfc_message_id == reply.rfc_message_id
    assert outbound.sender == f"{HOLDER_NIR}@patient.mssante.fr"
    assert outbound.in_reply_to == first.rfc_message_id
    assert outbound.references == (first.rfc_message_id,)
    assert outbound.body == "Voici ma photo."
    assert outbound.attachments[0].content == PDF
    # Delivered: the outbox forgets the content.
    with storage_of(space).read() as tx:
        row = tx.outbox.get(envelope.id)
    assert row is not None
    assert (row.status, row.sealed) == (OutboxStatus.SENT, None)


def test_professional_messages_do_not_leave_by_mssante(space, holder):
    start(space, holder)
    assert sent(space, MSSANTE_CHANNEL) == []


def test_outbound_delivery_can_be_turned_off(url, monespace_clock):
    with make_space(
        url, monespace_clock, messaging=MessagingSettings(deliver_to_mssante=False)
    ) as space:
        holder = open_patient(space, holder_identity())
        first = start(space, holder)
        space.messaging.reply(Actor.patient(holder.id), first.thread_id, body="Merci")
        assert sent(space, MSSANTE_CHANNEL) == []


# --- reception from the trust space -----------------------------------------------------------


def inbound(**changes):
    message = InboundMessage(
        sender=pro_address(1),
        recipient=f"{HOLDER_NIR}@patient.mssante.fr",
        subject="Compte rendu",
        body="Bonjour, voici le compte rendu.",
        rfc_message_id="<abc123@ch-test.mssante.fr>",
    )
    return attrs.evolve(message, **changes)


def test_an_inbound_message_starts_a_thread_and_is_stored_once(space, holder, me):
    first = space.messaging.receive(GATEWAY, inbound())
    assert (first.sender_id, first.origin) == (rpps(1), "smtp")
    again = space.messaging.receive(GATEWAY, inbound())
    assert again.id == first.id
    assert space.messaging.inbox(me).total == 1
    assert len(space.messaging.thread(me, first.thread_id).messages) == 1
    assert len(sent(space)) == 1  # announced once


def test_inbound_replies_find_their_thread_and_fin_closes_it(space, holder, me):
    first = space.messaging.receive(GATEWAY, inbound())
    mine = space.messaging.reply(me, first.thread_id, body="Merci")
    follow_up = space.messaging.receive(
        GATEWAY,
        inbound(
            rfc_message_id="<def456@ch-test.mssante.fr>",
            in_reply_to=mine.rfc_message_id,
            references=(first.rfc_message_id, mine.rfc_message_id),
            closes_thread=True,
            subject="Re: Compte rendu",
        ),
    )
    assert follow_up.thread_id == first.thread_id
    assert follow_up.closes_thread
    with pytest.raises(AccessDeniedError) as denied:
        space.messaging.reply(me, first.thread_id, body="Encore une question")
    assert denied.value.rule == "thread_closed_to_replies"


def test_a_reference_to_another_professionals_thread_starts_a_new_one(space, holder, me):
    theirs = start(space, holder, actor=pro(2))
    mine = space.messaging.receive(
        GATEWAY, inbound(in_reply_to=theirs.rfc_message_id, references=(theirs.rfc_message_id,))
    )
    assert mine.thread_id != theirs.thread_id
    assert space.messaging.inbox(me).total == 2


def test_malformed_threading_headers_are_ignored(space, holder):
    message = space.messaging.receive(
        GATEWAY, inbound(in_reply_to="<x@y>\r\nBcc: a@b", references=("nonsense",))
    )
    assert message.in_reply_to is None


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"sender": "inconnu@ch-test.mssante.fr"}, UnknownSenderError),
        ({"sender": "279035121518989@patient.mssante.fr"}, InvalidMSSanteAddressError),
        ({"sender": "dr@gmail.com"}, InvalidMSSanteAddressError),
        ({"sender": "dr@ch.mssante.fr\r\nBcc: x@y.fr"}, InvalidMSSanteAddressError),
        ({"recipient": "146026322000196@patient.mssante.fr"}, UnknownRecipientError),
        ({"recipient": pro_address(2)}, UnknownRecipientError),
        ({"recipient": "27903512151898X@patient.mssante.fr"}, InvalidMSSanteAddressError),
        ({"subject": "a\r\nBcc: b"}, ValidationError),
        ({"rfc_message_id": "no-brackets"}, ValidationError),
        ({"rfc_message_id": "<a@b>\r\nBcc: c"}, ValidationError),
    ],
)
def test_bad_inbound_messages_are_refused_and_nothing_is_stored(space, holder, changes, error):
    before = counts(space, holder.id)
    with pytest.raises(error):
        space.messaging.receive(GATEWAY, inbound(**changes))
    assert counts(space, holder.id)[:3] == before[:3]


def test_only_the_gateway_hands_in_messages(space, holder, me):
    before = counts(space, holder.id)
    for actor in (pro(1), me):
        with pytest.raises(AccessDeniedError):
            space.messaging.receive(actor, inbound())
    assert counts(space, holder.id)[:3] == before[:3]


def test_a_reused_message_id_from_another_sender_is_refused(space, holder):
    space.messaging.receive(GATEWAY, inbound())
    with pytest.raises(ValidationError, match="another sender"):
        space.messaging.receive(GATEWAY, inbound(sender=pro_address(2)))


# --- the mailbox -------------------------------------------------------------------------------


def test_inbox_search_by_correspondent_date_and_words(space, holder, me, monespace_clock):
    first = start(space, holder, subject="Bilan sanguin")
    monespace_clock.advance(timedelta(days=10))
    second = start(space, holder, actor=pro(2), subject="Rendez-vous de contrôle")
    inbox = space.messaging.inbox
    assert [t.id for t in inbox(me).threads] == [second.thread_id, first.thread_id]
    assert [t.id for t in inbox(me, correspondent=rpps(2)).threads] == [second.thread_id]
    assert [t.id for t in inbox(me, correspondent="médecin 1").threads] == [first.thread_id]
    assert [t.id for t in inbox(me, correspondent=pro_address(2)).threads] == [second.thread_id]
    assert inbox(me, correspondent="Dr Inconnu").total == 0
    since = monespace_clock.now() - timedelta(days=1)
    assert [t.id for t in inbox(me, since=since).threads] == [second.thread_id]
    assert [t.id for t in inbox(me, until=since).threads] == [first.thread_id]
    assert [t.id for t in inbox(me, text="SANGUIN").threads] == [first.thread_id]
    assert [t.id for t in inbox(me, limit=1, offset=1).threads] == [first.thread_id]
    assert inbox(pro(1), correspondent=holder.id).total == 1
    with pytest.raises(ValidationError):
        inbox(me, since=datetime(2026, 1, 1))  # naive
    with pytest.raises(ValidationError):
        inbox(me, limit=0)


def test_archiving_is_per_side_and_a_new_message_brings_a_thread_back(space, holder, me):
    first = start(space, holder)
    assert space.messaging.archive(me, first.thread_id).archived
    assert space.messaging.inbox(me).total == 0
    assert space.messaging.inbox(me, archived=True).total == 1
    assert space.messaging.inbox(me, archived=None).total == 1
    assert space.messaging.inbox(pro(1)).total == 1  # the professional's mailbox is untouched
    space.messaging.reply(pro(1), first.thread_id, body="Relance")
    assert space.messaging.inbox(me).total == 1
    assert not space.messaging.archive(me, first.thread_id, archived=False).archived


# --- audit, retention, storage -----------------------------------------------------------------


def _events(space):
    with storage_of(space).read() as tx:
        return events_from_rows(tx.audit.scan(limit=100_000))


def test_every_read_and_write_is_audited_without_content(space, holder, me):
    before = len(_events(space))
    first = start(space, holder, subject=f"S {MARKER}", body=f"B {MARKER}")
    space.messaging.inbox(me)
    space.messaging.thread(me, first.thread_id)
    space.messaging.reply(me, first.thread_id, body=f"R {MARKER}")
    space.messaging.archive(me, first.thread_id)
    space.messaging.close(pro(1), first.thread_id)
    events = _events(space)[before:]
    assert [e.action for e in events] == [
        str(Action.THREAD_START),
        str(Action.INBOX_READ),
        str(Action.THREAD_READ),
        str(Action.THREAD_REPLY),
        str(Action.THREAD_ARCHIVE),
        str(Action.THREAD_CLOSE),
    ]
    assert all(e.patient_id == holder.id for e in events)
    assert MARKER not in repr(events)
    assert space.audit.verify().ok


def test_retention_deletes_old_messages_at_the_deadline_run(url, monespace_clock):
    settings = MessagingSettings(retention=timedelta(days=365))
    with make_space(url, monespace_clock, messaging=settings) as space:
        holder = open_patient(space, holder_identity())
        me = Actor.patient(holder.id)
        old = start(space, holder, attachments=[NewAttachment("a.pdf", "application/pdf", PDF)])
        monespace_clock.advance(timedelta(days=300))
        recent = start(space, holder, actor=pro(2))
        assert space.tick().get("messages_expired") is None
        monespace_clock.advance(timedelta(days=100))
        assert space.tick()["messages_expired"] == 1
        assert _events(space)[-1].action == "message.expire"
        assert [t.id for t in space.messaging.inbox(me).threads] == [recent.thread_id]
        with pytest.raises(AccessDeniedError):
            space.messaging.read_attachment(me, old.attachments[0].id)
        with storage_of(space).read() as tx:
            assert [b.kind for b in tx.blobs.list_for_patient(holder.id)] == []
        assert space.tick().get("messages_expired") is None


def test_messages_subjects_and_files_are_not_stored_in_clear(tmp_path, monespace_clock):
    path = tmp_path / "space.db"
    with make_space(f"sqlite:///{path}", monespace_clock) as space:
        holder = open_patient(space, holder_identity())
        first = start(
            space,
            holder,
            subject=f"Sujet {MARKER}",
            body=f"Corps {MARKER}",
            attachments=[
                NewAttachment(f"{MARKER}.txt", "text/plain", f"contenu {MARKER}".encode())
            ],
        )
        space.messaging.reply(Actor.patient(holder.id), first.thread_id, body=f"R {MARKER}")
        space.dispatch()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert MARKER.encode() not in raw
    assert MARKER.encode("utf-16-le") not in raw


def test_the_outbound_payload_is_sealed_until_delivered(tmp_path, monespace_clock):
    path = tmp_path / "space.db"
    with make_space(f"sqlite:///{path}", monespace_clock) as space:
        space.transports.pop(MSSANTE_CHANNEL)
        holder = open_patient(space, holder_identity())
        first = start(space, holder)
        space.messaging.reply(Actor.patient(holder.id), first.thread_id, body=f"R {MARKER}")
        assert space.dispatch().no_transport == 1
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert MARKER.encode() not in raw


def test_the_outbound_codec_refuses_what_it_did_not_write():
    with pytest.raises(ValidationError):
        decode_outbound("not json")
    with pytest.raises(ValidationError):
        decode_outbound(json.dumps({"format": "other"}))


def test_a_purged_space_has_no_mailbox(space, holder, me, monespace_clock):
    first = start(space, holder, attachments=[NewAttachment("a.pdf", "application/pdf", PDF)])
    space.accounts.shred(OPERATOR, holder.id)
    with pytest.raises(AccessDeniedError):
        space.messaging.thread(me, first.thread_id)
    with pytest.raises(AccessDeniedError):
        space.messaging.read_attachment(me, first.attachments[0].id)


def test_time_is_the_spaces_clock(space, holder, monespace_clock):
    moment = datetime(2026, 3, 1, 12, tzinfo=UTC)
    monespace_clock.set(moment)
    assert start(space, holder).sent_at == moment
