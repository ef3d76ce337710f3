"""Hardened XML parsing for documents that come from outside (CDA R2, XDS, value sets).

It sits below every capability: interop reads CDA and XDS with it, and the record reads the
CI-SIS value sets it ships with it, without importing interop (an upper layer).

Every XML document monespace reads goes through :func:`parse_xml`. The rules
(``docs/dependencies.md`` §3, ``docs/security-and-reliability.md`` T3):

* bytes only, never ``str``: the parser reads the encoding declaration and a UTF-8 byte-order
  mark itself, so a document is never decoded by hand with the wrong codec;
* a size limit checked before any parsing;
* no DTD loading or validation, no entity substitution, no network, no huge-tree mode (which
  keeps libxml2's limits: 256 levels of nesting, 10 MB per text node or attribute value, and
  its entity-amplification guard);
* a document type declaration that declares entities (billion laughs, XXE), names an
  external DTD or carries any internal DTD subset is refused *before* parsing; entity
  declarations and external DTDs are checked again after parsing (a second, independent
  check that also covers encodings the first one cannot read). A bare
  ``<!DOCTYPE ClinicalDocument>`` is harmless and accepted;
* every external resource the parser might still try to open is answered by a resolver that
  hands back nothing and marks the document hostile, so no file (``file:///etc/passwd``) or
  URL is ever read.

Errors are :class:`~monespace.errors.ValidationError` subclasses whose messages say what is
wrong and where (line, column, libxml2 error name), never what the document contains: lxml's
own messages can quote the document, so they are not passed on.
"""

from __future__ import annotations

from typing import Any, Final

from lxml import etree

from monespace.errors import (
    DocumentTooLargeError,
    HostileDocumentError,
    MalformedDocumentError,
    ValidationError,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DocumentTooLargeError",
    "HostileDocumentError",
    "MalformedDocumentError",
    "parse_xml",
]

#: The default size limit, the same order as the DMP's own limit for a document (and as
#: :attr:`monespace.Settings.max_content_bytes`).
DEFAULT_MAX_BYTES: Final = 20 * 1024 * 1024


# --- the pre-parse check of the prolog --------------------------------------------------------

_WHITESPACE: Final = " \t\r\n"


def _prolog_text(data: bytes) -> str:
    """The document as text, well enough to read its prolog (which is ASCII markup).

    UTF-16 is recognised by its byte-order mark or by ``<?`` spelt in two-byte units; any other
    encoding the CDA world uses (UTF-8, ISO-8859-x) is ASCII-compatible, and Latin-1 maps every
    byte to one character, so markup is found at the same place whatever the real encoding.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if data.startswith(b"<\x00?\x00"):
        return data.decode("utf-16-le", errors="replace")
    if data.startswith(b"\x00<\x00?"):
        return data.decode("utf-16-be", errors="replace")
    return data.decode("latin-1")


def _doctype(text: str) -> str | None:
    """The document type declaration and everything after it, or ``None`` when there is none.

    Walks the prolog (byte-order mark, XML declaration, comments, processing instructions,
    white space) and stops at the first other markup: a DOCTYPE can only appear there.
    """
    i = 0
    n = len(text)
    # Both a decoded BOM (U+FEFF) and the Latin-1 view of a UTF-8 BOM can start the text.
    for bom in ("\ufeff", "\xef\xbb\xbf"):
        if text.startswith(bom):
            i = len(bom)
            break
    while i < n:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if text.startswith("<?", i):
            end = text.find("?>", i + 2)
        elif text.startswith("<!--", i):
            end = text.find("-->", i + 4)
        elif text.startswith("<!DOCTYPE", i):
            return text[i:]
        else:
            return None
        if end < 0:
            return None  # unterminated: the parser reports it as malformed
        i = end + 2 if text[end] == "?" else end + 3
    return None


def _check_doctype(data: bytes) -> None:
    declaration = _doctype(_prolog_text(data))
    if declaration is None:
        return
    # The external identifier and the internal subset both come after the name; quotes only
    # appear in the external identifier, so the first "[" or ">" ends the head.
    head_end = min(
        (k for k in (declaration.find("["), declaration.find(">")) if k >= 0), default=-1
    )
    head = declaration if head_end < 0 else declaration[:head_end]
    words = head.split()
    if "SYSTEM" in words or "PUBLIC" in words:
        raise HostileDocumentError(
            "the document type declaration names an external DTD; external DTDs are never "
            "loaded and such documents are refused",
            reason="external-dtd",
        )
    if head_end >= 0 and declaration[head_end] == "[":
        if "<!ENTITY" in declaration[head_end:]:
            raise HostileDocumentError(
                "the document type declaration declares entities (a billion-laughs or "
                "external-entity attack); such documents are refused",
                reason="entity-declaration",
            )
        raise HostileDocumentError(
            "the document has an internal DTD subset; DTDs are not accepted in documents",
            reason="internal-dtd-subset",
        )


# --- the parser ---------------------------------------------------------------------------------


class _RefuseAll(etree.Resolver):
    """Answers every request for an external resource with nothing, and remembers it.

    With the parser options below libxml2 should never ask; this is the second line of
    defence. (lxml 6.1 does load an external DTD when ``collect_ids=False`` is passed, even
    with ``load_dtd=False``: such interactions are why this resolver exists.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.asked = False

    # lxml-stubs 0.5.1 leaves out the context argument that lxml passes.
    def resolve(  # type: ignore[override]
        self, system_url: str, public_id: str, context: object
    ) -> object:
        self.asked = True
        return self.resolve_string("", context, base_url=None)


def _parser(resolver: _RefuseAll) -> etree.XMLParser:
    # A new parser per document: lxml parsers keep an error log and must not be shared
    # between threads.
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        remove_comments=True,
        remove_pis=True,
    )
    parser.resolvers.add(resolver)
    return parser


# libxml2 error names that mean "a safety limit or an external resource", not "broken".
_HOSTILE_ERRORS: Final = frozenset(
    {
        "ERR_RESOURCE_LIMIT",
        "ERR_ENTITY_LOOP",
        "ERR_ENTITY_IS_EXTERNAL",
        "ERR_EXTERNAL_ENTITY",
        "IO_NETWORK_ATTEMPT",
    }
)


def _syntax_error(parser: etree.XMLParser) -> ValidationError:
    entries = list(parser.error_log)
    hostile = next((e for e in entries if e.type_name in _HOSTILE_ERRORS), None)
    if hostile is not None:
        return HostileDocumentError(
            f"the document exceeds a parser safety limit or refers to an external resource "
            f"({hostile.type_name} at line {hostile.line}, column {hostile.column}); "
            "limits: 256 levels of nesting, 10 MB per text node or attribute, no entity "
            "expansion",
            reason=hostile.type_name,
        )
    if not entries:
        return MalformedDocumentError("the document is not well-formed XML")
    first = entries[0]
    if first.type_name == "ERR_DOCUMENT_EMPTY":
        what = "not XML"
    elif first.type_name in ("ERR_INVALID_ENCODING", "ERR_UNSUPPORTED_ENCODING"):
        what = "not in the encoding it declares"
    else:
        what = "not well-formed XML"
    return MalformedDocumentError(
        f"the document is {what} ({first.type_name} at line {first.line}, column {first.column})",
        line=first.line,
        column=first.column,
        reason=first.type_name,
    )


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse an untrusted XML document and return its root element.

    :param data: the document's bytes, as received (a UTF-8 byte-order mark is fine; the
        encoding declaration is honoured).
    :param max_bytes: the largest document accepted, checked before parsing.
    :returns: the root element. Comments and processing instructions are dropped.
    :raises TypeError: when *data* is not ``bytes`` (a ``str`` would have been decoded by
        someone who did not read its encoding declaration).
    :raises DocumentTooLargeError: when *data* is longer than *max_bytes*.
    :raises HostileDocumentError: for entity declarations, an external DTD, an attempt to
        load an external resource, or a parser safety limit exceeded.
    :raises MalformedDocumentError: for empty, truncated, mis-encoded or otherwise
        not well-formed input.

    .. versionadded:: 0.1
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_xml() takes the document's bytes, not a decoded str")
    data = bytes(data)
    if len(data) > max_bytes:
        raise DocumentTooLargeError(len(data), max_bytes)
    if not data or data.isspace():
        raise MalformedDocumentError("the document is empty", reason="ERR_DOCUMENT_EMPTY")
    _check_doctype(data)
    resolver = _RefuseAll()
    parser = _parser(resolver)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        # The exception text quotes the document; the error log entries give what we need.
        raise _syntax_error(parser) from None
    except etree.LxmlError:
        raise MalformedDocumentError("the document could not be parsed as XML") from None
    if resolver.asked:
        raise HostileDocumentError(
            "the document refers to an external resource (a DTD or an entity); external "
            "resources are never loaded and such documents are refused",
            reason="external-resource",
        )
    # lxml-stubs 0.5.1 describe DocInfo and DTD incompletely (no system_url, no entities()).
    docinfo: Any = root.getroottree().docinfo
    dtd: Any = docinfo.internalDTD
    if docinfo.system_url or docinfo.public_id:
        raise HostileDocumentError(
            "the document type declaration names an external DTD", reason="external-dtd"
        )
    if dtd is not None and any(True for _ in dtd.entities()):
        raise HostileDocumentError(
            "the document type declaration declares entities", reason="entity-declaration"
        )
    return root
