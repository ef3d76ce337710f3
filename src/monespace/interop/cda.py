"""Reading CDA R2 documents as the DMP and the CI-SIS use them.

:func:`read_cda` reads the header of a CDA R2 document (levels N1 and N3, plain or
"auto-présentable") into a :class:`CdaDocument`; :class:`CdaParser` plugs it into a space
through the ``monespace_register_document_parsers`` hook.

What is read, and from where (``docs/domain-rules.md`` §3.3, ``shared/data/README.md``):

==========================  ================================================================
type (XDS typeCode)         ``ClinicalDocument/code`` (required, with ``@codeSystem``)
class (XDS classCode)       derived from the type through ASS_X16 (``None`` when unknown)
confidentiality             every ``ClinicalDocument/confidentialityCode``, plus the DMP masking
                            codes (TRE_A07) found among their ``translation``s
effective time              ``ClinicalDocument/effectiveTime/@value``, an HL7 TS (:func:`parse_ts`)
patient                     every ``recordTarget/patientRole/id``; the INS is the first whose
                            root is an INS OID; traits from ``patientRole/patient``
authors                     every header ``author``: ``assignedAuthor/id`` and ``code``
custodian                   ``custodian/assignedCustodian/representedCustodianOrganization``
identity of the document    ``id``, ``setId``, ``versionNumber``
body                        ``component/structuredBody`` (count of top-level sections) or
                            ``component/nonXMLBody/text`` (media type and decoded bytes)
==========================  ================================================================

Nothing here trusts the document: it is parsed by :func:`monespace.interop.parse_xml`
(no DTD, no entities, no network, size-limited), and every failure is a
:class:`~monespace.errors.ValidationError` whose message never quotes the document.

.. versionadded:: 0.1
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import re
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from lxml import etree

from monespace.errors import ConfigurationError, InvalidINSError
from monespace.identity import (
    INS,
    INS_NIA_OID,
    INS_NIR_DEMO_OID,
    INS_NIR_OID,
    INS_NIR_TEST_OID,
    INSTraits,
)
from monespace.record import (
    TRE_A07_OID,
    ParsedDocument,
    class_code_for,
    class_code_system_for,
)

from .._xml import DEFAULT_MAX_BYTES, MalformedDocumentError, parse_xml

__all__ = [
    "CDA_NAMESPACE",
    "INS_OIDS",
    "NATIONAL_PS_ID_OID",
    "CdaAuthor",
    "CdaBody",
    "CdaDocument",
    "CdaOrganization",
    "CdaParser",
    "CdaPatient",
    "Coding",
    "InstanceId",
    "InvalidCdaError",
    "NonXmlBody",
    "StructuredBody",
    "format_ts",
    "parse_ts",
    "read_cda",
]

#: The HL7 v3 namespace of every CDA R2 element.
CDA_NAMESPACE: Final = "urn:hl7-org:v3"
#: The OIDs whose ``recordTarget/patientRole/id`` is an INS (real NIR, NIA, test, demo).
#: ``1.2.250.1.213.1.4.13`` (the NIR used as a social-security number) is *not* an INS.
INS_OIDS: Final = (INS_NIR_OID, INS_NIA_OID, INS_NIR_TEST_OID, INS_NIR_DEMO_OID)
#: The national identifier of health professionals (RPPS or ADELI, prefixed, e.g. ``8`` +
#: RPPS), the usual root of ``assignedAuthor/id``.
NATIONAL_PS_ID_OID: Final = "1.2.250.1.71.4.2.1"

_V3: Final = "{urn:hl7-org:v3}"
_XSL: Final = "{http://www.w3.org/1999/XSL/Transform}"
_CLINICAL_DOCUMENT: Final = f"{_V3}ClinicalDocument"


class InvalidCdaError(MalformedDocumentError):
    """Well-formed XML that is not a readable CDA R2 document.

    The root is not ``{urn:hl7-org:v3}ClinicalDocument`` (nor an auto-présentable stylesheet
    holding one), a required header element is missing (``code``), or a value the reader
    needs is malformed (``effectiveTime``, ``versionNumber``, the base64 of a body). The
    message names the element, never its content.

    .. versionadded:: 0.1
    """


# --- small value types --------------------------------------------------------------------------


@attrs.frozen
class Coding:
    """A coded value (CDA ``CD``/``CE``): a code in a code system.

    Equality and hashing ignore :attr:`display`: codes are compared, never display names
    (the official examples spell the same concept with different quotes).

    :ivar code: the code.
    :ivar code_system: the OID of the code system, or ``None`` when the document omits it.
    :ivar display: the display name given by the document, for humans only.

    .. versionadded:: 0.1
    """

    code: str
    code_system: str | None
    display: str | None = attrs.field(default=None, eq=False)


@attrs.frozen
class InstanceId:
    """A CDA instance identifier (``II``): an OID root and an optional extension.

    ``str()`` gives ``root^extension`` (or ``root`` alone), the form of the MANIFEST and of
    HL7v2-style logs.

    .. versionadded:: 0.1
    """

    root: str
    extension: str | None = None

    def __str__(self) -> str:
        return self.root if self.extension is None else f"{self.root}^{self.extension}"


@attrs.frozen(repr=False)
class CdaPatient:
    """The patient of a document (``recordTarget``).

    The ``repr`` is redacted: identifiers and traits are personal data.

    :ivar ids: every ``recordTarget/patientRole/id``, in document order.
    :ivar ins: the first of :attr:`ids` whose root is one of :data:`INS_OIDS`, or ``None``.
        It is *not* validated (the NIR check key is not checked): use :meth:`to_ins`.
    :ivar traits: the INS traits read from ``patientRole/patient``, best effort: ``None``
        unless a birth name, a first given name, a birth date (to the day) and a sex of
        ``M`` or ``F`` are all present and valid. The birth name is the ``family`` with
        qualifier ``BR`` (else the first ``family``); the first given name the ``given``
        with qualifier ``BR`` (else the first ``given``); the given names, when present,
        come from the unqualified ``given`` (the CI-SIS list of birth given names).

    .. versionadded:: 0.1
    """

    ids: tuple[InstanceId, ...]
    ins: InstanceId | None
    traits: INSTraits | None = None

    def to_ins(self) -> INS:
        """The validated INS (with its traits when they are consistent with the matricule).

        :raises InvalidINSError: when there is no INS, or its matricule, OID or traits are
            invalid or inconsistent.
        """
        if self.ins is None or self.ins.extension is None:
            raise InvalidINSError("the document carries no INS")
        return INS.parse(self.ins.extension, self.ins.root, self.traits)

    def __repr__(self) -> str:
        return f"CdaPatient(<redacted>, ids={len(self.ids)}, ins={self.ins is not None})"


@attrs.frozen
class CdaAuthor:
    """A header ``author``.

    :ivar ids: every ``assignedAuthor/id``.
    :ivar specialty: ``assignedAuthor/code`` (profession / specialty, J01), when present.
    :ivar time: ``author/time``, when present and readable.

    .. versionadded:: 0.1
    """

    ids: tuple[InstanceId, ...]
    specialty: Coding | None = None
    time: dt.datetime | None = None

    @property
    def national_id(self) -> str | None:
        """The national professional identifier (root :data:`NATIONAL_PS_ID_OID`), if any."""
        return next((i.extension for i in self.ids if i.root == NATIONAL_PS_ID_OID), None)


@attrs.frozen
class CdaOrganization:
    """An organization (the custodian): its identifiers and name.

    .. versionadded:: 0.1
    """

    ids: tuple[InstanceId, ...]
    name: str | None = None


@attrs.frozen
class StructuredBody:
    """A level-3 (or level-2) body: ``component/structuredBody``.

    :ivar sections: the number of top-level sections (``component/section``).

    .. versionadded:: 0.1
    """

    sections: int
    kind: Literal["structured"] = attrs.field(default="structured", init=False)


@attrs.frozen
class NonXmlBody:
    """A level-1 body: ``component/nonXMLBody/text``, a document embedded in the CDA.

    :ivar media_type: ``@mediaType`` (``application/pdf``, ...); ``text/plain`` when absent,
        the CDA default.
    :ivar data: the decoded bytes (base64 decoded when ``@representation="B64"``, the text
        encoded as UTF-8 otherwise). Not in the ``repr``.
    :ivar compression: ``@compression`` when the payload is compressed (``DF``, ``GZ``...):
        :attr:`data` is then still compressed.
    :ivar reference: ``text/reference/@value`` when the payload is referenced, not inline.

    .. versionadded:: 0.1
    """

    media_type: str
    data: bytes = attrs.field(repr=False)
    compression: str | None = None
    reference: str | None = None
    kind: Literal["non_xml"] = attrs.field(default="non_xml", init=False)


#: The body of a CDA document.
CdaBody = StructuredBody | NonXmlBody


@attrs.frozen
class CdaDocument:
    """The header of a CDA R2 document and the shape of its body.

    :ivar type: the document type, ``ClinicalDocument/code`` (the XDS typeCode).
    :ivar class_code: the DMP classCode derived from :attr:`type`
        (:func:`monespace.record.class_code_for`), or ``None`` when unknown.
    :ivar confidentiality: the CDA ``confidentialityCode`` (HL7 ``N``/``R``/``V``) followed
        by any DMP masking code (TRE_A07) found as one of its translations.
    :ivar effective_time: ``effectiveTime``, timezone-aware (see :func:`parse_ts`), or
        ``None`` when the document has none.
    :ivar title: ``title``, whitespace collapsed, or ``None``.
    :ivar patient: the ``recordTarget``, or ``None`` when there is none.
    :ivar authors: the header authors, in order.
    :ivar custodian: the custodian organization, or ``None``.
    :ivar document_id: ``id`` (the XDS uniqueId), or ``None``.
    :ivar set_id: ``setId`` (the same for every version of a document), or ``None``.
    :ivar version_number: ``versionNumber``, or ``None``.
    :ivar language_code: ``languageCode/@code`` (``fr-FR``), or ``None``.
    :ivar template_ids: the header ``templateId``s (the last usually names the CI-SIS model).
    :ivar body: :class:`StructuredBody` or :class:`NonXmlBody`.
    :ivar auto_presentable: ``True`` when the CDA was found inside an XSL stylesheet.

    .. versionadded:: 0.1
    """

    type: Coding
    class_code: str | None
    confidentiality: tuple[Coding, ...]
    effective_time: dt.datetime | None
    title: str | None
    patient: CdaPatient | None
    authors: tuple[CdaAuthor, ...]
    custodian: CdaOrganization | None
    document_id: InstanceId | None
    set_id: InstanceId | None
    version_number: int | None
    language_code: str | None
    template_ids: tuple[InstanceId, ...]
    body: CdaBody
    auto_presentable: bool = False

    @property
    def confidentiality_codes(self) -> tuple[str, ...]:
        """The codes of :attr:`confidentiality`, in order."""
        return tuple(c.code for c in self.confidentiality)

    def to_parsed(self, parser: str = "cda-r2") -> ParsedDocument:
        """The metadata as the document-parser port carries it."""
        ins = self.patient.ins if self.patient is not None else None
        body = self.body
        return ParsedDocument(
            parser=parser,
            type_code=self.type.code,
            type_code_system=self.type.code_system,
            title=self.title,
            effective_time=self.effective_time,
            confidentiality=self.confidentiality_codes,
            patient_ins=ins.extension if ins is not None else None,
            patient_ins_oid=ins.root if ins is not None else None,
            author_count=len(self.authors),
            class_code=self.class_code,
            class_code_system=(
                class_code_system_for(self.class_code) if self.class_code is not None else None
            ),
            document_id=str(self.document_id) if self.document_id is not None else None,
            set_id=str(self.set_id) if self.set_id is not None else None,
            version_number=self.version_number,
            structured=isinstance(body, StructuredBody),
            body_media_type=body.media_type if isinstance(body, NonXmlBody) else None,
        )


# --- HL7 TS timestamps --------------------------------------------------------------------------

_TS: Final = re.compile(
    r"(?P<year>[0-9]{4})"
    r"(?:(?P<month>[0-9]{2})"
    r"(?:(?P<day>[0-9]{2})"
    r"(?:(?P<hour>[0-9]{2})"
    r"(?:(?P<minute>[0-9]{2})"
    r"(?:(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{1,6}))?)?)?)?)?)?"
    r"(?P<offset>[+-][0-9]{4})?"
)


@functools.cache
def _paris() -> dt.tzinfo:
    try:
        return ZoneInfo("Europe/Paris")
    except ZoneInfoNotFoundError:
        raise ConfigurationError(
            "the IANA time zone database is missing (no Europe/Paris): install the 'tzdata' "
            "package, or pass assume_tz"
        ) from None


def parse_ts(value: str, *, assume_tz: dt.tzinfo | None = None) -> dt.datetime:
    """Parse an HL7 v3 TS timestamp (``20210401171000+0100``) into an aware datetime.

    Precision may stop at the day (``20210401``), the hour, the minute (``202302091130+0100``)
    or the second, with up to six fractional digits; missing parts are zero (a day-precision
    value is the start of that day). Year- or month-only values are refused: a document date
    needs a day.

    **Missing offset.** HL7 reads a timestamp without offset as the sender's local time. The
    CI-SIS requires the offset, but legacy documents omit it; monespace then *assumes*
    *assume_tz*, by default ``Europe/Paris`` (metropolitan French time, with its summer time).
    That is wrong for documents written in overseas départements (UTC-4 to UTC+4): pass their
    zone when it is known. A local time that falls in a summer-time gap or overlap takes the
    offset in force before the change (``fold=0``).

    :param value: the ``@value`` attribute.
    :param assume_tz: the zone of a timestamp without offset (default ``Europe/Paris``).
    :raises InvalidCdaError: when *value* is not a TS to at least the day, or a part is out of
        range; the message does not repeat the value.

    .. versionadded:: 0.1
    """
    match = _TS.fullmatch(value.strip())
    if match is None or match["day"] is None:
        raise InvalidCdaError(
            "a timestamp is not an HL7 TS value precise to the day at least "
            "(YYYYMMDD[HH[MM[SS[.S]]]][+/-ZZZZ])"
        )
    offset = match["offset"]
    tz: dt.tzinfo
    if offset is None:
        tz = assume_tz if assume_tz is not None else _paris()
    else:
        hours, minutes = int(offset[1:3]), int(offset[3:5])
        if hours > 23 or minutes > 59:
            raise InvalidCdaError("a timestamp has an out-of-range UTC offset")
        delta = dt.timedelta(hours=hours, minutes=minutes)
        tz = dt.timezone(-delta if offset[0] == "-" else delta)
    fraction = match["fraction"] or ""
    try:
        return dt.datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"] or 0),
            int(match["minute"] or 0),
            int(match["second"] or 0),
            int(fraction.ljust(6, "0")) if fraction else 0,
            tzinfo=tz,
        )
    except ValueError:
        raise InvalidCdaError("a timestamp has an out-of-range date or time") from None


def format_ts(value: dt.datetime) -> str:
    """Write an aware datetime as an HL7 TS to the second, with its UTC offset.

    ``parse_ts(format_ts(d)) == d`` for every aware datetime without microseconds whose offset
    is a whole number of minutes; microseconds, when present, are written as a fraction.

    :raises ValueError: when *value* is naive, or its offset has seconds.

    .. versionadded:: 0.1
    """
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("format_ts() needs a timezone-aware datetime")
    total = int(offset.total_seconds())
    if total % 60:
        raise ValueError("an HL7 TS offset has no seconds")
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total) // 60, 60)
    text = value.strftime("%Y%m%d%H%M%S")
    if value.year < 1000:
        text = f"{value.year:04d}" + text[-10:]
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return f"{text}{sign}{hours:02d}{minutes:02d}"


# --- reading ------------------------------------------------------------------------------------


def _collapse(text: str | None) -> str | None:
    if text is None:
        return None
    collapsed = " ".join(text.split())
    return collapsed or None


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    # itertext() yields str for a tree parsed from bytes (the stubs also allow bytes).
    return _collapse("".join(t for t in element.itertext() if isinstance(t, str)))


def _attribute(element: etree._Element | None, name: str) -> str | None:
    # Never `element or default`: an lxml element with no children is falsy.
    return element.get(name) if element is not None else None


def _ii(element: etree._Element) -> InstanceId | None:
    root = element.get("root")
    if not root:
        return None  # nullFlavor
    extension = element.get("extension")
    return InstanceId(root.strip(), extension.strip() if extension is not None else None)


def _ids(elements: list[etree._Element]) -> tuple[InstanceId, ...]:
    return tuple(i for i in (_ii(e) for e in elements) if i is not None)


def _coding(element: etree._Element | None) -> Coding | None:
    if element is None:
        return None
    code = element.get("code")
    if not code or not code.strip():
        return None
    system = element.get("codeSystem")
    return Coding(code.strip(), system.strip() if system else None, element.get("displayName"))


def _find_clinical_document(root: etree._Element) -> tuple[etree._Element, bool]:
    if root.tag == _CLINICAL_DOCUMENT:
        return root, False
    if root.tag in (f"{_XSL}stylesheet", f"{_XSL}transform"):
        # Auto-présentable: xsl:stylesheet/data:Contenu/ClinicalDocument; the exact wrapper
        # is not relied upon, but there must be exactly one ClinicalDocument.
        found = root.iterfind(f".//{_CLINICAL_DOCUMENT}")
        first = next(found, None)
        if first is None:
            raise InvalidCdaError("the stylesheet does not contain a CDA ClinicalDocument")
        if next(found, None) is not None:
            raise InvalidCdaError("the stylesheet contains more than one ClinicalDocument")
        return first, True
    if isinstance(root.tag, str) and root.tag.endswith("ClinicalDocument"):
        raise InvalidCdaError(
            "the root element is a ClinicalDocument outside the HL7 v3 namespace "
            f"({CDA_NAMESPACE}); it is not a CDA R2 document"
        )
    raise InvalidCdaError("the document is not a CDA R2 ClinicalDocument")


def _confidentiality(cd: etree._Element) -> tuple[Coding, ...]:
    codes: list[Coding] = []
    for element in cd.iterfind(f"{_V3}confidentialityCode"):
        coding = _coding(element)
        if coding is not None:
            codes.append(coding)
        for translation in element.iterfind(f"{_V3}translation"):
            masking = _coding(translation)
            if masking is not None and masking.code_system == TRE_A07_OID:
                codes.append(masking)
    return tuple(dict.fromkeys(codes))


def _birth_date(patient: etree._Element) -> dt.date | None:
    value = _attribute(patient.find(f"{_V3}birthTime"), "value") or ""
    if len(value) < 8 or not value[:8].isascii() or not value[:8].isdigit():
        return None
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


def _qualified(name: etree._Element, tag: str) -> tuple[str | None, str | None]:
    """(text of the first ``tag`` with qualifier BR, text of the first ``tag`` without one)."""
    birth = plain = None
    for part in name.iterfind(f"{_V3}{tag}"):
        text = _text(part)
        qualifier = (part.get("qualifier") or "").split()
        if "BR" in qualifier and birth is None:
            birth = text
        elif not qualifier and plain is None:
            plain = text
    return birth, plain


def _traits(patient: etree._Element | None) -> INSTraits | None:
    """The INS traits, best effort: ``None`` whenever one is missing or invalid."""
    if patient is None:
        return None
    name = patient.find(f"{_V3}name")
    if name is None:
        return None
    birth_family, plain_family = _qualified(name, "family")
    first_given, plain_given = _qualified(name, "given")
    birth_name = birth_family or plain_family
    first = first_given or (plain_given.split()[0] if plain_given else None)
    sex = _attribute(patient.find(f"{_V3}administrativeGenderCode"), "code")
    birth_date = _birth_date(patient)
    if not (birth_name and first and birth_date and sex in ("M", "F")):
        return None
    place = _text(patient.find(f"{_V3}birthplace/{_V3}place/{_V3}addr/{_V3}county"))
    given = tuple(plain_given.split()) if plain_given else ()
    for given_names, birth_place in ((given, place), ((), place), ((), None)):
        # A best effort: drop the parts that do not validate rather than all the traits.
        try:
            return INSTraits(
                birth_name=birth_name,
                first_given_name=first,
                given_names=given_names,
                birth_date=birth_date,
                sex="M" if sex == "M" else "F",
                birth_place_code=birth_place,
            )
        except (InvalidINSError, TypeError):
            continue
    return None


def _patient(cd: etree._Element) -> CdaPatient | None:
    roles = cd.findall(f"{_V3}recordTarget/{_V3}patientRole")
    if not roles:
        return None
    ids = _ids([i for role in roles for i in role.iterfind(f"{_V3}id")])
    ins = next((i for i in ids if i.root in INS_OIDS and i.extension), None)
    return CdaPatient(ids, ins, _traits(roles[0].find(f"{_V3}patient")))


def _optional_ts(element: etree._Element | None) -> dt.datetime | None:
    value = element.get("value") if element is not None else None
    if not value:
        return None
    try:
        return parse_ts(value)
    except InvalidCdaError:
        return None


def _authors(cd: etree._Element) -> tuple[CdaAuthor, ...]:
    authors = []
    for author in cd.iterfind(f"{_V3}author"):
        assigned = author.find(f"{_V3}assignedAuthor")
        if assigned is None:
            authors.append(CdaAuthor(()))
            continue
        authors.append(
            CdaAuthor(
                _ids(assigned.findall(f"{_V3}id")),
                _coding(assigned.find(f"{_V3}code")),
                _optional_ts(author.find(f"{_V3}time")),
            )
        )
    return tuple(authors)


def _custodian(cd: etree._Element) -> CdaOrganization | None:
    organization = cd.find(
        f"{_V3}custodian/{_V3}assignedCustodian/{_V3}representedCustodianOrganization"
    )
    if organization is None:
        return None
    return CdaOrganization(
        _ids(organization.findall(f"{_V3}id")), _text(organization.find(f"{_V3}name"))
    )


def _non_xml_body(element: etree._Element) -> NonXmlBody:
    text = element.find(f"{_V3}text")
    if text is None:
        raise InvalidCdaError("the nonXMLBody has no text element")
    media_type = (text.get("mediaType") or "text/plain").strip().lower()
    representation = (text.get("representation") or "TXT").strip().upper()
    reference = text.find(f"{_V3}reference")
    # The payload is the element's own text, around any <reference> or <thumbnail> child
    # (a thumbnail is an ED of its own, with its own base64, and is not part of it).
    payload = (text.text or "") + "".join(child.tail or "" for child in text)
    if representation == "B64":
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidCdaError("the nonXMLBody text is not valid base64") from None
    else:
        data = payload.encode("utf-8")
    return NonXmlBody(
        media_type,
        data,
        compression=text.get("compression"),
        reference=reference.get("value") if reference is not None else None,
    )


def _body(cd: etree._Element) -> CdaBody:
    component = cd.find(f"{_V3}component")
    if component is not None:
        structured = component.find(f"{_V3}structuredBody")
        if structured is not None:
            return StructuredBody(len(structured.findall(f"{_V3}component/{_V3}section")))
        non_xml = component.find(f"{_V3}nonXMLBody")
        if non_xml is not None:
            return _non_xml_body(non_xml)
    raise InvalidCdaError("the ClinicalDocument has no structuredBody or nonXMLBody")


def _version_number(cd: etree._Element) -> int | None:
    element = cd.find(f"{_V3}versionNumber")
    value = (element.get("value") if element is not None else None) or ""
    value = value.strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise InvalidCdaError("versionNumber is not a small non-negative integer")
    return int(value)


def read_cda(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, assume_tz: dt.tzinfo | None = None
) -> CdaDocument:
    """Read a CDA R2 document: its header, and the shape (or payload) of its body.

    Accepts the plain form (root ``ClinicalDocument``) and the CI-SIS "auto-présentable" form
    (the CDA inside an ``xsl:stylesheet``), with or without a UTF-8 byte-order mark. The XSL
    is never run.

    :param data: the document's bytes.
    :param max_bytes: the largest document accepted.
    :param assume_tz: the zone of timestamps that lack a UTC offset (see :func:`parse_ts`;
        default ``Europe/Paris``).
    :raises DocumentTooLargeError: when *data* is over *max_bytes*.
    :raises HostileDocumentError: for DTD entities, external DTDs or resources, and parser
        safety limits.
    :raises MalformedDocumentError: when *data* is not well-formed XML.
    :raises InvalidCdaError: when it is XML but not a readable CDA R2 document.
    :raises ConfigurationError: when a timestamp has no offset, *assume_tz* is not given and
        the IANA time zone database (``Europe/Paris``) is not installed.

    .. versionadded:: 0.1
    """
    root = parse_xml(data, max_bytes=max_bytes)
    cd, auto_presentable = _find_clinical_document(root)
    type_ = _coding(cd.find(f"{_V3}code"))
    if type_ is None:
        raise InvalidCdaError("the ClinicalDocument has no code (the document type)")
    if type_.code_system is None:
        raise InvalidCdaError("the ClinicalDocument code has no codeSystem")
    effective = cd.find(f"{_V3}effectiveTime")
    value = effective.get("value") if effective is not None else None
    effective_time = parse_ts(value, assume_tz=assume_tz) if value else None
    document_id = cd.find(f"{_V3}id")
    set_id = cd.find(f"{_V3}setId")
    language = cd.find(f"{_V3}languageCode")
    return CdaDocument(
        type=type_,
        class_code=class_code_for(type_.code, type_.code_system),
        confidentiality=_confidentiality(cd),
        effective_time=effective_time,
        title=_text(cd.find(f"{_V3}title")),
        patient=_patient(cd),
        authors=_authors(cd),
        custodian=_custodian(cd),
        document_id=_ii(document_id) if document_id is not None else None,
        set_id=_ii(set_id) if set_id is not None else None,
        version_number=_version_number(cd),
        language_code=language.get("code") if language is not None else None,
        template_ids=_ids(cd.findall(f"{_V3}templateId")),
        body=_body(cd),
        auto_presentable=auto_presentable,
    )


# --- the document-parser plugin -----------------------------------------------------------------

_XML_MEDIA_TYPES: Final = frozenset({"text/xml", "application/xml", "application/hl7-v3+xml"})


class CdaParser:
    """The CDA R2 document parser, registered by monespace's built-in plugin as ``"cda-r2"``.

    It accepts a content declared with an XML media type (``text/xml``, the XDS mimeType of
    CDA documents, ``application/xml`` or any ``+xml`` type) whose bytes mention
    ``ClinicalDocument`` and the HL7 v3 namespace; a PDF labelled ``text/xml`` is not
    accepted, and an XML file that is not a CDA is left to other parsers.

    :param max_bytes: the largest document parsed.

    .. versionadded:: 0.1
    """

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._max_bytes = max_bytes

    @property
    def name(self) -> str:
        """``"cda-r2"``."""
        return "cda-r2"

    def accepts(self, media_type: str, data: bytes) -> bool:
        """Whether *data*, declared as *media_type*, looks like a CDA R2 document.

        Cheap: a media-type check and two substring searches, no parsing. UTF-16 documents
        are not recognised (the CI-SIS requires UTF-8).
        """
        base = media_type.split(";", 1)[0].strip().lower()
        if base not in _XML_MEDIA_TYPES and not base.endswith("+xml"):
            return False
        return b"ClinicalDocument" in data and CDA_NAMESPACE.encode() in data

    def parse(self, data: bytes) -> ParsedDocument:
        """Read the document's header (:func:`read_cda`) into a :class:`ParsedDocument`.

        :raises ValidationError: (a subclass) when the document is malformed or hostile.
        """
        return read_cda(data, max_bytes=self._max_bytes).to_parsed(self.name)

    def __repr__(self) -> str:
        return f"CdaParser(max_bytes={self._max_bytes})"
