"""Header injection through RFC 2047 encoded words, and the header rules of the MIME builder.

A subject or a file name whose *decoded* text holds CR/LF must never become a header of its
own: the library refuses it (``ValidationError``) or the transport refuses to write it (a
permanent ``TransportError``); nothing reaches the SMTP server. The end-to-end tests go
through the space and the real loopback SMTP server of ``conftest``; the unit tests call the
MIME builder directly, as a transport given an outbox envelope written before these checks
existed would.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

import pytest

from conftest import PATIENT_ADDRESS, PDF, Server, pro, pro_address
from monespace import Actor
from monespace.errors import TransportError, ValidationError
from monespace.messaging import (
    MSSANTE_CHANNEL,
    NewAttachment,
    OutboundAttachment,
    OutboundMessage,
    encode_outbound,
)
from monespace.transport import Envelope
from monespace_smtp import SmtpTransport, StartTLS, build_notification, build_outbound

INJECTION = "Résultats\r\nBcc: attacker@evil.example\r\nX-Injected: 1"
B_WORD = "=?utf-8?b?" + base64.b64encode(INJECTION.encode()).decode() + "?="
Q_WORD = "=?utf-8?q?R=C3=A9sultats=0D=0ABcc:_attacker@evil.example=0D=0AX-Injected:_1?="
#: An encoded word whose decoded text is itself an encoded word that injects.
NESTED = "=?us-ascii?b?" + base64.b64encode(Q_WORD.encode()).decode() + "?="
HOSTILE_TEXT = [B_WORD, Q_WORD, NESTED, f"Re: {B_WORD}", "=?iso-8859-1?q?a=00b?="]
SENT_AT = datetime(2026, 1, 1, 9, tzinfo=UTC)


def transport(server: Server) -> SmtpTransport:
    return SmtpTransport(
        server.host, server.port, starttls=StartTLS.NEVER, timeout=5.0, reuse=False
    )


def outbound(**changes) -> OutboundMessage:
    values = {
        "message_id": "m1",
        "thread_id": "t1",
        "rfc_message_id": "<m1@monespace.example>",
        "sender": PATIENT_ADDRESS,
        "recipient": pro_address(1),
        "subject": "Vos résultats",
        "body": "Bonjour",
        "sent_at": SENT_AT,
    }
    values.update(changes)
    return OutboundMessage(**values)


def assert_no_injection(data: bytes) -> None:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert message["Bcc"] is None
    assert message["X-Injected"] is None
    for part in message.walk():
        assert part["X-Injected"] is None
    assert b"\nBcc:" not in data
    assert b"X-Injected" not in data


# --- end to end: a patient's reply, through the space, to the loopback SMTP server -----------


def _thread(space, holder):
    first = space.messaging.start_thread(pro(1), holder.id, subject="Vos résultats", body="Bonjour")
    space.dispatch()  # the patient's e-mail notice
    return first


@pytest.mark.parametrize("subject", HOSTILE_TEXT)
def test_a_reply_whose_decoded_subject_injects_headers_never_reaches_the_server(
    space, holder, smtp_server, subject
):
    space.transports[MSSANTE_CHANNEL] = transport(smtp_server)
    first = _thread(space, holder)
    with pytest.raises(ValidationError, match="'subject' must not contain control characters"):
        space.messaging.reply(
            Actor.patient(holder.id), first.thread_id, body="Merci", subject=subject
        )
    space.dispatch()
    for received in smtp_server.recorder.accepted:
        assert_no_injection(received.data)
    assert smtp_server.recorder.accepted == []


@pytest.mark.parametrize("filename", [Q_WORD, "Re: " + B_WORD, NESTED])
def test_a_reply_whose_decoded_file_name_injects_headers_never_reaches_the_server(
    space, holder, smtp_server, filename
):
    space.transports[MSSANTE_CHANNEL] = transport(smtp_server)
    first = _thread(space, holder)
    with pytest.raises(ValidationError, match="'filename' must not contain control characters"):
        space.messaging.reply(
            Actor.patient(holder.id),
            first.thread_id,
            body="Ci-joint",
            attachments=[NewAttachment(filename, "application/pdf", PDF)],
        )
    space.dispatch()
    assert smtp_server.recorder.accepted == []


def test_an_encoded_subject_that_is_clean_is_sent_as_mail_readers_decode_it(
    space, holder, smtp_server
):
    space.transports[MSSANTE_CHANNEL] = transport(smtp_server)
    first = _thread(space, holder)
    space.messaging.reply(
        Actor.patient(holder.id),
        first.thread_id,
        body="Merci",
        subject="Re: =?iso-8859-1?q?r=E9sultats?= d'analyse",
    )
    assert space.dispatch().sent == 1
    (received,) = smtp_server.recorder.accepted
    message = received.message
    assert message["Subject"] == "Re: résultats d'analyse"
    assert received.rcpt_tos == (pro_address(1),)
    assert_no_injection(received.data)


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": B_WORD},
        {"subject": NESTED},
        {"attachments": (OutboundAttachment(Q_WORD, "application/pdf", PDF),)},
    ],
    ids=["subject", "nested subject", "file name"],
)
def test_an_outbox_envelope_that_injects_is_a_permanent_failure(smtp_server, clock, changes):
    """An envelope queued before the library's checks (or by another writer) is refused by
    the transport itself."""
    envelope = Envelope(
        "n1",
        MSSANTE_CHANNEL,
        pro_address(1),
        "",
        encode_outbound(outbound(**changes)),
        "mssante-message",
        clock.now(),
    )
    with pytest.raises(TransportError) as failed:
        transport(smtp_server).send(envelope)
    assert failed.value.permanent
    assert smtp_server.recorder.accepted == []


# --- the MIME builder ------------------------------------------------------------------------


@pytest.mark.parametrize("subject", HOSTILE_TEXT)
def test_the_builder_refuses_a_subject_whose_decoded_text_holds_control_characters(subject):
    with pytest.raises(ValidationError, match="Subject"):
        build_outbound(outbound(subject=subject))


@pytest.mark.parametrize("filename", [Q_WORD, B_WORD, NESTED, "a\r\nX-Injected: 1.pdf"])
def test_the_builder_refuses_a_file_name_whose_decoded_text_holds_control_characters(filename):
    attachment = OutboundAttachment(filename, "application/pdf", PDF)
    with pytest.raises(ValidationError, match="file name"):
        build_outbound(outbound(attachments=(attachment,)))


@pytest.mark.parametrize(
    "recipient",
    [
        "dr@ch-test.mssante.fr\r\nBcc: attacker@evil.example",
        "dr@ch-test.mssante.fr, attacker@evil.example",
        '"Dr X" <dr@ch-test.mssante.fr>',
        "=?utf-8?q?Dr=0D=0ABcc:_a@evil.example?= <dr@ch-test.mssante.fr>",
        "dr(comment)@ch-test.mssante.fr",
        PATIENT_ADDRESS,  # messages go to professionals
    ],
)
def test_the_builder_refuses_a_recipient_that_is_not_one_professional_address(recipient):
    with pytest.raises(ValidationError, match="address"):
        build_outbound(outbound(recipient=recipient))


@pytest.mark.parametrize(
    "changes",
    [
        {"rfc_message_id": "<m1@x>\r\nBcc: a@evil.example"},
        {"in_reply_to": "<a@x> <b@y>"},
        {"references": ("<a@x>\r\nX-Injected: 1",)},
        {
            "attachments": (
                OutboundAttachment("a.xml", "text/xml", b"<a/>", ("11502-2\r\nX-Injected: 1",)),
            )
        },
    ],
    ids=["message-id", "in-reply-to", "references", "cda code"],
)
def test_the_builder_refuses_malformed_structured_values(changes):
    with pytest.raises(ValidationError):
        build_outbound(outbound(**changes))


@pytest.mark.parametrize("nil", ["N1\r\nX-Injected: 1", "=?utf-8?q?N1=0AX-Injected:_1?="])
def test_the_builder_refuses_an_x_mss_nil_that_injects(nil):
    with pytest.raises(ValidationError, match="X-MSS-NIL"):
        build_outbound(outbound(), nil=nil)


def test_the_builder_writes_exactly_the_expected_headers():
    attachment = OutboundAttachment("compte rendu é.pdf", "application/pdf", PDF)
    mime = build_outbound(
        outbound(subject="Re: Vos résultats", in_reply_to="<a@x>", attachments=(attachment,)),
        nil="NIL-1",
    )
    parsed = BytesParser(policy=policy.default).parsebytes(mime.as_bytes())
    assert sorted(parsed.keys()) == sorted(
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "In-Reply-To",
            "X-MSS-NIL",
            "MIME-Version",
            "Content-Type",
        ]
    )
    assert parsed["Subject"] == "Re: Vos résultats"
    (part,) = parsed.iter_attachments()
    assert part.get_filename() == "compte rendu é.pdf"


@pytest.mark.parametrize(
    ("recipient", "subject"),
    [
        ("patient@example.org", B_WORD),
        ("patient@example.org, attacker@evil.example", "Nouveau message"),
        ("=?utf-8?q?x=0D=0ABcc:_a@evil.example?= <patient@example.org>", "Nouveau message"),
    ],
)
def test_the_notification_builder_refuses_injection(recipient, subject):
    envelope = Envelope("n1", "email", recipient, subject, "Corps", "new-message", SENT_AT)
    with pytest.raises(ValidationError):
        build_notification(envelope, sender="no-reply@monespace.example", domain="x.example")


def test_every_message_for_a_professional_carries_x_mss_nil():
    """docs/domain-rules.md §5: ``X-MSS-NIL`` is on **all** messages, configured or not."""
    parsed = BytesParser(policy=policy.default).parsebytes(build_outbound(outbound()).as_bytes())
    assert parsed["X-MSS-NIL"]
    assert SmtpTransport("localhost").nil == parsed["X-MSS-NIL"]
    assert SmtpTransport.from_url("smtp://localhost?nil=").nil == parsed["X-MSS-NIL"]
