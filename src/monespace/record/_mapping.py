"""Rows <-> model for the record: documents, profile entries and measures.

What storage searches on stays in clear columns of the row (codes, flags, dates); what
says something about the patient (a title, comments, an author's name, a value) goes in a
JSON payload that the service seals with the patient's key. Payloads are written and read
through the cattrs converter of :mod:`monespace.codec`, never by hand.
"""

from __future__ import annotations

from datetime import date, datetime

import attrs

from ..codec import make_converter
from ..storage import BlobRow, DocumentRow, EntryRow
from ._measure_model import Device, Measure, MeasureKind
from ._model import Author, Category, Code, Document, DocumentStatus, category_of
from ._profile_model import ProfileEntry, ProfileSection
from ._rules import INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS, MASQUE_PS, flags_of, has_flag

__all__ = [
    "BLOB_KIND",
    "DEVICE_KIND",
    "ENTRY_KIND",
    "MEASURE_KIND",
    "META_KIND",
    "blob_row",
    "category_of_row",
    "device_from_row",
    "device_payload",
    "device_row",
    "document_from_row",
    "document_meta",
    "document_row",
    "entry_from_row",
    "entry_payload",
    "entry_row",
    "measure_from_row",
    "measure_payload",
    "measure_row",
]

#: The kinds the record's sealed payloads are bound to (part of their associated data).
BLOB_KIND = "document"
META_KIND = "document-meta"
ENTRY_KIND = "profile-entry"
MEASURE_KIND = "measure"
DEVICE_KIND = "device"

_CODEC = make_converter()


@attrs.frozen
class _DocumentMeta:
    """The sealed part of a document row."""

    title: str
    author: Author
    comments: str | None = None
    type_display: str | None = None
    service_start: datetime | None = None
    service_stop: datetime | None = None


@attrs.frozen
class _EntryPayload:
    """The sealed part of a profile entry row."""

    label: str
    details: str | None = None
    code: Code | None = None
    started: date | None = None
    ended: date | None = None


@attrs.frozen
class _MeasurePayload:
    """The sealed part of a measure row."""

    value: float
    source: str
    second: float | None = None


# --- documents -------------------------------------------------------------------------------


def document_meta(document: Document) -> bytes:
    """The payload of *document* to seal into its row's ``sealed_meta``."""
    meta = _DocumentMeta(
        title=document.title,
        author=document.author,
        comments=document.comments,
        type_display=document.type_code.display,
        service_start=document.service_start,
        service_stop=document.service_stop,
    )
    return _CODEC.dumps(meta).encode()


def document_row(document: Document, sealed_meta: bytes) -> DocumentRow:
    """The row that stores *document*, its payload sealed by the caller."""
    return DocumentRow(
        id=document.id,
        patient_id=document.patient_id,
        lineage_id=document.lineage_id,
        version=document.version,
        unique_id=document.unique_id,
        class_code=document.class_code,
        type_code=document.type_code.code,
        type_system=document.type_code.system,
        format_code=document.format_code,
        media_type=document.media_type,
        confidentiality=document.confidentiality,
        flags=flags_of(
            masked=document.masked,
            hidden_from_patient=document.hidden_from_patient,
            hidden_from_representatives=document.hidden_from_representatives,
        ),
        author_kind=str(document.author.kind),
        author_id=document.author.id,
        created_at=document.created_at,
        submitted_at=document.submitted_at,
        status=str(document.status),
        replaces=document.replaces,
        content_id=document.content_id,
        size=document.size,
        sha256=bytes.fromhex(document.sha256),
        sealed_meta=sealed_meta,
        release_at=document.release_at,
        notify_at=document.notify_at,
        submitted_by=document.submitted_by,
    )


def document_from_row(row: DocumentRow, meta: bytes) -> Document:
    """The document stored in *row*, *meta* being its opened ``sealed_meta``."""
    payload = _CODEC.loads(meta, _DocumentMeta)
    return Document(
        id=row.id,
        patient_id=row.patient_id,
        lineage_id=row.lineage_id,
        version=row.version,
        unique_id=row.unique_id,
        class_code=row.class_code,
        type_code=Code(row.type_code, row.type_system, payload.type_display),
        format_code=row.format_code,
        media_type=row.media_type,
        author=payload.author,
        title=payload.title,
        created_at=row.created_at,
        submitted_at=row.submitted_at,
        content_id=row.content_id,
        size=row.size,
        sha256=row.sha256.hex(),
        confidentiality=row.confidentiality,
        masked=has_flag(row.flags, MASQUE_PS),
        hidden_from_patient=has_flag(row.flags, INVISIBLE_PATIENT),
        hidden_from_representatives=has_flag(row.flags, INVISIBLE_REPRESENTANTS),
        comments=payload.comments,
        service_start=payload.service_start,
        service_stop=payload.service_stop,
        status=DocumentStatus(row.status),
        replaces=row.replaces,
        release_at=row.release_at,
        notify_at=row.notify_at,
        submitted_by=row.submitted_by,
    )


def blob_row(document: Document, sealed: bytes, now: datetime) -> BlobRow:
    """The row that stores the content of *document*, sealed by the caller."""
    return BlobRow(
        document.content_id,
        document.patient_id,
        BLOB_KIND,
        document.media_type,
        document.size,
        bytes.fromhex(document.sha256),
        sealed,
        now,
    )


def category_of_row(row: DocumentRow) -> Category:
    """What :attr:`Document.category` says, from the stored codes alone (no decryption)."""
    return category_of(row.class_code, Code(row.type_code, row.type_system))


# --- profil médical --------------------------------------------------------------------------


def entry_payload(entry: ProfileEntry) -> bytes:
    """The payload of a profile entry to seal into its row."""
    payload = _EntryPayload(entry.label, entry.details, entry.code, entry.started, entry.ended)
    return _CODEC.dumps(payload).encode()


def entry_row(entry: ProfileEntry, sealed: bytes, now: datetime) -> EntryRow:
    """The row that stores a profile entry recorded at *now*."""
    return EntryRow(entry.id, entry.patient_id, str(entry.section), now, sealed)


def entry_from_row(row: EntryRow, payload: bytes) -> ProfileEntry:
    """The profile entry stored in *row*, *payload* being its opened ``sealed``."""
    data = _CODEC.loads(payload, _EntryPayload)
    return ProfileEntry(
        id=row.id,
        patient_id=row.patient_id,
        section=ProfileSection(row.kind),
        label=data.label,
        details=data.details,
        code=data.code,
        started=data.started,
        ended=data.ended,
        recorded_at=row.at,
    )


# --- measures --------------------------------------------------------------------------------


def measure_payload(measure: Measure) -> bytes:
    """The payload of a measure to seal into its row."""
    payload = _MeasurePayload(measure.value, measure.source, measure.second)
    return _CODEC.dumps(payload).encode()


def measure_row(measure: Measure, sealed: bytes) -> EntryRow:
    """The row that stores a measure."""
    return EntryRow(measure.id, measure.patient_id, str(measure.kind), measure.measured_at, sealed)


def measure_from_row(row: EntryRow, payload: bytes, unit: str) -> Measure:
    """The measure stored in *row*, in the canonical *unit* of its kind."""
    data = _CODEC.loads(payload, _MeasurePayload)
    return Measure(
        row.id,
        row.patient_id,
        MeasureKind(row.kind),
        data.value,
        unit,
        row.at,
        data.second,
        data.source,
    )


# --- devices ---------------------------------------------------------------------------------


@attrs.frozen
class _DevicePayload:
    """The sealed part of a device row."""

    identifier: str
    manufacturer: str | None = None
    model: str | None = None
    name: str | None = None


def device_payload(device: Device) -> bytes:
    """The payload of a device to seal into its row."""
    payload = _DevicePayload(device.identifier, device.manufacturer, device.model, device.name)
    return _CODEC.dumps(payload).encode()


def device_row(device: Device, index: str, sealed: bytes) -> EntryRow:
    """The row that stores a device; *index* is the keyed index of its identifier."""
    return EntryRow(device.id, device.patient_id, index, device.created_at, sealed)


def device_from_row(row: EntryRow, payload: bytes) -> Device:
    """The device stored in *row*."""
    data = _CODEC.loads(payload, _DevicePayload)
    return Device(
        row.id, row.patient_id, data.identifier, row.at, data.manufacturer, data.model, data.name
    )
