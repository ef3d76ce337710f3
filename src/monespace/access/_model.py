"""Professionals, the patient's authorisations and controls, and emergency access.

docs/domain-rules.md §4 and docs/security-and-reliability.md §1.2 to 1.3.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

import attrs

from ..actors import AccessMode
from ..identity import parse_professional_address

__all__ = [
    "DEFAULT_MATRIX",
    "PROFESSIONS",
    "AccessMatrix",
    "AccessSettings",
    "EmergencySession",
    "Grant",
    "GrantKind",
    "Professional",
]

#: Health professions (TRE_G15 codes) and their names.
PROFESSIONS: Final = MappingProxyType(
    {
        "10": "Médecin",
        "21": "Pharmacien",
        "40": "Chirurgien-dentiste",
        "50": "Sage-femme",
        "60": "Infirmier",
        "70": "Masseur-kinésithérapeute",
        "80": "Pédicure-podologue",
        "91": "Orthophoniste",
        "92": "Orthoptiste",
        "94": "Ergothérapeute",
        "95": "Psychomotricien",
        "96": "Manipulateur ERM",
        "28": "Opticien-lunetier",
        "26": "Audioprothésiste",
        "31": "Diététicien",
    }
)


def _validate_mssante(_instance: object, _attribute: object, value: str | None) -> None:
    # The address reaches mail headers: the identity parser's strict rules, nothing looser.
    if value is not None:
        parse_professional_address(value)


@attrs.frozen
class Professional:
    """A health professional, as the directory (RPPS) knows them.

    :param rpps: the 11-digit RPPS number.
    :param profession: the TRE_G15 profession code (``"10"`` for a physician).
    :param specialty: the J01 author-specialty code (``"SM26"`` general medicine), if any.
    :param mssante: their MSSanté address, if any, checked as
        :func:`~monespace.identity.parse_professional_address` does (a strict dot-atom in
        ``mssante.fr``): :class:`~monespace.errors.InvalidMSSanteAddressError` otherwise.
    :param finess: the FINESS number of their establishment, if any.
    :param assurance: how they authenticated (``"e-CPS"``, ``"CPS"``, ``"PSC"``): the demo
        simulates Pro Santé Connect, the library records what it is told.
    """

    rpps: str
    profession: str
    name: str
    specialty: str | None = None
    mssante: str | None = attrs.field(default=None, validator=_validate_mssante)
    finess: str | None = None
    establishment: str | None = None
    assurance: str = "PSC"

    @property
    def profession_name(self) -> str:
        """The profession in words."""
        return PROFESSIONS.get(self.profession, self.profession)


class GrantKind(StrEnum):
    """How a professional comes to have access to a record (strongest last)."""

    CARE_TEAM = "care_team"
    """Member of the care team: deemed authorised unless the patient objects (R1111-46)."""
    AUTHORISED = "authorised"
    """Authorised explicitly by the patient (R1111-32, L1110-4 III al. 2)."""
    EXTENDED = "extended"
    """Given by the patient the same rights as the médecin traitant."""
    TREATING_DOCTOR = "treating_doctor"
    """The médecin traitant declared by the patient."""


_STRENGTH = {
    GrantKind.CARE_TEAM: 1,
    GrantKind.AUTHORISED: 2,
    GrantKind.EXTENDED: 3,
    GrantKind.TREATING_DOCTOR: 4,
}


@attrs.frozen
class Grant:
    """A professional's access to a record, from ``since`` until ``until`` (exclusive) or its
    end (``ended_at``, when revoked).

    :param granted_by: who created it (the patient's id, or the professional who declared
        the care relationship).
    """

    patient_id: str
    professional_id: str
    kind: GrantKind
    since: datetime
    until: datetime | None = None
    ended_at: datetime | None = None
    granted_by: str | None = None

    def active(self, now: datetime) -> bool:
        """Whether the grant gives access at *now*."""
        if self.ended_at is not None or now < self.since:
            return False
        return self.until is None or now < self.until

    @property
    def strength(self) -> int:
        """Orders grants: the treating doctor's rights above an explicit authorisation."""
        return _STRENGTH[self.kind]


@attrs.frozen
class AccessSettings:
    """The patient's controls over professional access (docs/domain-rules.md §4.2).

    :param object_all: no professional may read the record in the normal mode, care team,
        authorised professionals and médecin traitant included (a blocking-all, [U]). Emergency
        access has its own objection, ``object_emergency`` (L1111-17 I); ``mask_all`` hides
        everything in every mode.
    :param object_emergency: no emergency access, bris de glace or SAMU (L1111-17 I).
    :param mask_all: everything is masked, including in emergencies: only the holder
        (and the authors of their documents) see it.
    :param notify_first_access: tell the holder when a professional reads the record for
        the first time (unconfirmed feature, on by default).
    """

    patient_id: str
    object_all: bool = False
    object_emergency: bool = False
    mask_all: bool = False
    notify_first_access: bool = True


@attrs.frozen(repr=False)
class EmergencySession:
    """An emergency access (bris de glace or SAMU regulation), open until ``expires_at``."""

    id: str
    patient_id: str
    professional_id: str
    mode: AccessMode
    started_at: datetime
    expires_at: datetime

    def active(self, now: datetime) -> bool:
        """Whether the session still gives access at *now*."""
        return self.started_at <= now < self.expires_at

    def __repr__(self) -> str:
        return f"EmergencySession(id={self.id!r}, mode={self.mode.value!r})"


@attrs.frozen
class AccessMatrix:
    """Which document classes (and types) each profession may read: the "matrice
    d'habilitations" of the arrêté of 26 October 2023, as data.

    Only the physicians' row is published in the sources at hand ("all documents except the
    attestation de résidence"); the others are assumptions, documented in
    docs/explanation/access-model.md, and replaceable through ``Settings.access.matrix``.

    :param classes: profession code → the class codes it may read.
    :param denied_types: profession code → type codes it may not read even in those classes.
    """

    classes: MappingProxyType[str, frozenset[str]]
    denied_types: MappingProxyType[str, frozenset[str]] = MappingProxyType({})

    def allows(self, profession: str, class_code: str, type_code: str) -> bool:
        """Whether *profession* may read a document of this class and type."""
        allowed = self.classes.get(profession)
        if allowed is None or class_code not in allowed:
            return False
        return type_code not in self.denied_types.get(profession, frozenset())


#: The class of the submission sets' digital signatures (ASTM E1762), JDV_J57 (record/_codes).
_SIGNATURE = "urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1"
# Fix: the signature class was missing, so physicians (who see "every document but the
# attestation de résidence", the one confirmed row) were refused signature documents.
_ALL = frozenset(
    {"10", "11", "31", "42", "43", "44", "45", "52", "60", "90", "95", "99", _SIGNATURE}
)
_CLINICAL = frozenset({"10", "11", "31", "42", "43", "44", "45", "52"})

#: The default matrix: physicians as published; other rows are documented assumptions.
DEFAULT_MATRIX: Final = AccessMatrix(
    classes=MappingProxyType(
        {
            "10": _ALL,  # confirmed: every document but the attestation de résidence
            "21": frozenset({"10", "11", "42", "43", "44", "45", "52"}),
            "60": frozenset({"10", "11", "42", "43", "44", "45", "52"}),
            "50": _CLINICAL,
            "40": frozenset({"10", "11", "31", "42", "43", "45", "52"}),
            "70": frozenset({"10", "11", "31", "42", "44"}),
            "80": frozenset({"10", "42", "44"}),
            "91": frozenset({"10", "11", "42"}),
            "92": frozenset({"10", "42"}),
            "94": frozenset({"10", "42", "44"}),
            "95": frozenset({"10", "42", "44"}),
            "96": frozenset({"10", "31", "42"}),
            "28": frozenset({"42"}),
            "26": frozenset({"42"}),
            "31": frozenset({"10", "42", "44"}),
        }
    ),
    denied_types=MappingProxyType(
        {
            "10": frozenset({"ATTEST-RESID"}),
            # Dentists do not see psychiatric syntheses, psychological assessments,
            # telemedicine requests nor social discharge letters (information-dentaire).
            "40": frozenset({"68599-0", "83901-9", "75496-0", "83981-1", "88348-8"}),
        }
    ),
)
