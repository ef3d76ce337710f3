"""Property tests: whatever text is given for a subject, a file name or an address, the
message the SMTP transport sends parses back with exactly the headers the library writes,
to exactly the recipient it was given, or the input is refused with a ``ValidationError``.

Inputs mix plain text (control characters included), RFC 2047 encoded words in every
charset the ``email`` package knows, in ``b`` and ``q`` encodings, several in a row, folded,
and encoded words whose decoded text is itself an encoded word. Example counts come from
the conftest profiles.
"""

from __future__ import annotations

import email.charset
from collections.abc import Iterator
from datetime import UTC, datetime
from email import base64mime, quoprimime
from email.message import EmailMessage

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from conftest import PATIENT_ADDRESS, PDF, Server, start_server
from monespace.errors import TransportError, ValidationError
from monespace.messaging import (
    MSSANTE_CHANNEL,
    OUTBOUND_KIND,
    OutboundAttachment,
    OutboundMessage,
    encode_outbound,
)
from monespace.transport import Envelope
from monespace_smtp import SmtpTransport, StartTLS
from monespace_smtp._headers import header_text

SENT_AT = datetime(2026, 1, 1, 9, tzinfo=UTC)
PROFESSIONAL = "dr.medecin1@ch-test.mssante.fr"
#: Every charset the email package has a table for, its aliases, and one it does not know.
CHARSETS = sorted(set(email.charset.CHARSETS) | set(email.charset.ALIASES) | {"x-unknown"})
#: Characters an attacker reaches for: line ends of every kind, NUL, ESC, separators.
HOSTILE = '\r\n\x00\x1b\x0b\x0c\x85\u2028\u2029\t :;,<>"()@=?_\u202e'
BASE_HEADERS = ["from", "to", "subject", "date", "message-id"]
#: A message for a professional carries X-MSS-NIL, always (docs/domain-rules.md §5).
OUTBOUND_HEADERS = [*BASE_HEADERS, "x-mss-nil"]
NOTIFICATION_HEADERS = [*BASE_HEADERS, "x-monespace-kind"]
MIME_HEADERS = {"mime-version", "content-type", "content-transfer-encoding"}


# --- strategies --------------------------------------------------------------------------------

#: Text a person writes (accents, punctuation, spaces), and text with anything in it.
plain = st.one_of(
    st.text(
        st.one_of(st.characters(categories=["L", "N"]), st.sampled_from(" -'.,:!?()éèàçÉ€«»")),
        max_size=40,
    ),
    st.text(st.one_of(st.characters(codec="utf-8"), st.sampled_from(HOSTILE)), max_size=40),
)


def _python_codec(charset: str) -> str:
    name = email.charset.Charset(charset).input_codec or "us-ascii"
    try:
        "".encode(name)
    except LookupError:
        return "latin-1"
    return name


@st.composite
def encoded_word(draw: st.DrawFn, inner: st.SearchStrategy[str]) -> str:
    """One RFC 2047 encoded word, written as the email package's own encoders write them
    (plus lower/upper-case variants of the charset and encoding letters)."""
    charset = draw(st.sampled_from(CHARSETS))
    text = draw(inner)
    payload = draw(
        st.one_of(
            st.just(text.encode(_python_codec(charset), errors="replace")),
            st.binary(max_size=24),
        )
    )
    if draw(st.booleans()):
        word = base64mime.header_encode(payload, charset)
    else:
        word = quoprimime.header_encode(payload, charset)
    if draw(st.booleans()):
        word = word.replace("?b?", "?B?").replace("?q?", "?Q?").upper()
    return word


words = st.one_of(plain, encoded_word(plain))
#: Encoded words holding encoded words (the decoded text is decoded again by a reader).
nested = encoded_word(st.lists(words, min_size=1, max_size=3).map(" ".join))
separators = st.sampled_from([" ", "", "  ", "\r\n ", "\n\t", "\t"])


@st.composite
def header_values(draw: st.DrawFn) -> str:
    """Text, encoded words and nested words, joined by spaces, nothing or folds."""
    parts = draw(st.lists(st.one_of(words, nested), min_size=1, max_size=4))
    out = parts[0]
    for part in parts[1:]:
        out += draw(separators) + part
    return out


local_parts = st.one_of(
    st.from_regex(r"[A-Za-z0-9]{1,10}(\.[a-z0-9+'-]{1,8}){0,2}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9]{1,10}(\.[a-z0-9+'-]{1,8}){0,2}", fullmatch=True),
    st.text(st.sampled_from("abc.+-_=?'" + HOSTILE), min_size=1, max_size=16),
    encoded_word(plain),
)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    """Addresses, bare or not: display names (plain or encoded), comments, lists, folds."""
    local = draw(local_parts)
    domain = draw(st.sampled_from(["ch-test.mssante.fr", "CH-Test.MSSante.fr", "evil.example"]))
    address = f"{local}@{domain}"
    shape = draw(st.sampled_from(["bare", "bare", "display", "list", "comment", "angle"]))
    if shape == "display":
        address = f"{draw(st.one_of(plain, encoded_word(plain)))} <{address}>"
    elif shape == "list":
        address = f"{address}{draw(st.sampled_from([',', ', ', ';']))}attacker@evil.example"
    elif shape == "comment":
        address = f"{address} ({draw(plain)})"
    elif shape == "angle":
        address = f"<{address}>"
    return address


# --- the transport and its server --------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    started = start_server()
    yield started
    started.stop()


def _send(server: Server, envelope: Envelope) -> EmailMessage | None:
    """Send *envelope*; the message the server received, or ``None`` when refused."""
    server.recorder.accepted.clear()
    transport = SmtpTransport(
        server.host, server.port, starttls=StartTLS.NEVER, timeout=5.0, reuse=False
    )
    refused: TransportError | None = None
    try:
        transport.send(envelope)
    except TransportError as exc:
        refused = exc
    if refused is not None:
        # Refused before anything was sent, for a reason the library names.
        assert refused.permanent
        assert isinstance(refused.__cause__, ValidationError), repr(refused.__cause__)
        assert str(refused.__cause__)
        assert server.recorder.accepted == []
        event("refused")
        return None
    event("sent")
    (received,) = server.recorder.accepted
    return received.message


def _outbound(recipient: str, subject: str, filename: str) -> Envelope:
    message = OutboundMessage(
        message_id="m1",
        thread_id="t1",
        rfc_message_id="<m1@monespace.example>",
        sender=PATIENT_ADDRESS,
        recipient=recipient,
        subject=subject,
        body="Bonjour",
        sent_at=SENT_AT,
        attachments=(OutboundAttachment(filename, "application/pdf", PDF),),
    )
    return Envelope(
        "n1", MSSANTE_CHANNEL, recipient, "", encode_outbound(message), OUTBOUND_KIND, SENT_AT
    )


def _assert_headers(message: EmailMessage, expected: list[str]) -> None:
    names = [name.lower() for name in message]
    assert sorted(n for n in names if n not in MIME_HEADERS) == sorted(expected)
    assert len(names) == len(set(names))
    for name in ("bcc", "cc", "reply-to", "sender", "resent-to"):
        assert message[name] is None


def _assert_text_kept(given: str, read: str) -> None:
    """Text without an encoded word comes back as written; with one, as a mail reader
    decodes it (what the library checked), and never with a control character."""
    if "=?" not in given:
        assert read == given
    else:
        assert read == header_text("Subject", given)


# --- properties --------------------------------------------------------------------------------


#: Each example of these three is a real delivery to the loopback SMTP server: they take a
#: quarter of the loaded profile's examples (25 in "ci", 250 in "thorough").
deliveries = settings(settings.default, max_examples=max(10, settings.default.max_examples // 4))


@deliveries
@given(subject=header_values(), filename=header_values())
def test_a_message_for_a_professional_never_gains_a_header(server, subject, filename):
    received = _send(server, _outbound(PROFESSIONAL, subject, filename))
    if received is None:
        return
    _assert_headers(received, OUTBOUND_HEADERS)
    assert received["To"] == PROFESSIONAL
    assert received["From"] == PATIENT_ADDRESS
    _assert_text_kept(subject, str(received["Subject"]))
    (part,) = received.iter_attachments()
    assert set(map(str.lower, part)) <= MIME_HEADERS | {"content-disposition"}
    _assert_text_kept(filename, part.get_filename() or "")


@deliveries
@given(recipient=addresses(), subject=st.one_of(st.just("Vos résultats"), header_values()))
def test_a_message_goes_to_the_one_address_it_names_or_nowhere(server, recipient, subject):
    received = _send(server, _outbound(recipient, subject, "cr.pdf"))
    if received is None:
        return
    _assert_headers(received, OUTBOUND_HEADERS)
    (rcpt,) = server.recorder.accepted[0].rcpt_tos
    assert rcpt == recipient
    assert str(received["To"]).lower() == recipient.lower()
    assert len(received["To"].addresses) == 1


@deliveries
@given(recipient=addresses(), subject=header_values())
def test_a_notification_never_gains_a_header_or_a_recipient(server, recipient, subject):
    envelope = Envelope("n1", "email", recipient, subject, "Corps", "new-message", SENT_AT)
    received = _send(server, envelope)
    if received is None:
        return
    _assert_headers(received, NOTIFICATION_HEADERS)
    assert server.recorder.accepted[0].rcpt_tos == (recipient,)
    assert received["To"] == recipient
    _assert_text_kept(subject, str(received["Subject"]))


@given(value=header_values())
def test_header_text_refuses_or_returns_text_free_of_controls_and_encoded_words(value):
    try:
        text = header_text("Subject", value)
    except ValidationError as exc:
        refused = exc
    else:
        refused = None
    if refused is not None:
        assert "Subject" in str(refused)
        return
    assert all(c not in text for c in "\r\n\x00\u2028\u2029")
    assert header_text("Subject", text) == text  # nothing left for a reader to decode
