"""CDA R2 documents as HTML a person can read, built only from what is known to be safe.

A CDA document carries its human-readable part in the ``<text>`` block of each section (the
*narrative block*, CDA R2 §4.3.5), in a small markup language of its own. This module maps
that markup to HTML through an allow-list, element by element:

============================  =====================================================
CDA narrative                 HTML
============================  =====================================================
``paragraph``                 ``<p>``
``list`` / ``item``           ``<ul>`` (``<ol>`` when ``listType="ordered"``) / ``<li>``
``table`` and its parts       ``<table>``, ``<caption>``, ``<thead>``, ``<tbody>``,
                              ``<tfoot>``, ``<tr>``, ``<th>``, ``<td>`` (only
                              ``colspan``/``rowspan``, as numbers, are kept)
``content``                   ``<span>``, its ``styleCode`` (Bold, Italics,
                              Underline, Emphasis...) as classes of our own style sheet
``br``, ``sub``, ``sup``      the same
``caption`` outside a table   ``<strong>``
``linkHtml``                  ``<a>`` when its ``href`` is an ``http(s)`` address,
                              plain text otherwise (``javascript:``, ``data:``...)
``footnote``                  ``<small>``
``renderMultiMedia``,         left out
``footnoteRef``, comments,
processing instructions
anything else                 its text only
============================  =====================================================

Nothing of the document reaches the page otherwise: no attribute is copied (``style``,
``onload``, ``ID`` are dropped), no element outside the list (a ``<script>`` keeps only its
text, escaped), never the document's own style sheet (an *auto-presentable* document, whose
root is an XSLT style sheet wrapping the CDA, is read for the CDA inside it only). Every text
is escaped. Parsing goes through the hardened parser (:func:`monespace._xml.parse_xml`).

A CDA level 1 document (``nonXMLBody``) carries a file instead, base64 encoded: it is
returned decoded, to be shown in a sandboxed frame (a PDF) or as an image.
"""

from __future__ import annotations

import base64
import binascii
import html
from collections.abc import Callable
from typing import Final

import attrs
from lxml import etree

from .._xml import parse_xml

__all__ = ["INLINE_MEDIA_TYPES", "EmbeddedFile", "ReadableCda", "read_cda"]

_NS: Final = "urn:hl7-org:v3"
_V3: Final = f"{{{_NS}}}"
_e = html.escape

#: Narrative elements mapped one to one.
_SAME: Final = {
    "paragraph": "p",
    "item": "li",
    "thead": "thead",
    "tbody": "tbody",
    "tfoot": "tfoot",
    "tr": "tr",
    "th": "th",
    "td": "td",
    "sub": "sub",
    "sup": "sup",
    "footnote": "small",
}
#: Narrative elements left out with everything inside them.
_DROPPED: Final = frozenset({"renderMultiMedia", "footnoteRef", "col", "colgroup"})
#: ``styleCode`` values (CDA R2 §4.3.5.11) and the class of the page's style sheet for each.
_STYLES: Final = {
    "bold": "cda-bold",
    "italics": "cda-italics",
    "underline": "cda-underline",
    "emphasis": "cda-emphasis",
    "lrule": "cda-rule",
    "rrule": "cda-rule",
    "toprule": "cda-rule",
    "botrule": "cda-rule",
}
_MAX_SPAN: Final = 1000
#: Media types of a level 1 body shown on the page (an image inline, a PDF in a frame).
INLINE_MEDIA_TYPES: Final = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp"}
)


@attrs.frozen
class EmbeddedFile:
    """The file a CDA level 1 document carries (``nonXMLBody``), decoded."""

    media_type: str
    content: bytes


@attrs.frozen
class ReadableCda:
    """What a person reads of a CDA document.

    :param title: the document's own title, if it has one.
    :param html: the sections' narratives as safe HTML (empty for a level 1 document).
    :param embedded: the file of a level 1 document, if any.
    """

    title: str
    html: str
    embedded: EmbeddedFile | None


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2] if tag.startswith(_V3) else ""


def _text(value: str | None) -> str:
    return _e(value) if value else ""


def _href(value: str | None) -> str | None:
    if not value:
        return None
    stripped = value.strip()
    lowered = stripped.lower()
    if not lowered.startswith(("https://", "http://")) or any(c in stripped for c in "\"'<> \t\n"):
        return None
    return stripped


def _span_attributes(element: etree._Element) -> str:
    spans = []
    for name in ("colspan", "rowspan"):
        value = element.get(name)
        if value is not None and value.isdigit() and 0 < int(value) <= _MAX_SPAN:
            spans.append(f' {name}="{int(value)}"')
    return "".join(spans)


def _narrative(element: etree._Element, *, in_table: bool = False) -> str:
    """The HTML of the children of a narrative element (its text and their tails)."""
    parts = [_text(element.text)]
    for child in element:
        parts.append(_node(child, in_table=in_table))
        parts.append(_text(child.tail))
    return "".join(parts)


def _list(element: etree._Element, in_table: bool) -> str:
    tag = "ol" if (element.get("listType") or "").lower() == "ordered" else "ul"
    items = "".join(
        _node(child, in_table=in_table) for child in element if _local(child.tag) == "item"
    )
    caption = "".join(
        f"<p><strong>{_narrative(c)}</strong></p>" for c in element if _local(c.tag) == "caption"
    )
    return f"{caption}<{tag}>{items}</{tag}>"


def _caption(element: etree._Element, in_table: bool) -> str:
    inner = _narrative(element)
    return f"<caption>{inner}</caption>" if in_table else f"<strong>{inner}</strong>"


def _table(element: etree._Element, _in_table: bool) -> str:
    # a wide table scrolls within its box, which the keyboard must reach (WCAG 2.1.1)
    return (
        '<div class="cda-table" tabindex="0" role="region" aria-label="Tableau">'
        f"<table>{_narrative(element, in_table=True)}</table></div>"
    )


def _content(element: etree._Element, in_table: bool) -> str:
    classes = sorted(
        {
            _STYLES[token.lower()]
            for token in (element.get("styleCode") or "").split()
            if token.lower() in _STYLES
        }
    )
    attribute = f' class="{" ".join(classes)}"' if classes else ""
    return f"<span{attribute}>{_narrative(element, in_table=in_table)}</span>"


def _link(element: etree._Element, in_table: bool) -> str:
    inner = _narrative(element, in_table=in_table)
    href = _href(element.get("href"))
    if href is None:
        return inner
    return f'<a href="{_e(href)}" rel="noopener noreferrer nofollow">{inner}</a>'


def _same(element: etree._Element, in_table: bool) -> str:
    tag = _SAME[_local(element.tag)]
    attributes = _span_attributes(element) if tag in ("td", "th") else ""
    if tag == "th" and _in_head(element):
        attributes += ' scope="col"'
    return f"<{tag}{attributes}>{_narrative(element, in_table=in_table)}</{tag}>"


_HANDLERS: Final[dict[str, Callable[[etree._Element, bool], str]]] = dict.fromkeys(_SAME, _same) | {
    "br": lambda _element, _in_table: "<br>",
    "list": _list,
    "caption": _caption,
    "table": _table,
    "content": _content,
    "linkHtml": _link,
}


def _node(element: etree._Element, *, in_table: bool) -> str:
    name = _local(element.tag)
    if not name or name in _DROPPED:
        # comments, processing instructions, other namespaces (their text stays out too:
        # only the CDA narrative is shown)
        return ""
    handler = _HANDLERS.get(name)
    if handler is None:
        # not in the allow-list: its text only
        return _narrative(element, in_table=in_table)
    return handler(element, in_table)


def _words(element: etree._Element) -> str:
    return "".join(t if isinstance(t, str) else t.decode() for t in element.itertext()).strip()


def _in_head(element: etree._Element) -> bool:
    row = element.getparent()
    if row is None or _local(row.tag) != "tr":
        return False
    group = row.getparent() if row is not None else None
    return group is not None and _local(group.tag) == "thead"


def _section(section: etree._Element, depth: int) -> str:
    parts: list[str] = []
    title = section.find(f"{_V3}title")
    heading = min(depth, 6)
    if title is not None:
        words = _words(title)
        if words:
            parts.append(f"<h{heading}>{_e(words)}</h{heading}>")
    text = section.find(f"{_V3}text")
    if text is not None:
        narrative = _narrative(text).strip()
        if narrative:
            parts.append(f'<div class="narrative">{narrative}</div>')
    for sub in section.iterfind(f"{_V3}component/{_V3}section"):
        parts.append(_section(sub, depth + 1))
    if not parts:
        return ""
    return f'<section class="cda-section">{"".join(parts)}</section>'


def _clinical_document(root: etree._Element) -> etree._Element | None:
    if root.tag == f"{_V3}ClinicalDocument":
        return root
    # An auto-presentable document: an XSLT style sheet with the CDA inside; the style sheet
    # itself is never used.
    return next(root.iter(f"{_V3}ClinicalDocument"), None)


def read_cda(data: bytes, *, first_heading: int = 2) -> ReadableCda | None:
    """What a person reads of the CDA document *data*; ``None`` when *data* is no CDA.

    :param first_heading: the HTML heading level of the top sections' titles.
    :raises monespace.errors.ValidationError: *data* is not well-formed, or is hostile XML.
    """
    document = _clinical_document(parse_xml(data))
    if document is None:
        return None
    title_element = document.find(f"{_V3}title")
    title = _words(title_element) if title_element is not None else ""
    body = document.find(f"{_V3}component/{_V3}nonXMLBody/{_V3}text")
    if body is not None:
        media_type = (body.get("mediaType") or "text/plain").strip().lower()
        raw = _words(body)
        if (body.get("representation") or "TXT").upper() == "B64":
            try:
                content = base64.b64decode("".join(raw.split()), validate=True)
            except (binascii.Error, ValueError):
                return ReadableCda(title, "", None)
        else:
            content = raw.encode("utf-8")
        return ReadableCda(title, "", EmbeddedFile(media_type, content))
    sections = [
        _section(section, first_heading)
        for section in document.iterfind(
            f"{_V3}component/{_V3}structuredBody/{_V3}component/{_V3}section"
        )
    ]
    return ReadableCda(title, "".join(s for s in sections if s), None)
