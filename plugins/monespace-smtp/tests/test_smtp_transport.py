"""Outbound delivery through a real SMTP server on loopback: notifications, messages for
professionals' mailboxes, STARTTLS, failures and the outbox's exactly-once redelivery."""

from __future__ import annotations

import io
import socket
import zipfile
from datetime import timedelta

import pytest

import monespace
from conftest import (
    CDA_FILE,
    MARKER,
    PATIENT_ADDRESS,
    PDF,
    Server,
    free_port,
    needs_cda,
    pro,
    pro_address,
    start_server,
)
from monespace import Actor
from monespace.errors import ConfigurationError, TransportError
from monespace.messaging import MSSANTE_CHANNEL, NewAttachment
from monespace.storage import OutboxStatus
from monespace.testing import storage_of
from monespace.transport import Envelope, MemoryTransport
from monespace_smtp import SmtpTransport, StartTLS


def transport(server: Server, **options) -> SmtpTransport:
    options.setdefault("starttls", StartTLS.NEVER)
    options.setdefault("domain", "monespace.example")
    options.setdefault("timeout", 5.0)
    # One connection per delivery unless a test says otherwise: a kept connection would
    # still be open when the test's server stops (connection reuse has its own test).
    options.setdefault("reuse", False)
    return SmtpTransport(server.host, server.port, **options)


def patient_reply(space, holder, **kwargs):
    first = space.messaging.start_thread(pro(1), holder.id, subject="Vos résultats", body="Bonjour")
    space.dispatch()  # the patient's e-mail notice, delivered first: reports below are the reply's
    reply = space.messaging.reply(Actor.patient(holder.id), first.thread_id, **kwargs)
    return first, reply


# --- notifications ---------------------------------------------------------------------------


def test_a_new_message_notice_goes_out_over_starttls_without_content(
    space, holder, tls_server, tls
):
    space.transports["email"] = transport(
        tls_server, starttls=StartTLS.REQUIRE, ssl_context=tls.client_context()
    )
    space.messaging.start_thread(
        pro(1), holder.id, subject=f"Sujet {MARKER}", body=f"Corps {MARKER}"
    )
    assert space.dispatch().sent == 1
    (received,) = tls_server.recorder.accepted
    assert received.tls
    assert received.rcpt_tos == ("patient@example.org",)
    assert received.mail_from == "no-reply@monespace.example"
    message = received.message
    assert message["Subject"] == "Nouveau message dans votre espace santé"
    assert message["X-Monespace-Kind"] == "new-message"
    assert message["Message-ID"].endswith("@monespace.example>")
    assert MARKER.encode() not in received.data
    assert b"Sujet" not in received.data


def test_starttls_is_used_when_offered_and_not_when_absent(space, holder, tls_server, tls):
    space.transports["email"] = transport(
        tls_server, starttls=StartTLS.AUTO, ssl_context=tls.client_context()
    )
    space.messaging.start_thread(pro(1), holder.id, subject="Bonjour", body="Test")
    space.dispatch()
    assert tls_server.recorder.accepted[0].tls


def test_required_starttls_that_is_not_offered_is_a_temporary_failure(space, holder, smtp_server):
    space.transports["email"] = transport(smtp_server, starttls=StartTLS.REQUIRE)
    space.messaging.start_thread(pro(1), holder.id, subject="Bonjour", body="Test")
    report = space.dispatch()
    assert (report.sent, report.retrying) == (0, 1)
    assert smtp_server.recorder.accepted == []


def test_a_server_certificate_that_does_not_verify_is_refused(space, holder, tls_server):
    # The default context trusts the system's authorities, not the test one.
    space.transports["email"] = transport(tls_server, starttls=StartTLS.REQUIRE, ssl_context=None)
    space.messaging.start_thread(pro(1), holder.id, subject="Bonjour", body="Test")
    assert space.dispatch().retrying == 1
    assert tls_server.recorder.accepted == []


# --- messages for professionals' mailboxes ----------------------------------------------------


def test_a_patient_reply_reaches_the_professionals_mailbox_as_mss_mime(space, holder, smtp_server):
    space.transports[MSSANTE_CHANNEL] = transport(smtp_server, nil="MONESPACE-TEST-1")
    first, reply = patient_reply(
        space,
        holder,
        body="Voici ma photo.\nCordialement",
        attachments=[NewAttachment("ordonnance.pdf", "application/pdf", PDF)],
    )
    assert space.dispatch().sent == 1
    (received,) = smtp_server.recorder.accepted
    assert received.mail_from == PATIENT_ADDRESS
    assert received.rcpt_tos == (pro_address(1),)
    message = received.message
    assert message["From"] == PATIENT_ADDRESS
    assert message["To"] == pro_address(1)
    assert message["Subject"] == "Re: Vos résultats"
    assert message["Message-ID"] == reply.rfc_message_id
    assert message["In-Reply-To"] == first.rfc_message_id
    assert message["References"] == first.rfc_message_id
    assert message["X-MSS-NIL"] == "MONESPACE-TEST-1"
    assert message["X-MSS-MES"] is None  # patients never close a thread
    assert message["X-MSS-INS"] is None  # no CDA, nothing to say
    text = message.get_body(("plain",)).get_content()
    assert text.replace("\r\n", "\n") == "Voici ma photo.\nCordialement\n"
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "ordonnance.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF


@needs_cda
def test_cda_documents_travel_in_ihe_xdm_with_their_codes(space, holder, smtp_server):
    space.transports[MSSANTE_CHANNEL] = transport(smtp_server)
    cda = CDA_FILE.read_bytes()
    patient_reply(
        space, holder, body="Mon bilan", attachments=[NewAttachment("bilan.xml", "text/xml", cda)]
    )
    space.dispatch()
    message = smtp_server.recorder.accepted[0].message
    assert message["X-MSS-CODECDA"] == "11502-2"
    assert message["X-MSS-INS"] == "O"
    (archive,) = message.iter_attachments()
    assert archive.get_filename() == "IHE_XDM.ZIP"
    with zipfile.ZipFile(io.BytesIO(archive.get_content())) as zf:
        assert zf.read("IHE_XDM/SUBSET01/DOC0001.XML") == cda
        assert b"<rim:Value>DOC0001.XML</rim:Value>" in zf.read("IHE_XDM/SUBSET01/METADATA.XML")


# --- failures and redelivery -------------------------------------------------------------------


def test_a_failing_server_that_recovers_gets_the_message_exactly_once(
    space, holder, smtp_server, clock
):
    """451 on the first attempt: the outbox retries after its backoff, with the same
    Message-ID, and the server ends up with one copy."""
    space.transports[MSSANTE_CHANNEL] = transport(smtp_server)
    smtp_server.recorder.fail_data = ["451 4.3.0 try again later"]
    _, reply = patient_reply(space, holder, body="Une question")
    first = space.dispatch()
    assert (first.sent, first.retrying) == (0, 1)
    assert smtp_server.recorder.accepted == []
    assert space.dispatch().sent == 0  # not due yet: the backoff holds
    clock.advance(space.settings.retry_delay(1))
    second = space.dispatch()
    assert (second.sent, second.retrying) == (1, 0)
    assert len(smtp_server.recorder.with_message_id(reply.rfc_message_id)) == 1
    assert smtp_server.recorder.data_commands == 2
    clock.advance(timedelta(days=1))
    assert space.dispatch().sent == 0  # nothing is delivered twice
    assert len(smtp_server.recorder.accepted) == 1
    (row,) = [r for r in _all_outbox(space) if r.kind == "mssante-message"]
    assert (row.status, row.attempts, row.sealed) == (OutboxStatus.SENT, 2, None)


def test_a_server_that_is_down_then_up_gets_the_message_once(space, holder, clock):
    port = free_port()  # nobody listens there yet: the connection is refused
    server = None
    try:
        space.transports[MSSANTE_CHANNEL] = SmtpTransport(
            "127.0.0.1", port, starttls=StartTLS.NEVER, timeout=2.0, reuse=False
        )
        _, reply = patient_reply(space, holder, body="Bonjour")
        assert space.dispatch().retrying == 1
        server = start_server(port)
        clock.advance(space.settings.retry_delay(1))
        assert space.dispatch().sent == 1
        assert len(server.recorder.with_message_id(reply.rfc_message_id)) == 1
    finally:
        if server is not None:
            server.stop()


def test_a_permanent_refusal_is_not_retried_and_its_content_is_erased(
    space, holder, smtp_server, clock
):
    space.transports[MSSANTE_CHANNEL] = transport(smtp_server)
    smtp_server.recorder.refuse_rcpt = "550 5.1.1 no such mailbox"
    patient_reply(space, holder, body="Bonjour")
    assert space.dispatch().dead == 1
    clock.advance(timedelta(days=2))
    assert space.dispatch().sent == 0
    (row,) = [r for r in _all_outbox(space) if r.kind == "mssante-message"]
    assert (row.status, row.sealed) == (OutboxStatus.DEAD, None)
    assert "SMTP 550" in (row.last_error or "")


def test_a_redelivery_carries_the_same_message_id(space, holder, smtp_server):
    """If the process dies after the server accepted a message but before the outbox
    recorded it, the message is sent again: with the same Message-ID, so the receiving side
    can recognise it (monespace's own gateway stores it once)."""
    capture = MemoryTransport()
    space.transports[MSSANTE_CHANNEL] = capture
    patient_reply(space, holder, body="Bonjour")
    space.dispatch()
    (envelope,) = capture.sent
    sender = transport(smtp_server)
    sender.send(envelope)
    sender.send(envelope)
    ids = {r.message["Message-ID"] for r in smtp_server.recorder.accepted}
    assert len(smtp_server.recorder.accepted) == 2
    assert len(ids) == 1


def test_one_connection_serves_many_deliveries_and_a_dead_one_is_replaced(
    space, holder, smtp_server
):
    sender = transport(smtp_server, reuse=True)
    space.transports["email"] = sender
    try:
        for n in range(3):
            space.messaging.start_thread(pro(1), holder.id, subject=f"S{n}", body="Test")
        assert space.dispatch().sent == 3
        assert len(smtp_server.recorder.sessions) == 1
        # The kept connection dies (as when a server times an idle client out): the next
        # delivery notices and opens a new one, and nothing is lost or doubled.
        connection = sender._connection
        assert connection is not None
        assert connection.sock is not None
        connection.sock.shutdown(socket.SHUT_RDWR)
        space.messaging.start_thread(pro(1), holder.id, subject="S4", body="Test")
        assert space.dispatch().sent == 1
        assert len(smtp_server.recorder.accepted) == 4
        assert len(smtp_server.recorder.sessions) == 2
    finally:
        sender.close()


# --- rendering and configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipient", "subject"),
    [
        ("patient@example.org\r\nBcc: everyone@example.org", "Nouveau message"),
        ("patient@example.org", "Nouveau message\r\nBcc: everyone@example.org"),
    ],
)
def test_header_injection_is_a_permanent_failure(smtp_server, recipient, subject, clock):
    envelope = Envelope("m1", "email", recipient, subject, "Corps", "new-message", clock.now())
    with pytest.raises(TransportError) as failed:
        transport(smtp_server).send(envelope)
    assert failed.value.permanent
    assert smtp_server.recorder.accepted == []


def test_an_undecodable_outbound_payload_is_a_permanent_failure(smtp_server, clock):
    envelope = Envelope(
        "m1", MSSANTE_CHANNEL, "a@b.mssante.fr", "x", "{}", "mssante-message", clock.now()
    )
    with pytest.raises(TransportError) as failed:
        transport(smtp_server).send(envelope)
    assert failed.value.permanent


def test_the_plugin_registers_smtp_urls(smtp_server, tmp_path):
    url = f"smtp://{smtp_server.host}:{smtp_server.port}?starttls=0&from=x@example.org&nil=N1"
    with monespace.open("memory://", transports={"email": url}) as space:
        built = space.transports["email"]
        assert isinstance(built, SmtpTransport)
        assert (built.port, built.starttls, built.sender, built.nil) == (
            smtp_server.port,
            StartTLS.NEVER,
            "x@example.org",
            "N1",
        )
        assert "smtp" in space.plugins.names()  # the entry point's name


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.example", (25, False, StartTLS.AUTO)),
        ("smtp://relay.example:587?starttls=1", (587, False, StartTLS.REQUIRE)),
        ("smtps://relay.example", (465, True, StartTLS.AUTO)),
        ("smtp://u:p%40ss@relay.example:2525?starttls=never", (2525, False, StartTLS.NEVER)),
    ],
)
def test_urls_are_parsed(url, expected):
    built = SmtpTransport.from_url(url)
    assert (built.port, built.implicit_tls, built.starttls) == expected
    if "u:p" in url:
        assert (built.username, built.password) == ("u", "p@ss")


@pytest.mark.parametrize(
    "url",
    [
        "smtp://relay.example?unknown=1",
        "smtp://relay.example?starttls=maybe",
        "smtp://relay.example?timeout=soon",
        "smtp:///no-host",
        "http://relay.example",
    ],
)
def test_bad_urls_are_configuration_errors(url):
    with pytest.raises(ConfigurationError):
        SmtpTransport.from_url(url)


# --- helpers -------------------------------------------------------------------------------------


def _all_outbox(space):
    """Every notification the dispatcher handled (the audit trail names them)."""
    with storage_of(space).read() as tx:
        ids = {e.target_id for e in tx.audit.scan(limit=10_000) if e.target_kind == "notification"}
        return [row for row in (tx.outbox.get(i) for i in ids if i) if row is not None]
