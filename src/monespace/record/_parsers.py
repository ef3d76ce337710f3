"""The document-parser port: what turns a document's bytes into its metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["DocumentParser", "ParsedDocument"]


@attrs.frozen
class ParsedDocument:
    """What a parser read from a document. Every field is optional: parsers fill what the
    format carries.

    :param type_code: the document type (XDS ``typeCode``; the CDA ``ClinicalDocument/code``).
    :param type_code_system: the OID of the code system of ``type_code``.
    :param confidentiality: confidentiality codes found in the document.
    :param patient_ins: the patient's INS matricule carried by the document.
    :param patient_ins_oid: the OID qualifying ``patient_ins``.
    :param author_count: the number of authors named by the document.
    :param class_code: the document class (XDS ``classCode``), when the parser derives one
        (for CDA, from ``type_code`` through the DMP correspondence table).
    :param class_code_system: the code system of ``class_code`` (TRE_A03's OID, or ``URN``).
    :param document_id: the document's unique identifier (XDS ``uniqueId``; the CDA ``id`` as
        ``root^extension``).
    :param set_id: the identifier shared by every version of the document (CDA ``setId``).
    :param version_number: the version of the document (CDA ``versionNumber``).
    :param structured: ``True`` for a structured body (CDA level 3), ``False`` for a
        document embedded in an envelope (CDA level 1 ``nonXMLBody``), ``None`` if unknown.
    :param body_media_type: the media type of the embedded document when ``structured`` is
        ``False`` (``application/pdf``).
    """

    parser: str
    type_code: str | None = None
    type_code_system: str | None = None
    title: str | None = None
    effective_time: datetime | None = None
    confidentiality: tuple[str, ...] = ()
    patient_ins: str | None = None
    patient_ins_oid: str | None = None
    author_count: int = 0
    class_code: str | None = None
    class_code_system: str | None = None
    document_id: str | None = None
    set_id: str | None = None
    version_number: int | None = None
    structured: bool | None = None
    body_media_type: str | None = None


@runtime_checkable
class DocumentParser(Protocol):
    """A parser registered through ``monespace_register_document_parsers``.

    .. versionadded:: 0.1
    """

    @property
    def name(self) -> str:
        """A unique, stable name (``"cda-r2"``)."""
        ...

    def accepts(self, media_type: str, data: bytes) -> bool:
        """Whether this parser reads *data* declared as *media_type*. Must be cheap."""
        ...

    def parse(self, data: bytes) -> ParsedDocument:
        """Read the document.

        :raises ValidationError: when the document is malformed or hostile.
        """
        ...
