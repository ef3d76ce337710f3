"""Header values, checked on the text a mail reader will see.

The ``email`` package reads RFC 2047 encoded words (``=?charset?b?...?=``,
``=?charset?q?...?=``) in any text given to it as a header value, and writes the decoded text
back out: an encoded word whose decoded text holds CR LF becomes a header of its own. So
every value bound for a header is decoded here first, level by level (a decoded word may hold
another one), with the ``email`` package itself, and refused when any level holds a control
character, a line or paragraph separator, a lone surrogate or a bidirectional override. What
is written is the fully decoded text, which holds no encoded word left to reinterpret.

Addresses are stricter still: one bare ``local@domain`` with dot-atom parts (no display
name, comment, quoted string, comma or whitespace), so that a value cannot add a recipient.
"""

from __future__ import annotations

import re
import unicodedata
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Final

from monespace.errors import ValidationError

__all__ = ["MIME_POLICY", "check_mailbox", "header_text", "verify_written"]

#: The policy messages are written with: CRLF line ends, and a defect is an error.
MIME_POLICY: Final = policy.SMTP.clone(raise_on_defect=True)
#: Encoded words decoded at most this deep; deeper nesting is refused.
_MAX_LEVELS: Final = 4
_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Categories no header text may hold: controls (CR, LF, NUL, ESC...), lone surrogates, and
#: the line and paragraph separators that ``str.splitlines`` treats as line ends.
_FORBIDDEN: Final = frozenset({"Cc", "Cs", "Zl", "Zp"})
_ATOM: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_MAILBOX: Final = re.compile(
    rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_MAX_LOCAL: Final = 64
_MAX_MAILBOX: Final = 254


def _check_plain(label: str, text: str) -> None:
    if any(unicodedata.category(c) in _FORBIDDEN or c in _BIDI_CONTROLS for c in text):
        raise ValidationError(
            f"the {label} must not contain control characters (such as CR/LF) or "
            "bidirectional overrides, once RFC 2047 encoded words are decoded"
        )


def header_text(label: str, value: str) -> str:
    """The text a mail reader shows for *value*: encoded words decoded until none is left.

    :param label: what the value is, for the error message ("Subject", "file name").
    :raises ValidationError: when *value*, or the text of an encoded word in it at any level,
        holds a control character, a line separator, a lone surrogate or a bidirectional
        override, or when encoded words nest deeper than a few levels.
    """
    text = value
    for _ in range(_MAX_LEVELS):
        _check_plain(label, text)
        if "=?" not in text:
            return text
        # The email package decodes encoded words when it parses a header value: ask it.
        decoded = str(MIME_POLICY.header_factory("subject", text))
        if decoded == text:
            return text
        text = decoded
    raise ValidationError(f"the {label} nests RFC 2047 encoded words too deeply")


def check_mailbox(label: str, value: str) -> str:
    """*value* if it is one bare ``local@domain`` address with dot-atom parts.

    :raises ValidationError: for anything else: a display name, a comment, a quoted local
        part, a list, an RFC 2047 encoded word, whitespace or control characters, non-ASCII
        text, over-long parts.
    """
    if (
        len(value) > _MAX_MAILBOX
        or not value.isascii()
        or not _MAILBOX.fullmatch(value)
        or len(value.partition("@")[0]) > _MAX_LOCAL
        # The email package decodes an encoded word even in an address's local part.
        or "=?" in value
    ):
        raise ValidationError(
            f"the {label} address must be one bare local@domain address (dot-atom parts, "
            "no display name, comment, list, encoded word or whitespace)"
        )
    return value


def verify_written(mime: EmailMessage, expected: dict[str, str], filenames: list[str]) -> None:
    """Read *mime* back as a receiver would, and check that it says what was meant.

    The message's own headers must be exactly the *expected* names (besides the MIME ones
    the ``email`` package adds), with the expected text; its attachments must carry exactly
    *filenames*, in order; no part may hold a header the builder did not write.

    :raises ValidationError: when the written message would read differently.
    """
    parsed = BytesParser(policy=policy.default).parsebytes(mime.as_bytes())
    names = [name.lower() for name in parsed]
    wanted = [name.lower() for name in expected]
    added = {"mime-version", "content-type", "content-transfer-encoding"}
    if sorted(n for n in names if n not in added) != sorted(wanted) or len(names) != len(
        set(names)
    ):
        raise ValidationError("the message would not read back with the headers it was given")
    for name, value in expected.items():
        if str(parsed[name]) != value:
            raise ValidationError(f"the {name} header would not read back as written")
    part_headers = {"content-type", "content-transfer-encoding", "content-disposition"}
    parts = list(parsed.walk())
    for part in parts[1:]:
        if any(name.lower() not in part_headers | {"mime-version"} for name in part):
            raise ValidationError("a part of the message would read back with extra headers")
    written = [part.get_filename() for part in parsed.iter_attachments()]
    if written != filenames:
        raise ValidationError("an attachment's file name would not read back as written")
