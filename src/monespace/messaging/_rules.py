"""The rules of messaging, as pure functions.

Checks on what senders write (subjects, bodies, file names, ``Message-ID`` values, the size
of attachments) run before anything is stored, and their messages say which rule failed,
never what was written (a subject is health data, and error messages reach logs and HTTP
responses). Subjects and file names end up in mail headers: a control character there (CR/LF
above all) is a header injection, so it is refused, not cleaned.

Then how a conversation is threaded (``In-Reply-To``, ``References``, the subject of a
reply), which side an actor writes from, and which type a file the patient files into their
record takes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email import policy
from typing import Final

from .._text import check_text
from ..actors import ActorKind
from ..errors import ValidationError
from ..record import TRE_A05_TYPE, Code, ParsedDocument
from ._model import MessagingSettings

__all__ = [
    "MAX_REFERENCES",
    "actor_side",
    "check_attachment_sizes",
    "check_body",
    "check_message_id",
    "check_subject",
    "filed_type",
    "filename_of",
    "is_message_id",
    "reply_headers",
    "reply_subject",
    "safe_filename",
    "title_of",
]

_MAX_FILENAME_BYTES: Final = 255
#: RFC 5322 msg-id: "<" id-left "@" id-right ">", printable ASCII without spaces or brackets.
_MESSAGE_ID: Final = re.compile(r"<[!-;=?-~]{1,240}@[!-;=?-Z^-~]{1,240}>")
_MAX_MESSAGE_ID: Final = 250
#: Levels of RFC 2047 encoded words read before a text is refused as nesting too deeply.
_MAX_ENCODED_LEVELS: Final = 4


def _check_mail_text(name: str, text: str) -> None:
    """The one text check (:func:`monespace._text.check_text`) on *text* and on every
    reading a mail reader makes of it (RFC 2047 encoded words decoded)."""
    readings = _as_mail_reads(name, text)
    check_text(name, readings, max_length=len(readings))


def check_subject(subject: str, *, limit: int) -> str:
    """A subject as stored: surrounding spaces removed, in NFC.

    :raises ValidationError: when it is empty, longer than *limit* characters, or holds
        what :func:`monespace._text.check_text` refuses in one line (CR/LF: header
        injection; bidirectional overrides; lone surrogates), RFC 2047 encoded words decoded.
    """
    # Checked before the spaces are removed: a CR/LF at either end is refused, not trimmed.
    _check_mail_text("subject", subject)
    text = check_text("subject", subject, max_length=limit).strip()
    if not text:
        raise ValidationError("'subject' must not be empty")
    return text


def check_body(body: str, *, limit: int) -> str:
    """A body as stored: line ends normalised to ``\\n``, in NFC.

    :raises ValidationError: when it is empty, longer than *limit* characters, or holds
        what :func:`monespace._text.check_text` refuses in several lines: a control
        character other than tab and line feed (an escape sequence that would drive a
        terminal, a NUL that would cut it short), a bidirectional override or a lone
        surrogate.
    """
    text = check_text("body", body, max_length=limit, multiline=True)
    if not text.strip():
        raise ValidationError("'body' must not be empty")
    return text


def safe_filename(name: str) -> str:
    """The file name to keep for an attachment.

    Path parts are dropped (``../../etc/passwd`` → ``passwd``; ``C:\\x\\y.pdf`` → ``y.pdf``),
    as are trailing dots and spaces (Windows ignores them, so ``a.exe.`` opens as an
    executable); an empty result becomes ``attachment``.

    :raises ValidationError: when the name holds a control character (NUL, CR/LF) or a
        bidirectional override (extension spoofing), or is longer than 255 bytes in UTF-8.
    """
    _check_mail_text("filename", name)
    base = re.split(r"[/\\]", name)[-1].strip().rstrip(". ")
    if base in ("", ".", ".."):
        base = "attachment"
    if len(base.encode("utf-8")) > _MAX_FILENAME_BYTES:
        raise ValidationError(f"'filename' must be at most {_MAX_FILENAME_BYTES} bytes in UTF-8")
    return base


def check_message_id(value: str) -> str:
    """A ``Message-ID`` as RFC 5322 writes it: ``<left@right>``, printable ASCII.

    :raises ValidationError: for anything else (spaces, CR/LF, several ids, no brackets).
    """
    if len(value) > _MAX_MESSAGE_ID or not _MESSAGE_ID.fullmatch(value):
        raise ValidationError("'Message-ID' must look like <left@right> in printable ASCII")
    return value


def _as_mail_reads(name: str, text: str) -> str:
    """*text* followed by each reading of it a mail reader makes: the ``email`` package
    decodes RFC 2047 encoded words (``=?utf-8?q?a=0D=0Ab?=`` reads as "a", CR LF, "b") in
    any text written as a header, and a decoded word may hold another one.

    :raises ValidationError: when encoded words nest too deeply to be read through.
    """
    readings = [text]
    for _ in range(_MAX_ENCODED_LEVELS):
        if "=?" not in readings[-1]:
            return "".join(readings)
        decoded = str(policy.default.header_factory("subject", readings[-1]))
        if decoded == readings[-1]:
            return "".join(readings)
        readings.append(decoded)
    raise ValidationError(f"'{name}' must not nest RFC 2047 encoded words this deeply")


def is_message_id(value: str) -> bool:
    """Whether *value* is a well-formed ``Message-ID`` (see :func:`check_message_id`)."""
    try:
        check_message_id(value)
    except ValidationError:
        return False
    return True


def check_attachment_sizes(sizes: Sequence[int], settings: MessagingSettings) -> None:
    """How many attachments a message carries, and how large they are, one by one and
    together.

    :raises ValidationError: naming the first attachment (from 1) over a limit.
    """
    if len(sizes) > settings.max_attachments:
        raise ValidationError(
            f"a message may have at most {settings.max_attachments} attachments (got {len(sizes)})"
        )
    total = sum(sizes)
    if total > settings.max_message_bytes:
        raise ValidationError(
            f"a message's attachments must total at most {settings.max_message_bytes} bytes "
            f"(got {total})"
        )
    for position, size in enumerate(sizes):
        if size == 0:
            raise ValidationError(f"attachment {position + 1} is empty")
        if size > settings.max_attachment_bytes:
            raise ValidationError(
                f"attachment {position + 1} must be at most {settings.max_attachment_bytes} "
                f"bytes (got {size})"
            )


# --- threading -------------------------------------------------------------------------------

#: How many earlier Message-IDs a message lists in References (RFC 5322 §3.6.4 lets a
#: client trim the list; long threads must not grow a header without bound).
MAX_REFERENCES: Final = 20


def actor_side(actor_kind: ActorKind) -> str:
    """The side of a conversation an actor writes from: ``professional``, or ``patient``
    (the holder and their representatives)."""
    return "professional" if actor_kind is ActorKind.PROFESSIONAL else "patient"


def reply_headers(
    earlier: Sequence[tuple[str, str]], writer_side: str, in_reply_to: str | None = None
) -> tuple[str | None, tuple[str, ...]]:
    """The ``In-Reply-To`` and ``References`` of a new message in a thread (RFC 5322 §3.6.4).

    :param earlier: the thread's messages so far, oldest first, as ``(side, Message-ID)``.
    :param in_reply_to: what the message itself says it replies to (a received message),
        kept as is; otherwise it replies to the other side's latest message, or to the
        latest one when only its own side has written.
    :return: ``(in_reply_to, references)``, the references trimmed to the last
        :data:`MAX_REFERENCES`.
    """
    if in_reply_to is None and earlier:
        other = [message_id for who, message_id in earlier if who != writer_side]
        in_reply_to = (other or [message_id for _, message_id in earlier])[-1]
    references = tuple(message_id for _, message_id in earlier)[-MAX_REFERENCES:]
    return in_reply_to, references


def reply_subject(subject: str, limit: int) -> str:
    """The default subject of a reply: ``Re: <subject>``, not prefixed twice, within
    *limit* characters."""
    prefixed = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    return prefixed[:limit]


# --- filing an attachment into the record ----------------------------------------------------

#: Patient-deposited types by the class of a received CDA: a document the patient files
#: is theirs (TRE_A05 DOCPAT types, docs/domain-rules.md §3.3); its original codes are kept
#: in its comments.
_DOCPAT_BY_CLASS: Final = {
    "10": "DOCPAT03",
    "11": "DOCPAT01",
    "31": "DOCPAT04",
    "42": "DOCPAT02",
    "43": "DOCPAT02",
    "44": "DOCPAT02",
    "45": "DOCPAT02",
    "52": "DOCPAT07",
    "95": "DOCPAT09",
}
#: Biology reports among class 10: filed as "CR de biologie déposé par le patient".
_BIOLOGY_TYPES: Final = frozenset({"11502-2", "11526-1", "51969-4"})
#: What a filed file that is not a CDA becomes unless the patient says otherwise: "Autre
#: document du patient" (class 90), the one type that claims nothing about the content.
_DEFAULT_FILED_TYPE: Final = Code("EXPPAT_2", TRE_A05_TYPE)
_EXTENSIONS: Final = {
    "application/pdf": ".pdf",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "application/dicom": ".dcm",
    "text/plain": ".txt",
}


def filed_type(parsed: ParsedDocument | None) -> Code:
    """The patient-deposited type (TRE_A05) a filed attachment takes, from the class (and
    type) of the CDA it is, or ``EXPPAT_2`` for anything else."""
    if parsed is None or parsed.class_code is None:
        return _DEFAULT_FILED_TYPE
    if parsed.class_code == "10" and parsed.type_code in _BIOLOGY_TYPES:
        return Code("DOCPAT05", TRE_A05_TYPE)
    code = _DOCPAT_BY_CLASS.get(parsed.class_code)
    return Code(code, TRE_A05_TYPE) if code else _DEFAULT_FILED_TYPE


def filename_of(title: str, media_type: str) -> str:
    """The file name a record document is attached under: its title, made safe, with the
    extension of its media type (``.xml`` for a CDA and anything unknown)."""
    extension = _EXTENSIONS.get(media_type, ".xml")
    stem = "".join(c if c.isalnum() or c in " -_" else "_" for c in title).strip()
    return f"{stem[:100] or 'document'}{extension}"


def title_of(filename: str) -> str:
    """The title of a filed attachment that carries none: its file name, without extension."""
    stem, dot, _ = filename.rpartition(".")
    return (stem if dot and stem else filename)[:200] or "Document reçu"
