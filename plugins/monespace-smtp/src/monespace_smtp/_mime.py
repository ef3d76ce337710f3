"""MIME in both directions: messages for professionals' mailboxes, and messages from them.

Outbound, a patient's message becomes an RFC 5322 message with the MSSanté headers
(Référentiel socle MSSanté #2 §3.8, docs/domain-rules.md §5): ``X-MSS-MES: FIN`` for a
message closed to replies, ``X-MSS-INS``, ``X-MSS-CODECDA`` and ``X-MSS-NIL``; CDA documents
travel in an ``IHE_XDM.ZIP`` archive, other files as plain attachments. Its ``Message-ID`` is
the one the space gave the message, so that every delivery attempt carries the same one.

Both ways, text bound for or read from a header (subject, file names) is checked on its
decoded form, RFC 2047 encoded words included (:mod:`monespace_smtp._headers`): CR/LF or any
other control character there is refused, never written and never stored. Outbound headers
are set only through the ``email`` package's policy, and the written message is read back to
check that it holds exactly the headers meant.

Inbound, a message is parsed with the standard library (``email.policy.default``) and
checked strictly: one ``From``, one ``Subject``, one ``Message-ID``, well-formed MIME, known
values in the ``X-MSS-*`` headers. An HTML body becomes inert plain text (scripts and styles
dropped, no markup kept), control characters in bodies are replaced, and what cannot be
accepted is refused as a whole with a reason: nothing is half-delivered.
"""

from __future__ import annotations

import hashlib
import html.parser
import io
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Sequence
from email import errors as email_errors
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path, PurePosixPath
from typing import Final

from monespace.errors import InvalidMSSanteAddressError, MonespaceError, ValidationError
from monespace.identity import MSSanteAddress, parse_professional_address
from monespace.interop.dmp import iter_legacy_documents, matches_declared_hash
from monespace.messaging import InboundMessage, NewAttachment, OutboundAttachment, OutboundMessage
from monespace.record import sniff
from monespace.transport import Envelope

from ._headers import MIME_POLICY, check_mailbox, header_text, verify_written

__all__ = [
    "XDM_FILENAME",
    "build_notification",
    "build_outbound",
    "build_xdm",
    "html_to_text",
    "parse_inbound",
    "read_xdm",
]

#: The attachment name MSSanté gives an IHE XDM archive.
XDM_FILENAME: Final = "IHE_XDM.ZIP"
#: Defects that mean the MIME structure itself is broken: a part may be lost or merged.
_STRUCTURAL_DEFECTS: Final = (
    email_errors.NoBoundaryInMultipartDefect,
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.CloseBoundaryNotFoundDefect,
    email_errors.MultipartInvariantViolationDefect,
    email_errors.InvalidMultipartContentTransferEncodingDefect,
    email_errors.MissingHeaderBodySeparatorDefect,
    email_errors.InvalidBase64PaddingDefect,
    email_errors.InvalidBase64CharactersDefect,
    email_errors.InvalidBase64LengthDefect,
)
#: Headers a message has at most once: a second one is header smuggling.
_SINGLE: Final = ("From", "Subject", "Message-ID", "In-Reply-To", "X-MSS-MES", "X-MSS-INS")
_MESSAGE_ID: Final = re.compile(r"<[^<>\s]{1,250}>")
_CDA_CODE: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: One msg-id as RFC 5322 writes it, nothing around it (RFC 5322 §3.6.4).
_ONE_MESSAGE_ID: Final = re.compile(r"<[!-;=?-~]{1,240}@[!-;=?-Z^-~]{1,240}>")
#: A product reference: letters, digits, dots, underscores and hyphens (no encoded word).
_NIL: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
#: The ``X-MSS-NIL`` written when the operator configured none: the header is on every
#: message (Référentiel socle MSSanté #2 §3.8, docs/domain-rules.md §5). It names this
#: library, not a product registered on convergence.esante.gouv.fr: an operator sets the
#: reference its product was given (``nil=`` of the transport).
DEFAULT_NIL: Final = "MONESPACE-SDK"
_TOKEN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,127}")
_NO_SUBJECT: Final = "(sans objet)"
_NO_TEXT: Final = "(message sans texte)"
_XDM_ROOT: Final = "IHE_XDM/SUBSET01"


# --- outbound -----------------------------------------------------------------------------------


def build_outbound(message: OutboundMessage, *, nil: str = DEFAULT_NIL) -> EmailMessage:
    """The MIME message for a professional's mailbox.

    Every header is checked on its decoded text (:mod:`monespace_smtp._headers`), set through
    the ``email`` package's policy, and read back once written: the message holds exactly the
    headers listed here, with the text given.

    :param nil: the product reference for ``X-MSS-NIL`` (given by convergence.esante.gouv.fr),
        written on every message; :data:`DEFAULT_NIL` unless given.
    :raises ValidationError: when a value cannot be a header as given: a subject or file name
        whose decoded text holds a control character (CR/LF: header injection), a sender that
        is not a patient mailbox, a recipient that is not one professional MSSanté address,
        a malformed ``Message-ID``, CDA code or ``X-MSS-NIL``.
    """
    headers = _outbound_headers(message, nil)
    mime = _with_headers(headers)
    mime.set_content(message.body, charset="utf-8")
    filenames = []
    for attachment in message.attachments:
        if attachment.cda_codes:
            continue
        filename = header_text("file name", attachment.filename)
        filenames.append(filename)
        maintype, _, subtype = attachment.media_type.partition("/")
        mime.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=filename
        )
    cda = [a for a in message.attachments if a.cda_codes]
    if cda:
        filenames.append(XDM_FILENAME)
        mime.add_attachment(
            build_xdm(cda), maintype="application", subtype="zip", filename=XDM_FILENAME
        )
    verify_written(mime, headers, filenames)
    return mime


def _outbound_headers(message: OutboundMessage, nil: str) -> dict[str, str]:
    """The headers of a message for a professional, in order, each value checked."""
    try:
        sender = MSSanteAddress.parse(message.sender)
        recipient = parse_professional_address(message.recipient)
    except InvalidMSSanteAddressError as exc:
        raise ValidationError(f"a message's address is refused: {exc}") from exc
    if not sender.is_patient:
        raise ValidationError("the sender address of a message must be a patient mailbox")
    headers = {
        "From": sender.value,
        "To": recipient.value,
        "Subject": header_text("Subject", message.subject),
        "Date": format_datetime(message.sent_at),
        "Message-ID": _message_id("Message-ID", message.rfc_message_id),
    }
    if message.in_reply_to:
        headers["In-Reply-To"] = _message_id("In-Reply-To", message.in_reply_to)
    if message.references:
        headers["References"] = " ".join(
            _message_id("References", ref) for ref in message.references
        )
    if message.closes_thread:
        headers["X-MSS-MES"] = "FIN"
    if message.ins_qualified is not None:
        headers["X-MSS-INS"] = "O" if message.ins_qualified else "N"
    cda = [a for a in message.attachments if a.cda_codes]
    if cda:
        codes = [code for a in cda for code in a.cda_codes]
        if not all(_CDA_CODE.fullmatch(code) for code in codes):
            raise ValidationError("a CDA code for X-MSS-CODECDA is malformed")
        headers["X-MSS-CODECDA"] = ",".join(codes)
    if not _NIL.fullmatch(nil):
        raise ValidationError("the X-MSS-NIL value must be letters, digits, '.', '_' and '-'")
    headers["X-MSS-NIL"] = nil
    return headers


def build_notification(envelope: Envelope, *, sender: str, domain: str) -> EmailMessage:
    """A plain-text notification e-mail ("you have a new message"): never health content.

    :raises ValidationError: when the recipient or *sender* is not one bare address, the
        subject's decoded text holds a control character, or the kind or *domain* cannot be
        part of a header.
    """
    if not _TOKEN.fullmatch(envelope.kind) or not _TOKEN.fullmatch(domain):
        raise ValidationError("a notification's kind and domain must be plain ASCII tokens")
    headers = {
        "From": check_mailbox("sender", sender),
        "To": check_mailbox("recipient", envelope.recipient),
        "Subject": header_text("Subject", envelope.subject),
        "Date": format_datetime(envelope.created_at),
        "Message-ID": _message_id("Message-ID", f"<{envelope.id}@{domain}>"),
        "X-Monespace-Kind": envelope.kind,
    }
    mime = _with_headers(headers)
    mime.set_content(envelope.body, charset="utf-8")
    verify_written(mime, headers, [])
    return mime


def _with_headers(headers: dict[str, str]) -> EmailMessage:
    # Set through the policy only: it refuses a value with a line break and folds the rest.
    mime = EmailMessage(policy=MIME_POLICY)
    for name, value in headers.items():
        mime[name] = value
    return mime


def _message_id(name: str, value: str) -> str:
    if not _ONE_MESSAGE_ID.fullmatch(value):
        raise ValidationError(f"the {name} value must be one <left@right> id in printable ASCII")
    return value


def build_xdm(documents: Sequence[OutboundAttachment]) -> bytes:
    """An IHE XDM archive (ITI TF-3 §4.3) holding CDA documents, with a METADATA.XML that
    declares each document's SHA-1 and URI, as XDS does."""
    entries = []
    for index, document in enumerate(documents, 1):
        digest = hashlib.sha1(document.content, usedforsecurity=False).hexdigest()
        slots = {"URI": f"DOC{index:04d}.XML", "hash": digest, "size": len(document.content)}
        entries.append(
            f'  <rim:ExtrinsicObject id="Document{index:04d}" mimeType="text/xml" '
            'objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">\n'
            + "".join(
                f'    <rim:Slot name="{name}"><rim:ValueList><rim:Value>{value}</rim:Value>'
                "</rim:ValueList></rim:Slot>\n"
                for name, value in slots.items()
            )
            + "  </rim:ExtrinsicObject>"
        )
    metadata = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" '
        'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">\n'
        "<rim:RegistryObjectList>\n" + "\n".join(entries) + "\n</rim:RegistryObjectList>\n"
        "</lcm:SubmitObjectsRequest>\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.TXT", "IHE XDM archive written by monespace-smtp.\r\n")
        archive.writestr(
            "INDEX.HTM",
            "<html><body><p>Documents:</p><ul>"
            + "".join(f"<li>{_XDM_ROOT}/DOC{i:04d}.XML</li>" for i in range(1, len(documents) + 1))
            + "</ul></body></html>",
        )
        archive.writestr(f"{_XDM_ROOT}/METADATA.XML", metadata)
        for index, document in enumerate(documents, 1):
            archive.writestr(f"{_XDM_ROOT}/DOC{index:04d}.XML", document.content)
    return buffer.getvalue()


# --- inbound ------------------------------------------------------------------------------------


#: Header fields in one part of an inbound message; a real one has a few dozen.
_MAX_HEADER_FIELDS = 200
#: Characters in one header field's value, folded lines included (a long References
#: header of a thread stays well below it).
_MAX_HEADER_CHARS = 16_384


def parse_inbound(raw: bytes, *, mail_from: str, recipient: str) -> InboundMessage:
    """Read a message received from a professional, for ``space.messaging.receive``.

    :param mail_from: the SMTP envelope sender; the ``From`` header must name the same
        mailbox (within the trust space, a message speaks for the mailbox that sent it).
    :param recipient: the SMTP envelope recipient, the patient's address.
    :raises ValidationError: malformed MIME, missing or repeated headers, unknown ``X-MSS``
        values, attachments that cannot be read; the message says which.
    """
    try:
        mime = BytesParser(policy=policy.default).parsebytes(raw)
        # Header values are parsed when first read, and the standard library's address
        # parser raises IndexError ("From: x@") or AttributeError (a group where a mailbox
        # is expected) on some malformed ones: read them all here, so that such a header is
        # a refused message, not a crash further on. Their number and length are bounded
        # first, on the raw values: the parser is slower than linear on long address headers
        # (a 55 KB To header took seconds), and ten thousand short ones took seconds too.
        for part in mime.walk():
            raw_headers = list(part.raw_items())
            if len(raw_headers) > _MAX_HEADER_FIELDS:
                raise ValidationError("the message has too many header fields")
            if any(len(value) > _MAX_HEADER_CHARS for _, value in raw_headers):
                raise ValidationError("a header field of the message is too long")
            part.items()
    except (MonespaceError, LookupError, ValueError, AttributeError) as exc:
        raise ValidationError("the message cannot be parsed as MIME") from exc
    _check_structure(mime)
    sender = _single_address(mime)
    if sender.lower() != mail_from.lower():
        raise ValidationError("the From header must name the mailbox that sent the message")
    # Decoded text is checked at every level: a subject that reads as CR LF once decoded is
    # refused here, before anything is stored, rather than cleaned into something else.
    subject = header_text("Subject", _header(mime, "Subject") or _NO_SUBJECT)
    message_id = _header(mime, "Message-ID")
    if message_id is None:
        # Without one, a retry of the same bytes must still be recognised as the same message.
        message_id = f"<{hashlib.sha256(raw).hexdigest()}@inbound.invalid>"
    in_reply_to = _ids(_header(mime, "In-Reply-To") or "")
    references = tuple(_ids(" ".join(str(h) for h in mime.get_all("References") or [])))
    closes = _fin(_header(mime, "X-MSS-MES"))
    ins = _ins(_header(mime, "X-MSS-INS"))
    _check_codes(mime.get_all("X-MSS-CODECDA") or [])
    body = _body(mime)
    attachments: list[NewAttachment] = []
    for part in mime.iter_attachments():
        if not isinstance(part, EmailMessage):  # pragma: no cover - policy.default parts
            raise ValidationError("an attachment could not be read")
        attachments.extend(_attachment(part))
    return InboundMessage(
        sender=sender,
        recipient=recipient,
        subject=subject,
        body=body,
        rfc_message_id=message_id.strip(),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=references,
        closes_thread=closes,
        ins_qualified=ins,
        attachments=tuple(attachments),
    )


def _check_structure(mime: EmailMessage) -> None:
    for part in mime.walk():
        for defect in part.defects:
            if isinstance(defect, _STRUCTURAL_DEFECTS):
                raise ValidationError(f"malformed MIME: {type(defect).__name__}")
    for name in _SINGLE:
        if len(mime.get_all(name) or []) > 1:
            raise ValidationError(f"the {name} header must appear at most once")


def _single_address(mime: EmailMessage) -> str:
    values = mime.get_all("From") or []
    if len(values) != 1:
        raise ValidationError("the message must have one From header")
    header = values[0]
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    if header.defects or len(addresses) != 1 or not addresses[0].addr_spec:
        raise ValidationError("the From header must hold exactly one address")
    return str(addresses[0].addr_spec)


def _header(mime: EmailMessage, name: str) -> str | None:
    value = mime.get(name)
    if value is None:
        return None
    return str(value).strip() or None


def _ids(text: str) -> list[str]:
    return _MESSAGE_ID.findall(text)


def _fin(value: str | None) -> bool:
    if value is None:
        return False
    if value.upper() != "FIN":
        raise ValidationError("the X-MSS-MES header must be FIN when present")
    return True


def _ins(value: str | None) -> bool | None:
    if value is None:
        return None
    if value.upper() not in ("O", "N"):
        raise ValidationError("the X-MSS-INS header must be O or N when present")
    return value.upper() == "O"


def _check_codes(values: Sequence[object]) -> None:
    for value in values:
        codes = [c.strip() for c in str(value).split(",")]
        if not all(_CDA_CODE.fullmatch(c) for c in codes):
            raise ValidationError("the X-MSS-CODECDA header must list codes separated by commas")


def _body(mime: EmailMessage) -> str:
    part = mime.get_body(preferencelist=("plain", "html"))
    if part is None:
        return _NO_TEXT
    try:
        text = part.get_content()
    except (LookupError, ValueError) as exc:  # an unknown charset, undecodable bytes
        raise ValidationError("the message text cannot be decoded") from exc
    if not isinstance(text, str):
        raise ValidationError("the message text is not text")
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    text = _clean(text)
    return text if text.strip() else _NO_TEXT


def _clean(text: str) -> str:
    """Line ends normalised; other control characters (escape sequences, NUL) and lone
    surrogates replaced, so that a body never drives a terminal or cuts a string short."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        "\ufffd"
        if (unicodedata.category(c) == "Cc" and c not in "\t\n\f")
        or unicodedata.category(c) == "Cs"
        else c
        for c in text
    )


def _attachment(part: EmailMessage) -> list[NewAttachment]:
    filename = header_text("file name", part.get_filename() or "attachment")
    media = part.get_content_type()
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raise ValidationError("an attachment could not be decoded")
    if filename.upper() == XDM_FILENAME or media in ("application/zip", "application/x-zip"):
        return read_xdm(payload)
    if media == "application/octet-stream":
        # No type declared: take what the bytes are, if it is one the space accepts.
        found = sniff(payload)
        if found is None or found == "text/plain":
            raise ValidationError("an attachment has no media type and is not a known format")
        media = found
    return [NewAttachment(filename, media, payload)]


def read_xdm(data: bytes) -> list[NewAttachment]:
    """The CDA documents of an ``IHE_XDM.ZIP`` archive, each checked against the hash its
    METADATA.XML declares.

    The archive is read by monespace's own XDM reader (the DMP migration's), which refuses
    paths outside the archive, zip bombs and archives without an ``IHE_XDM`` folder. That
    reader takes a file: the archive goes to a private temporary directory, removed at once.

    :raises ValidationError: an unreadable or hostile archive, a hash that does not match.
    """
    with tempfile.TemporaryDirectory(prefix="monespace-xdm-") as directory:
        path = Path(directory) / XDM_FILENAME
        path.write_bytes(data)
        try:
            documents = list(iter_legacy_documents(path))
        except ValidationError as exc:
            raise ValidationError(f"the IHE_XDM archive was refused: {exc}") from exc
    if not documents:
        raise ValidationError("the IHE_XDM archive holds no document")
    files = []
    for document in documents:
        if not matches_declared_hash(document):
            raise ValidationError("a document of the IHE_XDM archive does not match its hash")
        name = header_text("file name", PurePosixPath(document.source.partition("!")[2]).name)
        files.append(NewAttachment(name, "text/xml", document.data))
    return files


class _TextExtractor(html.parser.HTMLParser):
    """Text of an HTML document: what a reader would see, nothing that could run."""

    _SKIPPED: Final = frozenset({"script", "style", "head", "title", "template", "noscript"})
    _BLOCKS: Final = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Inert plain text from an HTML body: scripts, styles and the head dropped, tags removed,
    entities decoded, runs of blank lines collapsed. The result holds no markup to render;
    a page shows it as text (escaped), never as HTML."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    # Character references are already decoded by the parser (convert_charrefs): decoding
    # again would turn "&amp;lt;" into "<".
    text = "".join(extractor.parts)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
