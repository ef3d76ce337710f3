"""The matrice d'habilitations: which document classes and types each profession may read."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

import attrs

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
# Physicians see "every document but the attestation de résidence" (the one confirmed row),
# so their classes include the signatures of submission sets.
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
