"""Documents of the medical record, as IHE XDS entries profiled by the DMP (CI-SIS).

Codes are compared as ``(code, code system OID)`` pairs; display names are kept for people,
never compared. The categories a patient sees are derived from the codes, not stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

import attrs

from ..errors import MonespaceError

__all__ = [
    "LOINC",
    "TRE_A03_CLASS",
    "TRE_A05_TYPE",
    "Author",
    "AuthorKind",
    "BatchResult",
    "Category",
    "Code",
    "Document",
    "DocumentPage",
    "DocumentStatus",
    "NewDocument",
    "RecordSettings",
    "Rejection",
    "category_of",
]

#: LOINC, the main type-code system.
LOINC = "2.16.840.1.113883.6.1"
#: TRE_A05 TypeDocComplementaire, the French complementary type codes (DOCPAT01, REMB...).
TRE_A05_TYPE = "1.2.250.1.213.1.1.4.12"
#: TRE_A03 ClasseDocument, the class codes of the DMP (10, 11, 31, 42...).
TRE_A03_CLASS = "1.2.250.1.213.1.1.4.1"


@attrs.frozen
class Code:
    """A coded value: *code* in the code system *system* (an OID)."""

    code: str
    system: str
    display: str | None = attrs.field(default=None, eq=False)


class AuthorKind(StrEnum):
    """Who deposited a document (docs/domain-rules.md §3.5)."""

    PROFESSIONAL = "professional"
    ESTABLISHMENT = "establishment"
    PATIENT = "patient"
    REPRESENTATIVE = "representative"
    INSURER = "insurer"
    APP = "app"


@attrs.frozen
class Author:
    """The author of a document.

    :param id: an RPPS number, a FINESS number, a patient id, an app's client id, or the
        insurer's name, depending on *kind*.
    """

    kind: AuthorKind
    id: str
    name: str | None = None
    specialty: Code | None = None
    organisation: str | None = None


class DocumentStatus(StrEnum):
    """The XDS availability status of a version of a document."""

    APPROVED = "approved"
    DEPRECATED = "deprecated"
    """Replaced by a newer version (the chain is kept)."""
    DELETED = "deleted"


class Category(StrEnum):
    """The families the patient sees their documents in."""

    PRESCRIPTIONS = "prescriptions"
    TREATMENTS = "treatments"
    RESULTS = "results"
    IMAGING = "imaging"
    HOSPITAL_REPORTS = "hospital_reports"
    REPORTS = "reports"
    """Reports (comptes rendus) and summaries (synthèses) that are not of a hospital stay:
    consultation, examination, operation reports, the synthèse médicale."""
    VACCINATION = "vaccination"
    REIMBURSEMENTS = "reimbursements"
    CERTIFICATES = "certificates"
    PATIENT_DOCUMENTS = "patient_documents"
    OTHERS = "others"


_RESULTS = frozenset({"11502-2", "11526-1", "51969-4", "DOCPAT05"})
_VACCINATION = frozenset({"87273-9", "11369-6", "96874-3"})
_HOSPITAL = frozenset(
    {
        "34112-3",
        "11490-0",
        "15507-7",
        "34874-8",
        "67851-6",
        "18761-7",
        "34133-9",
        "77436-4",
        "15508-5",
        "34749-2",
    }
)
_BY_CLASS = {
    "10": Category.REPORTS,
    "11": Category.REPORTS,
    "31": Category.IMAGING,
    "42": Category.PRESCRIPTIONS,
    "43": Category.TREATMENTS,
    "44": Category.TREATMENTS,
    "45": Category.TREATMENTS,
    "52": Category.CERTIFICATES,
    "60": Category.REIMBURSEMENTS,
    "90": Category.PATIENT_DOCUMENTS,
}


def category_of(class_code: str, type_code: Code) -> Category:
    """The category a document is shown in, from its class and type codes.

    Documents the patient deposited (the ``DOCPAT`` and ``EXPPAT`` types) are shown among
    the patient's documents, whatever their class; biology, vaccination and hospital reports
    are recognised by their type; the rest follows the class (TRE_A03): a consultation
    report (class 10, "Compte rendu") or a summary (class 11, "Synthèse") is among the
    reports, as in Mon espace santé.
    """
    code = type_code.code
    if code.startswith(("DOCPAT", "EXPPAT")) and code != "DOCPAT05":
        return Category.PATIENT_DOCUMENTS
    if code in _RESULTS:
        return Category.RESULTS
    if code in _VACCINATION:
        return Category.VACCINATION
    if code in _HOSPITAL:
        return Category.HOSPITAL_REPORTS
    return _BY_CLASS.get(class_code, Category.OTHERS)


@attrs.frozen
class RecordSettings:
    """Delays of the record's visibility rules, with their sources.

    :param announcement_notice: after this long, a patient still waiting for the announcement
        of a hidden result is told that their record changed (R1111-53: "within two weeks").
    :param announcement_months: after this many months, a hidden result is released
        automatically (R1111-53: one month).
    """

    announcement_notice: timedelta = timedelta(days=14)
    announcement_months: int = 1


@attrs.frozen
class DocumentPage:
    """One page of a search: the documents and the total number that matched.

    :ivar next: the token of the next page, to pass as ``search(..., after=page.next)``
        with the same filters; ``None`` on the last page. A page asked for with a token
        costs what it returns, however deep into the record it is; its ``total`` is the
        one counted for the first page.

    .. versionchanged:: 0.2
       ``next``.
    """

    documents: tuple[Document, ...]
    total: int
    offset: int
    limit: int
    next: str | None = None


@attrs.frozen(repr=False)
class Document:
    """One version of a document in a patient's record.

    :param lineage_id: the id of the first version; every replacement keeps it.
    :param unique_id: the XDS ``uniqueId`` (the CDA ``ClinicalDocument/id``), unique per record.
    :param confidentiality: the HL7 level (``N``, ``R`` or ``V``).
    :param masked: ``MASQUE_PS``: hidden from professionals but its author (set by the patient).
    :param hidden_from_patient: ``INVISIBLE_PATIENT``: hidden from the patient until an
        announcement consultation, and at the latest until ``release_at`` (R1111-53).
    :param hidden_from_representatives: ``INVISIBLE_REPRESENTANTS_LEGAUX`` (R1111-50).
    :param created_at: the XDS ``creationTime`` (when the document was written).
    :param submitted_at: when it was added to the record.
    :param submitted_by: the professional who deposited it in an establishment's name (the
        establishment is then the author), or ``None``.
    """

    id: str
    patient_id: str
    lineage_id: str
    version: int
    unique_id: str
    class_code: str
    type_code: Code
    format_code: str | None
    media_type: str
    author: Author
    title: str
    created_at: datetime
    submitted_at: datetime
    content_id: str
    size: int
    sha256: str
    confidentiality: str = "N"
    masked: bool = False
    hidden_from_patient: bool = False
    hidden_from_representatives: bool = False
    comments: str | None = None
    service_start: datetime | None = None
    service_stop: datetime | None = None
    status: DocumentStatus = DocumentStatus.APPROVED
    replaces: str | None = None
    release_at: datetime | None = None
    notify_at: datetime | None = None
    submitted_by: str | None = None

    @property
    def category(self) -> Category:
        """Where the patient sees it."""
        return category_of(self.class_code, self.type_code)

    def hidden_from_patient_at(self, now: datetime) -> bool:
        """Whether the patient may not see it yet at *now*."""
        if not self.hidden_from_patient:
            return False
        return self.release_at is None or now < self.release_at

    def __repr__(self) -> str:
        # The title may say what the document is about: it stays out of reprs and logs.
        return f"Document(id={self.id!r}, type={self.type_code.code!r}, status={self.status!r})"


@attrs.frozen(repr=False)
class NewDocument:
    """One document of a batch for :meth:`~monespace.record.RecordService.add_documents`:
    the arguments of :meth:`~monespace.record.RecordService.add_document`, with the record
    it goes to. Its ``repr`` shows no content, title or comment.

    .. versionadded:: 0.2
    """

    patient_id: str
    content: bytes
    media_type: str
    type_code: Code | None = None
    class_code: str | None = None
    title: str | None = None
    author: Author | None = None
    created_at: datetime | None = None
    format_code: str | None = None
    confidentiality: str = "N"
    masked: bool = False
    hidden_from_patient: bool = False
    hidden_from_representatives: bool = False
    comments: str | None = None
    unique_id: str | None = None
    service_start: datetime | None = None
    service_stop: datetime | None = None
    minor_secret: bool = False

    def __repr__(self) -> str:
        return f"NewDocument(patient_id={self.patient_id!r}, {len(self.content)} bytes)"


@attrs.frozen(eq=False)
class Rejection:
    """A document of a batch that was not added: its position in the batch and why (the
    same error :meth:`~monespace.record.RecordService.add_document` would raise).

    .. versionadded:: 0.2
    """

    index: int
    error: MonespaceError


@attrs.frozen
class BatchResult:
    """What :meth:`~monespace.record.RecordService.add_documents` did: the documents added,
    in the batch's order, and those refused.

    .. versionadded:: 0.2
    """

    added: tuple[Document, ...]
    rejected: tuple[Rejection, ...]
