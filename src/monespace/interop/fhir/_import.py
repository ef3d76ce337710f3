"""Reading FHIR R4 resources and transaction bundles into a space, all or nothing."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from ...actors import Actor
from ...errors import AccessDeniedError, ConflictError, NotFoundError, ValidationError
from ...record import (
    LOINC,
    MEASURE_SPECS,
    TRE_A03_CLASS,
    TRE_A07_OID,
    Author,
    AuthorKind,
    Code,
    Device,
    Document,
    Measure,
    MeasureKind,
    ProfileEntry,
    ProfileSection,
    check_media_type,
)
from ._base import (
    CONFIDENTIALITY_SYSTEM,
    INS_TYPES,
    KNOWN_PROFILES,
    MAX_ENTRIES,
    RPPS_SYSTEM,
    FhirError,
    load_json,
    profiles_of,
    space_id,
    system_oid,
    validate,
)

if TYPE_CHECKING:
    from ..._space import Space
    from ...agenda import Event

__all__ = ["CONSENT_REFUSED", "ImportReport", "import_fhir"]

#: The diagnostics of a refusal by the policy, worded as the "Mesures de santé" guide does.
CONSENT_REFUSED = "Consent not given, access refused."
_TRE_A04_LOINC = "https://mos.esante.gouv.fr/NOS/TRE_A04-Loinc/FHIR/TRE-A04-Loinc"
_BP_PANEL = "85354-9"
_SYSTOLIC = "8480-6"
#: Resources a bundle may carry as context of what is imported, and that write nothing:
#: the submission set, the patient and authors it names, the Binaries of documents. (A
#: Device is kept, unless it is already: see ``_Reader._device``.)
_CONTEXT = frozenset({"List", "Patient", "Practitioner", "PractitionerRole", "Device", "Binary"})
_WRITTEN = frozenset({"DocumentReference", "Observation", "Immunization", "Appointment"})
#: The statuses of an Appointment that an agenda event can start in: a planned one (booked,
#: or still to be confirmed), or one that took place.
#: (Values of ``monespace.agenda.EventStatus``, which the agenda checks.)
_APPOINTMENT_STATUS = {
    "proposed": "planned",
    "pending": "planned",
    "booked": "planned",
    "fulfilled": "done",
}
_MASKING = {
    "MASQUE_PS": "masked",
    "INVISIBLE_PATIENT": "hidden_from_patient",
    "INVISIBLE_REPRESENTANTS_LEGAUX": "hidden_from_representatives",
}


@attrs.frozen
class ImportReport:
    """What an import wrote.

    :param devices: how many Device resources were read.
    :param new_devices: the devices kept now (one already kept, with the same identifier,
        is not created again).
    """

    documents: tuple[Document, ...] = ()
    measures: tuple[Measure, ...] = ()
    vaccinations: tuple[ProfileEntry, ...] = ()
    devices: int = 0
    appointments: tuple[Event, ...] = ()
    new_devices: tuple[Device, ...] = ()


_Step: TypeAlias = "Callable[[], Document | Measure | ProfileEntry | Event | Device | None]"


def import_fhir(
    space: Space, actor: Actor, patient_id: str, data: bytes | str | Mapping[str, Any]
) -> ImportReport:
    """Import a FHIR R4 resource or transaction bundle into *patient_id*'s space as *actor*.

    Read: a PDSm / IHE ITI-65 transaction bundle (its DocumentReferences become documents of
    the record, with their Binary or inline content; ``relatesTo`` ``replaces`` a document
    of the record with a new version), a "Mesures de santé" transaction bundle (Observations,
    with the Devices they name), and single DocumentReference, Observation and Immunization
    resources (a vaccination of the profil médical), and single Appointment resources (an
    event of the agenda: ``booked``, ``proposed`` or ``pending`` ones are planned,
    ``fulfilled`` ones done).

    All or nothing: every entry is read and checked first (FHIR validity, profiles, codes,
    references, content types, the patient), then everything is written in one
    :meth:`~monespace.Space.transaction`, so a failure late in the writing (a rule of the
    record, a refusal of the policy) rolls back what the bundle wrote before it.

    :raises FhirError: with the status and OperationOutcome of the "Mesures de santé" guide
        (400, 403, 409, 422); nothing is written.
    :raises ConfigurationError: without the ``fhir`` extra.

    .. versionadded:: 0.1
    """
    resource = dict(data) if isinstance(data, Mapping) else load_json(data)
    if resource.get("resourceType") == "Bundle":
        entries = resource.get("entry")
        if isinstance(entries, list) and len(entries) > MAX_ENTRIES:
            raise FhirError(400, f"a bundle holds at most {MAX_ENTRIES} entries")
    validate(resource)
    reader = _Reader(space, actor, patient_id)
    if resource["resourceType"] == "Bundle":
        steps = reader.bundle(resource)
    elif resource["resourceType"] in _WRITTEN:
        reader.check_profiles(resource, resource["resourceType"])
        steps = [reader.step(resource, resource["resourceType"])]
    else:
        raise FhirError(422, f"a {resource['resourceType']} is not imported")
    return _write(space, steps, reader.devices)


def _write(space: Space, steps: list[_Step], devices: int) -> ImportReport:
    written: list[Document | Measure | ProfileEntry | Event | Device] = []
    try:
        with space.transaction():
            written = [w for w in (step() for step in steps) if w is not None]
    except AccessDeniedError:
        raise FhirError(403, CONSENT_REFUSED) from None
    except ConflictError as exc:
        raise FhirError(409, str(exc)) from None
    except NotFoundError:
        raise FhirError(422, "a referenced resource is not in the space") from None
    except ValidationError as exc:
        raise FhirError(422, str(exc)) from None
    return ImportReport(
        documents=tuple(w for w in written if isinstance(w, Document)),
        measures=tuple(w for w in written if isinstance(w, Measure)),
        vaccinations=tuple(w for w in written if isinstance(w, ProfileEntry)),
        devices=devices,
        appointments=tuple(
            w for w in written if not isinstance(w, Document | Measure | ProfileEntry | Device)
        ),
        new_devices=tuple(w for w in written if isinstance(w, Device)),
    )


class _Reader:
    """Reads every resource into a step that writes it, checking all it can before writing."""

    def __init__(self, space: Space, actor: Actor, patient_id: str) -> None:
        self.space = space
        self.actor = actor
        self.patient_id = patient_id
        self.devices = 0
        self.index: dict[str, dict[str, Any]] = {}
        self._ins: tuple[str, str] | None = None
        #: The documents the resources read so far replace: one replacement each.
        self._replaced: set[str] = set()

    # --- bundles ----------------------------------------------------------------------------

    def bundle(self, bundle: dict[str, Any]) -> list[_Step]:
        if bundle.get("type") != "transaction":
            raise FhirError(422, "only a transaction bundle is imported", location="Bundle.type")
        self.check_profiles(bundle, "Bundle")
        entries = bundle.get("entry") or []
        for number, entry in enumerate(entries):
            resource = entry.get("resource")
            where = f"Bundle.entry[{number}]"
            if not isinstance(resource, dict):
                raise FhirError(422, "an entry of a transaction has a resource", location=where)
            request = entry.get("request") or {}
            if request.get("method") not in ("POST", "PUT"):
                raise FhirError(422, "only POST and PUT entries are imported", location=where)
            for key in (entry.get("fullUrl"), f"{resource['resourceType']}/{resource.get('id')}"):
                if key:
                    self.index[key] = resource
        steps: list[_Step] = []
        for number, entry in enumerate(entries):
            resource = entry["resource"]
            kind = resource["resourceType"]
            where = f"Bundle.entry[{number}]"
            self.check_profiles(resource, where)
            if kind in _WRITTEN:
                steps.append(self.step(resource, where))
            elif kind == "Device":
                self.devices += 1
                device = self._device(resource)
                if device is not None:
                    steps.append(device)
            elif kind not in _CONTEXT:
                raise FhirError(422, f"a {kind} is not imported", location=where)
        if not steps:
            raise FhirError(422, "the bundle has nothing to import", location="Bundle.entry")
        return steps

    def check_profiles(self, resource: Mapping[str, Any], where: str) -> None:
        for profile in profiles_of(resource):
            if profile not in KNOWN_PROFILES:
                raise FhirError(422, "claims a profile this reader does not know", location=where)

    def step(self, resource: dict[str, Any], where: str) -> _Step:
        kind = resource["resourceType"]
        self._check_subject(resource, where)
        if kind == "DocumentReference":
            return self._document(resource, where)
        if kind == "Observation":
            return self._measure(resource, where)
        if kind == "Appointment":
            return self._appointment(resource, where)
        return self._vaccination(resource, where)

    # --- the patient ------------------------------------------------------------------------

    def _check_subject(self, resource: Mapping[str, Any], where: str) -> None:
        """A subject named by INS must be the holder of the space (the other forms of
        reference, such as a device's own patient id, say nothing the space can check)."""
        subject = resource.get("subject") or resource.get("patient") or {}
        identifier = subject.get("identifier") or {}
        system, value = identifier.get("system"), identifier.get("value")
        reference = subject.get("reference") or ""
        if reference.startswith("Patient?identifier=") and "|" in reference:
            system, value = reference.removeprefix("Patient?identifier=").split("|", 1)
        if not (system and value) or system.removeprefix("urn:oid:") not in INS_TYPES:
            return
        if self._ins is None:
            try:
                ins = self.space.accounts.get_patient(self.actor, self.patient_id).identity.ins
            except (AccessDeniedError, NotFoundError):
                raise FhirError(403, CONSENT_REFUSED) from None
            self._ins = (ins.oid, ins.matricule.value)
        if (system.removeprefix("urn:oid:"), value) != self._ins:
            raise FhirError(422, "the subject is not the holder of this space", location=where)

    # --- references -------------------------------------------------------------------------

    def _resolve(self, holder: Mapping[str, Any], reference: str, where: str) -> dict[str, Any]:
        if reference.startswith("#"):
            for contained in holder.get("contained") or ():
                if contained.get("id") == reference[1:]:
                    return dict(contained)
        elif reference in self.index:
            return self.index[reference]
        raise FhirError(422, "a reference names a resource that is absent", location=where)

    # --- documents --------------------------------------------------------------------------

    def _document(self, resource: dict[str, Any], where: str) -> _Step:
        contents = resource.get("content") or []
        if len(contents) != 1:
            raise FhirError(422, "a document has exactly one content", location=where)
        attachment = contents[0].get("attachment") or {}
        declared = attachment.get("contentType")
        if "data" in attachment:
            data = attachment["data"]
        elif "url" in attachment:
            binary = self._resolve(resource, attachment["url"], f"{where}.content.attachment")
            if binary.get("resourceType") != "Binary":
                raise FhirError(422, "the attachment url names no Binary", location=where)
            data = binary.get("data")
            declared = declared or binary.get("contentType")
            if binary.get("contentType") and declared != binary.get("contentType"):
                raise FhirError(
                    422, "the Binary's contentType differs from the attachment's", location=where
                )
        else:
            raise FhirError(422, "a document's content has data or a url", location=where)
        content = _base64(data, where)
        _check_attachment(attachment, content, where)
        if not declared:
            raise FhirError(422, "a document's content has a contentType", location=where)
        try:
            media = check_media_type(declared, content)
        except ValidationError as exc:
            raise FhirError(422, str(exc), location=f"{where}.content.attachment") from None
        type_code = _code(resource.get("type"), where, "type")
        class_code = _class_code(resource.get("category"), where)
        confidentiality, flags = _labels(resource.get("securityLabel"), where)
        author = self._author(resource, where)
        created = _datetime(attachment.get("creation"), where)
        period = (resource.get("context") or {}).get("period") or {}
        unique = (resource.get("masterIdentifier") or {}).get("value")
        unique_id = unique.removeprefix("urn:oid:") if isinstance(unique, str) else None
        title = attachment.get("title") or resource.get("description")
        replaces = self._replaces(resource, where)
        record = self.space.record

        if replaces is not None:
            return lambda: record.replace(
                self.actor,
                replaces,
                content,
                media_type=media,
                title=title,
                comments=resource.get("description"),
            )
        return lambda: record.add_document(
            self.actor,
            self.patient_id,
            content,
            media_type=media,
            type_code=type_code,
            class_code=class_code,
            title=title,
            author=author,
            created_at=created,
            format_code=_format(contents[0].get("format")),
            confidentiality=confidentiality,
            comments=resource.get("description"),
            unique_id=unique_id,
            service_start=_datetime(period.get("start"), where),
            service_stop=_datetime(period.get("end"), where),
            **flags,
        )

    def _author(self, resource: dict[str, Any], where: str) -> Author | None:
        for reference in resource.get("author") or ():
            if "reference" not in reference:
                continue
            author = self._resolve(resource, reference["reference"], f"{where}.author")
            for identifier in author.get("identifier") or ():
                value = identifier.get("value") or ""
                if identifier.get("system") == RPPS_SYSTEM and value.startswith("8"):
                    name = " ".join(n.get("text", "") for n in author.get("name") or ()).strip()
                    return Author(AuthorKind.PROFESSIONAL, value[1:], name or None)
        return None

    def _replaces(self, resource: dict[str, Any], where: str) -> str | None:
        """The id of the document this one replaces: a current document of the record, that
        no other resource of the input replaces."""
        replaced = self._target(resource, where)
        if replaced is not None:
            if replaced in self._replaced:
                raise FhirError(409, "two documents replace the same one", location=where)
            self._replaced.add(replaced)
        return replaced

    def _target(self, resource: dict[str, Any], where: str) -> str | None:
        targets = [r for r in resource.get("relatesTo") or () if r.get("code") == "replaces"]
        if not targets:
            return None
        if len(targets) > 1:
            raise FhirError(422, "a document replaces one document", location=where)
        target = targets[0].get("target") or {}
        reference = target.get("reference") or ""
        wanted = (target.get("identifier") or {}).get("value")
        if reference.startswith("DocumentReference/"):
            try:
                document = self.space.record.get_document(
                    self.actor, space_id(reference.removeprefix("DocumentReference/"))
                )
            except (AccessDeniedError, NotFoundError):
                document = None
            if document is not None and document.patient_id == self.patient_id:
                if document.status != "approved":
                    raise FhirError(409, f"replaces a {document.status} document", location=where)
                return document.id
        elif wanted:
            for document in self.space.record.documents_of(self.actor, self.patient_id):
                if wanted.removeprefix("urn:oid:") == document.unique_id:
                    return document.id
        raise FhirError(422, "replaces a document that is not in the record", location=where)

    # --- measures ---------------------------------------------------------------------------

    def _measure(self, resource: dict[str, Any], where: str) -> _Step:
        code = _code(resource.get("code"), where, "code")
        if code.system != LOINC:
            raise FhirError(422, "a measure is coded in LOINC", location=f"{where}.code")
        device = resource.get("device")
        if device and "reference" in device:
            found = self._resolve(resource, device["reference"], f"{where}.device")
            if found.get("resourceType") != "Device":
                raise FhirError(422, "the device reference names no Device", location=where)
        measured_at = _datetime(resource.get("effectiveDateTime"), where)
        if measured_at is None:
            raise FhirError(422, "a measure has an effectiveDateTime", location=where)
        if code.code == _BP_PANEL:
            kind = MeasureKind.BLOOD_PRESSURE
            parts = {
                _code(c.get("code"), where, "component.code").code: c.get("valueQuantity")
                for c in resource.get("component") or ()
            }
            spec = MEASURE_SPECS[kind]
            assert spec.second is not None
            systolic, unit = _quantity(parts.get(_SYSTOLIC), where)
            diastolic, unit2 = _quantity(parts.get(spec.second[0].code), where)
            if unit != unit2:
                raise FhirError(422, "the two pressures are in one unit", location=where)
            value, second = systolic, diastolic
        else:
            kinds = [k for k, s in MEASURE_SPECS.items() if s.code.code == code.code]
            if not kinds:
                raise FhirError(422, "not a code of a measure this space keeps", location=where)
            kind = kinds[0]
            value, unit = _quantity(resource.get("valueQuantity"), where)
            second = None
        self._check_unit(kind, unit, where)
        measures = self.space.measures
        return lambda: measures.add(
            self.actor,
            self.patient_id,
            kind,
            value,
            unit=unit,
            measured_at=measured_at,
            second=second,
        )

    @staticmethod
    def _check_unit(kind: MeasureKind, unit: str, where: str) -> None:
        """A unit the measures accept for *kind* (the plausible range is checked by
        ``space.measures.add``, inside the transaction)."""
        spec = MEASURE_SPECS[kind]
        units = [spec.unit, *(alternate for alternate, _ in spec.alternates)]
        if unit not in units:
            raise FhirError(422, f"a {kind.value} is in {', '.join(units)}", location=where)

    def _device(self, resource: dict[str, Any]) -> _Step | None:
        """The step that keeps a Device unless it is kept already; ``None`` for a device
        without an identifier, which could not be recognised next time (it is counted)."""
        identifiers = [
            f"{i['system']}|{i['value']}"
            for i in resource.get("identifier") or ()
            if i.get("system") and i.get("value")
        ]
        if not identifiers:
            return None
        names = resource.get("deviceName") or []
        named = [n for n in names if n.get("type") == "patient-reported-name"] or names
        measures = self.space.measures

        def keep() -> Device | None:
            device, created = measures.add_device(
                self.actor,
                self.patient_id,
                identifiers[0],
                manufacturer=resource.get("manufacturer"),
                model=resource.get("modelNumber"),
                name=named[0].get("name") if named else None,
            )
            return device if created else None

        return keep

    # --- vaccinations -----------------------------------------------------------------------

    def _vaccination(self, resource: dict[str, Any], where: str) -> _Step:
        if resource.get("status") != "completed":
            raise FhirError(422, "only a completed vaccination is imported", location=where)
        vaccine = resource.get("vaccineCode") or {}
        codings = vaccine.get("coding") or []
        label = vaccine.get("text") or next(
            (c.get("display") for c in codings if c.get("display")), None
        )
        if not label:
            raise FhirError(422, "a vaccination names its vaccine", location=where)
        code = _code(vaccine, where, "vaccineCode") if codings else None
        when = resource.get("occurrenceDateTime")
        started = _date(when, where) if when else None
        notes = [n.get("text") for n in resource.get("note") or () if n.get("text")]
        profile = self.space.profile
        return lambda: profile.add(
            self.actor,
            self.patient_id,
            ProfileSection.VACCINATION,
            label,
            details="\n".join(notes) or None,
            code=code,
            started=started,
        )

    # --- agenda -----------------------------------------------------------------------------

    def _appointment(self, resource: dict[str, Any], where: str) -> _Step:
        status = _APPOINTMENT_STATUS.get(resource.get("status") or "")
        if status is None:
            raise FhirError(
                422,
                f"an appointment is imported {', '.join(_APPOINTMENT_STATUS)}",
                location=f"{where}.status",
            )
        starts_at = _datetime(resource.get("start"), where)
        if starts_at is None:
            raise FhirError(422, "an appointment has a start", location=where)
        # The kind of event as the export writes it; the agenda refuses one it does not
        # know (422), as it does any other invalid event.
        kinds = [c.get("text") for c in resource.get("serviceCategory") or () if c.get("text")]
        kind = kinds[0] if kinds else "appointment"
        professional = None
        for participant in resource.get("participant") or ():
            identifier = (participant.get("actor") or {}).get("identifier") or {}
            value = identifier.get("value") or ""
            if identifier.get("system") == RPPS_SYSTEM and value.startswith("8"):
                professional = value[1:]
        agenda = self.space.agenda
        return lambda: agenda.add(
            self.actor,
            self.patient_id,
            kind=kind,
            starts_at=starts_at,
            ends_at=_datetime(resource.get("end"), where),
            title=resource.get("description"),
            notes=resource.get("comment"),
            professional=professional,
            status=status,
        )


# --- values -----------------------------------------------------------------------------------


def _base64(data: object, where: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise FhirError(422, "a document's content is empty", location=where)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise FhirError(400, "a content is not base64", location=where) from None


def _check_attachment(attachment: Mapping[str, Any], content: bytes, where: str) -> None:
    """The size and SHA-1 an attachment declares, when it does, are those of its content."""
    size = attachment.get("size")
    if size is not None and size != len(content):
        raise FhirError(422, "the content is not of the size declared", location=where)
    declared = attachment.get("hash")
    if declared is not None:
        digest = base64.b64encode(hashlib.sha1(content).digest()).decode("ascii")  # noqa: S324
        if declared != digest:
            raise FhirError(422, "the content does not match its declared hash", location=where)


def _code(concept: Any, where: str, field: str) -> Code:
    """The first coding of a CodeableConcept with a system and a code, systems as OIDs."""
    for coding in (concept or {}).get("coding") or ():
        system, code = coding.get("system"), coding.get("code")
        if system and code:
            oid = LOINC if system == _TRE_A04_LOINC else system_oid(system)
            return Code(code, oid, coding.get("display"))
    raise FhirError(422, f"'{field}' has no coding with a system and a code", location=where)


def _class_code(category: Any, where: str) -> str | None:
    for concept in category or ():
        code = _code(concept, where, "category")
        if code.system == TRE_A03_CLASS:
            return code.code
    return None


def _labels(labels: Any, where: str) -> tuple[str, dict[str, bool]]:
    """The HL7 confidentiality level and the DMP masking flags of ``securityLabel``."""
    level = "N"
    flags: dict[str, bool] = {}
    for concept in labels or ():
        for coding in concept.get("coding") or ():
            system, code = coding.get("system"), coding.get("code")
            if system == CONFIDENTIALITY_SYSTEM and code in ("N", "R", "V"):
                level = code
            elif system and system_oid(system) == TRE_A07_OID and code in _MASKING:
                flags[_MASKING[code]] = True
            else:
                raise FhirError(422, "an unknown security label", location=f"{where}.securityLabel")
    return level, flags


def _format(concept: Any) -> str | None:
    code = (concept or {}).get("code")
    if code in (None, "urn:ihe:iti:xds:2017:mimeTypeSufficient"):
        return None
    return str(code)


def _quantity(quantity: Any, where: str) -> tuple[float, str]:
    if not isinstance(quantity, dict) or quantity.get("value") is None:
        raise FhirError(422, "a measure has a valueQuantity", location=where)
    system = quantity.get("system")
    if system not in (None, "http://unitsofmeasure.org"):
        raise FhirError(422, "a measure's unit is UCUM", location=where)
    unit = quantity.get("code") or quantity.get("unit")
    if not unit:
        raise FhirError(422, "a measure has a unit", location=where)
    return float(quantity["value"]), str(unit)


def _datetime(value: Any, where: str) -> datetime | None:
    """A FHIR dateTime; a date alone is midnight UTC, a time without zone is refused."""
    if value is None:
        return None
    text = str(value)
    try:
        if len(text) == 10:
            return datetime.fromisoformat(text + "T00:00:00+00:00")
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FhirError(422, "a date is not a full FHIR dateTime", location=where) from None
    if moment.tzinfo is None:
        raise FhirError(422, "a dateTime has a time zone", location=where)
    return moment


def _date(value: Any, where: str) -> date:
    moment = _datetime(value, where)
    assert moment is not None
    return moment.date()
