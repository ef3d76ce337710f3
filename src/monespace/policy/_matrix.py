"""The matrice d'habilitations: which document classes and types each profession may read."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

import attrs

from ..identity import profession_code

__all__ = ["DEFAULT_MATRIX", "AccessMatrix"]


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
# Physicians see "every document but the attestation de résidence" (the one confirmed row):
# every class of JDV_J57, the signatures of submission sets included. Class 99 (document
# technique) is in TRE_A03 but not in J57, so no DMP document carries it.
_ALL = frozenset({"10", "11", "31", "42", "43", "44", "45", "52", "60", "90", "95", _SIGNATURE})
_CLINICAL = frozenset({"10", "11", "31", "42", "43", "44", "45", "52"})
_CARE = frozenset({"10", "11", "42", "43", "44", "45", "52"})
_NONE: frozenset[str] = frozenset()

#: The rows, by the profession's name in JDV_J01 (TRE_G15): the codes come from the value
#: set itself (:func:`~monespace.identity.profession_code`), so a row cannot drift onto
#: another profession. Every profession of J01 has a row; an empty row reads nothing.
_ROWS: Final = {
    "Médecin": _ALL,  # confirmed: every document but the attestation de résidence
    "Pharmacien": _CARE,
    "Sage-Femme": _CLINICAL,
    "Infirmier": _CARE,
    "Infirmier psychiatrique": _CARE,
    "Chirurgien-Dentiste": frozenset({"10", "11", "31", "42", "43", "45", "52"}),
    "Masseur-Kinésithérapeute": frozenset({"10", "11", "31", "42", "44"}),
    "Pédicure-Podologue": frozenset({"10", "42", "44"}),
    "Orthophoniste": frozenset({"10", "11", "42"}),
    "Orthoptiste": frozenset({"10", "42"}),
    "Ergothérapeute": frozenset({"10", "42", "44"}),
    "Diététicien": frozenset({"10", "42", "44"}),
    "Psychomotricien": frozenset({"10", "42", "44"}),
    "Manipulateur ERM": frozenset({"10", "31", "42"}),
    "Physicien médical": frozenset({"10", "31", "44"}),
    "Technicien de laboratoire médical": frozenset({"10", "42"}),
    "Opticien-Lunetier": frozenset({"42"}),
    "Audioprothésiste": frozenset({"42"}),
    "Orthoprothésiste": frozenset({"42"}),
    "Podo-Orthésiste": frozenset({"42"}),
    "Orthopédiste-Orthésiste": frozenset({"42"}),
    "Oculariste": frozenset({"42"}),
    "Epithésiste": frozenset({"42"}),
    "Préparateur en pharmacie hospitalière": frozenset({"42", "43"}),
    "Préparateur en pharmacie (officine)": frozenset({"42", "43"}),
    # Not among the professions the matrix authorises to read (assumption): they act under
    # a professional who does.
    "Assistant dentaire": _NONE,
    "Aide-soignant": _NONE,
    "Ambulancier": _NONE,
    "Auxiliaire de puériculture": _NONE,
}

#: The default matrix: physicians as published; other rows are documented assumptions.
DEFAULT_MATRIX: Final = AccessMatrix(
    classes=MappingProxyType({profession_code(name): row for name, row in _ROWS.items()}),
    denied_types=MappingProxyType(
        {
            profession_code("Médecin"): frozenset({"ATTEST-RESID"}),
            # Dentists do not see psychiatric syntheses, psychological assessments,
            # telemedicine requests nor social discharge letters (information-dentaire).
            profession_code("Chirurgien-Dentiste"): frozenset(
                {"68599-0", "83901-9", "75496-0", "83981-1", "88348-8"}
            ),
        }
    ),
)
