"""What the FHIR reader and writer share: the error, the limits, the code systems, and the
lazy import of ``fhir.resources`` (the ``fhir`` extra)."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Final

from ...errors import ConfigurationError, MonespaceError
from ...identity import INS_NIA_OID, INS_NIR_DEMO_OID, INS_NIR_OID, INS_NIR_TEST_OID
from ...record import LOINC, TRE_A03_CLASS, TRE_A05_TYPE, TRE_A07_OID, normalise_code_system

__all__ = [
    "CONFIDENTIALITY_SYSTEM",
    "DEVICE_PROFILE",
    "FHIR_MODELS",
    "INS_TYPES",
    "KNOWN_PROFILES",
    "LOINC_URL",
    "MAX_DEPTH",
    "MAX_ENTRIES",
    "MAX_INPUT_BYTES",
    "RPPS_SYSTEM",
    "UCUM_URL",
    "FhirError",
    "fhir_id",
    "load_json",
    "models",
    "oid_system",
    "outcome",
    "profiles_of",
    "space_id",
    "system_oid",
    "validate",
]

#: The ``fhir.resources`` subpackage of the FHIR version read and written (docs/decisions/0013).
FHIR_MODELS: Final = "fhir.resources.R4B"

#: Inputs larger than this are refused before parsing (a transaction bundle with its Binaries).
MAX_INPUT_BYTES: Final = 64 * 1024 * 1024
#: How deeply JSON may nest; checked on the raw text before parsing. FHIR resources nest
#: a dozen levels (a Bundle entry's contained resource's extension's value...); a thousand
#: levels is an attack on the parser's recursion, not a health record.
MAX_DEPTH: Final = 64
#: How many entries a bundle may hold.
MAX_ENTRIES: Final = 1000

LOINC_URL: Final = "http://loinc.org"
UCUM_URL: Final = "http://unitsofmeasure.org"
CONFIDENTIALITY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
#: The IDNPS of a professional with an RPPS number is "8" followed by it (FR Core).
RPPS_SYSTEM: Final = "urn:oid:1.2.250.1.71.4.2.1"
DEVICE_PROFILE: Final = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"

_NOS: Final = "https://mos.esante.gouv.fr/NOS"
_PDSM: Final = "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/"
_MESURES: Final = "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/"
_FR_CORE: Final = "https://hl7.fr/ig/fhir/core/StructureDefinition/"
_MHD: Final = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/"

#: The FR Core identifier types of an INS, by OID (FR Core Patient, slice ``INS``).
INS_TYPES: Final[Mapping[str, str]] = {
    INS_NIR_OID: "INS-NIR",
    INS_NIA_OID: "INS-NIA",
    INS_NIR_TEST_OID: "INS-NIR-TEST",
    INS_NIR_DEMO_OID: "INS-NIR-DEMO",
}

#: OID → canonical URL of the code systems written. LOINC, TRE_A03 and TRE_A05 by their FHIR
#: URL (PDSm binds them so); anything else as ``urn:oid:``.
_SYSTEM_URLS: Final[Mapping[str, str]] = {
    LOINC: LOINC_URL,
    TRE_A03_CLASS: f"{_NOS}/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument",
    TRE_A05_TYPE: f"{_NOS}/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire",
    TRE_A07_OID: f"{_NOS}/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument",
}
_URL_OIDS: Final[Mapping[str, str]] = {url: oid for oid, url in _SYSTEM_URLS.items()}

#: The profiles a resource may claim: the French IGs this module follows, their IHE bases and
#: the FR Core ones. A resource claiming any other profile is refused (422): its constraints
#: are unknown here, so reading it as a plain resource could lose what the sender meant.
KNOWN_PROFILES: Final[frozenset[str]] = frozenset(
    {
        f"{_PDSM}pdsm-comprehensive-provide-document-bundle",
        f"{_PDSM}pdsm-simplified-provide-document-bundle",
        f"{_PDSM}pdsm-submissionset-comprehensive",
        f"{_PDSM}pdsm-submissionset-minimal",
        f"{_PDSM}pdsm-comprehensive-document-reference",
        f"{_PDSM}pdsm-minimal-document-reference",
        f"{_PDSM}pdsm-simplified-publish",
        f"{_MHD}IHE.MHD.Comprehensive.ProvideBundle",
        f"{_MHD}IHE.MHD.Minimal.ProvideBundle",
        f"{_MHD}IHE.MHD.Comprehensive.DocumentReference",
        f"{_MHD}IHE.MHD.Minimal.DocumentReference",
        f"{_MHD}IHE.MHD.Comprehensive.SubmissionSet",
        f"{_MHD}IHE.MHD.Minimal.SubmissionSet",
        f"{_MESURES}mesures-bundle-flux-alimentation",
        f"{_MESURES}mesures-fr-observation-body-weight",
        f"{_MESURES}mesures-fr-observation-body-height",
        f"{_MESURES}mesures-fr-observation-bmi",
        f"{_MESURES}mesures-fr-observation-bp",
        f"{_MESURES}mesures-fr-observation-heartrate",
        f"{_MESURES}mesures-fr-observation-body-temperature",
        f"{_MESURES}mesures-fr-observation-waist-circumference",
        f"{_MESURES}mesures-fr-observation-head-circumference",
        f"{_MESURES}mesures-fr-observation-respiratory-rate",
        f"{_MESURES}mesures-fr-observation-oxygen-saturation",
        f"{_MESURES}mesures-observation-glucose",
        f"{_MESURES}mesures-observation-steps",
        f"{_MESURES}mesures-observation-pain-severity",
        "http://hl7.org/fhir/StructureDefinition/vitalsigns",
        "http://hl7.org/fhir/StructureDefinition/bodyweight",
        "http://hl7.org/fhir/StructureDefinition/bodyheight",
        "http://hl7.org/fhir/StructureDefinition/bp",
        "http://hl7.org/fhir/StructureDefinition/heartrate",
        "http://hl7.org/fhir/StructureDefinition/bodytemp",
        "http://hl7.org/fhir/StructureDefinition/resprate",
        "http://hl7.org/fhir/StructureDefinition/oxygensat",
        "http://hl7.org/fhir/StructureDefinition/headcircum",
        "http://hl7.org/fhir/StructureDefinition/bmi",
        DEVICE_PROFILE,
        f"{_FR_CORE}fr-core-patient",
        f"{_FR_CORE}fr-core-practitioner",
        f"{_FR_CORE}fr-core-organization",
    }
)


class FhirError(MonespaceError):
    """A FHIR input was refused, or an operation on it failed, as the "Mesures de santé"
    guide reports it: an HTTP-like *status* and an OperationOutcome.

    ======  ==============================================================================
    400     not FHIR R4 JSON: malformed, too large, too deep, too many entries, invalid
    403     the actor may not do this ("Consent not given, access refused.")
    409     a conflict with the record (a document replaced twice, already there)
    422     valid FHIR that breaks a rule: unknown profile or code, a reference to an
            absent resource, a Binary whose bytes are not its content type
    ======  ==============================================================================

    The message names the rule and where in the input, never a value read from it.

    .. versionadded:: 0.1
    """

    def __init__(self, status: int, message: str, *, location: str | None = None) -> None:
        super().__init__(message if location is None else f"{location}: {message}")
        self.status = status
        self.diagnostics = message
        self.location = location

    @property
    def outcome(self) -> dict[str, Any]:
        """The error as a FHIR OperationOutcome (JSON)."""
        return outcome(self.status, self.diagnostics, self.location)


_CODES: Final = {400: "structure", 403: "forbidden", 404: "not-found", 409: "conflict"}


def outcome(status: int, diagnostics: str, location: str | None = None) -> dict[str, Any]:
    """An OperationOutcome with one error issue, its code chosen from the status."""
    issue: dict[str, Any] = {
        "severity": "error",
        "code": _CODES.get(status, "processing" if status == 422 else "exception"),
        "diagnostics": diagnostics,
    }
    if location is not None:
        issue["expression"] = [location]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def models() -> ModuleType:
    """The ``fhir.resources`` models of FHIR R4 (``fhir.resources.R4B``).

    :raises ConfigurationError: when the ``fhir`` extra is not installed.
    """
    try:
        return importlib.import_module(FHIR_MODELS)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "FHIR needs the 'fhir' extra: pip install 'monespace[fhir]'"
        ) from exc


def validate(resource: Mapping[str, Any], location: str | None = None) -> Any:
    """*resource* (JSON) as a ``fhir.resources`` R4 model.

    :raises FhirError: 400 when it is not a valid FHIR R4 resource.
    """
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not kind.isalpha():
        raise FhirError(400, "not a FHIR resource: no resourceType", location=location)
    fhir = models()
    try:
        model = fhir.get_fhir_model_class(kind)
    except (KeyError, ValueError):
        raise FhirError(
            400, f"{kind} is not a resource type of FHIR R4", location=location
        ) from None
    try:
        return model.model_validate(dict(resource))
    except ValueError as exc:
        # pydantic's errors quote the offending input: only the fields are reported.
        fields = sorted({_where(e) for e in getattr(exc, "errors", lambda: [])()})[:5]
        raise FhirError(
            400,
            f"not a valid FHIR R4 {kind} (fields: {', '.join(fields) or '?'})",
            location=location,
        ) from None


def _where(error: Mapping[str, Any]) -> str:
    return ".".join(str(part) for part in error.get("loc", ()) if not isinstance(part, int))


_STRINGS: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS: Final = re.compile(rb"[][{}]")


def load_json(data: bytes | str) -> dict[str, Any]:
    """Parse FHIR JSON within the limits: size, then nesting depth (on the raw text, so that
    a hostile input never reaches the recursive parser), then syntax.

    :raises FhirError: 400.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_INPUT_BYTES:
        raise FhirError(400, f"the input is larger than {MAX_INPUT_BYTES} bytes")
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b'""', raw)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                raise FhirError(400, f"the JSON nests deeper than {MAX_DEPTH} levels")
        else:
            depth -= 1
    try:
        value = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise FhirError(400, "not JSON (malformed or not UTF-8)") from None
    if not isinstance(value, dict):
        raise FhirError(400, "not a FHIR resource: the JSON is not an object")
    return value


def profiles_of(resource: Mapping[str, Any]) -> list[str]:
    """The profiles a resource claims in ``meta.profile`` (JSON)."""
    meta = resource.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    return [p for p in profiles if isinstance(p, str)] if isinstance(profiles, list) else []


def system_oid(system: str) -> str:
    """The OID of a code system named by its FHIR URL, ``urn:oid:`` or OID."""
    oid = normalise_code_system(system)
    return _URL_OIDS.get(oid, oid)


def oid_system(oid: str) -> str:
    """The FHIR system URL of a code system known by its OID."""
    if oid in _SYSTEM_URLS:
        return _SYSTEM_URLS[oid]
    return oid if ":" in oid else f"urn:oid:{oid}"


def fhir_id(space_id: str) -> str:
    """A space's id as a FHIR id (``[A-Za-z0-9.-]``): the ids of a space are URL-safe base64,
    whose ``_`` FHIR does not allow, and which never holds a ``.``."""
    return space_id.replace("_", ".")


def space_id(fhir_id: str) -> str:
    """The space's id a FHIR id written by :func:`fhir_id` stands for."""
    return fhir_id.replace(".", "_")
