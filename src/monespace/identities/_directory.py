"""The directory of health professionals (RPPS): who they are and how to reach them.

Access decisions, messaging and the demo read it; it sits below all of them.
"""

from __future__ import annotations

from typing import Final

import attrs

from ..identity import parse_professional_address, professions

__all__ = ["PROFESSIONS", "Professional"]

#: Health professions (TRE_G15 codes) and their names, as the CI-SIS value set J01 lists
#: them (read from the shipped file, not copied by hand).
PROFESSIONS: Final = professions()


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
