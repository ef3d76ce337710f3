"""The API's request and response bodies, as attrs classes.

They are the single source of the JSON the server reads and writes *and* of the schemas in
``/openapi.json`` (through :func:`msgspec.json.schema_components`): constraints are written
once, as :class:`msgspec.Meta` annotations, and both decoding and the documentation obey
them. They are views chosen for the API, separate from the library's models: what a client
sees is decided here, field by field.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import attrs
import msgspec

from ..record import Category, MeasureKind, ProfileSection

__all__ = [
    "AccessSettingsOut",
    "AccessSettingsPatch",
    "AccountOut",
    "AuthorOut",
    "AuthorisationIn",
    "BlockedOut",
    "CodeIn",
    "CodeOut",
    "DocumentIn",
    "DocumentList",
    "DocumentOut",
    "DocumentPageOut",
    "DocumentSearch",
    "EmergencyIn",
    "EmergencyOut",
    "GrantOut",
    "Health",
    "HistoryEntryOut",
    "MeasureIn",
    "MeasureOut",
    "MeasureQuery",
    "OppositionOut",
    "PatientLogin",
    "PatientLookup",
    "PatientRef",
    "ProfessionalIn",
    "ProfessionalLogin",
    "ProfessionalOut",
    "ProfileEntryIn",
    "ProfileEntryOut",
    "ProfileQuery",
    "ProofOfIdentity",
    "SessionInfo",
    "SessionOut",
]

# --- shared field types ---------------------------------------------------------------------

Nir = Annotated[
    str,
    msgspec.Meta(
        min_length=13,
        max_length=32,
        description="The social security number (NIR), 15 characters with its key; spaces "
        "are ignored. Only ever sent in request bodies, never in URLs.",
    ),
]
Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Rpps = Annotated[
    str, msgspec.Meta(pattern="^[0-9]{11}$", description="An RPPS number (11 digits).")
]
ObjectId = Annotated[
    str,
    msgspec.Meta(
        pattern="^[A-Za-z0-9_-]{1,64}$", description="An opaque identifier, safe in URLs."
    ),
]
Moment = Annotated[datetime, msgspec.Meta(tz=True)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Offset = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=500)]


# --- health and sessions --------------------------------------------------------------------


@attrs.frozen
class Health:
    """The server is up."""

    status: Literal["ok"] = "ok"


@attrs.frozen
class ProofOfIdentity:
    """What a person types to activate their space or to object to its creation: the
    provisional code they received and the details printed on their carte Vitale."""

    nir: Nir
    code: Secret
    vitale_serial: Secret
    birth_date: date


@attrs.frozen
class PatientLogin:
    """The demo login: the carte Vitale details of a person whose space is active.

    The real service uses FranceConnect or a password with a one-time code; this stands in
    for it in the demo. A parent logs in as themselves and reaches their children's spaces.
    """

    nir: Nir
    vitale_serial: Secret
    birth_date: date


@attrs.frozen
class ProfessionalLogin:
    """The demo's simulated Pro Santé Connect: an RPPS number from the directory, with no
    password. Only offered by a server started in demo mode."""

    rpps: Rpps


@attrs.frozen
class ProfessionalOut:
    """A professional, as the directory knows them."""

    rpps: str
    profession: str
    profession_name: str
    name: str
    specialty: str | None = None
    mssante: str | None = None
    finess: str | None = None
    establishment: str | None = None


@attrs.frozen
class SessionInfo:
    """The current session.

    :param spaces: for a person, the spaces this login reaches: their own first, then those
        of the people they represent.
    :param csrf_token: send it back in ``X-CSRF-Token`` with changes made with the cookie.
    """

    kind: Literal["patient", "professional"]
    person_id: str
    spaces: list[str]
    csrf_token: str
    expires_at: Moment
    idle_timeout_seconds: int
    professional: ProfessionalOut | None = None


@attrs.frozen
class SessionOut:
    """A new session. The token is shown once: send it as ``Authorization: Bearer``, or let
    the browser keep the HttpOnly cookie set with it."""

    token: str
    session: SessionInfo


@attrs.frozen
class AccountOut:
    """The lifecycle state of a space."""

    patient_id: str
    state: str


@attrs.frozen
class OppositionOut:
    """A signed proof of opposition, for the person to keep."""

    proof_id: str
    opposed_at: Moment
    document: str


@attrs.frozen
class PatientLookup:
    """A professional finds a patient's space from their carte Vitale: NIR and birth date."""

    nir: Nir
    birth_date: date


@attrs.frozen
class PatientRef:
    """The opaque id of a space, used in every URL about it."""

    patient_id: str


# --- record ---------------------------------------------------------------------------------


@attrs.frozen
class CodeIn:
    """A coded value: *code* in the code system *system* (an OID)."""

    code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    system: Annotated[str, msgspec.Meta(pattern="^[0-9]+(\\.[0-9]+)*$", max_length=64)]


@attrs.frozen
class CodeOut:
    """A coded value with its display name."""

    code: str
    system: str
    display: str | None = None


@attrs.frozen
class AuthorOut:
    """Who deposited a document."""

    kind: str
    id: str
    name: str | None = None


@attrs.frozen
class DocumentOut:
    """A document's metadata (the content is read separately)."""

    id: str
    version: int
    title: str
    category: Category
    class_code: str
    type_code: CodeOut
    media_type: str
    size: int
    sha256: str
    created_at: Moment
    submitted_at: Moment
    author: AuthorOut
    confidentiality: str
    masked: bool
    hidden_from_patient: bool
    hidden_from_representatives: bool
    status: str
    comments: str | None = None
    replaces: str | None = None
    release_at: Moment | None = None


@attrs.frozen
class DocumentPageOut:
    """One page of documents, newest first, and how many matched in all."""

    documents: list[DocumentOut]
    total: int
    offset: int
    limit: int


@attrs.frozen
class DocumentList:
    """Query parameters of the record listing (free-text search is a POST)."""

    category: Category | None = None
    offset: Offset = 0
    limit: Limit = 50


@attrs.frozen
class DocumentSearch:
    """A search of the record. Sent as a body, so that search words stay out of URLs."""

    text: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    category: Category | None = None
    type_code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    author_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    since: Moment | None = None
    until: Moment | None = None
    include_replaced: bool = False
    offset: Offset = 0
    limit: Limit = 50


@attrs.frozen
class DocumentIn:
    """A document to add. A CDA R2 document fills its type, title and date from its header;
    other contents need ``type_code``.

    :param content: the bytes, base64-encoded.
    :param hidden_from_patient: a professional hides a result until it is announced.
    """

    content: bytes
    media_type: Annotated[str, msgspec.Meta(min_length=3, max_length=100)]
    type_code: CodeIn | None = None
    class_code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] | None = None
    title: ShortText | None = None
    comments: Text | None = None
    created_at: Moment | None = None
    masked: bool = False
    hidden_from_patient: bool = False
    hidden_from_representatives: bool = False


@attrs.frozen
class ProfileEntryIn:
    """An entry of the profil médical."""

    section: ProfileSection
    label: Text
    details: Text | None = None
    code: CodeIn | None = None
    started: date | None = None
    ended: date | None = None


@attrs.frozen
class ProfileEntryOut:
    """An entry of the profil médical."""

    id: str
    section: ProfileSection
    label: str
    details: str | None = None
    code: CodeOut | None = None
    started: date | None = None
    ended: date | None = None
    recorded_at: Moment | None = None


@attrs.frozen
class ProfileQuery:
    """Query parameters of the profil médical."""

    section: ProfileSection | None = None


@attrs.frozen
class MeasureIn:
    """A health measure. ``second`` is the diastolic pressure of a blood pressure."""

    kind: MeasureKind
    value: Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)]
    unit: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] | None = None
    measured_at: Moment | None = None
    second: Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)] | None = None


@attrs.frozen
class MeasureOut:
    """A health measure, in its kind's canonical UCUM unit, with its LOINC code."""

    id: str
    kind: MeasureKind
    value: float
    unit: str
    measured_at: Moment
    code: CodeOut
    source: str
    second: float | None = None


@attrs.frozen
class MeasureQuery:
    """Query parameters of a series of measures."""

    kind: MeasureKind
    since: Moment | None = None
    until: Moment | None = None


# --- access ---------------------------------------------------------------------------------


@attrs.frozen
class AccessSettingsOut:
    """The patient's controls over professional access.

    :param object_all: no professional may read the record.
    :param object_emergency: no emergency access (bris de glace, SAMU).
    :param mask_all: everything is masked, including in emergencies.
    :param notify_first_access: be told when a professional reads the record the first time.
    """

    object_all: bool
    object_emergency: bool
    mask_all: bool
    notify_first_access: bool


@attrs.frozen
class AccessSettingsPatch:
    """The controls to change; those left out keep their value."""

    object_all: bool | None = None
    object_emergency: bool | None = None
    mask_all: bool | None = None
    notify_first_access: bool | None = None


@attrs.frozen
class GrantOut:
    """A professional's access to the record, and how they came to have it."""

    professional_id: str
    kind: str
    since: Moment
    until: Moment | None = None
    ended_at: Moment | None = None


@attrs.frozen
class AuthorisationIn:
    """Authorise a professional to read the record, until a date or without end."""

    rpps: Rpps
    until: Moment | None = None


@attrs.frozen
class ProfessionalIn:
    """A professional, by RPPS number."""

    rpps: Rpps


@attrs.frozen
class HistoryEntryOut:
    """One line of the access history, in plain words.

    :param who: who acted, in words ("vous", "Dr Martin (Médecin)", "l'Assurance Maladie").
    :param what: what they did, in words.
    :param mode: ``normal``, ``emergency`` (bris de glace) or ``regulation`` (SAMU).
    :param outcome: ``success``, ``denied`` or ``failure``.
    """

    at: Moment
    who: str
    what: str
    actor_kind: str
    mode: str
    outcome: str


@attrs.frozen
class BlockedOut:
    """The professionals the patient blocked."""

    rpps: list[str]


@attrs.frozen
class EmergencyIn:
    """Declare an emergency access (bris de glace, CSP L1111-17): the patient cannot express
    their will and there is an immediate risk to their health. The justification is kept and
    shown to the patient."""

    justification: Annotated[str, msgspec.Meta(min_length=10, max_length=1000)]
    mode: Literal["emergency", "regulation"] = "emergency"


@attrs.frozen
class EmergencyOut:
    """An emergency access, open until ``expires_at``."""

    id: str
    patient_id: str
    mode: str
    started_at: Moment
    expires_at: Moment
