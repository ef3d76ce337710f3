"""Writing what an actor may see of a person as a FHIR R4 Bundle."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from ...actors import Actor
from ...errors import AccessDeniedError, NotFoundError
from ...record import (
    MEASURE_SPECS,
    TRE_A03_CLASS,
    TRE_A07_OID,
    AuthorKind,
    Document,
    Measure,
    MeasureKind,
    ProfileEntry,
    ProfileSection,
)
from ._base import (
    CONFIDENTIALITY_SYSTEM,
    INS_TYPES,
    RPPS_SYSTEM,
    UCUM_URL,
    fhir_id,
    oid_system,
    validate,
)

if TYPE_CHECKING:
    from ..._space import Space
    from ...access import HistoryEntry
    from ...accounts import Patient
    from ...agenda import Event

__all__ = [
    "APPOINTMENT_STATUS",
    "appointment_resource",
    "document_resource",
    "export_bundle",
    "observation_resource",
    "patient_resource",
    "profile_resource",
]

_T = TypeVar("_T")
_FR_CORE_PATIENT = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient"
_FR_CORE_IDENTIFIER_TYPE = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
_PDSM_DOCREF = (
    "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/"
    "pdsm-comprehensive-document-reference"
)
_MESURES = "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/"
_IHE_FORMAT = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
_AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
#: The AuditEvent action of a line of the history, from the verb of its French wording.
_AUDIT_ACTION = {
    "a consulté la liste": "E",
    "a consulté": "R",
    "a accédé": "R",
    "a ajouté": "C",
    "a repris": "C",
    "a supprimé": "D",
}
_MASKING = {
    "masked": "MASQUE_PS",
    "hidden_from_patient": "INVISIBLE_PATIENT",
    "hidden_from_representatives": "INVISIBLE_REPRESENTANTS_LEGAUX",
}
#: The profile of the "Mesures de santé" guide for each kind, when it has one.
_MEASURE_PROFILES = {
    MeasureKind.WEIGHT: "mesures-fr-observation-body-weight",
    MeasureKind.HEIGHT: "mesures-fr-observation-body-height",
    MeasureKind.BMI: "mesures-fr-observation-bmi",
    MeasureKind.BLOOD_PRESSURE: "mesures-fr-observation-bp",
    MeasureKind.HEART_RATE: "mesures-fr-observation-heartrate",
    MeasureKind.TEMPERATURE: "mesures-fr-observation-body-temperature",
    MeasureKind.WAIST: "mesures-fr-observation-waist-circumference",
    MeasureKind.GLUCOSE: "mesures-observation-glucose",
    MeasureKind.STEPS: "mesures-observation-steps",
}
_SYSTOLIC = ("8480-6", "Pression artérielle systolique")
_CONDITION_CATEGORY = {
    ProfileSection.MEDICAL_HISTORY: "problem-list-item",
    ProfileSection.SURGICAL_HISTORY: "problem-list-item",
}


def _visible(read: Callable[[], _T]) -> _T | None:
    """What a service returns, or ``None`` when the policy refused it to the actor (the
    refusal is in the audit trail; the export leaves that part out)."""
    try:
        return read()
    except AccessDeniedError:
        return None


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _coding(code: str, system_oid: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": oid_system(system_oid), "code": code}
    if display:
        coding["display"] = display
    return coding


def export_bundle(
    space: Space,
    actor: Actor,
    patient_id: str,
    *,
    bundle_type: Literal["collection", "searchset"] = "collection",
    inline: bool = False,
) -> dict[str, Any]:
    """What *actor* may see of *patient_id*, as a FHIR R4 Bundle (JSON).

    Everything is read through the services with *actor*, so the policy decides and every
    read is audited; a part the actor may not read (the administrative identity for a
    professional, the profil médical...) is left out. The Bundle holds:

    * ``Patient``: the INS as FR Core identifiers (``urn:oid:`` of the INS OID, type
      ``INS-NIR``/``INS-NIA``...), name, sex and birth date;
    * ``DocumentReference`` per PDSm: type, class and format codes, confidentiality and the
      DMP masking codes in ``securityLabel``, author, ``relatesTo`` for a replacement; the
      content as a ``Binary`` entry (``attachment.url``), or inline (``attachment.data``)
      with *inline*;
    * ``Practitioner`` for each professional who authored a document (RPPS identifier);
    * ``Observation`` per measure (LOINC and UCUM codes, "Mesures de santé" profiles);
    * ``Immunization``, ``AllergyIntolerance`` and ``Condition`` from the profil médical;
    * ``Appointment`` per event of the agenda;
    * ``AuditEvent`` per line of the access history.

    Every resource is validated with ``fhir.resources`` before it is returned.

    :raises AccessDeniedError: when the actor may not see the record's documents.
    :raises ConfigurationError: without the ``fhir`` extra.

    .. versionadded:: 0.1
    """
    resources: list[dict[str, Any]] = []
    patient = _visible(lambda: space.accounts.get_patient(actor, patient_id))
    if patient is not None:
        resources.append(patient_resource(patient))

    documents = list(space.record.documents_of(actor, patient_id))
    authors: dict[str, dict[str, Any]] = {}
    for document in documents:
        if document.author.kind is AuthorKind.PROFESSIONAL and document.author.id.isdigit():
            authors.setdefault(document.author.id, _practitioner(space, document))
    resources += authors.values()
    for document in documents:
        content = space.record.read_content(actor, document.id)
        resources.append(document_resource(document, content, inline=inline))
        if not inline:
            resources.append(
                {
                    "resourceType": "Binary",
                    "id": fhir_id(document.content_id),
                    "contentType": document.media_type,
                    "data": base64.b64encode(content).decode("ascii"),
                }
            )

    for kind in MeasureKind:
        series = _visible(partial(space.measures.series, actor, patient_id, kind))
        resources += [observation_resource(measure) for measure in series or ()]

    entries = _visible(lambda: space.profile.entries(actor, patient_id)) or []
    for entry in entries:
        converted = profile_resource(entry)
        if converted is not None:
            resources.append(converted)

    events = _visible(lambda: space.agenda.events(actor, patient_id)) or []
    resources += [appointment_resource(event) for event in events]

    history = _visible(lambda: space.access.history(actor, patient_id, limit=10_000)) or []
    for line in history:
        resources.append(_audit_event(line, patient_id))

    for item in resources:
        validate(item, f"{item['resourceType']}/{item.get('id')}")
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": bundle_type,
        "timestamp": _instant(space.clock.now()),
        "entry": [
            {"fullUrl": f"urn:uuid:{_uuid(item)}", "resource": item}
            | ({"search": {"mode": "match"}} if bundle_type == "searchset" else {})
            for item in resources
        ],
    }
    if bundle_type == "searchset":
        bundle["total"] = len(resources)
    validate(bundle, "Bundle")
    return bundle


def patient_resource(patient: Patient) -> dict[str, Any]:
    """A person as an FR Core Patient (JSON): the INS as an FR Core identifier (``urn:oid:``
    of the INS OID, type ``INS-NIR``/``INS-NIA``...), name, sex and birth date.

    .. versionadded:: 0.1
    """
    ins = patient.identity.ins
    traits = ins.traits
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": fhir_id(patient.id),
        "meta": {"profile": [_FR_CORE_PATIENT]},
        "identifier": [
            {
                "use": "official",
                "type": {
                    "coding": [{"system": _FR_CORE_IDENTIFIER_TYPE, "code": INS_TYPES[ins.oid]}]
                },
                "system": f"urn:oid:{ins.oid}",
                "value": ins.matricule.value,
            }
        ],
    }
    if traits is not None:
        resource["name"] = [
            {
                "use": "official",
                "family": traits.birth_name,
                "given": list(traits.given_names or (traits.first_given_name,)),
            }
        ]
        resource["gender"] = "male" if traits.sex == "M" else "female"
        resource["birthDate"] = traits.birth_date.isoformat()
    return resource


def _uuid(resource: dict[str, Any]) -> str:
    """A stable UUID-shaped name for a resource's full URL, from its type and id."""
    digest = hashlib.sha256(f"{resource['resourceType']}/{resource['id']}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _practitioner(space: Space, document: Document) -> dict[str, Any]:
    rpps = document.author.id
    name: str | None
    try:
        name = space.access.professional(rpps).name
    except NotFoundError:  # an author the directory does not know is named by the document
        name = document.author.name
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": f"rpps-{rpps}",
        "identifier": [{"system": RPPS_SYSTEM, "value": f"8{rpps}"}],
    }
    if name:
        resource["name"] = [{"text": name}]
    return resource


def document_resource(
    document: Document,
    content: bytes | None = None,
    *,
    inline: bool = False,
    binary_id: str | None = None,
) -> dict[str, Any]:
    """A document's metadata as a PDSm DocumentReference (JSON): type, class and format
    codes, confidentiality and the DMP masking codes in ``securityLabel``, author,
    ``relatesTo`` for a replacement.

    :param content: the document's bytes, for the attachment's SHA-1 ``hash`` (and its
        ``data`` with *inline*); without them the attachment has its size only.
    :param binary_id: the id of the ``Binary`` the attachment's ``url`` names (by default
        the id of the document's content).

    .. versionadded:: 0.1
    """
    labels = [
        {
            "coding": [
                {"system": CONFIDENTIALITY_SYSTEM, "code": document.confidentiality},
            ]
        }
    ]
    for flag, code in _MASKING.items():
        if getattr(document, flag):
            labels.append({"coding": [_coding(code, TRE_A07_OID)]})
    attachment: dict[str, Any] = {
        "contentType": document.media_type,
        "size": document.size,
        "title": document.title,
        "creation": _instant(document.created_at),
    }
    if content is not None:
        digest = hashlib.sha1(content).digest()  # noqa: S324 - the hash PDSm asks for
        attachment["hash"] = base64.b64encode(digest).decode("ascii")
    if inline and content is not None:
        attachment["data"] = base64.b64encode(content).decode("ascii")
    else:
        attachment["url"] = f"Binary/{binary_id or fhir_id(document.content_id)}"
    author = document.author
    reference: dict[str, Any] = (
        {"reference": f"Practitioner/rpps-{author.id}"}
        if author.kind is AuthorKind.PROFESSIONAL and author.id.isdigit()
        else {"display": author.name or str(author.kind)}
    )
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": fhir_id(document.id),
        "meta": {"profile": [_PDSM_DOCREF]},
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": _urn(document.unique_id)},
        "status": "current" if document.status == "approved" else "superseded",
        "type": {
            "coding": [
                _coding(
                    document.type_code.code, document.type_code.system, document.type_code.display
                )
            ]
        },
        "category": [{"coding": [_coding(document.class_code, TRE_A03_CLASS)]}],
        "subject": {"reference": f"Patient/{fhir_id(document.patient_id)}"},
        "date": _instant(document.submitted_at),
        "author": [reference],
        "securityLabel": labels,
        "content": [
            {
                "attachment": attachment,
                "format": _format(document.format_code),
            }
        ],
    }
    if document.status == "deleted":
        resource["status"] = "entered-in-error"
    if document.comments:
        resource["description"] = document.comments
    if document.replaces:
        resource["relatesTo"] = [
            {
                "code": "replaces",
                "target": {"reference": f"DocumentReference/{fhir_id(document.replaces)}"},
            }
        ]
    if document.service_start or document.service_stop:
        period = {}
        if document.service_start:
            period["start"] = _instant(document.service_start)
        if document.service_stop:
            period["end"] = _instant(document.service_stop)
        resource["context"] = {"period": period}
    return resource


def _urn(unique_id: str) -> str:
    """The XDS uniqueId as a URI (``masterIdentifier`` with system RFC 3986)."""
    if unique_id.startswith(("urn:", "http:", "https:")):
        return unique_id
    if all(part.isdigit() for part in unique_id.replace("^", ".").split(".")):
        return f"urn:oid:{unique_id}"
    return f"urn:monespace:{unique_id}"


def _format(format_code: str | None) -> dict[str, Any]:
    """The XDS formatCode as a Coding; a content without one is "mimeType sufficient"."""
    if not format_code:
        return {"system": _IHE_FORMAT, "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"}
    if format_code.startswith("urn:ihe:"):
        return {"system": _IHE_FORMAT, "code": format_code}
    return {"system": oid_system("1.2.250.1.213.1.1.4.2.282"), "code": format_code}


def observation_resource(measure: Measure) -> dict[str, Any]:
    """A measure as an Observation (JSON) with its LOINC and UCUM codes and the profile of
    the "Mesures de santé" guide for its kind (a blood pressure as two components).

    .. versionadded:: 0.1
    """
    spec = MEASURE_SPECS[measure.kind]
    code = spec.code
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": fhir_id(measure.id),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs"
                        if measure.kind not in (MeasureKind.STEPS, MeasureKind.GLUCOSE)
                        else "activity"
                        if measure.kind is MeasureKind.STEPS
                        else "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [_coding(code.code, code.system, code.display)]},
        "subject": {"reference": f"Patient/{fhir_id(measure.patient_id)}"},
        "effectiveDateTime": _instant(measure.measured_at),
    }
    if measure.kind in _MEASURE_PROFILES:
        resource["meta"] = {"profile": [_MESURES + _MEASURE_PROFILES[measure.kind]]}
    quantity = {"system": UCUM_URL, "code": spec.unit, "unit": spec.unit}
    if spec.second is None:
        resource["valueQuantity"] = {"value": measure.value, **quantity}
    else:
        diastolic = spec.second[0]
        resource["component"] = [
            {
                "code": {"coding": [_coding(_SYSTOLIC[0], code.system, _SYSTOLIC[1])]},
                "valueQuantity": {"value": measure.value, **quantity},
            },
            {
                "code": {"coding": [_coding(diastolic.code, diastolic.system, diastolic.display)]},
                "valueQuantity": {"value": measure.second, **quantity},
            },
        ]
    return resource


def _concept(entry: ProfileEntry) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": entry.label}
    if entry.code is not None:
        concept["coding"] = [_coding(entry.code.code, entry.code.system, entry.code.display)]
    return concept


def profile_resource(entry: ProfileEntry) -> dict[str, Any] | None:
    """The FHIR resource (JSON) of an entry of the profil médical, for the sections FHIR has one for
    (the others, such as the trusted person or organ donation, are not clinical resources):
    Immunization, AllergyIntolerance or Condition.

    .. versionadded:: 0.1
    """
    base: dict[str, Any] = {"id": fhir_id(entry.id)}
    subject = {"reference": f"Patient/{fhir_id(entry.patient_id)}"}
    note = [{"text": entry.details}] if entry.details else None
    if entry.section is ProfileSection.VACCINATION:
        resource = base | {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": _concept(entry),
            "patient": subject,
            "primarySource": False,
        }
        if entry.started is not None:
            resource["occurrenceDateTime"] = entry.started.isoformat()
        else:
            resource["occurrenceString"] = "date inconnue"
    elif entry.section in (ProfileSection.ALLERGY, ProfileSection.INTOLERANCE):
        resource = base | {
            "resourceType": "AllergyIntolerance",
            "type": "allergy" if entry.section is ProfileSection.ALLERGY else "intolerance",
            "code": _concept(entry),
            "patient": subject,
        }
        if entry.started is not None:
            resource["onsetDateTime"] = entry.started.isoformat()
    elif entry.section in _CONDITION_CATEGORY:
        resource = base | {
            "resourceType": "Condition",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": _CONDITION_CATEGORY[entry.section],
                        }
                    ],
                    "text": str(entry.section),
                }
            ],
            "code": _concept(entry),
            "subject": subject,
        }
        if entry.started is not None:
            resource["onsetDateTime"] = entry.started.isoformat()
        if entry.ended is not None:
            resource["abatementDateTime"] = entry.ended.isoformat()
    else:
        return None
    if note:
        resource["note"] = note
    if entry.recorded_at is not None:
        key = "recordedDate" if resource["resourceType"] != "Immunization" else "recorded"
        resource[key] = _instant(entry.recorded_at)
    return resource


#: FHIR's Appointment.status of each status of an agenda event
#: (:class:`monespace.agenda.EventStatus`, a string enumeration).
APPOINTMENT_STATUS: Final[Mapping[str, str]] = {
    "planned": "booked",
    "done": "fulfilled",
    "cancelled": "cancelled",
    "missed": "noshow",
}


def appointment_resource(event: Event) -> dict[str, Any]:
    """An event of the agenda as an Appointment (JSON): the person (and the professional
    seen, by RPPS) as participants, start and end in UTC, the title as ``description``,
    the notes as ``comment``, the kind of event as ``serviceCategory``.

    .. versionadded:: 0.1
    """
    participants: list[dict[str, Any]] = [
        {"actor": {"reference": f"Patient/{fhir_id(event.patient_id)}"}, "status": "accepted"}
    ]
    if event.professional is not None:
        participants.append(
            {
                "actor": {
                    "reference": f"Practitioner/rpps-{event.professional}",
                    "identifier": {"system": RPPS_SYSTEM, "value": f"8{event.professional}"},
                },
                "status": "accepted",
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": fhir_id(event.id),
        "status": APPOINTMENT_STATUS[str(event.status)],
        "serviceCategory": [{"text": str(event.kind)}],
        "start": _instant(event.starts_at.astimezone(UTC)),
        "participant": participants,
    }
    if event.ends_at is not None:
        resource["end"] = _instant(event.ends_at.astimezone(UTC))
    if event.title:
        resource["description"] = event.title
    if event.notes:
        resource["comment"] = event.notes
    if event.changed_at is not None:
        resource["meta"] = {"lastUpdated": _instant(event.changed_at.astimezone(UTC))}
    return resource


def _audit_event(line: HistoryEntry, patient_id: str) -> dict[str, Any]:
    verb = next((code for word, code in _AUDIT_ACTION.items() if word in line.what), "U")
    outcome = {"success": "0", "failure": "8", "denied": "4"}.get(line.outcome, "8")
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"audit-{line.seq}",
        "type": {"system": _AUDIT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "action": verb,
        "recorded": _instant(line.at),
        "outcome": outcome,
        "outcomeDesc": line.what,
        "agent": [
            {
                "type": {"text": line.actor_kind},
                "who": {"display": line.who},
                "requestor": True,
            }
        ],
        "source": {"observer": {"display": "monespace"}},
        "entity": [{"what": {"reference": f"Patient/{fhir_id(patient_id)}"}}],
    }
    if line.target_id:
        resource["entity"].append({"what": {"identifier": {"value": line.target_id}}})
    if line.mode != "normal":
        resource["purposeOfEvent"] = [{"text": line.mode}]
    return resource
