"""The official codes of document metadata: CI-SIS value sets and the typeCode → classCode map.

The value sets ship as package data (``monespace/record/data/``, origin in its ``SOURCES.md``)
and are read lazily, once, through :mod:`importlib.resources`. The IHE SVS XML files go
through the hardened XML parser; the two FHIR ``ValueSet`` JSON files through :mod:`json`.

Codes are compared as ``(code, code system)`` pairs, never by display name: the official
examples spell display names differently from the value sets (a typographic apostrophe,
U+2019, against ``'``).

Code systems are identified by their **OID**, as XDS and CDA do (``codingScheme``,
``@codeSystem``). The FHIR value sets (J06, J10) name their code systems by canonical URL; on
loading, each URL is replaced by the OID the ANS publishes for it (:data:`CODE_SYSTEM_OIDS`),
and every lookup accepts either spelling, as well as ``urn:oid:`` prefixed OIDs.

The DMP document classes and the typeCode → classCode correspondence follow
``docs/domain-rules.md`` §3.3: JDV_J57_ClassCode_DMP and ASS_X16_CorrespondanceType_Classe_DMP.

.. versionadded:: 0.1
"""

from __future__ import annotations

import functools
import json
import types
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Final

import attrs

from monespace.errors import ValidationError

from .._xml import parse_xml

__all__ = [
    "CLASS_CODE_SYSTEM",
    "CODE_SYSTEM_OIDS",
    "DIGITAL_SIGNATURE_CLASS_CODE",
    "DMP_CLASS_CODES",
    "LOINC_OID",
    "TRE_A05_OID",
    "TRE_A07_OID",
    "TYPE_CODE_CLASSES",
    "UNMAPPED_TYPE_CODES",
    "ValueSet",
    "class_code_for",
    "class_code_system_for",
    "format_code_for_media_type",
    "is_member",
    "normalise_code_system",
    "type_label",
    "value_set",
    "value_set_names",
]

#: LOINC, the code system of most document types.
LOINC_OID: Final = "2.16.840.1.113883.6.1"
#: TRE_A05_TypeDocComplementaire: French document types that LOINC lacks (``REMB``, ``SYNTH``).
TRE_A05_OID: Final = "1.2.250.1.213.1.1.4.12"
#: TRE_A07_StatutVisibiliteDocument: the DMP masking codes (``MASQUE_PS``, ...), §3.4.
TRE_A07_OID: Final = "1.2.250.1.213.1.1.4.13"
#: TRE_A03_ClasseDocument: the code system of the XDS classCode (§3.3).
CLASS_CODE_SYSTEM: Final = "1.2.250.1.213.1.1.4.1"
#: The classCode of a digital signature document; its code system is TRE_A10 (``"URN"``).
DIGITAL_SIGNATURE_CLASS_CODE: Final = "urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1"
_URN_SYSTEM: Final = "URN"
_ASTM_SYSTEM: Final = "ASTM"

_NOS: Final = "https://mos.esante.gouv.fr/NOS"

#: Canonical URL → OID of the code systems met in the shipped value sets.
#:
#: Confirmed by the ANS FHIR IG PDSm (invariants ``constr-bind-category`` and
#: ``constr-bind-format``, which list "TRE_A03-ClasseDocument-CISIS, OID :
#: 1.2.250.1.213.1.1.4.1", "TRE_A06 … 1.2.250.1.213.1.1.4.2.282", "TRE_A11 …
#: 1.3.6.1.4.1.19376.1.2.3", "TRE_A09 … 1.2.840.10008.2.6.1", "TRE_A10 … OID : URN") and by
#: ``docs/domain-rules.md`` §3.3 for TRE_A03. LOINC's FHIR URL is the HL7 one.
CODE_SYSTEM_OIDS: Final[Mapping[str, str]] = types.MappingProxyType(
    {
        f"{_NOS}/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument": CLASS_CODE_SYSTEM,
        f"{_NOS}/TRE_A06-FormatCodeComplementaire/FHIR/TRE-A06-FormatCodeComplementaire": (
            "1.2.250.1.213.1.1.4.2.282"
        ),
        f"{_NOS}/TRE_A09-DICOMuidRegistry/FHIR/TRE-A09-DICOMuidRegistry": "1.2.840.10008.2.6.1",
        f"{_NOS}/TRE_A10-NomenclatureURN/FHIR/TRE-A10-NomenclatureURN": _URN_SYSTEM,
        f"{_NOS}/TRE_A11-IheFormatCode/FHIR/TRE-A11-IheFormatCode": "1.3.6.1.4.1.19376.1.2.3",
        # The DMP value sets (J66) name LOINC, TRE_A05 and the ASTM nomenclature by their NOS
        # URLs: the same systems as the XDS OIDs used everywhere else.
        f"{_NOS}/TRE_A04-Loinc/FHIR/TRE-A04-Loinc": LOINC_OID,
        f"{_NOS}/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire": TRE_A05_OID,
        f"{_NOS}/TRE_A12-NomenclatureASTM/FHIR/TRE-A12-NomenclatureASTM": _ASTM_SYSTEM,
        "http://loinc.org": LOINC_OID,
    }
)


def normalise_code_system(system: str) -> str:
    """The OID form of a code system identifier.

    ``urn:oid:1.2.3`` becomes ``1.2.3``; a canonical URL listed in :data:`CODE_SYSTEM_OIDS`
    becomes its OID; anything else is returned stripped and otherwise unchanged.

    .. versionadded:: 0.1
    """
    system = system.strip()
    if system.startswith("urn:oid:"):
        return system.removeprefix("urn:oid:")
    return CODE_SYSTEM_OIDS.get(system, system)


# --- value sets ---------------------------------------------------------------------------------


def _freeze(concepts: Mapping[tuple[str, str], str]) -> Mapping[tuple[str, str], str]:
    return types.MappingProxyType(dict(concepts))


@attrs.frozen(unsafe_hash=False)
class ValueSet:
    """A value set (jeu de valeurs, JDV): the codes allowed for one piece of metadata.

    Membership is tested on ``(code, code system)``, with the code system as an OID (a
    canonical URL or a ``urn:oid:`` OID is normalised first); display names are only there to
    be shown.

    :ivar key: the short name used by :func:`value_set` (``"J07"``).
    :ivar name: the official name (``"JDV_J07_XdsTypeCode_CISIS"``).
    :ivar oid: the OID of the value set.
    :ivar version: the version or update date of the published file, when it gives one.
    :ivar concepts: ``(code, code system OID) → display name`` (French).

    .. versionadded:: 0.1
    """

    key: str
    name: str
    oid: str
    version: str | None
    concepts: Mapping[tuple[str, str], str] = attrs.field(converter=_freeze, repr=False)

    def __contains__(self, item: object) -> bool:
        if not (isinstance(item, tuple) and len(item) == 2):
            return False
        code, system = item
        if not (isinstance(code, str) and isinstance(system, str)):
            return False
        return (code, normalise_code_system(system)) in self.concepts

    def __len__(self) -> int:
        return len(self.concepts)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.concepts)

    def display(self, code: str, code_system: str) -> str | None:
        """The display name of a concept, or ``None`` when it is not in the value set."""
        return self.concepts.get((code, normalise_code_system(code_system)))

    def codes(self, code_system: str | None = None) -> frozenset[str]:
        """The codes of the value set, optionally only those of one code system."""
        if code_system is None:
            return frozenset(code for code, _ in self.concepts)
        system = normalise_code_system(code_system)
        return frozenset(code for code, s in self.concepts if s == system)

    def code_systems(self) -> frozenset[str]:
        """The code systems (OIDs) the value set draws from."""
        return frozenset(system for _, system in self.concepts)


@attrs.frozen
class _Source:
    key: str
    file: str


# key → file in monespace/record/data/. The keys are the JDV numbers of the CI-SIS.
_SOURCES: Final = (
    _Source("J01", "JDV_J01_XdsAuthorSpecialty_CISIS.xml"),
    _Source("J02", "JDV_J02_XdsHealthcareFacilityTypeCode_CISIS.xml"),
    _Source("J04", "JDV_J04_XdsPracticeSettingCode_CISIS.xml"),
    _Source("J06", "ValueSet-JDV-J06-XdsClassCode-CISIS.json"),
    _Source("J07", "JDV_J07_XdsTypeCode_CISIS.xml"),
    _Source("J08", "JDV_J08_XdsConfidentialityCode_CISIS.xml"),
    _Source("J10", "ValueSet-JDV-J10-XdsFormatCode-CISIS.json"),
    _Source("J11", "JDV_J11_RelationPatient_CISIS.xml"),
    _Source("J57", "ValueSet-JDV-J57-ClassCode-DMP.json"),
    _Source("J60", "ValueSet-JDV-J60-FormatCode-DMP.json"),
    _Source("J66", "ValueSet-JDV-J66-TypeCode-DMP.json"),
    _Source("HL7_CONFIDENTIALITY", "JDV_HL7_Confidentiality_CISIS.xml"),
)

_SVS: Final = "{urn:ihe:iti:svs:2008}"


def _read(file: str) -> bytes:
    return resources.files("monespace.record").joinpath("data", file).read_bytes()


def _load_svs(key: str, data: bytes) -> ValueSet:
    root = parse_xml(data)
    element = root.find(f"{_SVS}ValueSet")
    if element is None:
        raise ValidationError(f"the value set {key} has no ValueSet element")
    concepts: dict[tuple[str, str], str] = {}
    for concept in element.iterfind(f"{_SVS}ConceptList/{_SVS}Concept"):
        code = concept.get("code")
        system = concept.get("codeSystem")
        if code and system:
            concepts[(code, normalise_code_system(system))] = concept.get("displayName") or ""
    name = (element.get("displayName") or key).removesuffix(".tabs")
    version = element.get("dateMaj") or element.get("revisionDate") or element.get("version")
    return ValueSet(key, name, element.get("id") or "", version, concepts)


def _load_fhir(key: str, data: bytes) -> ValueSet:
    resource = json.loads(data)
    concepts: dict[tuple[str, str], str] = {}
    for include in resource.get("compose", {}).get("include", []):
        system = normalise_code_system(include["system"])
        for concept in include.get("concept", []):
            concepts[(concept["code"], system)] = concept.get("display", "")
    oid = next(
        (
            identifier["value"].removeprefix("urn:oid:")
            for identifier in resource.get("identifier", [])
            if identifier.get("value", "").startswith("urn:oid:")
        ),
        "",
    )
    return ValueSet(key, resource.get("name", key), oid, resource.get("version"), concepts)


@functools.cache
def _load(key: str) -> ValueSet:
    source = next(s for s in _SOURCES if s.key == key)
    data = _read(source.file)
    if source.file.endswith(".json"):
        return _load_fhir(key, data)
    return _load_svs(key, data)


@functools.cache
def _aliases() -> Mapping[str, str]:
    # Every spelling a caller may use → key: "J07", "j07", the official name, the OID.
    aliases: dict[str, str] = {}
    for source in _SOURCES:
        value_set_ = _load(source.key)
        for alias in (source.key, value_set_.name, value_set_.oid):
            if alias:
                aliases[alias.casefold()] = source.key
    return aliases


def value_set_names() -> tuple[str, ...]:
    """The short names of the value sets that ship with monespace (``"J07"``, ...).

    .. versionadded:: 0.1
    """
    return tuple(source.key for source in _SOURCES)


def value_set(name: str) -> ValueSet:
    """A value set shipped with monespace, loaded on first use.

    :param name: the short name (``"J07"``, case-insensitive), the official name
        (``"JDV_J07_XdsTypeCode_CISIS"``) or the OID of the value set.
    :raises ValidationError: when no shipped value set has that name.

    .. versionadded:: 0.1
    """
    wanted = name.strip().casefold()
    for source in _SOURCES:
        if source.key.casefold() == wanted:
            return _load(source.key)
    key = _aliases().get(wanted.removeprefix("urn:oid:"))
    if key is None:
        raise ValidationError(
            f"unknown value set {name!r}; the shipped ones are {', '.join(value_set_names())}"
        )
    return _load(key)


def is_member(value_set_: ValueSet | str, code: str, code_system: str) -> bool:
    """Whether ``(code, code_system)`` belongs to a value set.

    :param value_set_: a :class:`ValueSet`, or a name accepted by :func:`value_set`.
    :param code: the code, compared exactly.
    :param code_system: the OID of its code system (a canonical URL or ``urn:oid:`` form is
        normalised).

    .. versionadded:: 0.1
    """
    vs = value_set(value_set_) if isinstance(value_set_, str) else value_set_
    return (code, code_system) in vs


# --- document classes and the typeCode → classCode correspondence -----------------------------

#: The DMP document classes, JDV_J57_ClassCode_DMP (``docs/domain-rules.md`` §3.3): TRE_A03
#: codes (code system :data:`CLASS_CODE_SYSTEM`) plus the digital-signature class (code system
#: TRE_A10, ``"URN"``). The CI-SIS value set J06 has one more, ``99`` "Document technique",
#: which the DMP does not accept.
DMP_CLASS_CODES: Final[Mapping[str, str]] = types.MappingProxyType(
    {
        "10": "Compte rendu",
        "11": "Synthèse",
        "31": "Imagerie médicale",
        "42": "Prescription",
        "43": "Dispensation",
        "44": "Plan de soins, protocole de soins",
        "45": "Traitement administré",
        "52": "Certificat, déclaration",
        "60": "Données de remboursement",
        "90": "Autres documents déposés par le patient",
        "95": "Document de gestion",
        DIGITAL_SIGNATURE_CLASS_CODE: "Digital Signature",
    }
)

# ASS_X16_CorrespondanceType_Classe_DMP, version 2024-02-23, as transcribed in
# docs/domain-rules.md §3.3 (classCode → typeCodes per code system).
# fmt: off
_CORRESPONDENCE: Final[Mapping[str, Mapping[str, tuple[str, ...]]]] = {
    "10": {
        LOINC_OID: (
            "11488-4", "11490-0", "11502-2", "11505-5", "11506-3", "11526-1", "15507-7",
            "15508-5", "28653-4", "29274-8", "34112-3", "34749-2", "34794-8", "34874-8",
            "34875-5", "47420-5", "51969-4", "59283-2", "60568-3", "67851-6", "70004-7",
            "75482-0", "75492-9", "75496-0", "77436-4", "78513-9", "78601-2", "83981-1",
            "85208-7", "93024-8", "96349-6",
        ),
        TRE_A05_OID: ("BIL_AUTO", "DOCPAT03", "DOCPAT05", "DOCPAT06"),
    },
    "11": {
        LOINC_OID: (
            "18761-7", "34133-9", "34842-5", "56445-0", "57055-6", "57057-2", "57075-4",
            "60591-5", "68599-0", "68817-6", "74207-2", "78489-2", "80820-4", "83836-7",
            "83901-9", "88348-8", "89235-6",
        ),
        TRE_A05_OID: ("DOCPAT01", "DOCPAT08", "SYNTH"),
    },
    "31": {
        LOINC_OID: ("18748-4", "52040-3"),
        TRE_A05_OID: ("DOCPAT04", "IMG-KOS"),
    },
    "42": {
        LOINC_OID: ("55115-0", "57828-6", "57832-8", "57833-6", "61357-0", "75468-9"),
        TRE_A05_OID: (
            "DOCPAT02", "PRESC-AAT", "PRESC-BIO", "PRESC-INF", "PRESC-KINE", "PRESC-ORTHOPHO",
            "PRESC-ORTHOPTIE", "PRESC-PEDI",
        ),
    },
    "43": {
        LOINC_OID: ("60593-1",),
        TRE_A05_OID: ("DISP_AUT",),
    },
    "44": {
        LOINC_OID: ("18776-5", "77604-7", "80771-9", "80788-3", "83869-8"),
        TRE_A05_OID: ("PROT_ALD",),
    },
    "45": {
        LOINC_OID: ("80565-5",),
    },
    "52": {
        LOINC_OID: ("11369-6", "87273-9", "89601-9", "96173-0", "96874-3"),
        TRE_A05_OID: ("CERT_DECL", "DOCPAT07"),
    },
    "60": {
        TRE_A05_OID: ("REMB",),
    },
    "90": {
        LOINC_OID: ("74465-6",),
        TRE_A05_OID: ("EXPPAT_1", "EXPPAT_2", "EXPPAT_3"),
    },
    "95": {
        LOINC_OID: ("59284-0", "86531-1"),
        TRE_A05_OID: (
            "ATTEST-ASS-COMPL", "ATTEST-DROITS-AM", "ATTEST-HEBGT", "ATTEST-RESID",
            "AUTORIS-SOINS", "DOCPAT09",
        ),
    },
    # "E1762 → urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1 is the signature mapping, from
    # TRE_A12-NomenclatureASTM to TRE_A10" (domain-rules §3.3, notes); J07 spells the code
    # system "ASTM".
    DIGITAL_SIGNATURE_CLASS_CODE: {_ASTM_SYSTEM: ("E1762",)},
}
# fmt: on

#: typeCode ``(code, code system OID)`` → classCode, ASS_X16_CorrespondanceType_Classe_DMP
#: (version 2024-02-23) as given in ``docs/domain-rules.md`` §3.3, **confirmed** there from
#: the ANS terminology sources, plus the ASTM ``E1762`` → digital-signature row of the same
#: section. Every typeCode of JDV_J66_TypeCode_DMP has exactly one class.
TYPE_CODE_CLASSES: Final[Mapping[tuple[str, str], str]] = types.MappingProxyType(
    {
        (type_code, system): class_code
        for class_code, by_system in _CORRESPONDENCE.items()
        for system, type_codes in by_system.items()
        for type_code in type_codes
    }
)

#: typeCodes of the CI-SIS value set J07 that ASS_X16 (the DMP mapping) does not cover, so
#: :func:`class_code_for` returns ``None`` for them. They are CI-SIS types the DMP does not
#: accept (J66 is narrower than J07), or TRE_A05 codes newer than ASS_X16 2024-02-23.
#: **Not guessed**: the wider CI-SIS correspondence ASS_X04_CorrespondanceType_Classe_CISIS
#: would give their class but was not available to check.
UNMAPPED_TYPE_CODES: Final = frozenset(
    {
        ("28617-9", LOINC_OID),  # Bilan bucco-dentaire
        ("34120-6", LOINC_OID),  # Bilan par professionnel de santé
        ("51851-4", LOINC_OID),  # Document administratif
        ("56446-8", LOINC_OID),  # Notification de rendez-vous
        ("60280-5", LOINC_OID),  # Fiche de retour du service des urgences
        ("78341-5", LOINC_OID),  # Fiche de transfert vers le service des urgences
        ("89233-1", LOINC_OID),  # CR de grossesse
        ("101881-1", LOINC_OID),  # Carte d'implant
        ("PIECE-IDENTITE", TRE_A05_OID),
        ("FEUILLE-DE-STYLE", TRE_A05_OID),
        ("FICHE-CONTACTS", TRE_A05_OID),
        ("EXPORT_DUI", TRE_A05_OID),
    }
)


def class_code_for(type_code: str, type_code_system: str) -> str | None:
    """The DMP classCode of a document type (XDS typeCode = CDA ``ClinicalDocument/code``).

    Uses :data:`TYPE_CODE_CLASSES` (ASS_X16, confirmed in ``docs/domain-rules.md`` §3.3).
    Returns ``None`` when the type has no known class: a typeCode outside the DMP's J66 (see
    :data:`UNMAPPED_TYPE_CODES` for the J07 codes concerned) or an unknown code. Nothing is
    guessed from display names or code prefixes.

    :param type_code: the code, compared exactly.
    :param type_code_system: the code system OID (LOINC ``2.16.840.1.113883.6.1`` or TRE_A05
        ``1.2.250.1.213.1.1.4.12``; ``urn:oid:`` and ``http://loinc.org`` are accepted).
    :returns: a TRE_A03 code such as ``"10"``, :data:`DIGITAL_SIGNATURE_CLASS_CODE`, or
        ``None``. Its code system is :func:`class_code_system_for`.

    .. versionadded:: 0.1
    """
    return TYPE_CODE_CLASSES.get((type_code, normalise_code_system(type_code_system)))


def class_code_system_for(class_code: str) -> str:
    """The code system of a classCode: TRE_A03 (an OID), or ``"URN"`` for the signature class.

    .. versionadded:: 0.1
    """
    return _URN_SYSTEM if class_code.startswith("urn:") else CLASS_CODE_SYSTEM


_A12: Final = "ConceptMap-ASS-A12-CorresMediaTypeCDANonStructure-XdsFormatCode-CISIS.json"


@functools.cache
def _media_type_formats() -> Mapping[str, str]:
    """ASS_A12: media type of an unstructured body → formatCode, read from the shipped map."""
    resource = json.loads(_read(_A12))
    found: dict[str, str] = {}
    for group in resource.get("group", []):
        for element in group.get("element", []):
            for target in element.get("target", []):
                found.setdefault(element["code"], target["code"])
    return types.MappingProxyType(found)


def format_code_for_media_type(media_type: str) -> str | None:
    """The XDS formatCode of an unstructured document of *media_type* (ASS_A12):
    ``application/pdf`` → ``urn:ihe:iti:xds-sd:pdf:2008``; ``None`` for a media type the
    correspondence does not list.

    .. versionadded:: 0.1
    """
    return _media_type_formats().get(media_type.strip().lower())


def type_label(code: str, code_system: str) -> str | None:
    """The French label of a document type, for a person to read: the DMP's JDV_J66 label,
    else the CI-SIS JDV_J07 one, with the abbreviation "CR" spelt out ("Compte rendu
    d'examens biologiques"); ``None`` for a type in neither."""
    label = value_set("J66").display(code, code_system) or value_set("J07").display(
        code, code_system
    )
    if label is None:
        return None
    if label.startswith("CR "):
        label = "Compte rendu " + label[3:]
    return label
