"""Checks on what senders write: subjects, bodies, file names and ``Message-ID`` values.

They run before anything is stored, and their messages say which rule failed, never what was
written (a subject is health data, and error messages reach logs and HTTP responses).
Subjects and file names end up in mail headers: a control character there (CR/LF above all)
is a header injection, so it is refused, not cleaned.
"""

from __future__ import annotations

import re
import unicodedata
from email import policy
from typing import Final

from ..errors import ValidationError

__all__ = ["check_body", "check_message_id", "check_subject", "safe_filename"]

#: Characters that reorder text on screen: "facture\u202efdp.exe" displays as "factureexe.pdf".
_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MAX_FILENAME_BYTES: Final = 255
#: RFC 5322 msg-id: "<" id-left "@" id-right ">", printable ASCII without spaces or brackets.
_MESSAGE_ID: Final = re.compile(r"<[!-;=?-~]{1,240}@[!-;=?-Z^-~]{1,240}>")
_MAX_MESSAGE_ID: Final = 250
#: Levels of RFC 2047 encoded words read before a text is refused as nesting too deeply.
_MAX_ENCODED_LEVELS: Final = 4


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"


def check_subject(subject: str, *, limit: int) -> str:
    """A subject as stored: surrounding spaces removed.

    :raises ValidationError: when it is empty, longer than *limit* characters, or holds a
        control character (CR/LF: header injection) or a lone surrogate.
    """
    text = subject.strip()
    if not text:
        raise ValidationError("'subject' must not be empty")
    if len(text) > limit:
        raise ValidationError(f"'subject' must be at most {limit} characters (got {len(text)})")
    if any(_is_control(c) or c in _BIDI_CONTROLS for c in _as_mail_reads("subject", text)):
        raise ValidationError(
            "'subject' must not contain control characters (such as CR/LF) or "
            "bidirectional overrides, RFC 2047 encoded words decoded"
        )
    _check_encodable("subject", text)
    return text


def check_body(body: str, *, limit: int) -> str:
    """A body as stored: line ends normalised to ``\\n``.

    :raises ValidationError: when it is empty, longer than *limit* characters, or holds a
        control character other than tab, line feed and form feed (an escape sequence that
        would drive a terminal, a NUL that would cut it short) or a lone surrogate.
    """
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ValidationError("'body' must not be empty")
    if len(text) > limit:
        raise ValidationError(f"'body' must be at most {limit} characters (got {len(text)})")
    if any(_is_control(c) and c not in "\t\n\f" for c in text):
        raise ValidationError("'body' must not contain control characters but tab and newline")
    _check_encodable("body", text)
    return text


def safe_filename(name: str) -> str:
    """The file name to keep for an attachment.

    Path parts are dropped (``../../etc/passwd`` → ``passwd``; ``C:\\x\\y.pdf`` → ``y.pdf``),
    as are trailing dots and spaces (Windows ignores them, so ``a.exe.`` opens as an
    executable); an empty result becomes ``attachment``.

    :raises ValidationError: when the name holds a control character (NUL, CR/LF) or a
        bidirectional override (extension spoofing), or is longer than 255 bytes in UTF-8.
    """
    if any(_is_control(c) or c in _BIDI_CONTROLS for c in _as_mail_reads("filename", name)):
        raise ValidationError(
            "'filename' must not contain control characters or bidirectional overrides, "
            "RFC 2047 encoded words decoded"
        )
    _check_encodable("filename", name)
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


def _check_encodable(name: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"'{name}' must be valid Unicode (no lone surrogates)") from None
