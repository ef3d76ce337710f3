"""Checking a declared media type against what the bytes are (magic numbers).

A content that lies about its type is refused: a "PDF" that is an HTML page, or an
executable called an image, is how malicious documents reach people.
"""

from __future__ import annotations

from ..errors import ValidationError

__all__ = ["SUPPORTED_MEDIA_TYPES", "check_media_type", "detect_media_type", "sniff"]

_XML_TYPES = frozenset({"text/xml", "application/xml", "application/hl7-v3+xml"})

#: The media types a content may be declared as, and what each must look like.
SUPPORTED_MEDIA_TYPES = frozenset(
    {"application/pdf", "image/jpeg", "image/png", "application/dicom", "text/plain"} | _XML_TYPES
)

_BOM = b"\xef\xbb\xbf"


_MAGIC = (
    (0, b"%PDF-", "application/pdf"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (128, b"DICM", "application/dicom"),
)


def sniff(data: bytes) -> str | None:
    """What *data* looks like: one of the supported types, or ``None`` when unknown."""
    for offset, magic, media in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return media
    head = data.removeprefix(_BOM).lstrip()
    if head.startswith((b"<?xml", b"<ClinicalDocument", b"<xsl:stylesheet")) or (
        head.startswith(b"<") and b"ClinicalDocument" in head[:4096]
    ):
        return "text/xml"
    return "text/plain" if _is_text(data) else None


#: Formats recognised only to say that a record does not take them (and what to do).
_REFUSED_MAGIC = (
    (b"II*\x00", "image/tiff", "convert it to PDF or PNG"),
    (b"MM\x00*", "image/tiff", "convert it to PDF or PNG"),
    (b"GIF8", "image/gif", "convert it to PNG"),
    (b"PK\x03\x04", "a ZIP archive", "add its documents one by one"),
)


def detect_media_type(data: bytes) -> str:
    """The media type a record stores *data* as, told from the bytes alone, for a caller
    that was not told (a file given without its type).

    PDF, JPEG, PNG and DICOM by their magic numbers; XML (a CDA R2 document, whose root is
    ``{urn:hl7-org:v3}ClinicalDocument``, or any other XML) as ``text/xml``, which the CDA
    parser then reads; UTF-8 text without control characters as ``text/plain``. The result
    passes :func:`check_media_type`.

    :raises ValidationError: when the bytes are none of the accepted types (TIFF, an
        archive, binary data, text in another encoding); the message lists the accepted
        types, names what the bytes look like when it is known, and never quotes them.
    """
    if not data:
        raise ValidationError("the content is empty: there is no media type to tell")
    allowed = ", ".join(sorted(SUPPORTED_MEDIA_TYPES))
    # First: a short header of such a format can also pass for text.
    for magic, what, step in _REFUSED_MAGIC:
        if data.startswith(magic):
            raise ValidationError(
                f"the content looks like {what}, which a record does not accept "
                f"(accepted: {allowed}): {step}"
            )
    found = sniff(data)
    if found is not None:
        return found
    raise ValidationError(
        "the media type of the content cannot be told from its bytes: it is neither PDF, "
        f"JPEG, PNG, DICOM, XML nor UTF-8 text (accepted: {allowed})"
    )


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    # Control characters other than tab, newlines and form feed mean binary data.
    return not any(ord(c) < 32 and c not in "\t\n\r\f" for c in text)


def check_media_type(declared: str, data: bytes) -> str:
    """Normalise *declared* and check that *data* is what it claims.

    :return: the media type to store (lower case, without parameters).
    :raises ValidationError: when the type is not supported, or the bytes are something else;
        the message names the types, never the content.
    """
    media = declared.split(";", 1)[0].strip().lower()
    if media not in SUPPORTED_MEDIA_TYPES:
        allowed = ", ".join(sorted(SUPPORTED_MEDIA_TYPES))
        raise ValidationError(f"media type {media!r} is not accepted (accepted: {allowed})")
    found = sniff(data)
    matches = found == media or (media in _XML_TYPES and found == "text/xml")
    # Plain text is anything textual: XML declared as text is still text.
    if media == "text/plain" and found == "text/xml":
        matches = True
    if not matches:
        seen = found or "unrecognised binary data"
        raise ValidationError(f"the content was declared {media} but looks like {seen}")
    return media
