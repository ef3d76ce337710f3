"""The directory of health professionals (RPPS): who they are and how to reach them.

Access decisions, messaging and the demo read it; it sits below all of them.
"""

from __future__ import annotations

from typing import Final

import attrs

from .._text import LIMITS, check_optional_text, check_text
from ..identity import parse_professional_address, professions

__all__ = ["PROFESSIONS", "Professional"]

#: Health professions (TRE_G15 codes) and their names, as the CI-SIS value set J01 lists
#: them (read from the shipped file, not copied by hand).
PROFESSIONS: Final = professions()


def _validate_mssante(_instance: object, _attribute: object, value: str | None) -> None:
    # The address reaches mail headers: the identity parser's strict rules, nothing looser.
    if value is not None:
        parse_professional_address(value)


# The fields go through the one text check, each under its own name (mypy's attrs plugin
# wants a named function per converter).


def _rpps(value: str) -> str:
    return check_text("rpps", value, max_length=LIMITS["label"])


def _profession(value: str) -> str:
    return check_text("profession", value, max_length=LIMITS["label"])


def _name(value: str) -> str:
    return check_text("name", value, max_length=LIMITS["name"])


def _specialty(value: str | None) -> str | None:
    return check_optional_text("specialty", value, max_length=LIMITS["label"])


def _finess(value: str | None) -> str | None:
    return check_optional_text("finess", value, max_length=LIMITS["label"])


def _establishment(value: str | None) -> str | None:
    return check_optional_text("establishment", value, max_length=LIMITS["name"])


def _assurance(value: str) -> str:
    return check_text("assurance", value, max_length=LIMITS["label"])


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

    The name, the establishment and the codes go through the one text check
    (:class:`~monespace.errors.ValidationError` for control characters, bidirectional
    overrides or an over-long value; stored in NFC).
    """

    rpps: str = attrs.field(converter=_rpps)
    profession: str = attrs.field(converter=_profession)
    name: str = attrs.field(converter=_name)
    specialty: str | None = attrs.field(default=None, converter=_specialty)
    mssante: str | None = attrs.field(default=None, validator=_validate_mssante)
    finess: str | None = attrs.field(default=None, converter=_finess)
    establishment: str | None = attrs.field(default=None, converter=_establishment)
    assurance: str = attrs.field(default="PSC", converter=_assurance)

    @property
    def profession_name(self) -> str:
        """The profession in words."""
        return PROFESSIONS.get(self.profession, self.profession)
