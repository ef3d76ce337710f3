"""The one check of text that enters the model, and the one safe rendering of stored text.

Free text reaches places that interpret characters: terminals (an ESC starts a control
sequence that can rewrite the screen, set the window title or, through OSC 8, plant a
link), mail headers and HL7 segments (CR/LF starts a new header or segment), C libraries
and databases (NUL cuts a string short), and screens (bidirectional overrides make
``facture\\u202efdp.exe`` display as ``factureexe.pdf``). Every field a caller types, a
title, a comment, a name, a subject, an establishment, is checked here before it is stored:

- C0 and C1 control characters are refused (DEL included), except TAB and, in multiline
  fields, LF (CR LF and lone CR are read as LF first);
- bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) are
  refused;
- lone surrogates (which no UTF-8 can hold) and Unicode non-characters (U+FDD0-U+FDEF and
  the last two code points of every plane) are refused;
- the text is put in NFC, so that one name has one stored form whichever keyboard typed it;
- its length, counted after NFC, is capped: each kind of field has its default in
  :data:`LIMITS`, in this one place.

A refusal is a :class:`~monespace.errors.ValidationError` that names the field and the rule,
never the value: free text is often health data, and error messages reach logs and HTTP
responses.

Text from elsewhere that must not be lost because of its name (a file name in a DMP
archive) is not refused but *neutralised* (:func:`neutralise_text`): each refused character
is replaced by a visible ``\\u`` escape.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from .errors import ValidationError

__all__ = [
    "BIDI_CONTROLS",
    "LIMITS",
    "check_optional_text",
    "check_text",
    "is_refused",
    "neutralise_text",
]

#: Characters that reorder text on screen: embeddings, overrides and isolates.
BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

#: U+FEFF, the byte order mark (deprecated as a zero-width no-break space): invisible, and
#: dropped by readers of files that start a value with it (an iCalendar title of only that
#: character would come back empty).
_BYTE_ORDER_MARK: Final = "\ufeff"

#: The longest text of each kind of field, in characters after NFC. A field's own
#: check names its kind; the HTTP API may cap lower, never higher.
LIMITS: Final[dict[str, int]] = {
    "title": 500,  # a document title (the API's ShortText)
    "comment": 2_000,  # a document comment, a measure note, a profile entry's note
    "name": 200,  # a person's or an establishment's name, a profile entry's label
    "line": 200,  # one line of a postal address, a city, a phone number
    "subject": 250,  # a message subject
    "label": 255,  # a file name, a code, an identifier typed by hand
    "source": 1_000,  # where an imported document came from (archive!member path)
}


def _is_noncharacter(code: int) -> bool:
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def is_refused(char: str, *, multiline: bool = False) -> bool:
    """Whether :func:`check_text` refuses *char* (one character)."""
    if char == "\t" or (multiline and char == "\n"):
        return False
    code = ord(char)
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or char in BIDI_CONTROLS
        or 0xD800 <= code <= 0xDFFF
        or _is_noncharacter(code)
        or char == _BYTE_ORDER_MARK
    )


def _refused_pattern(*, multiline: bool) -> re.Pattern[str]:
    """One character class of everything :func:`is_refused` refuses: a scan in C rather
    than a Python call per character (the check runs on every field of every identity
    opened, a batch of invitations opens hundreds)."""
    controls = "\x00-\x08\x0b-\x1f" if multiline else "\x00-\x08\x0a-\x1f"
    planes = "".join(chr(plane << 16 | low) for plane in range(17) for low in (0xFFFE, 0xFFFF))
    others = "".join(sorted(BIDI_CONTROLS)) + _BYTE_ORDER_MARK + planes
    return re.compile(f"[{controls}\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef{re.escape(others)}]")


_REFUSED: Final = {False: _refused_pattern(multiline=False), True: _refused_pattern(multiline=True)}


def check_text(name: str, value: str, *, max_length: int, multiline: bool = False) -> str:
    """*value* as stored: in NFC, line ends read as LF when *multiline*.

    Nothing else is changed (surrounding spaces are the caller's business): the check
    refuses, it does not clean.

    :param name: the field, as the error names it (``'title'``).
    :param max_length: the most characters allowed, after NFC (see :data:`LIMITS`).
    :param multiline: whether LF may appear (comments, notes); CR LF and CR count as LF.
    :raises ValidationError: naming the field and the rule, never the value.
    :raises TypeError: when *value* is not a ``str``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name!r} must be a str")
    # Checked on the raw length first, so that a megabyte is refused before it is scanned
    # or normalised (NFC never more than triples a length).
    if len(value) > 3 * max_length:
        raise ValidationError(f"{name!r} must be at most {max_length} characters")
    text = value.replace("\r\n", "\n").replace("\r", "\n") if multiline else value
    if _REFUSED[multiline].search(text) is not None:
        raise ValidationError(
            f"{name!r} must not contain control characters"
            f"{'' if multiline else ' (such as CR/LF)'}, bidirectional overrides, "
            "lone surrogates or non-characters"
        )
    text = unicodedata.normalize("NFC", text)
    if len(text) > max_length:
        raise ValidationError(f"{name!r} must be at most {max_length} characters")
    return text


def check_optional_text(
    name: str, value: str | None, *, max_length: int, multiline: bool = False
) -> str | None:
    """:func:`check_text`, letting ``None`` through."""
    if value is None:
        return None
    return check_text(name, value, max_length=max_length, multiline=multiline)


def neutralise_text(value: str, *, max_length: int) -> str:
    """A safe rendering of text that must be kept whatever it holds (a file name read from
    an archive): every character :func:`check_text` refuses becomes a visible escape
    (``\\x1b`` → ``\\u001b``), the result is in NFC and cut to *max_length* characters.
    Text that passes the check comes back unchanged (in NFC).
    """
    text = "".join(
        f"\\u{ord(char):04x}" if is_refused(char) else char for char in value[: 3 * max_length]
    )
    return unicodedata.normalize("NFC", text)[:max_length]
